/**
 * What the ONNX recurrent ops GRU and LSTM share (ONNX Operators, GRU-14 / LSTM-14): the subset fedgate
 * trains, its shape facts, and the per-direction plumbing of the unrolled training form.
 *
 * The subset is what torch.onnx.export (opset 17) writes for nn.GRU / nn.LSTM: layout 0 (X is
 * [seq, batch, input]; batch_first models get a Transpose around the op), forward, reverse or bidirectional,
 * default activations, no clip, no peepholes, no per-example sequence lengths, and a sequence length that
 * is fixed in the exported graph. Anything else is refused naming the attribute or input.
 *
 * Training form: the recurrence is unrolled over the static sequence length into Gemm and element-wise
 * nodes (gru.ts, lstm.ts), with every gate activation kept for a hand-written backward through time.
 * The input projection X W^T of all time steps is one Gemm over the [seq * batch, input] rows of X, and so are the
 * weight gradients: only the h R^T products and the element-wise gate algebra run step by step.
 * Inference graphs (evaluation, export) keep the op itself, which ONNX Runtime runs natively.
 */
import { ModelError } from '../../errors.js';
import { attr } from '../../graph/builder.js';
import type { GraphBuilder } from '../../graph/builder.js';
import type { NodeIR } from '../../onnx/ir.js';
import { DataType, type DataTypeCode } from '../../onnx/schema.js';
import {
  BATCH,
  formatShape,
  intAttr,
  requireInput,
  requireRank,
  shapeError,
  stringAttr,
  unsupportedAttribute,
  type ValueFacts,
} from '../facts.js';
import type { OpCall } from '../rule.js';

/** Static sizes of one GRU/LSTM node. */
export interface RecurrentLayout {
  readonly seq: number;
  readonly input: number;
  readonly hidden: number;
  readonly directions: 1 | 2;
  /** Whether direction d runs from the last time step to the first. */
  readonly reversed: readonly boolean[];
  /** Gate blocks per direction: 3 (GRU, zrh) or 4 (LSTM, iofc). */
  readonly gates: number;
}

export interface RecurrentKind {
  readonly opType: 'GRU' | 'LSTM';
  readonly gates: number;
  readonly defaultActivations: readonly string[];
  /** Number of outputs (Y, Y_h and for LSTM Y_c). */
  readonly outputs: number;
  /** Input indices of initial states (initial_h, and initial_c for LSTM). */
  readonly stateInputs: readonly number[];
}

const SEQUENCE_LENS = 4;
const LSTM_PEEPHOLES = 7;

function checkAttributes(node: NodeIR, kind: RecurrentKind): void {
  if (intAttr(node, 'layout', 0) !== 0) {
    throw unsupportedAttribute(node, 'layout = 1 (batch-major X) is not supported; export with layout 0 as torch.onnx.export does');
  }
  if (node.attributes['clip'] !== undefined) {
    throw unsupportedAttribute(node, 'cell clipping (attribute clip) is not supported');
  }
  for (const name of ['activation_alpha', 'activation_beta']) {
    if (node.attributes[name] !== undefined) throw unsupportedAttribute(node, `attribute ${name} is not supported (default activations only)`);
  }
  const activations = node.attributes['activations'];
  if (activations !== undefined) {
    const names = activations.kind === 'strings' ? activations.value : [];
    const ok = names.every((name, i) => name.toLowerCase() === kind.defaultActivations[i % kind.defaultActivations.length]?.toLowerCase());
    if (!ok || names.length % kind.defaultActivations.length !== 0) {
      throw unsupportedAttribute(
        node,
        `activations [${names.join(', ')}] are not supported; fedgate trains the default ${kind.opType} activations (${kind.defaultActivations.join(', ')})`,
      );
    }
  }
  if (kind.opType === 'LSTM' && intAttr(node, 'input_forget', 0) !== 0) {
    throw unsupportedAttribute(node, 'input_forget = 1 (coupled input and forget gates) is not supported');
  }
  if (kind.opType === 'GRU' && intAttr(node, 'linear_before_reset', 0) !== 1) {
    throw unsupportedAttribute(
      node,
      'linear_before_reset = 0 is not supported; fedgate trains the GRU form PyTorch exports (linear_before_reset = 1)',
    );
  }
}

function present(node: NodeIR, index: number): boolean {
  const name = node.inputs[index];
  return name !== undefined && name !== '';
}

