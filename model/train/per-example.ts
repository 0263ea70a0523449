/**
 * Per-example gradients for DP-SGD (Abadi et al. 2016), batched in one graph: the forward model is
 * rewritten so that every trainable parameter P is read through a per-example copy
 *   P_b = Expand(Unsqueeze(P, 0), [B, ...shape(P)]),
 * and every op that consumes a parameter takes a per-example form (below). Ordinary reverse-mode autodiff
 * (tape.ts, the existing rules) then yields d loss / d P_b = [B, ...shape(P)]: row b is the gradient of
 * example b's own loss, because nothing mixes examples once each has its own weights.
 *
 * Values derived from parameters alone ("expanded", e.g. Transpose(W) or a scaled bias) carry the extra
 * leading B axis; values derived from the data have a batch axis somewhere (first, or second in
 * time-major sequences), where the copies are aligned. A value whose batch dimension is merged with
 * another ([T*B, E] rows, [B*H, T, d] heads) is viewed with the merged dimension split into its factors
 * (batch-layout.ts follows where B sits) before a parameter meets it, and the result merged back.
 * Per-op forms:
 * - unary elementwise ops and Identity/Cast on an expanded value: unchanged (elementwise per example);
 * - Transpose / Reshape / Flatten / Squeeze / Unsqueeze / Slice / Split / Concat of expanded values: the
 *   same with axis 0 kept (torch's GRU/LSTM export reorders gate blocks with Slice and Concat);
 * - broadcasting ops (Add, Sub, Mul, Div, Pow, Max, Min, Sum, Mean, Where): expanded operands are reshaped
 *   to [B, 1, ..., shape(P)] so that they broadcast against the other operands with their B axes aligned;
 * - MatMul: X [B, k] @ W_b [B, k, n] through [B, 1, k]; X [B, ..., k] @ W_b aligned to X's rank;
 * - Gemm: MatMul (+ Transpose for transB) + alpha + beta C;
 * - Conv: im2col by a fixed identity-kernel Conv (group 1, the same pads/strides), then a batched MatMul
 *   with the per-example weights [B, group, out/group, in/group * k]; ONNX Conv's group is static, so the
 *   grouped-convolution trick (group = B * g) cannot take a batch size that changes every step;
 * - LayerNormalization / InstanceNormalization: the op with unit scale and zero bias, then per-example
 *   Mul and Add (GroupNorm as torch exports it is InstanceNormalization + Mul/Add, covered);
 * - Gather(W, ids) (embeddings): a one-hot [.., V] MatMul with the per-example table (memory B x V x D);
 * - GRU / LSTM: unrolled into those primitives (per-example-rnn.ts).
 * BatchNormalization is refused (an example's output depends on the whole batch, so per-example
 * gradients do not exist); so is every other op that reads a parameter (ConvTranspose, Dropout, ...).
 */
import { ModelError } from '../errors.js';
import type { AttributeValue, NodeIR } from '../onnx/ir.js';
import { DataType } from '../onnx/schema.js';
import { BATCH, formatShape, isBatchDim, type ValueFacts } from '../autodiff/facts.js';
import { ruleFor } from '../autodiff/registry.js';
import type { ForwardModel } from './forward-model.js';
import type { PreparedModel } from './prepare.js';
import { attrFloat, attrInt, int, ints, refuse, Rewriter } from './per-example-rewriter.js';
import { rewriteRecurrent } from './per-example-rnn.js';
import { layoutOf, type Layout } from './batch-layout.js';

export interface PerExampleModel {
  /** The rewritten forward model (same parameters, inputs and logits). */
  readonly forward: ForwardModel;
  /** Trainable parameter name -> source name of its per-example copy [B, ...shape]. */
  readonly perExample: ReadonlyMap<string, string>;
}

