/**
 * The subset of ONNX's protobuf schema fedgate reads and writes, declared with protobufjs's reflection API.
 *
 * Field numbers and enum values are facts of the ONNX IR specification (onnx/onnx, docs/IR.md and the
 * onnx.proto it documents, IR version 8 = ONNX 1.12..1.13). ONNX is proto2: repeated scalars are
 * unpacked unless the spec marks them `[packed = true]` (only TensorProto's typed data arrays). Decoders
 * accept both encodings, so this only matters for byte-compatibility with other writers.
 * Fields fedgate never uses (training_info, functions, quantization annotations, non-tensor type
 * protos, sparse tensor attributes' contents) are left out; protobufjs skips unknown fields when
 * decoding, so models that carry them still decode. A field is declared when leaving it out would lose
 * data fedgate needs: sparse initializers (a weight stored sparse is densified on decode), a tensor's
 * segment (refused by name rather than read as a whole tensor) and external data (onnx/external-data.ts).
 * The npm package onnx-proto (the generated full schema) was considered and not taken: its last release
 * (8.0.1, December 2024) depends on protobufjs 6, a second protobuf runtime beside the one fedgate uses,
 * and the fields it would add are the ones listed above as unused.
 */
import protobuf from 'protobufjs';

type FieldRule = 'optional' | 'repeated';
interface FieldSpec {
  readonly name: string;
  readonly id: number;
  readonly type: string;
  readonly rule?: FieldRule;
  readonly packed?: boolean;
}

/** ONNX TensorProto.DataType values (onnx.proto, enum DataType). */
export const DataType = {
  UNDEFINED: 0,
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  UINT16: 4,
  INT16: 5,
  INT32: 6,
  INT64: 7,
  STRING: 8,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
  UINT32: 12,
  UINT64: 13,
  COMPLEX64: 14,
  COMPLEX128: 15,
  BFLOAT16: 16,
} as const;
export type DataTypeCode = (typeof DataType)[keyof typeof DataType];

/** ONNX AttributeProto.AttributeType values. */
export const AttributeType = {
  UNDEFINED: 0,
  FLOAT: 1,
  INT: 2,
  STRING: 3,
  TENSOR: 4,
  GRAPH: 5,
  FLOATS: 6,
  INTS: 7,
  STRINGS: 8,
  TENSORS: 9,
  GRAPHS: 10,
  SPARSE_TENSOR: 11,
  SPARSE_TENSORS: 12,
  TYPE_PROTO: 13,
  TYPE_PROTOS: 14,
} as const;

const repeated = (name: string, id: number, type: string, packed = false): FieldSpec => ({
  name,
  id,
  type,
  rule: 'repeated',
  packed,
});
const optional = (name: string, id: number, type: string): FieldSpec => ({ name, id, type });

const MESSAGES: Readonly<Record<string, readonly FieldSpec[]>> = {
  StringStringEntryProto: [optional('key', 1, 'string'), optional('value', 2, 'string')],
  OperatorSetIdProto: [optional('domain', 1, 'string'), optional('version', 2, 'int64')],
  TensorSegment: [optional('begin', 1, 'int64'), optional('end', 2, 'int64')],
  TensorProto: [
    repeated('dims', 1, 'int64'),
    optional('dataType', 2, 'int32'),
    optional('segment', 3, 'TensorSegment'),
    repeated('floatData', 4, 'float', true),
    repeated('int32Data', 5, 'int32', true),
    repeated('stringData', 6, 'bytes'),
    repeated('int64Data', 7, 'int64', true),
    optional('name', 8, 'string'),
    optional('rawData', 9, 'bytes'),
    repeated('doubleData', 10, 'double', true),
    repeated('uint64Data', 11, 'uint64', true),
    optional('docString', 12, 'string'),
    repeated('externalData', 13, 'StringStringEntryProto'),
    optional('dataLocation', 14, 'int32'),
  ],
  SparseTensorProto: [optional('values', 1, 'TensorProto'), optional('indices', 2, 'TensorProto'), repeated('dims', 3, 'int64')],
  Dimension: [optional('dimValue', 1, 'int64'), optional('dimParam', 2, 'string'), optional('denotation', 3, 'string')],
  TensorShapeProto: [repeated('dim', 1, 'Dimension')],
  TensorTypeProto: [optional('elemType', 1, 'int32'), optional('shape', 2, 'TensorShapeProto')],
  TypeProto: [optional('tensorType', 1, 'TensorTypeProto'), optional('denotation', 6, 'string')],
  ValueInfoProto: [optional('name', 1, 'string'), optional('type', 2, 'TypeProto'), optional('docString', 3, 'string')],
  AttributeProto: [
    optional('name', 1, 'string'),
    optional('f', 2, 'float'),
    optional('i', 3, 'int64'),
    optional('s', 4, 'bytes'),
    optional('t', 5, 'TensorProto'),
    optional('g', 6, 'GraphProto'),
    repeated('floats', 7, 'float'),
    repeated('ints', 8, 'int64'),
    repeated('strings', 9, 'bytes'),
    repeated('tensors', 10, 'TensorProto'),
    repeated('graphs', 11, 'GraphProto'),
    optional('docString', 13, 'string'),
    optional('type', 20, 'int32'),
    optional('refAttrName', 21, 'string'),
    optional('sparseTensor', 22, 'SparseTensorProto'),
    repeated('sparseTensors', 23, 'SparseTensorProto'),
  ],
  NodeProto: [
    repeated('input', 1, 'string'),
    repeated('output', 2, 'string'),
    optional('name', 3, 'string'),
    optional('opType', 4, 'string'),
    repeated('attribute', 5, 'AttributeProto'),
    optional('docString', 6, 'string'),
    optional('domain', 7, 'string'),
  ],
  GraphProto: [
    repeated('node', 1, 'NodeProto'),
    optional('name', 2, 'string'),
    repeated('initializer', 5, 'TensorProto'),
    optional('docString', 10, 'string'),
    repeated('input', 11, 'ValueInfoProto'),
    repeated('output', 12, 'ValueInfoProto'),
    repeated('valueInfo', 13, 'ValueInfoProto'),
    repeated('sparseInitializer', 15, 'SparseTensorProto'),
  ],
  ModelProto: [
    optional('irVersion', 1, 'int64'),
    optional('producerName', 2, 'string'),
    optional('producerVersion', 3, 'string'),
    optional('domain', 4, 'string'),
    optional('modelVersion', 5, 'int64'),
    optional('docString', 6, 'string'),
    optional('graph', 7, 'GraphProto'),
    repeated('opsetImport', 8, 'OperatorSetIdProto'),
    repeated('metadataProps', 14, 'StringStringEntryProto'),
  ],
};

function buildRoot(): protobuf.Root {
  const root = new protobuf.Root();
  const onnx = new protobuf.Namespace('onnx');
  root.add(onnx);
  for (const [typeName, fields] of Object.entries(MESSAGES)) {
    const type = new protobuf.Type(typeName);
    for (const spec of fields) {
      const options = spec.rule === 'repeated' ? { packed: spec.packed === true } : undefined;
      type.add(new protobuf.Field(spec.name, spec.id, spec.type, spec.rule ?? 'optional', undefined, options));
    }
    onnx.add(type);
  }
  root.resolveAll();
  return root;
}

const root = buildRoot();

/** protobufjs message types of the ONNX subset, resolved once at module load. */
export const onnxTypes = {
  ModelProto: root.lookupType('onnx.ModelProto'),
  GraphProto: root.lookupType('onnx.GraphProto'),
  TensorProto: root.lookupType('onnx.TensorProto'),
} as const;
