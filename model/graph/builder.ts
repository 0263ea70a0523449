/**
 * GraphBuilder: appends nodes, initializers, inputs and outputs to an ONNX graph with unique value names.
 * Constants are de-duplicated by content so the many small axis/scalar constants the gradient code needs
 * become one initializer each.
 */
import { ModelError } from '../errors.js';
import { DataType, type DataTypeCode } from '../onnx/schema.js';
import type { AttributeValue, DimIR, GraphIR, NodeIR, TensorIR, ValueInfoIR } from '../onnx/ir.js';
import { makeTensor } from '../onnx/tensor.js';

/** Typed attribute constructors: ONNX distinguishes int and float attributes, JS numbers do not. */
export const attr = {
  int: (value: number): AttributeValue => ({ kind: 'int', value }),
  ints: (value: readonly number[]): AttributeValue => ({ kind: 'ints', value: [...value] }),
  float: (value: number): AttributeValue => ({ kind: 'float', value }),
  floats: (value: readonly number[]): AttributeValue => ({ kind: 'floats', value: [...value] }),
  string: (value: string): AttributeValue => ({ kind: 'string', value }),
  tensor: (value: TensorIR): AttributeValue => ({ kind: 'tensor', value }),
  graph: (value: GraphIR): AttributeValue => ({ kind: 'graph', value }),
} as const;

export type AttributeMap = Readonly<Record<string, AttributeValue>>;

export interface NodeOptions {
  /** Output names to use, or how many fresh outputs to create (default 1). */
  readonly outputs?: number | readonly string[];
  readonly attributes?: AttributeMap;
  /** Base for generated output names (default: op type in lower case). */
  readonly base?: string;
  readonly domain?: string;
}

export class GraphBuilder {
  private readonly nodes: NodeIR[] = [];
  private readonly initializers: TensorIR[] = [];
  private readonly inputs: ValueInfoIR[] = [];
  private readonly outputs: ValueInfoIR[] = [];
  private readonly valueInfo: ValueInfoIR[] = [];
  private readonly used = new Set<string>();
  private readonly constants = new Map<string, string>();
  private readonly counters = new Map<string, number>();

  /**
   * @param name graph name
   * @param prefix prepended to every generated name (a Loop body uses one so its names never shadow
   *   the outer graph's, which ONNX forbids)
   */
  constructor(
    readonly name: string,
    private readonly prefix = '',
  ) {}

  /** Marks names as taken (values defined elsewhere: outer scope, imported graph). */
  reserve(names: Iterable<string>): void {
    for (const name of names) this.used.add(name);
  }

  has(name: string): boolean {
    return this.used.has(name);
  }

  /** A value name not used yet, derived from `base`. */
  fresh(base: string): string {
    const stem = `${this.prefix}${base}`;
    if (!this.used.has(stem)) {
      this.used.add(stem);
      return stem;
    }
    let counter = this.counters.get(stem) ?? 1;
    let candidate = `${stem}_${counter}`;
    while (this.used.has(candidate)) candidate = `${stem}_${++counter}`;
    this.counters.set(stem, counter + 1);
    this.used.add(candidate);
    return candidate;
  }

  private claim(name: string, what: string): void {
    if (this.used.has(name)) {
      throw new ModelError('INTERNAL', 'GRAPH_INVALID', `graph '${this.name}': ${what} name '${name}' is already defined`);
    }
    this.used.add(name);
  }

  addInput(name: string, elemType: DataTypeCode, shape: readonly DimIR[] | undefined): string {
    this.claim(name, 'input');
    this.inputs.push({ name, elemType, shape: shape === undefined ? undefined : [...shape] });
    return name;
  }

  /** Declares an existing value as a graph output. */
  addOutput(name: string, elemType: DataTypeCode, shape: readonly DimIR[] | undefined): void {
    this.outputs.push({ name, elemType, shape: shape === undefined ? undefined : [...shape] });
  }

  addValueInfo(name: string, elemType: DataTypeCode, shape: readonly DimIR[] | undefined): void {
    this.valueInfo.push({ name, elemType, shape: shape === undefined ? undefined : [...shape] });
  }

