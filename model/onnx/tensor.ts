/**
 * Tensor construction and reading. ONNX stores raw_data little-endian regardless of the host, so every
 * conversion goes through explicit little-endian code paths (typed-array copies on little-endian hosts,
 * DataView loops elsewhere).
 */
import { ModelError } from '../errors.js';
import { DataType, type DataTypeCode } from './schema.js';
import { dataTypeName, elementCount, elementSize, type TensorIR } from './ir.js';

const HOST_IS_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export function float32ToBytes(values: Float32Array): Uint8Array {
  if (HOST_IS_LITTLE_ENDIAN) return new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength));
  const out = new Uint8Array(values.length * 4);
  const view = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) view.setFloat32(i * 4, values[i] ?? 0, true);
  return out;
}

export function bytesToFloat32(bytes: Uint8Array): Float32Array {
  const count = bytes.byteLength >>> 2;
  if (HOST_IS_LITTLE_ENDIAN) {
    // Copy into a fresh, aligned buffer: the source may sit at an odd offset inside a decoded message.
    const out = new Float32Array(count);
    new Uint8Array(out.buffer).set(bytes.subarray(0, count * 4));
    return out;
  }
  const out = new Float32Array(count);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < count; i++) out[i] = view.getFloat32(i * 4, true);
  return out;
}

/** Encodes numbers as `dataType` elements (FLOAT, DOUBLE, INT64, INT32, BOOL, UINT8, INT8). */
export function encodeElements(dataType: DataTypeCode, values: ArrayLike<number>): Uint8Array {
  if (dataType === DataType.FLOAT && values instanceof Float32Array) return float32ToBytes(values);
  const size = elementSize(dataType);
  if (size === undefined) {
    throw new ModelError('INTERNAL', 'GRAPH_INVALID', `cannot encode elements of type ${dataTypeName(dataType)}`);
  }
  const out = new Uint8Array(values.length * size);
  const view = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) {
    const value = values[i] ?? 0;
    switch (dataType) {
      case DataType.FLOAT:
        view.setFloat32(i * 4, value, true);
        break;
      case DataType.DOUBLE:
        view.setFloat64(i * 8, value, true);
        break;
      case DataType.INT64:
        view.setBigInt64(i * 8, BigInt(Math.trunc(value)), true);
        break;
      case DataType.INT32:
        view.setInt32(i * 4, value, true);
        break;
      case DataType.BOOL:
      case DataType.UINT8:
        view.setUint8(i, value);
        break;
      case DataType.INT8:
        view.setInt8(i, value);
        break;
      default:
        throw new ModelError('INTERNAL', 'GRAPH_INVALID', `cannot encode elements of type ${dataTypeName(dataType)}`);
    }
  }
  return out;
}

/** Decodes numeric elements to JS numbers (int64 beyond 2^53 loses precision; shapes never get there). */
export function decodeElements(tensor: TensorIR): number[] {
  const size = elementSize(tensor.dataType);
  if (size === undefined) {
    throw new ModelError(
      'INVALID_ARGUMENT',
      'UNSUPPORTED_MODEL',
      `tensor '${tensor.name}' has type ${dataTypeName(tensor.dataType)}; expected a numeric tensor`,
    );
  }
  const count = elementCount(tensor.dims);
  if (tensor.data.byteLength !== count * size) {
    throw new ModelError(
      'INVALID_ARGUMENT',
      'MALFORMED_ONNX',
      `tensor '${tensor.name}' holds ${tensor.data.byteLength} bytes; dims [${tensor.dims.join(', ')}] of ${dataTypeName(tensor.dataType)} need ${count * size}`,
    );
  }
  const view = new DataView(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength);
  const out = new Array<number>(count);
  for (let i = 0; i < count; i++) {
    switch (tensor.dataType) {
      case DataType.FLOAT:
        out[i] = view.getFloat32(i * 4, true);
        break;
      case DataType.DOUBLE:
        out[i] = view.getFloat64(i * 8, true);
        break;
      case DataType.INT64:
        out[i] = Number(view.getBigInt64(i * 8, true));
        break;
      case DataType.UINT64:
        out[i] = Number(view.getBigUint64(i * 8, true));
        break;
      case DataType.INT32:
        out[i] = view.getInt32(i * 4, true);
        break;
      case DataType.UINT32:
        out[i] = view.getUint32(i * 4, true);
        break;
      case DataType.INT16:
        out[i] = view.getInt16(i * 2, true);
        break;
      case DataType.UINT16:
        out[i] = view.getUint16(i * 2, true);
        break;
      case DataType.INT8:
        out[i] = view.getInt8(i);
        break;
      case DataType.UINT8:
      case DataType.BOOL:
        out[i] = view.getUint8(i);
        break;
      default:
        throw new ModelError(
          'INVALID_ARGUMENT',
          'UNSUPPORTED_MODEL',
          `tensor '${tensor.name}' has type ${dataTypeName(tensor.dataType)}, which fedgate does not read`,
        );
    }
  }
  return out;
}

export function makeTensor(
  name: string,
  dataType: DataTypeCode,
  dims: readonly number[],
  values: ArrayLike<number>,
): TensorIR {
  const count = elementCount(dims);
  if (values.length !== count) {
    throw new ModelError(
      'INTERNAL',
      'GRAPH_INVALID',
      `tensor '${name}': ${values.length} values given for dims [${dims.join(', ')}] (${count} elements)`,
    );
  }
  return { name, dataType, dims: [...dims], data: encodeElements(dataType, values) };
}

export function floatTensor(name: string, dims: readonly number[], values: ArrayLike<number>): TensorIR {
  return makeTensor(name, DataType.FLOAT, dims, values);
}

export function int64Tensor(name: string, dims: readonly number[], values: ArrayLike<number>): TensorIR {
  return makeTensor(name, DataType.INT64, dims, values);
}

/** A FLOAT tensor's values as a fresh Float32Array. */
export function readFloat32(tensor: TensorIR): Float32Array {
  if (tensor.dataType !== DataType.FLOAT) {
    return Float32Array.from(decodeElements(tensor));
  }
  const expected = elementCount(tensor.dims) * 4;
  if (tensor.data.byteLength !== expected) {
    throw new ModelError(
      'INVALID_ARGUMENT',
      'MALFORMED_ONNX',
      `tensor '${tensor.name}' holds ${tensor.data.byteLength} bytes; dims [${tensor.dims.join(', ')}] of FLOAT need ${expected}`,
    );
  }
  return bytesToFloat32(tensor.data);
}
