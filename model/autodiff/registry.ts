/**
 * The op set fedgate lowers and differentiates (DESIGN.md "Local training with ONNX Runtime"), all in
 * the default ONNX domain with opset 13..17 semantics.
 */
import type { NodeIR } from '../onnx/ir.js';
import type { OpRule } from './rule.js';
import { Add, Div, Identity, Mul, Relu, Sigmoid, Sub, Tanh } from './ops/elementwise.js';
import { Gemm, MatMul } from './ops/linear.js';
import { LogSoftmax, Softmax } from './ops/softmax.js';
import { Conv } from './ops/conv.js';
import { AveragePool, GlobalAveragePool, GlobalMaxPool, MaxPool } from './ops/pool.js';
import { Concat, Flatten, Reshape, Squeeze, Transpose, Unsqueeze } from './ops/reshape.js';
import { Cast, Constant, ConstantOfShape, Shape, Size } from './ops/plumbing.js';
import { Elu, Gelu, HardSigmoid, HardSwish, LeakyRelu, Selu, Softplus } from './ops/activation.js';
import { Abs, Erf, Exp, Log, Max, Mean, Min, Neg, Pow, Reciprocal, Sqrt, Sum } from './ops/math.js';
import { ReduceMax, ReduceMean, ReduceSum } from './ops/reduce.js';
import { InstanceNormalization, LayerNormalization } from './ops/normalization.js';
import { Expand, Slice, Split, Tile, Trilu } from './ops/slicing.js';
import { Gather, GatherElements, Where } from './ops/indexing.js';
import { And, Equal, Greater, GreaterOrEqual, Less, LessOrEqual, Not, Or, Xor } from './ops/compare.js';
import { BatchNormalization } from './ops/batchnorm.js';
import { Dropout } from './ops/dropout.js';

const RULES: Readonly<Record<string, OpRule>> = {
  Add,
  Sub,
  Mul,
  Div,
  Identity,
  Relu,
  Sigmoid,
  Tanh,
  Gemm,
  MatMul,
  Softmax,
  LogSoftmax,
  Conv,
  MaxPool,
  AveragePool,
  GlobalAveragePool,
  GlobalMaxPool,
  Flatten,
  Reshape,
  Transpose,
  Squeeze,
  Unsqueeze,
  Concat,
  Shape,
  Size,
  Gather,
  Constant,
  Cast,
  ConstantOfShape,
  BatchNormalization,
  Dropout,
  LeakyRelu,
  Elu,
  Selu,
  Softplus,
  HardSigmoid,
  HardSwish,
  Gelu,
  Exp,
  Log,
  Sqrt,
  Abs,
  Neg,
  Reciprocal,
  Erf,
  Pow,
  Max,
  Min,
  Sum,
  Mean,
  ReduceSum,
  ReduceMean,
  ReduceMax,
  LayerNormalization,
  InstanceNormalization,
  Slice,
  Split,
  Expand,
  Tile,
  Trilu,
  GatherElements,
  Where,
  Equal,
  Less,
  Greater,
  LessOrEqual,
  GreaterOrEqual,
  Not,
  And,
  Or,
  Xor,
};

/** Op types with a gradient rule (documentation and error messages). */
export const DIFFERENTIABLE_OPS: readonly string[] = Object.entries(RULES)
  .filter(([, rule]) => rule.backward !== undefined)
  .map(([name]) => name);

/** Op types accepted only where no gradient flows through them (shape plumbing). */
export const SHAPE_PLUMBING_OPS: readonly string[] = Object.entries(RULES)
  .filter(([, rule]) => rule.backward === undefined)
  .map(([name]) => name);

export function ruleFor(node: NodeIR): OpRule | undefined {
  if (node.domain !== '' && node.domain !== 'ai.onnx') return undefined;
  return Object.hasOwn(RULES, node.opType) ? RULES[node.opType] : undefined;
}

export function isDifferentiableInput(rule: OpRule, index: number): boolean {
  return rule.differentiableInputs === 'all' || rule.differentiableInputs.includes(index);
}
