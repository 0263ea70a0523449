/**
 * Softmax cross-entropy over integer labels. ONNX SoftmaxCrossEntropyLoss (opset 13) computes the loss
 * from log-softmax, the numerically stable form; its gradient with respect to the logits is emitted in
 * closed form, d(mean CE)/dz = (softmax(z) - onehot(label)) / B, rather than differentiated op by op.
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

/** Mean cross-entropy (named `lossName`), its gradient w.r.t. the logits, and the correct count. */
export function emitTrainLoss(
  b: GraphBuilder,
  logits: string,
  label: string,
  classes: number,
  names: { readonly loss: string; readonly correct: string },
): TrainLoss {
  const logProb = b.fresh('log_prob');
  b.appendNode('SoftmaxCrossEntropyLoss', [logits, label], [names.loss, logProb], { reduction: attr.string('mean') });
  const oneHot = b.op(
    'OneHot',
    [label, b.constant(DataType.INT64, [], [classes], 'classes'), b.constant(DataType.FLOAT, [2], [0, 1], 'one_hot_values')],
    { axis: attr.int(-1) },
    'one_hot',
  );
  const batchSize = b.op('Cast', [b.op('Size', [label])], { to: attr.int(DataType.FLOAT) }, 'batch_size');
  const residual = b.op('Sub', [b.op('Exp', [logProb], {}, 'probabilities'), oneHot], {}, 'residual');
  const gradLogits = b.op('Div', [residual, batchSize], {}, 'grad/logits');
  const correct = emitCorrectCount(b, logits, label, names.correct);
  return { loss: names.loss, gradLogits, correct };
}

/** Summed cross-entropy over the batch (evaluation). */
export function emitSummedLoss(b: GraphBuilder, logits: string, label: string, outputName: string): string {
  b.appendNode('SoftmaxCrossEntropyLoss', [logits, label], [outputName], { reduction: attr.string('sum') });
  return outputName;
}
