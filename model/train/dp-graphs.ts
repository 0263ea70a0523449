/**
 * The two graphs of a DP-SGD step (Abadi et al. 2016, Algorithm 1), with the noise drawn between them:
 *
 * 1. dpGradientSum: forward on the sampled batch with per-example parameter copies (per-example.ts),
 *    the task's loss as a SUM of per-example losses, backward -> per-example gradients g_b; the squared
 *    norms summed over every trainable parameter give ||g_b||; factor_b = min(1, C / (||g_b|| + 1e-6));
 *    outputs the clipped sum S = sum_b factor_b g_b for every parameter ('clipped_sum.<name>').
 * 2. dpUpdate: gradient = noisy_sum / expected_batch (the caller passes q * N), then the task's
 *    optimiser update exactly as trainStep does it.
 *
 * Between them the caller releases the sum as snap(S) + discrete Gaussian noise of std sigma * C
 * (crypto/dp addSnappedGaussianNoise, node:crypto randomness). The noise cannot be a graph input added
 * inside graph 2 in float32: the snapped mechanism must round S itself to its grid before adding
 * integer noise, or the low bits of the float sum leak it (Mironov 2012). And no graph here has a random
 * op other than the model's own Dropout (checked by the tests).
 *
 * Per-example loss: for cross_entropy with class weights w it is w[y_b] * CE_b (the term of PyTorch's
 * weighted mean before division by sum_b w[y_b], a data-dependent denominator DP replaces with q * N);
 * label smoothing stays in CE_b; without weights it is CE_b. For binary_cross_entropy and regression it
 * is the mean over the example's outputs. 'loss' is the batch mean of these (reporting only).
 */
import { GraphBuilder, attr } from '../graph/builder.js';
import type { GraphIR } from '../onnx/ir.js';
import { DataType } from '../onnx/schema.js';
import { ModelError } from '../errors.js';
import { BATCH } from '../autodiff/facts.js';
import { GradContext } from '../autodiff/rule.js';
import { backpropagate, checkSupported, constantFacts, inferFacts, lowerForward, valuesRequiringGrad } from '../autodiff/tape.js';
import type { ResolvedLoss, TaskDocument } from '../task.js';
import { BATCH_DIM_PARAM, addLabelInput, stateInfo } from './graphs.js';
import { emitObjective } from './objective.js';
import { emitTrainLoss, type TrainLoss } from './loss.js';
import { emitOptimizerUpdate, seedsDescent } from './optimizer.js';
import { perExampleForward } from './per-example.js';
import { CORRECT, LABEL, LEARNING_RATE, LOSS, PROXIMAL_MU, globalName, planInputs, updatedName, type PreparedModel } from './prepare.js';

export const clippedSumName = (name: string): string => `clipped_sum.${name}`;
export const noisySumName = (name: string): string => `noisy_sum.${name}`;
export const perExampleGradientName = (name: string): string => `per_example.${name}`;
export const PER_EXAMPLE_NORM = 'per_example_norm';
export const EXPECTED_BATCH = 'expected_batch';
/** Added to the norm before dividing (the factor stays finite for a zero gradient). */
export const CLIP_EPSILON = 1e-6;
/**
 * Largest per-example gradient memory a DP step may take: B x (trainable values) float32, held about
 * three times (the expanded copies, their gradients, the scaled products).
 */
export const MAX_PER_EXAMPLE_BYTES = 2 * 1024 ** 3;

export function perExampleBytes(trainableValues: number, batch: number): number {
  return 3 * 4 * trainableValues * batch;
}

/** Throws RESOURCE_EXHAUSTED when a batch of `batch` examples would need more than MAX_PER_EXAMPLE_BYTES. */
export function checkPerExampleMemory(trainableValues: number, batch: number): void {
  const bytes = perExampleBytes(trainableValues, batch);
  if (bytes > MAX_PER_EXAMPLE_BYTES) {
    throw new ModelError(
      'RESOURCE_EXHAUSTED',
      'UNSUPPORTED_MODEL',
      `DP-SGD holds one gradient per example: ${batch} examples x ${trainableValues} trainable values need about ${(bytes / 1024 ** 3).toFixed(1)} GiB (limit ${MAX_PER_EXAMPLE_BYTES / 1024 ** 3} GiB); lower privacy.recordLevel.samplingRate or use a smaller model`,
    );
  }
}

