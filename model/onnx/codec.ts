/**
 * ModelProto bytes <-> ModelIR. Encoding writes every tensor as raw_data (ONNX IR: "raw_data ... stored
 * as fixed-width, little-endian"); decoding accepts every data field a writer may have used and
 * normalises it to raw little-endian bytes.
 */
import { ModelError, describeValue } from '../errors.js';
import { AttributeType, DataType, onnxTypes } from './schema.js';
import type { AttributeValue, DimIR, GraphIR, ModelIR, NodeIR, TensorIR, ValueInfoIR } from './ir.js';
import { dataTypeName, elementCount, elementSize } from './ir.js';
import { encodeElements } from './tensor.js';
import { declaresExternalData, externalDataNotEmbedded, externalDataReference, loadExternalData, type ExternalDataResolver } from './external-data.js';

// ---------------------------------------------------------------------------------------------- encode

interface EncodedDim {
  dimValue?: number;
  dimParam?: string;
}

function encodeTensor(tensor: TensorIR): Record<string, unknown> {
  return { name: tensor.name, dims: [...tensor.dims], dataType: tensor.dataType, rawData: tensor.data };
}

function encodeValueInfo(info: ValueInfoIR): Record<string, unknown> {
  const tensorType: Record<string, unknown> = { elemType: info.elemType };
  if (info.shape !== undefined) {
    tensorType['shape'] = {
      dim: info.shape.map((dim): EncodedDim => {
        if (typeof dim === 'number') return { dimValue: dim };
        if (typeof dim === 'string') return { dimParam: dim };
        return {};
      }),
    };
  }
  return { name: info.name, type: { tensorType } };
}

function encodeAttribute(name: string, attribute: AttributeValue): Record<string, unknown> {
  const encoder = new TextEncoder();
  switch (attribute.kind) {
    case 'float':
      return { name, type: AttributeType.FLOAT, f: attribute.value };
    case 'int':
      return { name, type: AttributeType.INT, i: attribute.value };
    case 'string':
      return { name, type: AttributeType.STRING, s: encoder.encode(attribute.value) };
    case 'tensor':
      return { name, type: AttributeType.TENSOR, t: encodeTensor(attribute.value) };
    case 'graph':
      return { name, type: AttributeType.GRAPH, g: encodeGraph(attribute.value) };
    case 'floats':
      return { name, type: AttributeType.FLOATS, floats: [...attribute.value] };
    case 'ints':
      return { name, type: AttributeType.INTS, ints: [...attribute.value] };
    case 'strings':
      return { name, type: AttributeType.STRINGS, strings: attribute.value.map((s) => encoder.encode(s)) };
  }
}

function encodeNode(node: NodeIR): Record<string, unknown> {
  const encoded: Record<string, unknown> = {
    input: [...node.inputs],
    output: [...node.outputs],
    name: node.name,
    opType: node.opType,
    attribute: Object.entries(node.attributes).map(([name, value]) => encodeAttribute(name, value)),
  };
  if (node.domain !== '') encoded['domain'] = node.domain;
  return encoded;
}

function encodeGraph(graph: GraphIR): Record<string, unknown> {
  const encoded: Record<string, unknown> = {
    name: graph.name,
    node: graph.nodes.map(encodeNode),
    initializer: graph.initializers.map(encodeTensor),
    input: graph.inputs.map(encodeValueInfo),
    output: graph.outputs.map(encodeValueInfo),
    valueInfo: graph.valueInfo.map(encodeValueInfo),
  };
  if (graph.docString !== undefined) encoded['docString'] = graph.docString;
  return encoded;
}

export function encodeModel(model: ModelIR): Uint8Array {
  // protobufjs encoders read plain objects shaped like the message, so no fromObject copy is needed.
  const message = {
    irVersion: model.irVersion,
    producerName: model.producerName,
    producerVersion: model.producerVersion,
    docString: model.docString,
    graph: encodeGraph(model.graph),
    opsetImport: model.opsetImports.map((opset) => ({ domain: opset.domain, version: opset.version })),
    metadataProps: model.metadata.map((entry) => ({ key: entry.key, value: entry.value })),
  };
  return onnxTypes.ModelProto.encode(message as never).finish();
}