/** Validates a GRU/LSTM node against fedgate's subset and returns its static sizes. */
export function recurrentLayout(node: NodeIR, inputs: readonly (ValueFacts | undefined)[], kind: RecurrentKind): RecurrentLayout {
  checkAttributes(node, kind);
  if (present(node, SEQUENCE_LENS)) {
    throw unsupportedAttribute(node, 'input sequence_lens (per-example lengths, e.g. from a packed sequence) is not supported; pad the sequences instead');
  }
  if (kind.opType === 'LSTM' && present(node, LSTM_PEEPHOLES)) {
    throw unsupportedAttribute(node, 'peephole weights (input P) are not supported');
  }
  const x = requireInput(node, inputs, 0);
  const w = requireInput(node, inputs, 1);
  const r = requireInput(node, inputs, 2);
  requireRank(node, x, 3, 'X');
  requireRank(node, w, 3, 'W');
  requireRank(node, r, 3, 'R');
  const [seq, , input] = x.shape as [number, number, number];
  if (seq === BATCH) {
    throw shapeError(
      node,
      `X has shape ${formatShape(x.shape)}: its sequence length (axis 0) is not fixed in the model; export with a fixed sequence length (no dynamic_axes entry for the time axis)`,
    );
  }
  if (input === BATCH) throw shapeError(node, `X has shape ${formatShape(x.shape)}: the feature axis must be fixed`);
  const direction = stringAttr(node, 'direction', 'forward');
  const reversed = direction === 'forward' ? [false] : direction === 'reverse' ? [true] : direction === 'bidirectional' ? [false, true] : undefined;
  if (reversed === undefined) throw unsupportedAttribute(node, `direction '${direction}' is not one of forward, reverse, bidirectional`);
  const directions = reversed.length as 1 | 2;
  const hidden = intAttr(node, 'hidden_size', r.shape[2] ?? 0);
  const gated = kind.gates * hidden;
  const expect = (facts: ValueFacts, name: string, shape: readonly number[]): void => {
    if (facts.shape.length !== shape.length || facts.shape.some((d, i) => d !== shape[i])) {
      throw shapeError(node, `${name} has shape ${formatShape(facts.shape)}; expected ${formatShape(shape)} (hidden_size ${hidden}, ${directions} direction(s))`);
    }
  };
  expect(w, 'W', [directions, gated, input]);
  expect(r, 'R', [directions, gated, hidden]);
  if (present(node, 3)) expect(requireInput(node, inputs, 3), 'B', [directions, 2 * gated]);
  for (const index of kind.stateInputs) {
    if (present(node, index)) {
      const state = requireInput(node, inputs, index);
      expect(state, index === 5 ? 'initial_h' : 'initial_c', [directions, x.shape[1] as number, hidden]);
    }
  }
  return { seq, input, hidden, directions, reversed, gates: kind.gates };
}

/** Facts of Y [seq, directions, batch, hidden], Y_h and (LSTM) Y_c [directions, batch, hidden]. */
export function recurrentFacts(node: NodeIR, inputs: readonly (ValueFacts | undefined)[], kind: RecurrentKind): ValueFacts[] {
  const layout = recurrentLayout(node, inputs, kind);
  const x = requireInput(node, inputs, 0);
  const batch = x.shape[1] as number;
  const state: ValueFacts = { elemType: x.elemType, shape: [layout.directions, batch, layout.hidden] };
  const y: ValueFacts = { elemType: x.elemType, shape: [layout.seq, layout.directions, batch, layout.hidden] };
  return [y, ...new Array<ValueFacts>(kind.outputs - 1).fill(state)];
}

/** Layout of a recorded call (its node was validated when facts were inferred). */
export function callLayout(call: OpCall, kind: RecurrentKind): RecurrentLayout {
  return recurrentLayout(call.node, call.inputFacts, kind);
}

/** Time steps of direction d in processing order. */
export function processingOrder(layout: RecurrentLayout, direction: number): number[] {
  const steps = Array.from({ length: layout.seq }, (_, t) => t);
  return layout.reversed[direction] ? steps.reverse() : steps;
}

/**
 * Emission helpers on one builder. `floatType` is the element type of the recurrence (FLOAT in training
 * plans, DOUBLE in gradient checks).
 */
export class Unroller {
  private stepSizes: string | undefined;

  /**
   * @param sequence the emitted X of the node ([seq, batch, input]), whose run-time batch size cuts
   *   time-major rows into steps
   */
  constructor(
    readonly b: GraphBuilder,
    readonly floatType: DataTypeCode,
    private readonly sequence: string,
    private readonly seq: number,
  ) {}

  op(opType: string, inputs: readonly string[], attributes: Parameters<GraphBuilder['op']>[2] = {}, base = 'rnn'): string {
    return this.b.op(opType, inputs, attributes, base);
  }

  split(value: string, sizes: readonly number[], axis = -1): string[] {
    return this.b.node('Split', [value, this.b.int64s(sizes)], { outputs: sizes.length, attributes: { axis: attr.int(axis) }, base: 'rnn' });
  }

  concat(values: readonly string[], axis: number): string {
    return values.length === 1 ? (values[0] as string) : this.op('Concat', values, { axis: attr.int(axis) });
  }

