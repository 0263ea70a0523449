/**
 * DP-SGD's per-example gradients (model/train/per-example.ts, dp-graphs.ts): row b of the batched graph's
 * 'per_example.<name>' must equal the gradient the ordinary trainStep computes on example b alone, for
 * every per-example form (Gemm, Conv with groups and strides, GroupNorm, LayerNorm, MatMul on [B, T, D],
 * parameters read through Transpose, broadcast parameters, Gather embeddings); models whose ops have no
 * per-example form are refused by name.
 */
import { describe, expect, it } from 'vitest';
import { encodeModel } from '../../../../model/onnx/codec.js';
import { modelFromGraph } from '../../../../model/graph/model.js';
import type { GraphIR } from '../../../../model/onnx/ir.js';
import type { ForwardModel } from '../../../../model/train/forward-model.js';
import { buildTrainStepGraph } from '../../../../model/train/graphs.js';
import { prepareModel, type PreparedModel } from '../../../../model/train/prepare.js';
import { BATCHNORM_REFUSAL } from '../../../../model/train/per-example.js';
import { buildDpGradientGraph, checkPerExampleMemory, clippedSumName, perExampleGradientName, PER_EXAMPLE_NORM } from '../../../../model/train/dp-graphs.js';
import type { TaskDocument } from '../../../../model/index.js';
import { buildZooModel } from '../../../../model/zoo/zoo.js';
import { f32, i64, output, pseudoRandom, run, session, type Feed, type Output } from '../../../support/model/ort.js';
import { batchNormModel, BLOCK_SHAPE, headRowsModel, mergedRowsModel, tiledRowsModel, MISC_SHAPE, miscModel, timeMajorModel, recurrentModel, SEQUENCE_SHAPE, CNN_SHAPE, cnnModel, convTransposeModel, embeddingModel, MLP_SHAPE, mlpModel, transformerModel, VOCABULARY } from '../../../support/model/dp-models.js';
import { taskFor } from '../../../support/model/tasks.js';

const BATCH = 5;
const plainSgd: TaskDocument = taskFor({ kind: 'logreg', inputShape: [1], classes: 2 }, { optimizer: { kind: 'sgd', learningRate: 1 } });

const bytes = (graph: GraphIR): Uint8Array => encodeModel(modelFromGraph(graph));

interface Case {
  readonly name: string;
  readonly model: () => ForwardModel;
  /** Feeds for examples [from, from + count) of the test batch. */
  readonly data: (from: number, count: number) => Record<string, Feed>;
}

function floatData(shape: readonly number[], seed: number) {
  const size = shape.reduce((n, d) => n * d, 1);
  const all = pseudoRandom(BATCH * size, seed, -1, 1);
  const labels = Array.from({ length: BATCH }, (_, i) => (i * 2 + seed) % 3);
  return (from: number, count: number): Record<string, Feed> => ({
    input: f32(all.slice(from * size, (from + count) * size), [count, ...shape]),
    label: i64(labels.slice(from, from + count), [count]),
  });
}

function idData(from: number, count: number): Record<string, Feed> {
  const ids = Array.from({ length: BATCH * 5 }, (_, i) => (i * 3 + 1) % VOCABULARY);
  const labels = Array.from({ length: BATCH }, (_, i) => i % 3);
  return { 'input.ids': i64(ids.slice(from * 5, (from + count) * 5), [count, 5]), label: i64(labels.slice(from, from + count), [count]) };
}