// ---------------------------------------------------------------------------------------------- decode

type Plain = Record<string, unknown>;

function malformed(message: string, cause?: unknown): ModelError {
  return new ModelError('INVALID_ARGUMENT', 'MALFORMED_ONNX', message, cause === undefined ? undefined : { cause });
}

const asArray = (value: unknown): unknown[] => (Array.isArray(value) ? value : []);
const asString = (value: unknown): string => (typeof value === 'string' ? value : '');
/**
 * 64-bit fields are decoded as decimal strings (toObject `longs: String`) so int64_data keeps every bit;
 * everything else reads them as numbers (exact up to 2^53, which covers dims, versions and attributes).
 */
const asNumber = (value: unknown, fallback = 0): number =>
  typeof value === 'number' ? value : typeof value === 'string' && value !== '' && Number.isFinite(Number(value)) ? Number(value) : fallback;
const asBigInt = (value: unknown): bigint => {
  if (typeof value === 'string' && /^-?[0-9]+$/.test(value)) return BigInt(value);
  return typeof value === 'number' && Number.isSafeInteger(value) ? BigInt(value) : 0n;
};

/** What decoding needs beyond the bytes: the reader of external data, when the caller has the files. */
export interface DecodeOptions {
  /**
   * Reads the bytes of a tensor stored as ONNX external data (onnx/external-data.ts checks the entries
   * before asking and the bytes after). Without it such a tensor is refused with the command that embeds
   * the weights.
   */
  readonly externalData?: ExternalDataResolver;
}
const asPlain = (value: unknown): Plain | undefined =>
  typeof value === 'object' && value !== null ? (value as Plain) : undefined;

function decodeTensor(raw: Plain, context: string, options: DecodeOptions): TensorIR {
  const name = asString(raw['name']);
  const dataType = asNumber(raw['dataType']) as TensorIR['dataType'];
  const dims = asArray(raw['dims']).map((dim) => asNumber(dim, Number.NaN));
  const where = `${context} tensor '${name}'`;
  if (dims.some((dim) => !Number.isSafeInteger(dim) || dim < 0)) {
    throw malformed(`${where}: dims ${describeValue(dims)} are not non-negative integers`);
  }
  const segment = asPlain(raw['segment']);
  if (segment !== undefined) {
    // A segment is one chunk of a tensor split across several TensorProtos; read whole, it would be a
    // tensor of the full dims with only part of the data.
    throw new ModelError(
      'INVALID_ARGUMENT',
      'UNSUPPORTED_MODEL',
      `${where} is segment [${asNumber(segment['begin'])}, ${asNumber(segment['end'])}) of a tensor split across several TensorProtos; expected whole tensors (save the model again with onnx.save_model)`,
    );
  }
  let external: Uint8Array | undefined;
  if (options.externalData === undefined) {
    if (declaresExternalData(raw)) throw externalDataNotEmbedded(raw, where);
  } else {
    const reference = externalDataReference(raw, where);
    if (reference !== undefined) external = loadExternalData(reference, options.externalData);
  }
  const size = elementSize(dataType);
  if (size === undefined) {
    // Strings and unknown codes are kept as empty payloads; any op that reads them reports the type.
    return { name, dataType, dims, data: new Uint8Array(0) };
  }
  const count = elementCount(dims);
  const rawData = raw['rawData'];
  let data: Uint8Array;
  if (external !== undefined) {
    data = new Uint8Array(external);
  } else if (rawData instanceof Uint8Array && rawData.byteLength > 0) {
    data = new Uint8Array(rawData);
  } else if (dataType === DataType.FLOAT) {
    data = encodeElements(DataType.FLOAT, Float32Array.from(asArray(raw['floatData']).map((v) => asNumber(v))));
  } else if (dataType === DataType.DOUBLE) {
    data = encodeElements(DataType.DOUBLE, asArray(raw['doubleData']).map((v) => asNumber(v)));
  } else if (dataType === DataType.INT64) {
    // Through BigInt: int64_data often holds INT64_MAX (Slice ends), which a double would round to 2^63.
    const values = asArray(raw['int64Data']);
    data = new Uint8Array(values.length * 8);
    const view = new DataView(data.buffer);
    values.forEach((v, i) => view.setBigInt64(i * 8, BigInt.asIntN(64, asBigInt(v)), true));
  } else if (dataType === DataType.UINT32 || dataType === DataType.UINT64) {
    const values = asArray(raw['uint64Data']);
    data = new Uint8Array(values.length * size);
    const view = new DataView(data.buffer);
    values.forEach((v, i) =>
      size === 4 ? view.setUint32(i * 4, Number(BigInt.asUintN(32, asBigInt(v))), true) : view.setBigUint64(i * 8, BigInt.asUintN(64, asBigInt(v)), true),
    );
  } else {
    // int32_data carries INT32, INT16, INT8, UINT16, UINT8, BOOL, FLOAT16 and BFLOAT16 (as bit patterns).
    const values = asArray(raw['int32Data']).map((v) => asNumber(v));
    data = new Uint8Array(values.length * size);
    const view = new DataView(data.buffer);
    values.forEach((v, i) => {
      if (size === 4) view.setInt32(i * 4, v, true);
      else if (size === 2) view.setUint16(i * 2, v & 0xffff, true);
      else view.setUint8(i, v & 0xff);
    });
  }
  if (data.byteLength !== count * size) {
    throw malformed(
      `${where}: holds ${data.byteLength} bytes, dims [${dims.join(', ')}] of ${dataTypeName(dataType)} need ${count * size}`,
    );
  }
  return { name, dataType, dims, data };
}

