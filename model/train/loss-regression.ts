/**
 * Regression losses on float targets y [B, T] against outputs z [B, T], each the mean over every element
 * as torch.nn.MSELoss / L1Loss / HuberLoss(delta) compute it, with r = z - y and N = B * T:
 *   mse:   loss = sum r^2 / N,               d loss / dz = 2 r / N
 *   l1:    loss = sum |r| / N,               d loss / dz = sign(r) / N   (0 at r = 0, as PyTorch)
 *   huber: c = clip(r, -delta, delta), loss = sum c * (r - c / 2) / N,   d loss / dz = c / N
 * (c * (r - c/2) is r^2 / 2 inside the band and delta * (|r| - delta / 2) outside it).
 */
import { attr, type GraphBuilder } from '../graph/builder.js';
import { DataType } from '../onnx/schema.js';
import type { ResolvedLoss } from '../task.js';
import type { TrainLoss } from './loss.js';

export type RegressionLoss = Extract<ResolvedLoss, { kind: 'mse' | 'l1' | 'huber' }>;

export interface RegressionSums {
  readonly squaredErrorSum: string;
  readonly absoluteErrorSum: string;
  readonly targetSum: string;
  readonly targetSquareSum: string;
}

interface Pieces {
  /** Elementwise loss [B, T]. */
  readonly element: string;
  /** d (elementwise loss) / dz [B, T]. */
  readonly slope: string;
}

function pieces(b: GraphBuilder, loss: RegressionLoss, residual: string): Pieces {
  switch (loss.kind) {
    case 'mse':
      return { element: b.op('Mul', [residual, residual], {}, 'squared_error'), slope: b.op('Mul', [residual, b.scalar(2)], {}, 'slope') };
    case 'l1':
      return { element: b.op('Abs', [residual], {}, 'absolute_error'), slope: b.op('Sign', [residual], {}, 'slope') };
    case 'huber': {
      const clipped = b.op('Clip', [residual, b.scalar(-loss.delta), b.scalar(loss.delta)], {}, 'clipped_residual');
      const half = b.op('Mul', [clipped, b.scalar(0.5)]);
      return { element: b.op('Mul', [clipped, b.op('Sub', [residual, half])], {}, 'huber'), slope: clipped };
    }
  }
}

export function emitRegressionTrainLoss(
  b: GraphBuilder,
  outputs: string,
  target: string,
  loss: RegressionLoss,
  names: { readonly loss: string; readonly correct: string },
  gradientScale?: string,
): TrainLoss {
  const residual = b.op('Sub', [outputs, target], {}, 'residual');
  const { element, slope } = pieces(b, loss, residual);
  const invCount = b.op('Reciprocal', [b.op('Cast', [b.op('Size', [target])], { to: attr.int(DataType.FLOAT) })], {}, 'inv_elements');
  b.appendNode('Mul', [b.op('ReduceSum', [element], { keepdims: attr.int(0) }), invCount], [names.loss], {});
  const scale = gradientScale === undefined ? invCount : b.op('Mul', [invCount, gradientScale], {}, 'grad_scale');
  const gradLogits = b.op('Mul', [slope, scale], {}, 'grad/logits');
  // Regression has no notion of a correct prediction; the count stays in the contract as 0.
  b.appendNode('Identity', [b.scalar(0)], [names.correct], {});
  return { loss: names.loss, gradLogits, correct: names.correct };
}

/**
 * Evaluation: the summed per-example loss (mean over the T targets) and the sums R^2 and the error
 * means need: sum r^2, sum |r|, sum y, sum y^2 over every element.
 */
export function emitRegressionEvaluation(
  b: GraphBuilder,
  outputs: string,
  target: string,
  loss: RegressionLoss,
  targets: number,
  names: { readonly lossSum: string } & RegressionSums,
): void {
  const residual = b.op('Sub', [outputs, target], {}, 'residual');
  const { element } = pieces(b, loss, residual);
  b.appendNode('Mul', [b.op('ReduceSum', [element], { keepdims: attr.int(0) }), b.scalar(1 / targets)], [names.lossSum], {});
  const sum = (value: string, output: string): void => b.appendNode('ReduceSum', [value], [output], { keepdims: attr.int(0) });
  sum(b.op('Mul', [residual, residual]), names.squaredErrorSum);
  sum(b.op('Abs', [residual]), names.absoluteErrorSum);
  sum(target, names.targetSum);
  sum(b.op('Mul', [target, target]), names.targetSquareSum);
}