const CASES: Case[] = [
  { name: 'MLP (Gemm with transB, alpha, beta and a [1, n] bias)', model: mlpModel, data: floatData(MLP_SHAPE, 3) },
  { name: 'zoo CNN (Conv, MaxPool, Gemm)', model: () => buildZooModel({ kind: 'cnn', inputShape: [1, 8, 8], classes: 3 }, 4), data: floatData([1, 8, 8], 4) },
  { name: 'CNN with grouped strided Conv, GroupNorm and LayerNorm', model: cnnModel, data: floatData(CNN_SHAPE, 5) },
  { name: 'transformer-ish block (MatMul on [B, T, D], attention, LayerNorm)', model: transformerModel, data: floatData(BLOCK_SHAPE, 6) },
  { name: 'embedding (Gather) with a learned position table', model: embeddingModel, data: idData },
  { name: 'bidirectional GRU feeding an LSTM (unrolled per example)', model: recurrentModel, data: floatData(SEQUENCE_SHAPE, 8) },
  { name: 'Gemm on rows [B*T, D] flattened from [B, T, D]', model: mergedRowsModel, data: floatData(SEQUENCE_SHAPE, 10) },
  { name: 'Gemm on rows [T*B, D] after per-head attention on [B*H, T, d] (layout derived)', model: headRowsModel, data: floatData(SEQUENCE_SHAPE, 11) },
  { name: 'time-major [T, B, D] values (batch axis 1) meeting MatMul, bias Add and LayerNorm', model: timeMajorModel, data: floatData(SEQUENCE_SHAPE, 9) },
  { name: '1-D Conv, parameter-left MatMul, Sub/Div/Max/Where, Unsqueeze/Reshape of parameters, constant-index Gather', model: miscModel, data: floatData(MISC_SHAPE, 7) },
];

function parameterFeeds(prepared: PreparedModel): Record<string, Feed> {
  const feeds: Record<string, Feed> = {};
  let offset = 0;
  for (const p of prepared.forward.parameters) {
    const size = p.shape.reduce((n, d) => n * d, 1);
    feeds[p.name] = f32(prepared.forward.initialParameters.subarray(offset, offset + size), p.shape);
    offset += size;
  }
  return feeds;
}

/** The gradient of example `index` alone, read from a plain-SGD (lr 1) trainStep: g = w - w'. */
async function singleExampleGradients(prepared: PreparedModel, c: Case, index: number): Promise<Map<string, Float64Array>> {
  const s = await session(bytes(buildTrainStepGraph(prepared, plainSgd)));
  const params = parameterFeeds(prepared);
  const result = await run(s, { ...params, ...c.data(index, 1), learning_rate: f32([1], []) });
  return new Map(prepared.trainable.map((p) => {
    const before = (params[p.name] as Feed).data;
    const after = output(result, `updated.${p.name}`).data;
    return [p.name, Float64Array.from(after, (v, i) => Number(before[i]) - v)];
  }));
}

function worstDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs((a[i] as number) - (b[i] as number)));
  return worst;
}

/** Checks row b of every 'per_example.<name>' against weight(b) x the gradient of example b alone. */
async function expectPerExampleRows(prepared: PreparedModel, c: Case, weight: (b: number) => number = () => 1): Promise<Record<string, Output>> {
  const s = await session(bytes(buildDpGradientGraph(prepared, { clipNorm: 1e9, perExampleOutputs: true })));
  const result = await run(s, { ...parameterFeeds(prepared), ...c.data(0, BATCH) });
  let anyNonZero = false;
  for (let b = 0; b < BATCH; b++) {
    const reference = await singleExampleGradients(prepared, c, b);
    let squared = 0;
    for (const p of prepared.trainable) {
      const all = output(result, perExampleGradientName(p.name));
      expect(all.dims).toEqual([BATCH, ...p.shape]);
      const size = p.shape.reduce((n, d) => n * d, 1);
      const row = all.data.subarray(b * size, (b + 1) * size);
      const expected = (reference.get(p.name) as Float64Array).map((v) => v * weight(b));
      const scale = expected.reduce((m, v) => Math.max(m, Math.abs(v)), 1);
      expect(worstDifference(row, expected) / scale, `${p.name}, example ${b}`).toBeLessThan(2e-5);
      if (expected.some((v) => Math.abs(v) > 1e-4)) anyNonZero = true;
      squared += row.reduce((n, v) => n + v * v, 0);
    }
    expect(output(result, PER_EXAMPLE_NORM).data[b]).toBeCloseTo(Math.sqrt(squared), 4);
  }
  expect(anyNonZero).toBe(true);
  return result;
}

