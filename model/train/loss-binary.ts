/**
 * Binary cross-entropy with logits (torch.nn.BCEWithLogitsLoss, mean over every element) for binary and
 * multi-label targets: target y [B, T] in {0, 1}, logits z [B, T], optional positive weights p [T]:
 *   loss = mean( p * y * softplus(-z) + (1 - y) * softplus(z) ),
 *   d loss / dz = ( sigmoid(z) * (p * y + 1 - y) - p * y ) / (B * T)   (sigmoid(z) - y without p).
 * softplus(z) = max(z, 0) + log(1 + exp(-|z|)) never overflows, and softplus(-z) = softplus(z) - z.
 * A prediction is positive when z > 0 (probability above one half).
 */
import { attr, type GraphBuilder } from '../graph/builder.js';
import { DataType } from '../onnx/schema.js';
import type { TrainLoss } from './loss.js';

export interface BinaryCounts {
  readonly truePositives: string;
  readonly falsePositives: string;
  readonly falseNegatives: string;
}

function softplus(b: GraphBuilder, logits: string): string {
  const tail = b.op('Log', [b.op('Add', [b.scalar(1), b.op('Exp', [b.op('Neg', [b.op('Abs', [logits])])])])], {}, 'softplus_tail');
  return b.op('Add', [b.op('Relu', [logits]), tail], {}, 'softplus');
}

/** Elementwise loss [B, T] (before the mean). */
function elementLoss(b: GraphBuilder, logits: string, target: string, posWeight: readonly number[] | undefined): string {
  const positive = softplus(b, logits);
  const negative = b.op('Sub', [positive, logits], {}, 'softplus_neg');
  let weightedTarget = target;
  if (posWeight !== undefined) weightedTarget = b.op('Mul', [target, b.constant(DataType.FLOAT, [posWeight.length], posWeight, 'pos_weight')], {}, 'weighted_target');
  const onPositives = b.op('Mul', [weightedTarget, negative]);
  const onNegatives = b.op('Mul', [b.op('Sub', [b.scalar(1), target]), positive]);
  return b.op('Add', [onPositives, onNegatives], {}, 'bce');
}

/** 1 where z > 0, else 0, as float [B, T]. */
function predictions(b: GraphBuilder, logits: string): string {
  return b.op('Cast', [b.op('Greater', [logits, b.scalar(0)])], { to: attr.int(DataType.FLOAT) }, 'predicted');
}

/** Rows whose every predicted label equals its target (exact match), as a float scalar. */
export function emitExactMatchCount(b: GraphBuilder, logits: string, target: string, outputName: string): string {
  const mismatches = b.op('ReduceSum', [b.op('Abs', [b.op('Sub', [predictions(b, logits), target])]), b.int64s([1])], { keepdims: attr.int(0) }, 'mismatches');
  const exact = b.op('Cast', [b.op('Equal', [mismatches, b.scalar(0)])], { to: attr.int(DataType.FLOAT) }, 'exact');
  b.appendNode('ReduceSum', [exact], [outputName], { keepdims: attr.int(0) });
  return outputName;
}

export function emitBinaryTrainLoss(
  b: GraphBuilder,
  logits: string,
  target: string,
  posWeight: readonly number[] | undefined,
  names: { readonly loss: string; readonly correct: string },
  gradientScale?: string,
): TrainLoss {
  const invCount = b.op('Reciprocal', [b.op('Cast', [b.op('Size', [target])], { to: attr.int(DataType.FLOAT) })], {}, 'inv_elements');
  b.appendNode('Mul', [b.op('ReduceSum', [elementLoss(b, logits, target, posWeight)], { keepdims: attr.int(0) }), invCount], [names.loss], {});
  const probability = b.op('Sigmoid', [logits], {}, 'probability');
  let residual: string;
  if (posWeight === undefined) {
    residual = b.op('Sub', [probability, target], {}, 'residual');
  } else {
    const weightedTarget = b.op('Mul', [target, b.constant(DataType.FLOAT, [posWeight.length], posWeight, 'pos_weight')], {}, 'weighted_target');
    const mass = b.op('Add', [weightedTarget, b.op('Sub', [b.scalar(1), target])], {}, 'target_mass');
    residual = b.op('Sub', [b.op('Mul', [probability, mass]), weightedTarget], {}, 'residual');
  }
  const scale = gradientScale === undefined ? invCount : b.op('Mul', [invCount, gradientScale], {}, 'grad_scale');
  const gradLogits = b.op('Mul', [residual, scale], {}, 'grad/logits');
  const correct = emitExactMatchCount(b, logits, target, names.correct);
  return { loss: names.loss, gradLogits, correct };
}

/**
 * Evaluation: the summed per-example loss (mean over the T labels, so loss_sum / examples is the mean
 * PyTorch reports) and the micro-averaged confusion counts summed over every label.
 */
export function emitBinaryEvaluation(
  b: GraphBuilder,
  logits: string,
  target: string,
  posWeight: readonly number[] | undefined,
  labels: number,
  names: { readonly lossSum: string } & BinaryCounts,
): void {
  const total = b.op('ReduceSum', [elementLoss(b, logits, target, posWeight)], { keepdims: attr.int(0) }, 'bce_sum');
  b.appendNode('Mul', [total, b.scalar(1 / labels)], [names.lossSum], {});
  const predicted = predictions(b, logits);
  const sum = (value: string, output: string): void => b.appendNode('ReduceSum', [value], [output], { keepdims: attr.int(0) });
  sum(b.op('Mul', [predicted, target]), names.truePositives);
  sum(b.op('Mul', [predicted, b.op('Sub', [b.scalar(1), target])]), names.falsePositives);
  sum(b.op('Mul', [b.op('Sub', [b.scalar(1), predicted]), target]), names.falseNegatives);
}
