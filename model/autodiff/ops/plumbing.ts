/**
 * Shape plumbing that exporters emit around Reshape (Shape, Gather, Constant, Cast, ConstantOfShape).
 * None of it carries a gradient; its job here is to make integer values known statically, so that e.g.
 * PyTorch's `x.view(x.size(0), -1)` (Shape -> Gather -> Unsqueeze -> Concat -> Reshape) resolves to a
 * concrete target shape. Cast between float types is the one differentiable case (identity on values).
 */
import type { NodeIR, TensorIR } from '../../onnx/ir.js';
import { isFloatType } from '../../onnx/ir.js';
import { DataType, type DataTypeCode } from '../../onnx/schema.js';
import { decodeElements, makeTensor } from '../../onnx/tensor.js';
import {
  BATCH,
  formatShape,
  intAttr,
  normaliseAxis,
  requireInput,
  shapeError,
  unsupportedAttribute,
  type SymbolicInt,
  type ValueFacts,
} from '../facts.js';
import { attr } from '../../graph/builder.js';
import type { OpRule } from '../rule.js';

/** Integer tensors up to this many elements have their contents tracked. */
const TRACKED_VALUE_LIMIT = 64;

export function tensorFacts(tensor: TensorIR): ValueFacts {
  const count = tensor.dims.reduce((n, d) => n * d, 1);
  const isInteger = tensor.dataType === DataType.INT64 || tensor.dataType === DataType.INT32;
  if (isInteger && count <= TRACKED_VALUE_LIMIT) {
    return { elemType: tensor.dataType, shape: tensor.dims, value: decodeElements(tensor) };
  }
  return { elemType: tensor.dataType, shape: tensor.dims };
}

export const Shape: OpRule = {
  differentiableInputs: [],
  infer(node, inputs) {
    const x = requireInput(node, inputs, 0);
    const rank = x.shape.length;
    const clamp = (v: number): number => Math.min(rank, Math.max(0, v < 0 ? v + rank : v));
    const start = clamp(intAttr(node, 'start', 0));
    const end = clamp(intAttr(node, 'end', rank));
    const value = x.shape.slice(start, end).map((d): SymbolicInt => (d === BATCH ? 'batch' : d));
    return [{ elemType: DataType.INT64, shape: [value.length], value }];
  },
};

export const Size: OpRule = {
  differentiableInputs: [],
  infer(node, inputs) {
    const x = requireInput(node, inputs, 0);
    const fixed = x.shape.every((d) => d !== BATCH);
    return [{ elemType: DataType.INT64, shape: [], ...(fixed ? { value: [x.shape.reduce((n, d) => n * d, 1)] } : {}) }];
  },
};

export const Gather: OpRule = {
  // The data input is differentiable in principle; without a backward rule, a Gather on a path from a
  // trainable parameter is reported as unsupported instead of silently cutting the gradient.
  differentiableInputs: [0],
  infer(node, inputs) {
    const data = requireInput(node, inputs, 0);
    const indices = requireInput(node, inputs, 1);
    const axis = normaliseAxis(node, intAttr(node, 'axis', 0), data.shape.length);
    const shape = [...data.shape.slice(0, axis), ...indices.shape, ...data.shape.slice(axis + 1)];
    let value: SymbolicInt[] | undefined;
    if (data.value !== undefined && indices.value !== undefined && data.shape.length === 1) {
      const length = data.shape[0] as number;
      value = [];
      for (const index of indices.value) {
        if (index === 'batch' || index < -length || index >= length) {
          throw shapeError(node, `index ${index} out of range for a tensor of length ${length}`);
        }
        value.push(data.value[index < 0 ? index + length : index] as SymbolicInt);
      }
    }
    return [{ elemType: data.elemType, shape, ...(value === undefined ? {} : { value }) }];
  },
};

function constantTensor(node: NodeIR): TensorIR {
  const name = node.outputs[0] ?? '';
  const a = node.attributes;
  const value = a['value'];
  if (value?.kind === 'tensor') return { ...value.value, name };
  const int = a['value_int'];
  if (int?.kind === 'int') return makeTensor(name, DataType.INT64, [], [int.value]);
  const ints = a['value_ints'];
  if (ints?.kind === 'ints') return makeTensor(name, DataType.INT64, [ints.value.length], ints.value);
  const float = a['value_float'];
  if (float?.kind === 'float') return makeTensor(name, DataType.FLOAT, [], [float.value]);
  const floats = a['value_floats'];
  if (floats?.kind === 'floats') return makeTensor(name, DataType.FLOAT, [floats.value.length], floats.value);
  throw unsupportedAttribute(node, 'Constant needs one of value, value_int, value_ints, value_float, value_floats');
}

export const Constant: OpRule = {
  differentiableInputs: [],
  infer: (node) => [tensorFacts(constantTensor(node))],
};

export const Cast: OpRule = {
  differentiableInputs: [0],
  infer(node, inputs) {
    const x = requireInput(node, inputs, 0);
    const to = intAttr(node, 'to', 0) as DataTypeCode;
    if (to === DataType.UNDEFINED) throw unsupportedAttribute(node, "attribute 'to' is missing");
    return [{ elemType: to, shape: x.shape, ...(x.value === undefined || isFloatType(to) ? {} : { value: x.value }) }];
  },
  backward(call, [grad], _needs, ctx) {
    const from = call.inputFacts[0]?.elemType ?? DataType.UNDEFINED;
    const to = call.outputFacts[0]?.elemType ?? DataType.UNDEFINED;
    if (grad === undefined) return [];
    if (!isFloatType(from) || !isFloatType(to)) return [undefined];
    return [from === to ? grad : ctx.op('Cast', [grad], { to: attr.int(from) })];
  },
};

export const ConstantOfShape: OpRule = {
  differentiableInputs: [],
  infer(node, inputs) {
    const shapeInput = requireInput(node, inputs, 0);
    if (shapeInput.value === undefined) {
      throw shapeError(node, `shape input '${node.inputs[0] ?? ''}' is not computable before run time`);
    }
    const fill = node.attributes['value'];
    const elemType = fill?.kind === 'tensor' ? fill.value.dataType : DataType.FLOAT;
    const shape = shapeInput.value.map((d) => (d === 'batch' ? BATCH : d));
    if (shape.some((d) => d < 0 && d !== BATCH)) throw shapeError(node, `negative dimension in ${formatShape(shape)}`);
    // A small integer fill is known (torch's F.pad builds its pads from ConstantOfShape zeros).
    const count = shape.reduce((n, d) => n * d, 1);
    const isInteger = elemType === DataType.INT64 || elemType === DataType.INT32;
    if (fill?.kind === 'tensor' && isInteger && count >= 0 && count <= TRACKED_VALUE_LIMIT && !shape.includes(BATCH)) {
      const element = decodeElements(fill.value)[0] ?? 0;
      return [{ elemType, shape, value: new Array<number>(count).fill(element) }];
    }
    return [{ elemType, shape }];
  },
};