const UNARY = new Set([
  'Identity', 'Cast', 'Relu', 'Sigmoid', 'Tanh', 'Neg', 'Exp', 'Log', 'Sqrt', 'Abs', 'Reciprocal', 'Erf',
  'Elu', 'LeakyRelu', 'Selu', 'Softplus', 'Gelu', 'Clip', 'HardSigmoid', 'HardSwish',
]);
const BROADCASTING = new Set(['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Max', 'Min', 'Sum', 'Mean', 'Where']);

export const BATCHNORM_REFUSAL = 'per-example gradients do not exist for BatchNorm; use GroupNorm or LayerNorm';

/** Rewrites `prepared.forward` so that its trainable parameters are read per example (see the header). */
export function perExampleForward(prepared: PreparedModel): PerExampleModel {
  const { forward, facts } = prepared;
  for (const node of forward.nodes) {
    if (node.opType === 'BatchNormalization') {
      throw new ModelError('FAILED_PRECONDITION', 'UNSUPPORTED_MODEL', `DP-SGD cannot train node '${node.name}' (BatchNormalization): ${BATCHNORM_REFUSAL}`);
    }
  }
  const rw = new Rewriter(forward);
  const factsOf = (name: string): ValueFacts => {
    const f = facts.get(name);
    if (f === undefined) throw new ModelError('INTERNAL', 'GRAPH_INVALID', `no facts for '${name}'`);
    return f;
  };
  // A value computed from the data, wherever its batch axis is (time-major sequences have it second).
  const batched = (name: string): boolean => {
    const f = facts.get(name);
    return f !== undefined && f.shape.some(isBatchDim) && !rw.expanded.has(name);
  };
  const producers = new Map(forward.nodes.flatMap((n) => n.outputs.map((o) => [o, n] as const)));
  const layouts = new Map<string, Layout | undefined>();
  const producer = (name: string): NodeIR | undefined => producers.get(name);
  const scope: Scope = { rw, factsOf, batched, producer, layout: (name) => layoutOf(name, (n) => facts.get(n), producer, layouts) };

  // [B] as a 1-element int64 tensor, from the first data input.
  const firstInput = (forward.namedInputs?.[0]?.source) ?? forward.input;
  const batchDim = rw.op('Shape', [firstInput], { start: int(0), end: int(1) });
  const perExample = new Map<string, string>();
  const trainableNames = new Set(prepared.trainable.map((p) => p.name));
  const mapped = new Map<string, string>();
  for (const p of prepared.trainable) {
    const unsqueezed = rw.op('Unsqueeze', [p.name, rw.ints([0])]);
    const target = rw.op('Concat', [batchDim, rw.ints(p.shape)], { axis: int(0) });
    const copy = rw.op('Expand', [unsqueezed, target], {}, rw.fresh(`per_example/${p.name}`));
    rw.expanded.add(copy);
    perExample.set(p.name, copy);
    mapped.set(p.name, copy);
  }

  for (const node of forward.nodes) {
    const inputs = node.inputs.map((input) => mapped.get(input) ?? input);
    const isExpanded = inputs.map((input) => input !== '' && rw.expanded.has(input));
    if (!isExpanded.some(Boolean)) {
      rw.nodes.push(node);
      continue;
    }
    const rule = ruleFor(node);
    if (rule?.backward === undefined) {
      // Shape plumbing (Shape, Size, ...) reads a parameter's static shape: give it the parameter itself.
      const restored = node.inputs.map((input, i) => (isExpanded[i] && trainableNames.has(input) ? input : inputs[i] as string));
      if (!restored.some((input) => rw.expanded.has(input))) {
        rw.nodes.push({ ...node, inputs: restored });
        continue;
      }
      // Shape/Size of a value computed from parameters: its static shape is known, so the outputs are
      // constants (attention exports read the shapes of projected weights).
      const known = node.outputs.map((output) => (output === '' ? undefined : facts.get(output)));
      if (known.some((f) => f !== undefined && (f.value === undefined || f.value.some((v) => typeof v !== 'number')))) {
        throw refuse(node, 'reads a value computed from parameters and has no per-example form');
      }
      node.outputs.forEach((output, i) => {
        const f = known[i];
        if (f !== undefined) rw.constant(output, f.elemType, f.shape, f.value as number[]);
      });
      continue;
    }
    rewriteNode(scope, node, inputs, isExpanded);
  }
  if (rw.expanded.has(forward.logits)) {
    throw new ModelError('INVALID_ARGUMENT', 'UNSUPPORTED_MODEL', `model output '${forward.logits}' does not depend on the input; DP-SGD needs per-example outputs`);
  }
  return {
    forward: { ...forward, nodes: rw.nodes, constants: [...forward.constants, ...rw.constants] },
    perExample,
  };
}

