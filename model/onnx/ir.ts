/**
 * fedgate's in-memory form of an ONNX model: plain data, decoupled from protobufjs so graph code never
 * touches Long or wire details. Tensor payloads are kept as little-endian bytes (the layout of ONNX's
 * raw_data), whatever field they were decoded from.
 */
import { DataType, type DataTypeCode } from './schema.js';

export interface TensorIR {
  readonly name: string;
  readonly dataType: DataTypeCode;
  readonly dims: readonly number[];
  /** Little-endian element bytes, row-major. */
  readonly data: Uint8Array;
}

export type AttributeValue =
  | { readonly kind: 'float'; readonly value: number }
  | { readonly kind: 'int'; readonly value: number }
  | { readonly kind: 'string'; readonly value: string }
  | { readonly kind: 'tensor'; readonly value: TensorIR }
  | { readonly kind: 'graph'; readonly value: GraphIR }
  | { readonly kind: 'floats'; readonly value: readonly number[] }
  | { readonly kind: 'ints'; readonly value: readonly number[] }
  | { readonly kind: 'strings'; readonly value: readonly string[] };

export type Attributes = Readonly<Record<string, AttributeValue>>;

export interface NodeIR {
  readonly name: string;
  readonly opType: string;
  /** '' or 'ai.onnx' is the default operator set. */
  readonly domain: string;
  /** '' marks an omitted optional input. */
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly attributes: Attributes;
}

/** A dimension: a number (dim_value), a string (dim_param, symbolic) or null (unknown). */
export type DimIR = number | string | null;

export interface ValueInfoIR {
  readonly name: string;
  readonly elemType: DataTypeCode;
  /** undefined = rank unknown. */
  readonly shape: readonly DimIR[] | undefined;
}

export interface GraphIR {
  readonly name: string;
  readonly nodes: readonly NodeIR[];
  readonly initializers: readonly TensorIR[];
  readonly inputs: readonly ValueInfoIR[];
  readonly outputs: readonly ValueInfoIR[];
  readonly valueInfo: readonly ValueInfoIR[];
  readonly docString?: string;
}

export interface OpsetIR {
  readonly domain: string;
  readonly version: number;
}

export interface ModelIR {
  readonly irVersion: number;
  readonly opsetImports: readonly OpsetIR[];
  readonly producerName: string;
  readonly producerVersion: string;
  readonly docString: string;
  readonly graph: GraphIR;
  readonly metadata: readonly { readonly key: string; readonly value: string }[];
}

/** Bytes per element for the numeric types fedgate handles; undefined for strings and unknown codes. */
export function elementSize(dataType: number): number | undefined {
  switch (dataType) {
    case DataType.FLOAT:
    case DataType.INT32:
    case DataType.UINT32:
      return 4;
    case DataType.DOUBLE:
    case DataType.INT64:
    case DataType.UINT64:
    case DataType.COMPLEX64:
      return 8;
    case DataType.COMPLEX128:
      return 16;
    case DataType.UINT8:
    case DataType.INT8:
    case DataType.BOOL:
      return 1;
    case DataType.UINT16:
    case DataType.INT16:
    case DataType.FLOAT16:
    case DataType.BFLOAT16:
      return 2;
    default:
      return undefined;
  }
}

export function isFloatType(dataType: number): boolean {
  return (
    dataType === DataType.FLOAT ||
    dataType === DataType.DOUBLE ||
    dataType === DataType.FLOAT16 ||
    dataType === DataType.BFLOAT16
  );
}

export function elementCount(dims: readonly number[]): number {
  let count = 1;
  for (const dim of dims) count *= dim;
  return count;
}

export function dataTypeName(dataType: number): string {
  const entry = Object.entries(DataType).find(([, code]) => code === dataType);
  return entry ? entry[0] : `data type ${dataType}`;
}
