/**
 * Vector-Jacobian-product model for any forward ONNX model in fedgate's op set: inputs are the model's
 * inputs plus 'grad.<output>' per output, outputs are the model's outputs plus 'grad.<input>' for each
 * requested input. Used by gradient checks; handy for tools that need gradients without a training plan.
 */
import { buildGradientGraph } from './autodiff/gradient-graph.js';
import { modelFromGraph } from './graph/model.js';
import { decodeModel, encodeModel } from './onnx/codec.js';

/** Differentiates the training form of the graph (BatchNorm on batch statistics, Dropout active). */
export function buildGradientModel(forwardModel: Uint8Array, wrt: readonly string[]): Uint8Array {
  const model = decodeModel(forwardModel);
  return encodeModel(modelFromGraph(buildGradientGraph(model.graph, wrt)));
}