/** What the per-op rewrites read: the rewriter, the source facts and the producer of each value. */
interface Scope {
  readonly rw: Rewriter;
  readonly factsOf: (name: string) => ValueFacts;
  /** A value computed from the data (it has a batch axis) that is not a per-example copy. */
  readonly batched: (name: string) => boolean;
  readonly producer: (name: string) => NodeIR | undefined;
  /** Where the batch sits in merged dimensions (batch-layout.ts); undefined when not derivable. */
  readonly layout: (name: string) => Layout | undefined;
}

/** The batch axis of a batched value, or a refusal when the batch is merged with other axes. */
function batchAxisOf(scope: Scope, node: NodeIR, name: string): number {
  const shape = scope.factsOf(name).shape;
  const axes = shape.flatMap((d, i) => (isBatchDim(d) ? [i] : []));
  if (axes.length !== 1 || shape[axes[0] as number] !== BATCH) {
    throw refuse(node, `combines a parameter with a value of shape ${formatShape(shape)}, whose batch axis is merged with others`);
  }
  return axes[0] as number;
}

/** A batched value seen with a plain batch axis: `value` has `shape` ([T, B, E] for rows [T*B, E]). */
interface BatchView {
  readonly value: string;
  readonly shape: readonly number[];
  readonly axis: number;
  /** True when `value` is a reshaped view; results are reshaped back to the source's layout. */
  readonly reshaped: boolean;
}

/**
 * `name` viewed with a plain batch axis: itself when its batch dimension is plain, else its merged
 * dimension split into its factors (batch-layout.ts), or a refusal when the layout is not known.
 */
function batchView(scope: Scope, node: NodeIR, name: string): BatchView {
  const shape = scope.factsOf(name).shape;
  const merged = shape.findIndex((d) => isBatchDim(d) && d !== BATCH);
  if (merged < 0) return { value: name, shape, axis: batchAxisOf(scope, node, name), reshaped: false };
  const layout = scope.layout(name);
  const factors = layout?.[merged];
  if (layout === undefined || factors === undefined || shape.filter(isBatchDim).length !== 1) {
    throw refuse(node, `combines a parameter with a value of shape ${formatShape(shape)}, whose batch axis is merged with others`);
  }
  const split = [...shape.slice(0, merged), ...factors, ...shape.slice(merged + 1)];
  const value = scope.rw.op('Reshape', [name, scope.rw.ints(split.map((d) => (d === BATCH ? -1 : d)))]);
  return { value, shape: split, axis: merged + factors.indexOf(BATCH), reshaped: true };
}

/** Reshapes a result computed in a view back to the source value's shape `shape` (one batch dimension). */
function mergeBack(scope: Scope, value: string, shape: readonly number[], out: string): void {
  scope.rw.op('Reshape', [value, scope.rw.ints(shape.map((d) => (isBatchDim(d) ? -1 : d)))], {}, out);
}

/**
 * X @ W per example, X batched ([..., B, ..., k], batch axis `axis`), W a per-example copy of a [k, n]
 * (or [..., k, n]) parameter: with B among X's batch dims the copy broadcasts there; with B as X's row
 * axis (X [B, k], [T, B, k]) X gains a unit row axis and loses it again.
 */
