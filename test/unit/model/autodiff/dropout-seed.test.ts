/**
 * A site's Dropout masks come from its own secret (EmitContext.randomSeed), not from ONNX Runtime's
 * clock-seeded default generator and not from anything the coordinator knows: every training-mode
 * Dropout node gets its own seed attribute derived from the secret and its emitted name.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { GraphBuilder } from '../../../../model/graph/builder.js';
import { modelFromGraph } from '../../../../model/graph/model.js';
import { encodeModel } from '../../../../model/onnx/codec.js';
import type { GraphIR } from '../../../../model/onnx/ir.js';
import { DataType } from '../../../../model/onnx/schema.js';
import { BATCH, type ValueFacts } from '../../../../model/autodiff/facts.js';
import { dropoutSeed } from '../../../../model/autodiff/ops/dropout.js';
import { constantFacts, inferFacts, lowerForward } from '../../../../model/autodiff/tape.js';
import { f32, output, run, session } from '../../../support/model/ort.js';

const SIZE = 200;

/** y1 = Dropout(x), y2 = Dropout(x), lowered in training mode with the given secret (or none). */
function twoDropouts(randomSeed: Uint8Array | undefined): GraphIR {
  const source = new GraphBuilder('source');
  source.addInput('x', DataType.FLOAT, [1, SIZE]);
  const ratio = source.scalar(0.5);
  source.appendNode('Dropout', ['x', ratio], ['y1'], {});
  source.appendNode('Dropout', ['x', ratio], ['y2'], {});
  const forward = source.build();
  const known = constantFacts(forward.initializers);
  known.set('x', { elemType: DataType.FLOAT, shape: [BATCH, SIZE] } satisfies ValueFacts);
  const facts = inferFacts(forward.nodes, known);
  const b = new GraphBuilder('lowered');
  const x = b.addInput('x', DataType.FLOAT, [1, SIZE]);
  const pass = lowerForward(forward.nodes, forward.initializers, facts, new Map([['x', x]]), {
    builder: b,
    mode: 'train',
    floatType: DataType.FLOAT,
    ...(randomSeed === undefined ? {} : { randomSeed }),
  });
  for (const name of ['y1', 'y2']) {
    b.appendNode('Identity', [pass.values.get(name) as string], [`out_${name}`], {});
    b.addOutput(`out_${name}`, DataType.FLOAT, [1, SIZE]);
  }
  return b.build();
}

function seedsOf(graph: GraphIR): number[] {
  return graph.nodes.filter((n) => n.opType === 'Dropout').map((n) => {
    const seed = n.attributes.seed;
    if (seed?.kind !== 'int') throw new Error(`Dropout node ${n.outputs[0] ?? ''} has no seed attribute`);
    return seed.value;
  });
}

/** The keep-masks of both Dropout nodes from a fresh session (x = 1 everywhere). */
async function masks(graph: GraphIR): Promise<{ y1: string; y2: string }> {
  const s = await session(encodeModel(modelFromGraph(graph)));
  const results = await run(s, { x: f32(new Array<number>(SIZE).fill(1), [1, SIZE]) });
  const mask = (name: string): string => Array.from(output(results, name).data, (v) => (v === 0 ? '0' : '1')).join('');
  return { y1: mask('out_y1'), y2: mask('out_y2') };
}

describe('Dropout seeded from the site secret', () => {
  it('gives every Dropout node its own seed derived from the secret, and none without one', () => {
    const secret = randomBytes(32);
    const seeds = seedsOf(twoDropouts(secret));
    expect(seeds).toHaveLength(2);
    expect(seeds[0]).not.toBe(seeds[1]);
    for (const seed of seeds) expect(Number.isSafeInteger(seed) && seed >= 0).toBe(true);
    expect(seedsOf(twoDropouts(randomBytes(32)))).not.toEqual(seeds);
    expect(twoDropouts(undefined).nodes.filter((n) => n.opType === 'Dropout').every((n) => n.attributes.seed === undefined)).toBe(true);
  });

  it('derives the seed from the secret and the emitted name only', () => {
    const secret = Uint8Array.from({ length: 32 }, (_, i) => i);
    expect(dropoutSeed({ randomSeed: secret }, 'a')).toBe(dropoutSeed({ randomSeed: Uint8Array.from(secret) }, 'a'));
    expect(dropoutSeed({ randomSeed: secret }, 'a')).not.toBe(dropoutSeed({ randomSeed: secret }, 'b'));
    const other = Uint8Array.from(secret);
    other[31] = 0xff;
    expect(dropoutSeed({ randomSeed: secret }, 'a')).not.toBe(dropoutSeed({ randomSeed: other }, 'a'));
  });

  it('ONNX Runtime draws the masks from those seeds: one secret repeats them, another does not', async () => {
    const secret = randomBytes(32);
    const first = await masks(twoDropouts(secret));
    const again = await masks(twoDropouts(Uint8Array.from(secret)));
    const other = await masks(twoDropouts(randomBytes(32)));
    expect(again).toEqual(first);
    // Two layers never share a mask, and another secret gives other masks (each a 2^-200 coincidence).
    expect(first.y1).not.toBe(first.y2);
    expect(other.y1).not.toBe(first.y1);
    expect(other.y2).not.toBe(first.y2);
  });
});