/** Dense bytes above which a sparse initializer is refused rather than expanded (protobuf's limit). */
const MAX_DENSE_BYTES = 2 ** 31 - 1;

/**
 * A sparse initializer (GraphProto.sparse_initializer, SparseTensorProto) as the dense tensor it stands
 * for: fedgate's parameters and ONNX Runtime's inputs are dense. `values` holds the NNZ non-zero values
 * ([NNZ], named like the tensor); `indices` is INT64, [NNZ] linear indices or [NNZ, rank] coordinates.
 */
function decodeSparseInitializer(raw: Plain, options: DecodeOptions): TensorIR {
  const values = decodeTensor(asPlain(raw['values']) ?? {}, 'sparse initializer values', options);
  const where = `sparse initializer '${values.name}'`;
  const indices = decodeTensor(asPlain(raw['indices']) ?? {}, `${where} indices`, options);
  const dims = asArray(raw['dims']).map((dim) => asNumber(dim, Number.NaN));
  const size = elementSize(values.dataType);
  if (dims.some((dim) => !Number.isSafeInteger(dim) || dim < 0)) throw malformed(`${where}: dims ${describeValue(dims)} are not non-negative integers`);
  if (size === undefined) throw malformed(`${where}: values are ${dataTypeName(values.dataType)}; expected a numeric type`);
  const count = elementCount(dims);
  if (count * size > MAX_DENSE_BYTES) throw malformed(`${where}: dense dims [${dims.join(', ')}] need ${count * size} bytes; expected at most ${MAX_DENSE_BYTES}`);
  const nonZeros = values.dims.length === 1 ? (values.dims[0] ?? 0) : -1;
  if (nonZeros < 0) throw malformed(`${where}: values have dims [${values.dims.join(', ')}]; expected [NNZ]`);
  const rank = indices.dims.length === 2 ? (indices.dims[1] ?? 0) : 1;
  const linear = indices.dims.length === 1;
  if (indices.dataType !== DataType.INT64 || !((linear && indices.dims[0] === nonZeros) || (indices.dims.length === 2 && indices.dims[0] === nonZeros && rank === dims.length))) {
    throw malformed(`${where}: indices are ${dataTypeName(indices.dataType)} [${indices.dims.join(', ')}]; expected INT64 [${nonZeros}] (linear) or [${nonZeros}, ${dims.length}] (coordinates)`);
  }
  const strides = dims.map((_, axis) => dims.slice(axis + 1).reduce((n, d) => n * d, 1));
  const view = new DataView(indices.data.buffer, indices.data.byteOffset, indices.data.byteLength);
  const data = new Uint8Array(count * size);
  for (let k = 0; k < nonZeros; k++) {
    let position = 0;
    for (let axis = 0; axis < rank; axis++) {
      const index = Number(view.getBigInt64((k * rank + axis) * 8, true));
      const bound = linear ? count : (dims[axis] ?? 0);
      if (index < 0 || index >= bound) throw malformed(`${where}: index ${index} of non-zero #${k} is outside [0, ${bound})`);
      position += linear ? index : index * (strides[axis] ?? 0);
    }
    data.set(values.data.subarray(k * size, (k + 1) * size), position * size);
  }
  return { name: values.name, dataType: values.dataType, dims, data };
}