function perExampleRight(scope: Scope, node: NodeIR, x: string, xShape: readonly number[], axis: number, w: string, wShape: readonly number[], out?: string): string {
  const { rw } = scope;
  const rank = xShape.length;
  if (axis === rank - 2) {
    const rows = rw.op('Unsqueeze', [x, rw.ints([rank - 1])]);
    const product = rw.op('MatMul', [rows, rw.align(node, w, wShape, rank + 1, axis)]);
    return rw.op('Squeeze', [product, rw.ints([rank - 1])], {}, out);
  }
  if (axis < rank - 2) return rw.op('MatMul', [x, rw.align(node, w, wShape, rank, axis)], {}, out);
  throw refuse(node, 'contracts the batch axis with a parameter');
}

function rewriteNode(scope: Scope, node: NodeIR, inputs: readonly string[], isExpanded: readonly boolean[]): void {
  const { rw, factsOf, batched } = scope;
  const out = node.outputs[0] as string;
  const extraOutputs = node.outputs.slice(1).filter((o) => o !== '');
  const origShape = (i: number): readonly number[] => factsOf(node.inputs[i] as string).shape;
  const outShape = factsOf(out).shape;
  const markExpanded = (): void => {
    rw.expanded.add(out);
  };
  const op = node.opType;

  if (UNARY.has(op) && extraOutputs.length === 0) {
    if (isExpanded.some((e, i) => e && i > 0)) throw refuse(node, 'takes a parameter as a bound');
    rw.nodes.push({ ...node, inputs });
    markExpanded();
    return;
  }
  if (op === 'Transpose') {
    const rank = origShape(0).length;
    const perm = node.attributes['perm']?.kind === 'ints' ? node.attributes['perm'].value : Array.from({ length: rank }, (_, i) => rank - 1 - i);
    rw.op('Transpose', [inputs[0] as string], { perm: ints([0, ...perm.map((p) => p + 1)]) }, out);
    markExpanded();
    return;
  }
  if (op === 'Reshape' || op === 'Flatten' || op === 'Squeeze' || op === 'Unsqueeze') {
    if (!isExpanded[0] || outShape.some(isBatchDim)) throw refuse(node, 'mixes a parameter with the batch axis');
    rw.op('Reshape', [inputs[0] as string, rw.ints([0, ...outShape])], {}, out);
    markExpanded();
    return;
  }
  if (op === 'Slice' && isExpanded[0] && !isExpanded.slice(1).some(Boolean)) {
    // Axes one further in; the starts, ends and steps stay.
    const rank = origShape(0).length;
    const given = node.inputs[3] !== undefined && node.inputs[3] !== '' ? factsOf(node.inputs[3]).value : undefined;
    if (given !== undefined && given.some((a) => typeof a !== 'number')) throw refuse(node, 'has axes that are not constant');
    const starts = factsOf(node.inputs[1] as string).value?.length ?? rank;
    const axes = (given as number[] | undefined) ?? Array.from({ length: starts }, (_, i) => i);
    const shifted = rw.ints(axes.map((a) => (a < 0 ? a + rank : a) + 1));
    const sliced = [inputs[0] as string, inputs[1] as string, inputs[2] as string, shifted, ...(inputs[4] !== undefined && inputs[4] !== '' ? [inputs[4]] : [])];
    rw.op('Slice', sliced, {}, out);
    markExpanded();
    return;
  }
  if ((op === 'Concat' || op === 'Split') && (op === 'Split' ? isExpanded[0] && !isExpanded.slice(1).some(Boolean) : isExpanded.every(Boolean))) {
    const rank = origShape(0).length;
    const axis = attrInt(node, 'axis', 0);
    rw.nodes.push({ ...node, inputs, attributes: { ...node.attributes, axis: int((axis < 0 ? axis + rank : axis) + 1) } });
    for (const output of node.outputs) if (output !== '') rw.expanded.add(output);
    return;
  }
  if (BROADCASTING.has(op)) {
    // Every batched operand must put its batch axis on the same output axis; the copies go there.
    const rank = outShape.length;
    let axis: number | undefined;
    for (const [i, input] of inputs.entries()) {
      // Where's condition counts too: a batched mask makes the output batched.
      if (input === '' || isExpanded[i] || !batched(input)) continue;
      const at = batchAxisOf(scope, node, input) + rank - origShape(i).length;
      if (axis !== undefined && axis !== at) throw refuse(node, 'broadcasts batched operands whose batch axes differ');
      axis = at;
    }
    const aligned = inputs.map((input, i) => (isExpanded[i] ? rw.align(node, input, origShape(i), axis === undefined ? rank + 1 : rank, axis ?? 0) : input));
    rw.nodes.push({ ...node, inputs: aligned });
    if (axis === undefined) markExpanded();
    return;
  }
  if (op === 'MatMul') {
    rewriteMatMul(scope, node, inputs, isExpanded, out);
    return;
  }
  if (op === 'Gemm') {
    rewriteGemm(scope, node, inputs, isExpanded, out);
    return;
  }
  if (op === 'Conv') {
    if (batchAxisOf(scope, node, node.inputs[0] as string) !== 0) throw refuse(node, 'convolves a value whose batch axis is not the first');
    rewriteConv(rw, node, inputs, isExpanded, origShape, outShape, out);
    return;
  }
  if ((op === 'LayerNormalization' || op === 'InstanceNormalization') && !isExpanded[0]) {
    if (extraOutputs.length > 0) throw refuse(node, 'has its Mean/InvStdDev outputs used');
    const scaleShape = origShape(1);
    const size = scaleShape.reduce((n, d) => n * d, 1);
    const scale = isExpanded[1] ? rw.floats(scaleShape, new Float32Array(size).fill(1), 'unit_scale') : (inputs[1] as string);
    const hasBias = inputs[2] !== undefined && inputs[2] !== '';
    const bias = hasBias && isExpanded[2] ? rw.floats(scaleShape, new Float32Array(size), 'zero_bias') : inputs[2];
    const normInputs = bias === undefined || bias === '' ? [inputs[0] as string, scale] : [inputs[0] as string, scale, bias];
    let value = rw.op(op, normInputs, { ...node.attributes });
    const rank = outShape.length;
    const axis = batchAxisOf(scope, node, node.inputs[0] as string);
    if (op === 'InstanceNormalization' && axis !== 0) throw refuse(node, 'normalises a value whose batch axis is not the first');
    const place = (param: string, shape: readonly number[]): string =>
      op === 'LayerNormalization' ? rw.align(node, param, shape, rank, axis) : rw.op('Reshape', [param, rw.ints([0, shape[0] as number, ...new Array<number>(rank - 2).fill(1)])]);
    if (isExpanded[1]) value = rw.op('Mul', [value, place(inputs[1] as string, scaleShape)]);
    if (hasBias && isExpanded[2]) value = rw.op('Add', [value, place(inputs[2] as string, origShape(2))]);
    rw.op('Identity', [value], {}, out);
    return;
  }
  if (op === 'Gather' && isExpanded[0] && !isExpanded[1]) {
    rewriteGather(scope, node, inputs, out);
    return;
  }
  if ((op === 'GRU' || op === 'LSTM') && !isExpanded[0]) {
    if (batchAxisOf(scope, node, node.inputs[0] as string) !== 1) throw refuse(node, 'reads a sequence whose batch axis is not the second (layout 0)');
    rewriteRecurrent(rw, node, inputs, isExpanded, factsOf);
    return;
  }
  throw refuse(node, 'has no per-example form');
}