  /** Y = A B^T (+ C): the orientation of every input projection and recurrent product. */
  gemmTransB(a: string, b: string, c?: string): string {
    return this.op('Gemm', c === undefined ? [a, b] : [a, b, c], { transB: attr.int(1) });
  }

  gemm(a: string, b: string, options: { transA?: boolean; c?: string } = {}): string {
    return this.op('Gemm', options.c === undefined ? [a, b] : [a, b, options.c], options.transA === true ? { transA: attr.int(1) } : {});
  }

  sum(terms: readonly (string | undefined)[]): string | undefined {
    const defined = terms.filter((t): t is string => t !== undefined);
    if (defined.length <= 1) return defined[0];
    return defined.length === 2 ? this.op('Add', defined) : this.op('Sum', defined);
  }

  zerosLike(value: string): string {
    return this.op('Mul', [value, this.b.scalar(0, this.floatType)]);
  }

  /** 1 - value */
  oneMinus(value: string): string {
    return this.op('Sub', [this.b.scalar(1, this.floatType), value]);
  }

  /** Direction d of a [directions, ...] tensor, without the direction axis. */
  direction(value: string, d: number, directions: number): string {
    if (directions === 1) return this.op('Squeeze', [value, this.b.int64s([0])]);
    return this.op('Gather', [value, this.b.constant(DataType.INT64, [], [d])], { axis: attr.int(0) });
  }

  /** Inverse of `direction`: stacks per-direction tensors on a new leading axis. */
  stackDirections(values: readonly string[]): string {
    return this.concat(values.map((v) => this.op('Unsqueeze', [v, this.b.int64s([0])])), 0);
  }

  /**
   * Split sizes [batch] * seq for cutting time-major rows into steps, from X's run-time batch size (the
   * batch dimension is symbolic; ONNX Split takes its sizes as a tensor).
   */
  private batchSplit(): string {
    if (this.stepSizes === undefined) {
      const batch = this.op('Gather', [this.op('Shape', [this.sequence]), this.b.constant(DataType.INT64, [], [1])], { axis: attr.int(0) });
      this.stepSizes = this.op('Tile', [this.op('Unsqueeze', [batch, this.b.int64s([0])]), this.b.int64s([this.seq])]);
    }
    return this.stepSizes;
  }

  /** A [seq, batch, width] tensor as time-major rows [seq * batch, width] (row t * batch + b). */
  rowsOf(x: string, width: number): string {
    return this.op('Reshape', [x, this.b.int64s([-1, width])]);
  }

  /** Inverse of `rowsOf`. */
  fromRows(rows: string, width: number): string {
    return this.op('Reshape', [rows, this.b.int64s([this.seq, -1, width])]);
  }

  /** Time-major rows as one [batch, width] tensor per time step (position order): contiguous pieces. */
  stepsOf(rows: string): string[] {
    if (this.seq === 1) return [rows];
    return this.b.node('Split', [rows, this.batchSplit()], { outputs: this.seq, attributes: { axis: attr.int(0) }, base: 'rnn' });
  }

  /** Inverse of `stepsOf`. */
  rowsOfSteps(steps: readonly string[]): string {
    return this.concat(steps, 0);
  }

  /** Y of one direction, [seq, 1, batch, hidden], from its hidden states in position order. */
  sequenceOf(hiddens: readonly string[], hidden: number): string {
    return this.op('Reshape', [this.rowsOfSteps(hiddens), this.b.int64s([this.seq, 1, -1, hidden])]);
  }

  /** Gradient of Y [seq, directions, batch, hidden] as direction d's per-step [batch, hidden] pieces. */
  sequenceGradient(grad: string, d: number, layout: RecurrentLayout): string[] {
    const direction =
      layout.directions === 1
        ? this.op('Squeeze', [grad, this.b.int64s([1])])
        : this.op('Gather', [grad, this.b.constant(DataType.INT64, [], [d])], { axis: attr.int(1) });
    return this.stepsOf(this.rowsOf(direction, layout.hidden));
  }

  /** Column sums of rows: the gradient of a bias broadcast over them. */
  columnSums(rows: string): string {
    return this.op('ReduceSum', [rows, this.b.int64s([0])], { keepdims: attr.int(0) });
  }
}

/**
 * Per-step gate gradients with zeros for steps no gradient reached (processed after every output the
 * loss reads); backward is only called when some output has a gradient, so at least one step has one.
 */
export function gateGradsOrZeros(u: Unroller, grads: readonly (string | undefined)[], opType: string, direction: number): string[] {
  const filler = grads.find((grad) => grad !== undefined);
  if (filler === undefined) throw new ModelError('INTERNAL', 'GRAPH_INVALID', `${opType} backward: no gradient reached direction ${direction}`);
  return grads.map((grad) => grad ?? u.zerosLike(filler));
}

/** Whether the optional input at `index` is given (ONNX writes '' for an absent optional input). */
export const has = (inputs: readonly string[], index: number): boolean => (inputs[index] ?? '') !== '';