  addInitializer(tensor: TensorIR): string {
    this.claim(tensor.name, 'initializer');
    this.initializers.push(tensor);
    return tensor.name;
  }

  /** Adds an initializer under a fresh name derived from its own; returns that name. */
  addFreshInitializer(tensor: TensorIR): string {
    const name = this.fresh(tensor.name);
    this.initializers.push({ ...tensor, name });
    return name;
  }

  /** A constant initializer, shared by every caller asking for the same type, dims and values. */
  constant(dataType: DataTypeCode, dims: readonly number[], values: ArrayLike<number>, base = 'const'): string {
    const key = `${dataType}|${dims.join(',')}|${Array.from(values).join(',')}`;
    const existing = this.constants.get(key);
    if (existing !== undefined) return existing;
    const name = this.fresh(base);
    this.initializers.push(makeTensor(name, dataType, dims, values));
    this.constants.set(key, name);
    return name;
  }

  /** 0-d constant of a float type (FLOAT by default). */
  scalar(value: number, dataType: DataTypeCode = DataType.FLOAT): string {
    return this.constant(dataType, [], [value], 'scalar');
  }

  /** 1-d INT64 constant (axes, shapes, indices). */
  int64s(values: readonly number[]): string {
    return this.constant(DataType.INT64, [values.length], values, 'ints');
  }

  /** Appends a node; returns its output names. */
  node(opType: string, inputs: readonly string[], options: NodeOptions = {}): string[] {
    const requested = options.outputs ?? 1;
    const base = options.base ?? opType.toLowerCase();
    const outputs =
      typeof requested === 'number'
        ? Array.from({ length: requested }, () => this.fresh(base))
        : requested.map((name) => {
            if (name !== '') this.claim(name, 'output');
            return name;
          });
    this.nodes.push({
      name: this.fresh(`n/${opType}`),
      opType,
      domain: options.domain ?? '',
      inputs: [...inputs],
      outputs,
      attributes: options.attributes ?? {},
    });
    return outputs;
  }

  /** Appends a single-output node and returns the output name. */
  op(opType: string, inputs: readonly string[], attributes: AttributeMap = {}, base?: string): string {
    const [output] = this.node(opType, inputs, { attributes, ...(base === undefined ? {} : { base }) });
    return output as string;
  }

  /** Appends a node exactly as given (names already chosen by its source graph). */
  copyNode(node: NodeIR): void {
    for (const output of node.outputs) if (output !== '') this.claim(output, 'output');
    this.nodes.push(node);
  }

  /** Appends a node whose output names the caller already obtained from `fresh`. */
  appendNode(opType: string, inputs: readonly string[], outputs: readonly string[], attributes: AttributeMap, domain = ''): void {
    this.nodes.push({ name: this.fresh(`n/${opType}`), opType, domain, inputs: [...inputs], outputs: [...outputs], attributes });
  }

  /**
   * Peephole for descent updates: if `value` is produced by a Gemm without a C input and nothing reads it
   * yet, adds `addend` as that Gemm's C (beta 1) and renames its output to `outputName` (a name the
   * caller reserved or obtained from `fresh`), so
   * `Gemm(A, B) + addend` costs one GEMM with the addition in its epilogue. Returns false otherwise.
   */
  fuseGemmAddend(value: string, addend: string, outputName: string): boolean {
    const index = this.nodes.findIndex((node) => node.outputs.includes(value));
    const producer = this.nodes[index];
    if (producer === undefined || producer.opType !== 'Gemm' || producer.inputs.length !== 2) return false;
    if (this.nodes.some((node) => node.inputs.includes(value)) || this.outputs.some((o) => o.name === value)) return false;
    const beta = producer.attributes['beta'];
    if (beta !== undefined && !(beta.kind === 'float' && beta.value === 1)) return false;
    this.nodes[index] = { ...producer, inputs: [...producer.inputs, addend], outputs: [outputName] };
    return true;
  }

  build(docString?: string): GraphIR {
    return {
      name: this.name,
      nodes: [...this.nodes],
      initializers: [...this.initializers],
      inputs: [...this.inputs],
      outputs: [...this.outputs],
      valueInfo: [...this.valueInfo],
      ...(docString === undefined ? {} : { docString }),
    };
  }
}