export interface DpGradientOptions {
  /** C: every example's gradient is scaled to L2 norm at most C. */
  readonly clipNorm: number;
  /** Also output 'per_example.<name>' [B, ...] and 'per_example_norm' [B] (tests, diagnostics). */
  readonly perExampleOutputs?: boolean;
  readonly randomSeed?: Uint8Array;
}

/**
 * The task loss with d/dlogits of the SUM of per-example losses. Cross-entropy has that form itself (its
 * weighted mean would divide by the batch's class-weight sum, zero for a batch of zero-weight classes);
 * the element means of the other losses divide by B x outputs, undone here by the factor B.
 */
function emitPerExampleObjective(b: GraphBuilder, loss: ResolvedLoss, logits: string, label: string, classes: number): TrainLoss {
  const names = { loss: LOSS, correct: CORRECT };
  if (loss.kind === 'cross_entropy') {
    return emitTrainLoss(b, logits, label, classes, names, undefined, { classWeights: loss.classWeights, labelSmoothing: loss.labelSmoothing, sumOverBatch: true });
  }
  const rows = b.op('Shape', [label], { start: attr.int(0), end: attr.int(1) }, 'rows');
  const batchSize = b.op('Reshape', [b.op('Cast', [rows], { to: attr.int(DataType.FLOAT) }), b.int64s([])], {}, 'batch_size');
  return emitObjective(b, loss, logits, label, classes, names, batchSize);
}

export function buildDpGradientGraph(prepared: PreparedModel, options: DpGradientOptions): GraphIR {
  const clipNorm = options.clipNorm;
  if (!(Number.isFinite(clipNorm) && clipNorm > 0)) throw new ModelError('INVALID_ARGUMENT', 'TASK_INVALID', `clipNorm must be a finite number > 0, got ${clipNorm}`);
  const rewritten = perExampleForward(prepared);
  const forward = rewritten.forward;
  const sources = [...rewritten.perExample.values()];
  checkSupported(forward.nodes, sources);
  const seed = constantFacts(forward.constants);
  const inputs = planInputs(forward);
  for (const input of inputs) seed.set(input.source, { elemType: input.elemType, shape: [BATCH, ...input.shape] });
  for (const p of forward.parameters) seed.set(p.name, { elemType: DataType.FLOAT, shape: p.shape });
  const facts = inferFacts(forward.nodes, seed);
  const requiresGrad = valuesRequiringGrad(forward.nodes, sources);

  const b = new GraphBuilder('fedgate_dp_gradient_sum');
  const trainable = prepared.trainable;
  b.reserve([LOSS, CORRECT, PER_EXAMPLE_NORM, ...trainable.flatMap((p) => [clippedSumName(p.name), perExampleGradientName(p.name)])]);
  for (const p of forward.parameters) b.addInput(p.name, DataType.FLOAT, p.shape);
  for (const input of inputs) b.addInput(input.name, input.elemType, [BATCH_DIM_PARAM, ...input.shape]);
  addLabelInput(b, prepared, [BATCH_DIM_PARAM]);
  const bindings = new Map<string, string>(inputs.map((input) => [input.source, input.name]));
  for (const p of forward.parameters) bindings.set(p.name, p.name);
  const pass = lowerForward(forward.nodes, forward.constants, facts, bindings, {
    builder: b,
    mode: 'train',
    floatType: DataType.FLOAT,
    ...(options.randomSeed === undefined ? {} : { randomSeed: options.randomSeed }),
  });
  const logits = pass.values.get(forward.logits) as string;
  const loss = emitPerExampleObjective(b, prepared.loss, logits, LABEL, forward.classes);
  const grads = backpropagate(pass.tape, new Map([[logits, loss.gradLogits]]), requiresGrad, new GradContext(b, DataType.FLOAT));

  // Per-example gradients g_p [B, ...shape(p)]; a parameter the loss does not reach has g_p = 0.
  const perExample = trainable.map((p) => {
    const copy = pass.values.get(rewritten.perExample.get(p.name) as string) as string;
    return grads.get(copy) ?? b.op('Mul', [copy, b.scalar(0)], {}, `per_example/${p.name}/zero`);
  });
  const squares = trainable.map((p, i) => {
    const g = perExample[i] as string;
    const squared = b.op('Mul', [g, g], {}, `per_example/${p.name}/squared`);
    if (p.shape.length === 0) return squared;
    return b.op('ReduceSum', [squared, b.int64s(p.shape.map((_, axis) => axis + 1))], { keepdims: attr.int(0) }, `per_example/${p.name}/square_sum`);
  });
  const total = squares.length === 1 ? (squares[0] as string) : b.op('Sum', squares, {}, 'per_example/square_sum');
  const norm = b.op('Sqrt', [total], {}, 'per_example/norm');
  const factor = b.op('Min', [b.scalar(1), b.op('Div', [b.scalar(clipNorm), b.op('Add', [norm, b.scalar(CLIP_EPSILON)])])], {}, 'clip_factor');
  // Clipped sum as one MatMul per parameter: factor [1, B] @ g_p [B, size(p)].
  const factorRow = b.op('Reshape', [factor, b.int64s([1, -1])], {}, 'clip_factor_row');
  trainable.forEach((p, i) => {
    const size = p.shape.reduce((n, d) => n * d, 1);
    const rows = b.op('Reshape', [perExample[i] as string, b.int64s([-1, size])], {}, `per_example/${p.name}/rows`);
    const summed = b.op('MatMul', [factorRow, rows], {}, `clipped/${p.name}`);
    b.appendNode('Reshape', [summed, b.int64s([...p.shape])], [clippedSumName(p.name)], {});
    b.addOutput(clippedSumName(p.name), DataType.FLOAT, p.shape);
  });
  if (options.perExampleOutputs === true) {
    trainable.forEach((p, i) => {
      b.appendNode('Identity', [perExample[i] as string], [perExampleGradientName(p.name)], {});
      b.addOutput(perExampleGradientName(p.name), DataType.FLOAT, [BATCH_DIM_PARAM, ...p.shape]);
    });
    b.appendNode('Identity', [norm], [PER_EXAMPLE_NORM], {});
    b.addOutput(PER_EXAMPLE_NORM, DataType.FLOAT, [BATCH_DIM_PARAM]);
  }
  b.addOutput(LOSS, DataType.FLOAT, []);
  b.addOutput(CORRECT, DataType.FLOAT, []);
  return b.build(`fedgate DP-SGD gradient sum: per-example ${prepared.loss.kind} gradients clipped to L2 norm ${clipNorm} and summed (noise is added outside the graph)`);
}