function decodeValueInfo(raw: Plain): ValueInfoIR {
  const tensorType = asPlain(asPlain(raw['type'])?.['tensorType']);
  const shape = asPlain(tensorType?.['shape']);
  return {
    name: asString(raw['name']),
    elemType: asNumber(tensorType?.['elemType']) as ValueInfoIR['elemType'],
    shape:
      shape === undefined
        ? undefined
        : asArray(shape['dim']).map((dim): DimIR => {
            const plain = asPlain(dim) ?? {};
            if (plain['dimValue'] !== undefined) return asNumber(plain['dimValue'], Number.NaN);
            if (typeof plain['dimParam'] === 'string' && plain['dimParam'] !== '') return plain['dimParam'];
            return null;
          }),
  };
}

function decodeAttribute(raw: Plain, context: string, options: DecodeOptions): AttributeValue {
  const decoder = new TextDecoder();
  const name = asString(raw['name']);
  let type = asNumber(raw['type']);
  if (type === AttributeType.UNDEFINED) {
    // IR < 4 writers may omit `type`; infer it from the populated field.
    if (raw['f'] !== undefined) type = AttributeType.FLOAT;
    else if (raw['i'] !== undefined) type = AttributeType.INT;
    else if (raw['s'] !== undefined) type = AttributeType.STRING;
    else if (raw['t'] !== undefined) type = AttributeType.TENSOR;
    else if (raw['g'] !== undefined) type = AttributeType.GRAPH;
    else if (asArray(raw['floats']).length > 0) type = AttributeType.FLOATS;
    else if (asArray(raw['ints']).length > 0) type = AttributeType.INTS;
    else if (asArray(raw['strings']).length > 0) type = AttributeType.STRINGS;
  }
  switch (type) {
    case AttributeType.FLOAT:
      return { kind: 'float', value: asNumber(raw['f']) };
    case AttributeType.INT:
      return { kind: 'int', value: asNumber(raw['i']) };
    case AttributeType.STRING:
      return { kind: 'string', value: raw['s'] instanceof Uint8Array ? decoder.decode(raw['s']) : '' };
    case AttributeType.TENSOR:
      return { kind: 'tensor', value: decodeTensor(asPlain(raw['t']) ?? {}, `${context} attribute '${name}'`, options) };
    case AttributeType.GRAPH:
      return { kind: 'graph', value: decodeGraph(asPlain(raw['g']) ?? {}, options) };
    case AttributeType.FLOATS:
      return { kind: 'floats', value: asArray(raw['floats']).map((v) => asNumber(v)) };
    case AttributeType.INTS:
      return { kind: 'ints', value: asArray(raw['ints']).map((v) => asNumber(v)) };
    case AttributeType.STRINGS:
      return {
        kind: 'strings',
        value: asArray(raw['strings']).map((s) => (s instanceof Uint8Array ? decoder.decode(s) : '')),
      };
    default: {
      const typeName = Object.entries(AttributeType).find(([, code]) => code === type)?.[0];
      throw new ModelError(
        'INVALID_ARGUMENT',
        'UNSUPPORTED_MODEL',
        `${context} attribute '${name}' has attribute type ${typeName === undefined ? type : `${typeName} (${type})`}; expected a float, int, string, tensor, graph or list attribute`,
      );
    }
  }
}

