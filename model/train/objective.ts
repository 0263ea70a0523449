/**
 * The task's loss in the training and evaluation graphs: picks the closed form for the loss kind and
 * gives every kind the same train-step contract ('loss' batch mean, 'correct', d loss / d outputs) and its
 * own evaluation sums (prepare.ts names them).
 */
import type { GraphBuilder } from '../graph/builder.js';
import { DataType, type DataTypeCode } from '../onnx/schema.js';
import { targetKindOf, type ResolvedLoss } from '../task.js';
import { emitBinaryEvaluation, emitBinaryTrainLoss, emitExactMatchCount } from './loss-binary.js';
import { emitRegressionEvaluation, emitRegressionTrainLoss } from './loss-regression.js';
import { emitCorrectCount, emitSummedLoss, emitTrainLoss, type TrainLoss } from './loss.js';
import {
  ABSOLUTE_ERROR_SUM,
  CORRECT,
  FALSE_NEGATIVES,
  FALSE_POSITIVES,
  LOSS_SUM,
  SQUARED_ERROR_SUM,
  TARGET_SQUARE_SUM,
  TARGET_SUM,
  TRUE_POSITIVES,
} from './prepare.js';

/** The 'label' input of the plan graphs: int64 class indices [B], or float32 targets [B, outputs]. */
export function labelTensorType(loss: ResolvedLoss, outputs: number): { elemType: DataTypeCode; perExample: number[] } {
  return targetKindOf(loss.kind) === 'class' ? { elemType: DataType.INT64, perExample: [] } : { elemType: DataType.FLOAT, perExample: [outputs] };
}

export function emitObjective(
  b: GraphBuilder,
  loss: ResolvedLoss,
  logits: string,
  label: string,
  outputs: number,
  names: { readonly loss: string; readonly correct: string },
  gradientScale?: string,
): TrainLoss {
  switch (loss.kind) {
    case 'cross_entropy':
      return emitTrainLoss(b, logits, label, outputs, names, gradientScale, { classWeights: loss.classWeights, labelSmoothing: loss.labelSmoothing });
    case 'binary_cross_entropy':
      return emitBinaryTrainLoss(b, logits, label, loss.posWeight, names, gradientScale);
    default:
      return emitRegressionTrainLoss(b, logits, label, loss, names, gradientScale);
  }
}

/** The evalStep outputs beyond 'loss_sum' and 'correct' for a loss. */
export function evaluationOutputs(loss: ResolvedLoss): string[] {
  switch (targetKindOf(loss.kind)) {
    case 'class':
      return [];
    case 'multi_label':
      return [TRUE_POSITIVES, FALSE_POSITIVES, FALSE_NEGATIVES];
    case 'regression':
      return [SQUARED_ERROR_SUM, ABSOLUTE_ERROR_SUM, TARGET_SUM, TARGET_SQUARE_SUM];
  }
}

/** Emits 'loss_sum', 'correct' and evaluationOutputs(loss), all float32 scalars. */
export function emitEvaluation(b: GraphBuilder, loss: ResolvedLoss, logits: string, label: string, outputs: number): void {
  switch (loss.kind) {
    case 'cross_entropy':
      emitSummedLoss(b, logits, label, LOSS_SUM, outputs);
      emitCorrectCount(b, logits, label, CORRECT);
      return;
    case 'binary_cross_entropy':
      emitBinaryEvaluation(b, logits, label, loss.posWeight, outputs, {
        lossSum: LOSS_SUM,
        truePositives: TRUE_POSITIVES,
        falsePositives: FALSE_POSITIVES,
        falseNegatives: FALSE_NEGATIVES,
      });
      emitExactMatchCount(b, logits, label, CORRECT);
      return;
    default:
      emitRegressionEvaluation(b, logits, label, loss, outputs, {
        lossSum: LOSS_SUM,
        squaredErrorSum: SQUARED_ERROR_SUM,
        absoluteErrorSum: ABSOLUTE_ERROR_SUM,
        targetSum: TARGET_SUM,
        targetSquareSum: TARGET_SQUARE_SUM,
      });
      b.appendNode('Identity', [b.scalar(0)], [CORRECT], {});
  }
}