export function buildDpUpdateGraph(prepared: PreparedModel, task: TaskDocument): GraphIR {
  const b = new GraphBuilder('fedgate_dp_update');
  const states = stateInfo(prepared, task);
  const updated = [...prepared.forward.parameters, ...states];
  b.reserve(updated.map((t) => updatedName(t.name)));
  for (const p of prepared.forward.parameters) b.addInput(p.name, DataType.FLOAT, p.shape);
  for (const s of states) b.addInput(s.name, DataType.FLOAT, s.shape);
  for (const p of prepared.trainable) b.addInput(noisySumName(p.name), DataType.FLOAT, p.shape);
  b.addInput(EXPECTED_BATCH, DataType.FLOAT, []);
  b.addInput(LEARNING_RATE, DataType.FLOAT, []);
  const proximal = task.training.proximalMu > 0;
  if (proximal) {
    for (const p of prepared.trainable) b.addInput(globalName(p.name), DataType.FLOAT, p.shape);
    b.addInput(PROXIMAL_MU, DataType.FLOAT, []);
  }
  // Plain SGD expects the descent step -lr * g (seedsDescent): fold -lr into the 1 / (q N) scaling.
  const inverse = b.op('Reciprocal', [EXPECTED_BATCH], {}, 'inv_expected_batch');
  const scale = seedsDescent(task.optimizer) ? b.op('Mul', [inverse, b.op('Neg', [LEARNING_RATE])], {}, 'descent_scale') : inverse;
  const gradients = new Map(prepared.trainable.map((p) => [p.name, b.op('Mul', [noisySumName(p.name), scale], {}, `dp_gradient/${p.name}`)]));
  emitOptimizerUpdate(b, task.optimizer, prepared.trainable, {
    learningRate: LEARNING_RATE,
    ...(proximal ? { proximalMu: PROXIMAL_MU } : {}),
    parameter: (name) => name,
    global: globalName,
    state: (name) => name,
    gradient: (name) => gradients.get(name),
    updatedName,
  });
  for (const p of prepared.forward.parameters) {
    if (p.role !== 'trainable') b.appendNode('Identity', [p.name], [updatedName(p.name)], {});
  }
  for (const t of updated) b.addOutput(updatedName(t.name), DataType.FLOAT, t.shape);
  return b.build('fedgate DP-SGD update: the noisy clipped gradient sum divided by the expected batch, then the task optimiser');
}
