/**
 * Static facts about graph values: element type, shape (every dimension known except the symbolic batch
 * dimension, written -1, or a known multiple k of it, written -k: attention folds heads into the batch,
 * [B * H, S, d]) and, for small integer tensors computed by exporters' shape plumbing
 * (Shape -> Gather -> Unsqueeze -> Concat -> Reshape), their values. Gradient rules read these to decide
 * which broadcast axes to reduce and what ConvTranspose output padding to use, so no shape work is left
 * to run time except where the batch size is involved.
 */
import { ModelError, describeValue } from '../errors.js';
import type { AttributeValue, NodeIR } from '../onnx/ir.js';
import type { DataTypeCode } from '../onnx/schema.js';

/** The symbolic batch dimension in a shape; -k is k times the batch size. */
export const BATCH = -1;

/** A multiple of the run-time batch size inside a known integer tensor: 'batch', or 'batch*k'. */
export type BatchMultiple = 'batch' | `batch*${number}`;

/** An element of a known integer tensor: a number, or a multiple of the run-time batch size. */
export type SymbolicInt = number | BatchMultiple;

/** True for a dimension that is the batch size or a multiple of it. */
export function isBatchDim(dim: number): boolean {
  return dim < 0;
}

/** The batch multiple k*B as a value element. */
export function batchValue(multiple: number): BatchMultiple {
  return multiple === 1 ? 'batch' : `batch*${multiple}`;
}

/** How many times the batch size a value element is (undefined for a plain number). */
export function batchMultipleOf(value: SymbolicInt): number | undefined {
  if (typeof value === 'number') return undefined;
  return value === 'batch' ? 1 : Number(value.slice('batch*'.length));
}

/** A shape dimension as a value element (the Shape op) and back (Reshape, Expand targets). */
export function dimToValue(dim: number): SymbolicInt {
  return isBatchDim(dim) ? batchValue(-dim) : dim;
}

export function valueToDim(value: SymbolicInt): number {
  const multiple = batchMultipleOf(value);
  return multiple === undefined ? (value as number) : -multiple;
}

export interface ValueFacts {
  readonly elemType: DataTypeCode;
  readonly shape: readonly number[];
  /** Known contents of a small integer tensor (row-major), when shape plumbing makes them computable. */
  readonly value?: readonly SymbolicInt[];
}

export function describeNode(node: NodeIR): string {
  return `node '${node.name}' (${node.opType})`;
}

export function shapeError(node: NodeIR, message: string): ModelError {
  return new ModelError('INVALID_ARGUMENT', 'SHAPE_MISMATCH', `${describeNode(node)}: ${message}`);
}

export function formatShape(shape: readonly number[]): string {
  return `[${shape.map((dim) => (isBatchDim(dim) ? dimToValue(dim) : String(dim))).join(', ')}]`;
}

/** Facts of input `index`, which the node requires. */
export function requireInput(node: NodeIR, inputs: readonly (ValueFacts | undefined)[], index: number): ValueFacts {
  const facts = inputs[index];
  if (facts === undefined) {
    throw shapeError(node, `input ${index} ('${node.inputs[index] ?? ''}') is missing or has no known shape`);
  }
  return facts;
}

export function requireRank(node: NodeIR, facts: ValueFacts, rank: number, what: string): void {
  if (facts.shape.length !== rank) {
    throw shapeError(node, `${what} has shape ${formatShape(facts.shape)}; expected rank ${rank}`);
  }
}

/** Numpy-style multidirectional broadcasting (ONNX "Broadcasting in ONNX"), batch-aware. */
export function broadcastShapes(node: NodeIR, a: readonly number[], b: readonly number[]): number[] {
  const rank = Math.max(a.length, b.length);
  const out = new Array<number>(rank);
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da === db || db === 1) out[i] = da;
    else if (da === 1) out[i] = db;
    else {
      throw shapeError(node, `shapes ${formatShape(a)} and ${formatShape(b)} do not broadcast (axis ${i}: ${da} vs ${db})`);
    }
  }
  return out;
}

/** Normalises a possibly negative axis against `rank`. */
export function normaliseAxis(node: NodeIR, axis: number, rank: number, what = 'axis'): number {
  const resolved = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(resolved) || resolved < 0 || resolved >= rank) {
    throw shapeError(node, `${what} ${axis} is out of range for rank ${rank}`);
  }
  return resolved;
}

// ------------------------------------------------------------------------------------------ attributes

function attributeError(node: NodeIR, name: string, value: AttributeValue, expected: string): ModelError {
  return new ModelError(
    'INVALID_ARGUMENT',
    'UNSUPPORTED_MODEL',
    `${describeNode(node)}: attribute '${name}' is a ${value.kind} (${describeValue(value.value)}); expected ${expected}`,
  );
}

export function intAttr(node: NodeIR, name: string, fallback: number): number {
  const value = node.attributes[name];
  if (value === undefined) return fallback;
  if (value.kind !== 'int') throw attributeError(node, name, value, 'an int');
  return value.value;
}

export function floatAttr(node: NodeIR, name: string, fallback: number): number {
  const value = node.attributes[name];
  if (value === undefined) return fallback;
  if (value.kind !== 'float') throw attributeError(node, name, value, 'a float');
  return value.value;
}

export function intsAttr(node: NodeIR, name: string): readonly number[] | undefined {
  const value = node.attributes[name];
  if (value === undefined) return undefined;
  if (value.kind !== 'ints') throw attributeError(node, name, value, 'a list of ints');
  return value.value;
}

export function stringAttr(node: NodeIR, name: string, fallback: string): string {
  const value = node.attributes[name];
  if (value === undefined) return fallback;
  if (value.kind !== 'string') throw attributeError(node, name, value, 'a string');
  return value.value;
}

export function unsupportedAttribute(node: NodeIR, message: string): ModelError {
  return new ModelError('INVALID_ARGUMENT', 'UNSUPPORTED_OPS', `${describeNode(node)}: ${message}`);
}
