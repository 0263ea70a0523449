/**
 * The rewriting machinery of per-example.ts: fresh names, constants and nodes appended to the rewritten
 * forward model, the set of values that carry the per-example axis, and the refusal message.
 */
import { ModelError } from '../errors.js';
import type { AttributeValue, NodeIR, TensorIR } from '../onnx/ir.js';
import { makeTensor } from '../onnx/tensor.js';
import { DataType, type DataTypeCode } from '../onnx/schema.js';
import type { ForwardModel } from './forward-model.js';

export function refuse(node: NodeIR, why: string): ModelError {
  return new ModelError(
    'UNIMPLEMENTED',
    'UNSUPPORTED_OPS',
    `DP-SGD needs per-example gradients, and ${node.opType} (node '${node.name}') ${why}; remove privacy.recordLevel from the task or change the model`,
  );
}

export class Rewriter {
  readonly nodes: NodeIR[] = [];
  readonly constants: TensorIR[] = [];
  /** Source names of values that carry the extra leading per-example axis. */
  readonly expanded = new Set<string>();
  private readonly taken: Set<string>;
  private counter = 0;

  constructor(forward: ForwardModel) {
    this.taken = new Set([
      forward.input,
      ...forward.parameters.map((p) => p.name),
      ...forward.constants.map((c) => c.name),
      ...forward.nodes.flatMap((n) => [...n.outputs, n.name]),
      ...(forward.namedInputs ?? []).map((i) => i.source),
    ]);
  }

  fresh(base: string): string {
    for (;;) {
      const name = `dp/${base}_${this.counter++}`;
      if (!this.taken.has(name)) {
        this.taken.add(name);
        return name;
      }
    }
  }

  ints(values: readonly number[], base = 'ints'): string {
    const name = this.fresh(base);
    this.constants.push(makeTensor(name, DataType.INT64, [values.length], values));
    return name;
  }

  /** A rank-0 int64 constant (a Gather index that drops the axis). */
  index(value: number): string {
    const name = this.fresh('index');
    this.constants.push(makeTensor(name, DataType.INT64, [], [value]));
    return name;
  }

  /** value[..., start:end] along `axis`. */
  slice(value: string, start: number, end: number, axis: number): string {
    return this.op('Slice', [value, this.ints([start]), this.ints([end]), this.ints([axis])]);
  }

  /** A constant under a given (source) name: a value the rewrite knows before run time. */
  constant(name: string, dataType: DataTypeCode, dims: readonly number[], values: readonly number[]): void {
    this.constants.push(makeTensor(name, dataType, dims, values));
  }

  floats(dims: readonly number[], values: ArrayLike<number>, base: string): string {
    const name = this.fresh(base);
    this.constants.push(makeTensor(name, DataType.FLOAT, dims, values));
    return name;
  }

  /** Appends a node; `output` defaults to a fresh name. Returns the output name. */
  op(opType: string, inputs: readonly string[], attributes: Record<string, AttributeValue> = {}, output?: string): string {
    const out = output ?? this.fresh(opType.toLowerCase());
    this.nodes.push({ name: this.fresh(`node_${opType}`), opType, domain: '', inputs, outputs: [out], attributes });
    return out;
  }

  /**
   * An expanded value [B, ...shape] reshaped to `rank` axes with its B axis at `batchAxis`, for
   * broadcasting against a batched value of that rank whose batch axis is there:
   * [1, .., 1, B, 1, ..., 1, ...shape], leading size-1 axes of shape dropped where they do not fit.
   */
  align(node: NodeIR, value: string, shape: readonly number[], rank: number, batchAxis = 0): string {
    const room = rank - 1 - batchAxis;
    let trailing = shape;
    if (trailing.length > room) {
      const dropped = trailing.slice(0, trailing.length - room);
      if (room < 0 || dropped.some((d) => d !== 1)) throw refuse(node, `broadcasts a parameter of shape [${shape.join(', ')}] over the batch axis`);
      trailing = trailing.slice(trailing.length - room);
    }
    if (batchAxis === 0 && trailing.length === shape.length && trailing.length === room) return value;
    const ones = (count: number): number[] => new Array<number>(count).fill(1);
    // 0 copies B from the input's axis 0; elsewhere -1 infers it (every other dimension is static).
    return this.op('Reshape', [value, this.ints([...ones(batchAxis), batchAxis === 0 ? 0 : -1, ...ones(room - trailing.length), ...trailing])]);
  }
}

export const int = (value: number): AttributeValue => ({ kind: 'int', value });
export const ints = (value: readonly number[]): AttributeValue => ({ kind: 'ints', value });
export const attrInt = (node: NodeIR, name: string, fallback: number): number => {
  const a = node.attributes[name];
  return a?.kind === 'int' ? a.value : fallback;
};
export const attrFloat = (node: NodeIR, name: string, fallback: number): number => {
  const a = node.attributes[name];
  return a?.kind === 'float' ? a.value : fallback;
};