describe('per-example gradients in one batched graph', () => {
  for (const c of CASES) {
    it(`${c.name}: row b equals the gradient of example b alone`, async () => {
      const prepared = prepareModel(c.model());
      const result = await expectPerExampleRows(prepared, c);
      // With C far above every norm nothing is clipped: the clipped sum is the plain sum.
      for (const p of prepared.trainable) {
        const all = output(result, perExampleGradientName(p.name));
        const size = all.data.length / BATCH;
        const sum = Float64Array.from({ length: size }, (_, i) => Array.from({ length: BATCH }, (__, b) => all.data[b * size + i] as number).reduce((n, v) => n + v, 0));
        expect(worstDifference(output(result, clippedSumName(p.name)).data, sum)).toBeLessThan(1e-5);
      }
    });
  }
});

describe('the per-example loss is the example\'s own term of the task loss', () => {
  it('cross_entropy with class weights and label smoothing: w[y_b] x the smoothed cross-entropy of the example', async () => {
    const weights = [0.5, 2, 1.25];
    const prepared = prepareModel(mlpModel(), { kind: 'cross_entropy', classWeights: weights, labelSmoothing: 0.1 });
    const labels = (floatData(MLP_SHAPE, 3)(0, BATCH)['label'] as Feed).data;
    // Alone, the weighted mean divides by w[y_b] itself: the batch-1 gradient is the unweighted term.
    await expectPerExampleRows(prepared, CASES[0] as Case, (b) => weights[Number(labels[b])] as number);
  });

  it('a batch of zero-weight classes gives finite per-example gradients (where the weighted mean divides by zero)', async () => {
    const prepared = prepareModel(mlpModel(), { kind: 'cross_entropy', classWeights: [0, 2, 1.25], labelSmoothing: 0.1 });
    const base = floatData(MLP_SHAPE, 3)(0, BATCH);
    const s = await session(bytes(buildDpGradientGraph(prepared, { clipNorm: 1, perExampleOutputs: true })));
    const result = await run(s, { ...parameterFeeds(prepared), input: base['input'] as Feed, label: i64(new Array<number>(BATCH).fill(0), [BATCH]) });
    for (const p of prepared.trainable) {
      const sum = output(result, clippedSumName(p.name)).data;
      expect(sum.every(Number.isFinite), p.name).toBe(true);
    }
    // Label smoothing still gives the other classes weight: the gradients are not all zero.
    expect(output(result, PER_EXAMPLE_NORM).data.every((n) => Number.isFinite(n) && n > 0)).toBe(true);
  });

  for (const loss of [{ kind: 'mse' }, { kind: 'binary_cross_entropy', posWeight: [1, 3, 0.5] }] as const) {
    it(`${loss.kind}: the mean over the example's outputs`, async () => {
      const targets = pseudoRandom(BATCH * 3, 17, 0, 1).map((v) => (loss.kind === 'mse' ? v : v > 0.5 ? 1 : 0));
      const base = floatData(MLP_SHAPE, 3);
      const c: Case = {
        name: loss.kind,
        model: mlpModel,
        data: (from, count) => ({ input: base(from, count)['input'] as Feed, label: f32(targets.slice(from * 3, (from + count) * 3), [count, 3]) }),
      };
      await expectPerExampleRows(prepareModel(mlpModel(), loss), c);
    });
  }
});