function decodeNode(raw: Plain, index: number, options: DecodeOptions): NodeIR {
  const name = asString(raw['name']);
  const opType = asString(raw['opType']);
  const context = `node ${name === '' ? `#${index}` : `'${name}'`} (${opType})`;
  const attributes: Record<string, AttributeValue> = {};
  for (const attribute of asArray(raw['attribute'])) {
    const plain = asPlain(attribute) ?? {};
    attributes[asString(plain['name'])] = decodeAttribute(plain, context, options);
  }
  return {
    name,
    opType,
    domain: asString(raw['domain']),
    inputs: asArray(raw['input']).map(asString),
    outputs: asArray(raw['output']).map(asString),
    attributes,
  };
}

function decodeGraph(raw: Plain, options: DecodeOptions): GraphIR {
  const docString = asString(raw['docString']);
  return {
    name: asString(raw['name']),
    nodes: asArray(raw['node']).map((node, index) => decodeNode(asPlain(node) ?? {}, index, options)),
    initializers: [
      ...asArray(raw['initializer']).map((t) => decodeTensor(asPlain(t) ?? {}, 'initializer', options)),
      ...asArray(raw['sparseInitializer']).map((t) => decodeSparseInitializer(asPlain(t) ?? {}, options)),
    ],
    inputs: asArray(raw['input']).map((v) => decodeValueInfo(asPlain(v) ?? {})),
    outputs: asArray(raw['output']).map((v) => decodeValueInfo(asPlain(v) ?? {})),
    valueInfo: asArray(raw['valueInfo']).map((v) => decodeValueInfo(asPlain(v) ?? {})),
    ...(docString === '' ? {} : { docString }),
  };
}

/**
 * Decodes ModelProto bytes. Throws ModelError MALFORMED_ONNX for bytes that are not an ONNX model, and
 * EXTERNAL_DATA for a tensor kept in a side file unless `options.externalData` reads it.
 */
export function decodeModel(bytes: Uint8Array, options: DecodeOptions = {}): ModelIR {
  if (!(bytes instanceof Uint8Array) || bytes.byteLength === 0) {
    throw malformed(`ONNX model bytes: got ${describeValue(bytes)}; expected a non-empty serialized ModelProto`);
  }
  let plain: Plain;
  try {
    const message = onnxTypes.ModelProto.decode(bytes);
    plain = onnxTypes.ModelProto.toObject(message, { longs: String, arrays: true }) as Plain;
  } catch (cause) {
    const detail = cause instanceof Error ? cause.message : String(cause);
    throw malformed(`ONNX model bytes (${bytes.byteLength} bytes) are not a valid ModelProto: ${detail}`, cause);
  }
  const graph = asPlain(plain['graph']);
  if (graph === undefined) {
    throw malformed(`ONNX model (${bytes.byteLength} bytes) has no graph (ModelProto field 7); expected a model with a graph`);
  }
  const irVersion = asNumber(plain['irVersion']);
  if (irVersion <= 0) {
    throw malformed(`ONNX model: ir_version ${describeValue(plain['irVersion'])}; expected a positive IR version`);
  }
  return {
    irVersion,
    opsetImports: asArray(plain['opsetImport']).map((o) => {
      const opset = asPlain(o) ?? {};
      return { domain: asString(opset['domain']), version: asNumber(opset['version']) };
    }),
    producerName: asString(plain['producerName']),
    producerVersion: asString(plain['producerVersion']),
    docString: asString(plain['docString']),
    graph: decodeGraph(graph, options),
    metadata: asArray(plain['metadataProps']).map((e) => {
      const entry = asPlain(e) ?? {};
      return { key: asString(entry['key']), value: asString(entry['value']) };
    }),
  };
}
