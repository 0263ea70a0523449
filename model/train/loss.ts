/**
 * Softmax cross-entropy over integer labels, in closed form rather than differentiated op by op:
 *   log p = LogSoftmax(z) (the numerically stable form), loss = -(1/B) sum_i log p[i, label_i],
 *   d loss / dz = (softmax(z) - onehot(label)) / B.
 * The same one-hot tensor serves the loss and its gradient, which keeps the graph to a few small nodes
 * (ONNX SoftmaxCrossEntropyLoss has no CPU kernel in ONNX Runtime and expands into a dozen).
 * The logits gradient can be pre-multiplied by a scalar (the descent step -lr for plain SGD), which
 * flows linearly through the whole backward pass.
 *
 * Class weights w and label smoothing e follow torch.nn.CrossEntropyLoss exactly: with the soft target
 *   q[i, c] = (1 - e) * w[y_i] * onehot[i, c] + (e / C) * w[c],
 * loss = -sum_ic q[i, c] log p[i, c] / sum_i w[y_i] (PyTorch's weighted mean: the smoothing term is
 * divided by the same sum of target weights), and d loss / dz[i] = (sum_c q[i, c] * p[i] - q[i]) / sum_i w[y_i].
 */
import { attr, type GraphBuilder } from '../graph/builder.js';
import { DataType } from '../onnx/schema.js';

export interface TrainLoss {
  readonly loss: string;
  readonly gradLogits: string;
  readonly correct: string;
}

export interface CrossEntropyOptions {
  readonly classWeights?: readonly number[] | undefined;
  readonly labelSmoothing?: number;
  /**
   * The gradient of the SUM of the per-example terms (w[y_i] times example i's smoothed cross-entropy),
   * without the batch's denominator - what DP-SGD clips per example. The 'loss' output stays the mean.
   */
  readonly sumOverBatch?: boolean;
}

/** Number of rows whose argmax equals the label, as a float scalar. */
export function emitCorrectCount(b: GraphBuilder, logits: string, label: string, outputName?: string): string {
  const predicted = b.op('ArgMax', [logits], { axis: attr.int(1), keepdims: attr.int(0) }, 'predicted');
  const hits = b.op('Cast', [b.op('Equal', [predicted, label])], { to: attr.int(DataType.FLOAT) }, 'hits');
  const attributes = { keepdims: attr.int(0) };
  if (outputName === undefined) return b.op('ReduceSum', [hits], attributes, 'correct');
  b.appendNode('ReduceSum', [hits], [outputName], attributes);
  return outputName;
}

function oneHot(b: GraphBuilder, label: string, classes: number): string {
  return b.op(
    'OneHot',
    [label, b.constant(DataType.INT64, [], [classes], 'classes'), b.constant(DataType.FLOAT, [2], [0, 1], 'one_hot_values')],
    { axis: attr.int(-1) },
    'one_hot',
  );
}

/**
 * Mean cross-entropy (named `names.loss`), the correct count, and d loss / d logits multiplied by
 * `gradientScale` when given.
 */
export function emitTrainLoss(
  b: GraphBuilder,
  logits: string,
  label: string,
  classes: number,
  names: { readonly loss: string; readonly correct: string },
  gradientScale?: string,
  options: CrossEntropyOptions = {},
): TrainLoss {
  if (options.classWeights !== undefined || (options.labelSmoothing ?? 0) > 0) {
    return emitWeightedTrainLoss(b, logits, label, classes, names, gradientScale, options);
  }
  const logProb = b.op('LogSoftmax', [logits], { axis: attr.int(1) }, 'log_prob');
  const target = oneHot(b, label, classes);
  const invBatch = b.op('Reciprocal', [b.op('Cast', [b.op('Size', [label])], { to: attr.int(DataType.FLOAT) })], {}, 'inv_batch');
  const picked = b.op('ReduceSum', [b.op('Mul', [logProb, target])], { keepdims: attr.int(0) }, 'log_likelihood');
  b.appendNode('Mul', [picked, b.op('Neg', [invBatch])], [names.loss], {});
  const residual = b.op('Sub', [b.op('Exp', [logProb], {}, 'probabilities'), target], {}, 'residual');
  const denominator = options.sumOverBatch === true ? undefined : invBatch;
  const scale = productOf(b, denominator, gradientScale);
  if (scale === undefined) return { loss: names.loss, gradLogits: residual, correct: emitCorrectCount(b, logits, label, names.correct) };
  const gradLogits = b.op('Mul', [residual, scale], {}, 'grad/logits');
  const correct = emitCorrectCount(b, logits, label, names.correct);
  return { loss: names.loss, gradLogits, correct };
}