function rewriteMatMul(scope: Scope, node: NodeIR, inputs: readonly string[], isExpanded: readonly boolean[], out: string): void {
  const { rw, factsOf, batched } = scope;
  const [a, b] = inputs as [string, string];
  const aShape = factsOf(node.inputs[0] as string).shape;
  const bShape = factsOf(node.inputs[1] as string).shape;
  if (isExpanded[0] && isExpanded[1]) {
    const rank = Math.max(aShape.length, bShape.length) + 1;
    rw.op('MatMul', [rw.align(node, a, aShape, rank), rw.align(node, b, bShape, rank)], {}, out);
    rw.expanded.add(out);
    return;
  }
  const expandedIndex = isExpanded[0] ? 0 : 1;
  const other = expandedIndex === 0 ? b : a;
  const paramShape = expandedIndex === 0 ? aShape : bShape;
  const param = expandedIndex === 0 ? a : b;
  if (!batched(other)) {
    // Parameter times a constant: stays expanded.
    const rank = Math.max(aShape.length, bShape.length) + 1;
    const aligned = rw.align(node, param, paramShape, rank);
    rw.op('MatMul', expandedIndex === 0 ? [aligned, other] : [other, aligned], {}, out);
    rw.expanded.add(out);
    return;
  }
  if (expandedIndex === 1) {
    const view = batchView(scope, node, other);
    if (!view.reshaped) {
      perExampleRight(scope, node, view.value, view.shape, view.axis, param, paramShape, out);
      return;
    }
    mergeBack(scope, perExampleRight(scope, node, view.value, view.shape, view.axis, param, paramShape), factsOf(out).shape, out);
    return;
  }
  // W @ X: the batch must be one of X's batch dims.
  const otherShape = factsOf(other).shape;
  const axis = batchAxisOf(scope, node, other);
  if (axis > otherShape.length - 3) throw refuse(node, 'multiplies a parameter into the batch axis of its right operand');
  rw.op('MatMul', [rw.align(node, param, paramShape, otherShape.length, axis), other], {}, out);
}

