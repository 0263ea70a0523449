/** Deterministic initialisation: Philox4x32-10 known answers, seeds, bounds and a pinned model hash. */
import { describe, expect, it } from 'vitest';
import { buildTrainingPlan, modelHash, unflattenParameters } from '../../../../model/index.js';
import { philox4x32 } from '../../../../model/zoo/philox.js';
import { taskFor, type ZooSpec } from '../../../support/model/tasks.js';

describe('Philox4x32-10', () => {
  // Known-answer vectors of the Random123 distribution (kat_vectors, philox4x32 with 10 rounds).
  const vectors: [number[], number[], number[]][] = [
    [[0, 0, 0, 0], [0, 0], [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]],
    [[0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff], [0xffffffff, 0xffffffff], [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]],
    [[0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0], [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]],
  ];
  for (const [counter, key, expected] of vectors) {
    it(`counter ${counter.map((c) => c.toString(16)).join(' ')}`, () => {
      const out = new Uint32Array(4);
      philox4x32(counter, key, out);
      expect(Array.from(out)).toEqual(expected);
    });
  }
});

describe('initial parameters', () => {
  const mlp: ZooSpec = { kind: 'mlp', inputShape: [20], hidden: [16], classes: 4 };

  it('are identical for the same seed, with the same model hash', () => {
    const a = buildTrainingPlan(taskFor(mlp, { seed: 99 }));
    const b = buildTrainingPlan(taskFor(mlp, { seed: 99 }));
    expect(Array.from(a.initialParameters)).toEqual(Array.from(b.initialParameters));
    expect(modelHash(a, a.initialParameters)).toBe(modelHash(b, b.initialParameters));
  });

  it('differ for a different seed', () => {
    const a = buildTrainingPlan(taskFor(mlp, { seed: 99 }));
    const b = buildTrainingPlan(taskFor(mlp, { seed: 100 }));
    expect(modelHash(a, a.initialParameters)).not.toBe(modelHash(b, b.initialParameters));
    const same = a.initialParameters.filter((v, i) => v !== 0 && v === b.initialParameters[i]).length;
    expect(same).toBe(0);
  });

  it('are pinned: the same bits on every platform (golden values for a small logreg)', () => {
    const plan = buildTrainingPlan(taskFor({ kind: 'logreg', inputShape: [4], classes: 2 }, { seed: 7 }));
    expect(Array.from(plan.initialParameters)).toEqual([
      0.9091942310333252, 0.5003043413162231, -0.7716453075408936, -0.8286843299865723, -0.1860792636871338, 0.5905680656433105,
      -0.6564027070999146, 0.9157083034515381, 0, 0,
    ]);
    expect(modelHash(plan, plan.initialParameters)).toBe('57afd707fee6d7e5c06a3f0d91ddbc4ad3dde05dbd10c884e914d02dfa0d0291');
  });

  it('follow He (ReLU layers) and Glorot (output layer) uniform bounds, biases zero', () => {
    const plan = buildTrainingPlan(taskFor(mlp, { seed: 5 }));
    const tensors = unflattenParameters(plan, plan.initialParameters);
    const bounds: Record<string, number> = { 'fc1.weight': Math.sqrt(6 / 20), 'fc2.weight': Math.sqrt(6 / (16 + 4)) };
    for (const [name, bound] of Object.entries(bounds)) {
      const values = Array.from(tensors.get(name) as Float32Array);
      expect(Math.max(...values.map(Math.abs))).toBeLessThanOrEqual(Math.fround(bound));
      // Spread over the interval, not a constant: the extremes come near the bound.
      expect(Math.max(...values)).toBeGreaterThan(0.8 * bound);
      expect(Math.min(...values)).toBeLessThan(-0.8 * bound);
    }
    expect(Array.from(tensors.get('fc1.bias') as Float32Array).every((v) => v === 0)).toBe(true);
  });

  it("the FedAvg CNN has the paper's 1,663,370 parameters on 28x28x1 inputs with 10 classes", () => {
    const plan = buildTrainingPlan(taskFor({ kind: 'cnn', inputShape: [1, 28, 28], classes: 10 }));
    expect(plan.initialParameters.length).toBe(1_663_370);
    expect(plan.parameters.map((p) => `${p.name}[${p.shape.join('x')}]`)).toEqual([
      'conv1.weight[32x1x5x5]',
      'conv1.bias[32]',
      'conv2.weight[64x32x5x5]',
      'conv2.bias[64]',
      'fc1.weight[512x3136]',
      'fc1.bias[512]',
      'fc2.weight[10x512]',
      'fc2.bias[10]',
    ]);
  });
});
