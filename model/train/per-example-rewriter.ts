/**
 * The rewriting machinery of per-example.ts: fresh names, constants and nodes appended to the rewritten
 * forward model, the set of values that carry the per-example axis, and the refusal message.
 */
import { ModelError } from '../errors.js';
import type { AttributeValue, NodeIR, TensorIR } from '../onnx/ir.js';
import { makeTensor } from '../onnx/tensor.js';
import { DataType } from '../onnx/schema.js';
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
   * An expanded value [B, ...shape] reshaped to `rank` axes for broadcasting against a batched value of
   * that rank: [B, 1, ..., 1, ...shape], or with leading size-1 axes of shape dropped.
   */
  align(node: NodeIR, value: string, shape: readonly number[], rank: number): string {
    const rest = rank - 1;
    if (shape.length === rest) return value;
    if (shape.length < rest) return this.op('Reshape', [value, this.ints([0, ...new Array<number>(rest - shape.length).fill(1), ...shape])]);
    const dropped = shape.slice(0, shape.length - rest);
    if (dropped.some((d) => d !== 1)) throw refuse(node, `broadcasts a parameter of shape [${shape.join(', ')}] over the batch axis`);
    return this.op('Reshape', [value, this.ints([0, ...shape.slice(shape.length - rest)])]);
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
