/**
 * Softmax cross-entropy over integer labels, in closed form rather than differentiated op by op:
 *   log p = LogSoftmax(z) (the numerically stable form), loss = -(1/B) sum_i log p[i, label_i],
 *   d loss / dz = (softmax(z) - onehot(label)) / B.
 * The same one-hot tensor serves the loss and its gradient, which keeps the graph to a few small nodes
 * (ONNX SoftmaxCrossEntropyLoss has no CPU kernel in ONNX Runtime and expands into a dozen).
 * The logits gradient can be pre-multiplied by a scalar (the descent step -lr for plain SGD), which
 * flows linearly through the whole backward pass.
 */
import { attr, type GraphBuilder } from '../graph/builder.js';
import { DataType } from '../onnx/schema.js';

export interface TrainLoss {
  readonly loss: string;
  readonly gradLogits: string;
  readonly correct: string;
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
): TrainLoss {
  const logProb = b.op('LogSoftmax', [logits], { axis: attr.int(1) }, 'log_prob');
  const target = oneHot(b, label, classes);
  const invBatch = b.op('Reciprocal', [b.op('Cast', [b.op('Size', [label])], { to: attr.int(DataType.FLOAT) })], {}, 'inv_batch');
  const picked = b.op('ReduceSum', [b.op('Mul', [logProb, target])], { keepdims: attr.int(0) }, 'log_likelihood');
  b.appendNode('Mul', [picked, b.op('Neg', [invBatch])], [names.loss], {});
  const residual = b.op('Sub', [b.op('Exp', [logProb], {}, 'probabilities'), target], {}, 'residual');
  const scale = gradientScale === undefined ? invBatch : b.op('Mul', [invBatch, gradientScale], {}, 'grad_scale');
  const gradLogits = b.op('Mul', [residual, scale], {}, 'grad/logits');
  const correct = emitCorrectCount(b, logits, label, names.correct);
  return { loss: names.loss, gradLogits, correct };
}

/** Summed cross-entropy over the batch (evaluation). */
export function emitSummedLoss(b: GraphBuilder, logits: string, label: string, outputName: string, classes: number): string {
  const logProb = b.op('LogSoftmax', [logits], { axis: attr.int(1) }, 'log_prob');
  const picked = b.op('ReduceSum', [b.op('Mul', [logProb, oneHot(b, label, classes)])], { keepdims: attr.int(0) }, 'log_likelihood');
  b.appendNode('Neg', [picked], [outputName], {});
  return outputName;
}