describe('clipping', () => {
  it('with C below every norm each example contributes exactly norm C: the clipped sum is sum_b C g_b / ||g_b||', async () => {
    const prepared = prepareModel(cnnModel());
    const clipNorm = 1e-3;
    const s = await session(bytes(buildDpGradientGraph(prepared, { clipNorm, perExampleOutputs: true })));
    const result = await run(s, { ...parameterFeeds(prepared), ...floatData(CNN_SHAPE, 5)(0, BATCH) });
    const norms = output(result, PER_EXAMPLE_NORM).data;
    for (const norm of norms) expect(norm).toBeGreaterThan(clipNorm * 10);
    let contributionNorms = new Float64Array(BATCH);
    for (const p of prepared.trainable) {
      const all = output(result, perExampleGradientName(p.name)).data;
      const size = all.length / BATCH;
      const expected = new Float64Array(size);
      for (let b = 0; b < BATCH; b++) {
        const factor = clipNorm / ((norms[b] as number) + 1e-6);
        for (let i = 0; i < size; i++) {
          const contribution = (all[b * size + i] as number) * factor;
          expected[i] = (expected[i] as number) + contribution;
          contributionNorms[b] = (contributionNorms[b] as number) + contribution * contribution;
        }
      }
      expect(worstDifference(output(result, clippedSumName(p.name)).data, expected)).toBeLessThan(1e-8);
    }
    contributionNorms = contributionNorms.map(Math.sqrt);
    for (const norm of contributionNorms) expect(norm).toBeCloseTo(clipNorm, 7);
  });

  it('scales only the examples above C', async () => {
    const prepared = prepareModel(mlpModel());
    const probe = await run(await session(bytes(buildDpGradientGraph(prepared, { clipNorm: 1e9, perExampleOutputs: true }))), { ...parameterFeeds(prepared), ...floatData(MLP_SHAPE, 3)(0, BATCH) });
    const norms = Array.from(output(probe, PER_EXAMPLE_NORM).data);
    const sorted = [...norms].sort((a, b) => a - b);
    const clipNorm = ((sorted[1] as number) + (sorted[3] as number)) / 2;
    const result = await run(await session(bytes(buildDpGradientGraph(prepared, { clipNorm, perExampleOutputs: true }))), { ...parameterFeeds(prepared), ...floatData(MLP_SHAPE, 3)(0, BATCH) });
    for (const p of prepared.trainable) {
      const all = output(probe, perExampleGradientName(p.name)).data;
      const size = all.length / BATCH;
      const expected = Float64Array.from({ length: size }, (_, i) =>
        norms.reduce((n, norm, b) => n + (all[b * size + i] as number) * Math.min(1, clipNorm / (norm + 1e-6)), 0),
      );
      expect(worstDifference(output(result, clippedSumName(p.name)).data, expected)).toBeLessThan(1e-6);
    }
  });
});

describe('models without per-example gradients are refused', () => {
  it('BatchNorm, with the GroupNorm/LayerNorm advice', () => {
    const prepared = prepareModel(batchNormModel());
    expect(() => buildDpGradientGraph(prepared, { clipNorm: 1 })).toThrow(BATCHNORM_REFUSAL);
    expect(() => buildDpGradientGraph(prepared, { clipNorm: 1 })).toThrow(/node '[^']+' \(BatchNormalization\).*use GroupNorm or LayerNorm/);
  });

  it('an op that reads a parameter and has no per-example form, by op and node', () => {
    const prepared = prepareModel(convTransposeModel());
    expect(() => buildDpGradientGraph(prepared, { clipNorm: 1 })).toThrow(/ConvTranspose \(node '[^']+'\) has no per-example form/);
  });

  it('a parameter meeting rows whose batch layout is not derived (through a ReduceMean), by op and node', () => {
    const prepared = prepareModel(tiledRowsModel());
    expect(() => buildDpGradientGraph(prepared, { clipNorm: 1 })).toThrow(/Gemm \(node '[^']+'\) combines a parameter with a value of shape \[batch\*3, 2\], whose batch axis is merged with others/);
  });

  it('a batch whose per-example gradients would exceed 2 GiB, before running it', () => {
    expect(() => checkPerExampleMemory(10_000_000, 64)).toThrow(/64 examples x 10000000 trainable values.*GiB/);
    expect(() => checkPerExampleMemory(100_000, 64)).not.toThrow();
  });
});



