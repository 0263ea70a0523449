/**
 * Static facts about graph values: element type, shape (every dimension known except the symbolic batch
 * dimension, written -1) and, for small integer tensors computed by exporters' shape plumbing
 * (Shape -> Gather -> Unsqueeze -> Concat -> Reshape), their values. Gradient rules read these to decide
 * which broadcast axes to reduce and what ConvTranspose output padding to use, so no shape work is left
 * to run time except where the batch size is involved.
 */
import { ModelError, describeValue } from '../errors.js';
import type { AttributeValue, NodeIR } from '../onnx/ir.js';
import type { DataTypeCode } from '../onnx/schema.js';

/** The symbolic batch dimension in a shape. */
export const BATCH = -1;

/** An element of a known integer tensor: a number, or the run-time batch size. */
export type SymbolicInt = number | 'batch';

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
  return `[${shape.map((dim) => (dim === BATCH ? 'batch' : String(dim))).join(', ')}]`;
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
