/**
 * Shape plumbing that exporters emit around Reshape (Shape, Constant, Cast, ConstantOfShape; Gather,
 * which also indexes embedding tables, lives in indexing.ts).
 * None of it carries a gradient; its job here is to make integer values known statically, so that e.g.
 * PyTorch's `x.view(x.size(0), -1)` (Shape -> Gather -> Unsqueeze -> Concat -> Reshape) resolves to a
 * concrete target shape. Cast between float types is the one differentiable case (identity on values).
 */
import type { NodeIR, TensorIR } from '../../onnx/ir.js';
import { isFloatType } from '../../onnx/ir.js';
import { DataType, type DataTypeCode } from '../../onnx/schema.js';
import { decodeElements, makeTensor } from '../../onnx/tensor.js';
import { dimToValue, intAttr, isBatchDim, requireInput, shapeError, unsupportedAttribute, valueToDim, type ValueFacts } from '../facts.js';
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
    const value = x.shape.slice(start, end).map(dimToValue);
    return [{ elemType: DataType.INT64, shape: [value.length], value }];
  },
};

export const Size: OpRule = {
  differentiableInputs: [],
  infer(node, inputs) {
    const x = requireInput(node, inputs, 0);
    const fixed = x.shape.every((d) => !isBatchDim(d));
    return [{ elemType: DataType.INT64, shape: [], ...(fixed ? { value: [x.shape.reduce((n, d) => n * d, 1)] } : {}) }];
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
    if (shapeInput.value.some((d) => typeof d === 'number' && d < 0)) {
      throw shapeError(node, `negative dimension in [${shapeInput.value.join(', ')}]`);
    }
    const shape = shapeInput.value.map(valueToDim);
    // A small integer fill is tracked: exporters compute Expand targets from it (attention masks).
    const count = shape.reduce((n, d) => n * d, 1);
    const isInteger = elemType === DataType.INT64 || elemType === DataType.INT32;
    if (isInteger && shape.length <= 1 && shape.every((d) => !isBatchDim(d)) && count <= TRACKED_VALUE_LIMIT) {
      const element = fill?.kind === 'tensor' ? (decodeElements(fill.value)[0] ?? 0) : 0;
      return [{ elemType, shape, value: new Array<number>(count).fill(element) }];
    }
    return [{ elemType, shape }];
  },
};