/** The class-weighted and/or label-smoothed form (see the file comment for the formulas). */
function emitWeightedTrainLoss(
  b: GraphBuilder,
  logits: string,
  label: string,
  classes: number,
  names: { readonly loss: string; readonly correct: string },
  gradientScale: string | undefined,
  options: CrossEntropyOptions,
): TrainLoss {
  const smoothing = options.labelSmoothing ?? 0;
  const weights = options.classWeights ?? new Array<number>(classes).fill(1);
  const weightRow = b.constant(DataType.FLOAT, [classes], weights, 'class_weights');
  const logProb = b.op('LogSoftmax', [logits], { axis: attr.int(1) }, 'log_prob');
  // w[y_i] in the label's column, 0 elsewhere: [B, C].
  const weightedHot = b.op('Mul', [oneHot(b, label, classes), weightRow], {}, 'weighted_one_hot');
  const targetWeightSum = b.op('ReduceSum', [weightedHot], { keepdims: attr.int(0) }, 'target_weight_sum');
  let soft = weightedHot;
  if (smoothing > 0) {
    const kept = b.op('Mul', [weightedHot, b.scalar(1 - smoothing)], {}, 'kept');
    const spread = b.op('Mul', [weightRow, b.scalar(smoothing / classes)], {}, 'spread');
    soft = b.op('Add', [kept, spread], {}, 'soft_target');
  }
  const inverse = b.op('Reciprocal', [targetWeightSum], {}, 'inv_target_weight');
  const picked = b.op('ReduceSum', [b.op('Mul', [logProb, soft])], { keepdims: attr.int(0) }, 'log_likelihood');
  b.appendNode('Mul', [picked, b.op('Neg', [inverse])], [names.loss], {});
  const rowMass = b.op('ReduceSum', [soft, b.int64s([1])], { keepdims: attr.int(1) }, 'soft_mass');
  const probabilities = b.op('Exp', [logProb], {}, 'probabilities');
  const residual = b.op('Sub', [b.op('Mul', [probabilities, rowMass]), soft], {}, 'residual');
  const scale = productOf(b, options.sumOverBatch === true ? undefined : inverse, gradientScale);
  if (scale === undefined) return { loss: names.loss, gradLogits: residual, correct: emitCorrectCount(b, logits, label, names.correct) };
  const gradLogits = b.op('Mul', [residual, scale], {}, 'grad/logits');
  const correct = emitCorrectCount(b, logits, label, names.correct);
  return { loss: names.loss, gradLogits, correct };
}

/** The product of the optional gradient factors (undefined: none). */
function productOf(b: GraphBuilder, denominator: string | undefined, gradientScale: string | undefined): string | undefined {
  if (denominator === undefined) return gradientScale;
  return gradientScale === undefined ? denominator : b.op('Mul', [denominator, gradientScale], {}, 'grad_scale');
}

/**
 * Summed cross-entropy over the batch (evaluation): the plain negative log-likelihood of the true class,
 * without class weights or smoothing, so loss_sum / examples reads the same for every task.
 */
export function emitSummedLoss(b: GraphBuilder, logits: string, label: string, outputName: string, classes: number): string {
  const logProb = b.op('LogSoftmax', [logits], { axis: attr.int(1) }, 'log_prob');
  const picked = b.op('ReduceSum', [b.op('Mul', [logProb, oneHot(b, label, classes)])], { keepdims: attr.int(0) }, 'log_likelihood');
  b.appendNode('Neg', [picked], [outputName], {});
  return outputName;
}