function rewriteGemm(scope: Scope, node: NodeIR, inputs: readonly string[], isExpanded: readonly boolean[], out: string): void {
  const { rw, factsOf, batched } = scope;
  const [a, w, c] = inputs as [string, string, string | undefined];
  if (isExpanded[0] || !batched(a) || attrInt(node, 'transA', 0) !== 0) throw refuse(node, 'reads a parameter as its A operand (or a transposed batch)');
  const transB = attrInt(node, 'transB', 0) !== 0;
  const alpha = attrFloat(node, 'alpha', 1);
  const beta = attrFloat(node, 'beta', 1);
  const wShape = factsOf(node.inputs[1] as string).shape;
  const [k, n] = (transB ? [wShape[1], wShape[0]] : [wShape[0], wShape[1]]) as [number, number];
  // Rows [T*B, k] of a flattened [T, B, k] are computed in that [T, B, k] layout and flattened after.
  const view = batchView(scope, node, a);
  const { value: x, shape: xShape, axis } = view;
  let value: string;
  if (isExpanded[1]) {
    const weight = transB ? rw.op('Transpose', [w], { perm: ints([0, 2, 1]) }) : w;
    value = perExampleRight(scope, node, x, xShape, axis, weight, [k, n]);
    if (alpha !== 1) value = rw.op('Mul', [value, rw.floats([], [alpha], 'alpha')]);
  } else {
    value = rw.op('Gemm', [a, w], { transB: int(transB ? 1 : 0), alpha: { kind: 'float', value: alpha } });
    if (view.reshaped) value = rw.op('Reshape', [value, rw.ints([...xShape.slice(0, -1).map((d) => (isBatchDim(d) ? -1 : d)), n])]);
  }
  if (c !== undefined && c !== '') {
    if (!isExpanded[2] && batched(c)) throw refuse(node, 'adds a batched C to a per-example product');
    let addend = isExpanded[2] ? rw.align(node, c, factsOf(node.inputs[2] as string).shape, xShape.length, axis) : c;
    if (beta !== 1) addend = rw.op('Mul', [addend, rw.floats([], [beta], 'beta')]);
    value = rw.op('Add', [value, addend]);
  }
  if (view.reshaped) mergeBack(scope, value, factsOf(out).shape, out);
  else rw.op('Identity', [value], {}, out);
}

