/**
 * The op set fedgate lowers and differentiates (DESIGN.md "Local training with ONNX Runtime"), all in
 * the default ONNX domain with opset 13..17 semantics.
 */
import type { NodeIR } from '../onnx/ir.js';
import type { OpRule } from './rule.js';
import { Add, Div, Identity, Mul, Relu, Sigmoid, Sub, Tanh } from './ops/elementwise.js';
import { Gemm, MatMul } from './ops/linear.js';
import { LogSoftmax, Softmax } from './ops/softmax.js';
import { Conv, ConvTranspose } from './ops/conv.js';
import { AveragePool, GlobalAveragePool, GlobalMaxPool, MaxPool } from './ops/pool.js';
import { Concat, Flatten, Reshape, Squeeze, Transpose, Unsqueeze } from './ops/reshape.js';
import { Cast, Constant, ConstantOfShape, Gather, Shape, Size } from './ops/plumbing.js';
import { BatchNormalization } from './ops/batchnorm.js';
import { Dropout } from './ops/dropout.js';
import { Clip, HardSigmoid, HardSwish } from './ops/clip.js';
import { Pad } from './ops/pad.js';
import { Slice } from './ops/slice.js';

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
  ConvTranspose,
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
  Clip,
  HardSigmoid,
  HardSwish,
  Pad,
  Slice,
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
