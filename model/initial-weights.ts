/**
 * The weights of a warm start (task.ts initialModel.warmStart): a model of the task's architecture that
 * round 1 starts from instead of the weights the task builds. Two kinds of file hold one:
 * - fedgate's weight encoding (weight-codec.ts), as a coordinator stores every committed model in
 *   `models/<model hash>.bin` and a site keeps its newest one in `latest-model.bin`;
 * - an inference ONNX model exported by fedgate (`fedgate export`): the parameters are its initializers,
 *   under the names the task's model gives them (exporting adds the normalisation nodes and the softmax,
 *   which take no parameters).
 * Either way the result is checked against the task's parameter names and shapes; the caller compares
 * its model hash with the one the task pins.
 */
import { ModelError } from './errors.js';
import { decodeModel } from './onnx/codec.js';
import type { TensorIR } from './onnx/ir.js';
import { readFloat32 } from './onnx/tensor.js';
import { decodeWeights } from './weight-codec.js';
import { flattenParameters, type ParameterLayout } from './weights.js';

const WEIGHTS_TAG = new TextEncoder().encode('fedgate/weights/v1');

function isWeightEncoding(bytes: Uint8Array): boolean {
  return bytes.length >= WEIGHTS_TAG.length && WEIGHTS_TAG.every((byte, index) => bytes[index] === byte);
}

/** The flat weights `bytes` hold, in `layout`'s order; INVALID_ARGUMENT naming what does not fit. */
export function warmStartWeights(bytes: Uint8Array, layout: ParameterLayout): Float32Array {
  if (isWeightEncoding(bytes)) return decodeWeights(layout, bytes);
  let initializers: readonly TensorIR[];
  try {
    initializers = decodeModel(bytes).graph.initializers;
  } catch (error) {
    throw new ModelError(
      'INVALID_ARGUMENT',
      'INITIAL_MODEL_UNREADABLE',
      `the initial model file is neither fedgate weights (models/<hash>.bin, latest-model.bin) nor an ONNX model (${(error as Error).message})`,
      { cause: error },
    );
  }
  const byName = new Map(initializers.map((tensor) => [tensor.name, tensor]));
  const tensors = new Map<string, Float32Array>();
  const missing: string[] = [];
  for (const parameter of layout.parameters) {
    const tensor = byName.get(parameter.name);
    if (tensor === undefined) {
      missing.push(parameter.name);
      continue;
    }
    if (tensor.dims.length !== parameter.shape.length || tensor.dims.some((dim, axis) => dim !== parameter.shape[axis])) {
      throw new ModelError(
        'INVALID_ARGUMENT',
        'PARAMETERS_MISMATCH',
        `the initial model's '${parameter.name}' has shape [${tensor.dims.join(', ')}]; the task's model needs [${parameter.shape.join(', ')}]`,
      );
    }
    tensors.set(parameter.name, readFloat32(tensor));
  }
  if (missing.length > 0) {
    throw new ModelError(
      'INVALID_ARGUMENT',
      'PARAMETERS_MISMATCH',
      `the initial model has no initializer ${missing.map((name) => `'${name}'`).join(', ')} of the task's model: export it with \`fedgate export\` from a federation that trains the same architecture`,
    );
  }
  const flat = flattenParameters(layout, tensors);
  for (let i = 0; i < flat.length; i++) {
    if (!Number.isFinite(flat[i] as number)) throw new ModelError('INVALID_ARGUMENT', 'PARAMETERS_MISMATCH', `the initial model holds a non-finite weight (flat index ${i})`);
  }
  return flat;
}