function rewriteConv(
  rw: Rewriter,
  node: NodeIR,
  inputs: readonly string[],
  isExpanded: readonly boolean[],
  origShape: (i: number) => readonly number[],
  outShape: readonly number[],
  out: string,
): void {
  const [x, w, bias] = inputs as [string, string, string | undefined];
  if (isExpanded[0]) throw refuse(node, 'convolves a parameter');
  const xShape = origShape(0);
  const wShape = origShape(1);
  const hasBias = bias !== undefined && bias !== '';
  const spatial = xShape.slice(2);
  const outSpatial = outShape.slice(2);
  const channels = xShape[1] as number;
  const outChannels = wShape[0] as number;
  const kernel = wShape.slice(2);
  let value: string;
  if (isExpanded[1]) {
    const group = attrInt(node, 'group', 1);
    const kernelSize = kernel.reduce((n, d) => n * d, 1);
    // Identity kernel [K, 1, ...kernel]: output channel k copies the input at kernel position k.
    const eye = new Float32Array(kernelSize * kernelSize);
    for (let k = 0; k < kernelSize; k++) eye[k * kernelSize + k] = 1;
    const identity = rw.floats([kernelSize, 1, ...kernel], eye, 'im2col_kernel');
    const planes = rw.op('Reshape', [x, rw.ints([-1, 1, ...spatial])]);
    const attributes: Record<string, AttributeValue> = { ...node.attributes, group: int(1), kernel_shape: ints(kernel) };
    const patches = rw.op('Conv', [planes, identity], attributes);
    const positions = outSpatial.reduce((n, d) => n * d, 1);
    const perGroup = (channels / group) * kernelSize;
    const columns = rw.op('Reshape', [patches, rw.ints([-1, group, perGroup, positions])]);
    const weights = rw.op('Reshape', [w, rw.ints([0, group, outChannels / group, perGroup])]);
    const product = rw.op('MatMul', [weights, columns]);
    value = rw.op('Reshape', [product, rw.ints([0, outChannels, ...outSpatial])]);
    if (hasBias && !isExpanded[2]) value = rw.op('Add', [value, rw.op('Reshape', [bias, rw.ints([outChannels, ...outSpatial.map(() => 1)])])]);
  } else {
    value = rw.op('Conv', [x, w], { ...node.attributes });
  }
  if (hasBias && isExpanded[2]) value = rw.op('Add', [value, rw.op('Reshape', [bias, rw.ints([0, outChannels, ...outSpatial.map(() => 1)])])]);
  else if (hasBias && !isExpanded[1]) value = rw.op('Add', [value, rw.op('Reshape', [bias, rw.ints([outChannels, ...outSpatial.map(() => 1)])])]);
  rw.op('Identity', [value], {}, out);
}

function rewriteGather(scope: Scope, node: NodeIR, inputs: readonly string[], out: string): void {
  const { rw, factsOf, batched } = scope;
  const [table, ids] = inputs as [string, string];
  const tableShape = factsOf(node.inputs[0] as string).shape;
  const axis = attrInt(node, 'axis', 0);
  if (!batched(ids)) {
    // Constant indices (position ids): gather along the table's axis, one axis further in.
    rw.op('Gather', [table, ids], { axis: int(axis < 0 ? axis : axis + 1) }, out);
    rw.expanded.add(out);
    return;
  }
  if (axis !== 0 || tableShape.length !== 2) throw refuse(node, 'gathers from a parameter along an axis other than 0 of a rank-2 table');
  const vocabulary = tableShape[0] as number;
  const idsShape = factsOf(node.inputs[1] as string).shape;
  const range = rw.ints(Array.from({ length: vocabulary }, (_, i) => i), 'vocabulary');
  // One-hot rows [..ids, V] times the per-example table [B, V, D].
  const hot = rw.op('Cast', [rw.op('Equal', [rw.op('Unsqueeze', [ids, rw.ints([-1])]), range])], { to: int(DataType.FLOAT) });
  perExampleRight(scope, node, hot, [...idsShape, vocabulary], batchAxisOf(scope, node, node.inputs[1] as string), table, tableShape, out);
}
