/**
 * IDX files, the format of MNIST and Fashion-MNIST (LeCun et al., "THE IDX FILE FORMAT", on the MNIST
 * page): a 4-byte magic number (two zero bytes, a type code, the number of dimensions), then each
 * dimension as a big-endian uint32, then the values in row-major order, big-endian. Gzip-compressed
 * files (the form they are distributed in) are inflated first.
 */
import { type Dataset, createDataset } from './dataset.js';
import { DataError, requireInteger } from './errors.js';
import { maybeGunzip, readDataFile } from './files.js';

/** IDX type codes (third magic byte) and the typed array each decodes to. */
const IDX_TYPES = {
  0x08: { name: 'uint8', bytes: 1 },
  0x09: { name: 'int8', bytes: 1 },
  0x0b: { name: 'int16', bytes: 2 },
  0x0c: { name: 'int32', bytes: 4 },
  0x0d: { name: 'float32', bytes: 4 },
  0x0e: { name: 'float64', bytes: 8 },
} as const;

export type IdxTypeCode = keyof typeof IDX_TYPES;
export type IdxData = Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;

export interface IdxArray {
  readonly type: (typeof IDX_TYPES)[IdxTypeCode]['name'];
  readonly dims: readonly number[];
  readonly data: IdxData;
}

function malformed(source: string, what: string): DataError {
  return new DataError('DATA_LOSS', 'IDX_MALFORMED', `${source}: ${what}`);
}

/** Decodes an (uncompressed) IDX byte string. `source` names the file in error messages. */
export function parseIdx(bytes: Uint8Array, source = 'idx'): IdxArray {
  if (bytes.length < 4) {
    throw malformed(source, `file is ${bytes.length} bytes long; expected at least the 4-byte IDX magic number`);
  }
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    throw malformed(source, `magic number starts with 0x${hex(bytes[0])} 0x${hex(bytes[1])}; expected 0x00 0x00 (is this an IDX file?)`);
  }
  const typeCode = bytes[2] as number;
  const type = (IDX_TYPES as Record<number, (typeof IDX_TYPES)[IdxTypeCode] | undefined>)[typeCode];
  if (type === undefined) {
    throw malformed(source, `type code 0x${hex(typeCode)} is unknown; expected one of 0x08, 0x09, 0x0b, 0x0c, 0x0d, 0x0e`);
  }
  const rank = bytes[3] as number;
  if (rank === 0) throw malformed(source, 'number of dimensions is 0; expected at least 1');
  const headerLength = 4 + 4 * rank;
  if (bytes.length < headerLength) {
    throw malformed(source, `file is ${bytes.length} bytes long; expected a ${headerLength}-byte header for ${rank} dimensions`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims: number[] = [];
  let count = 1;
  for (let axis = 0; axis < rank; axis++) {
    const dim = view.getUint32(4 + 4 * axis, false);
    dims.push(dim);
    count *= dim;
  }
  const expectedLength = headerLength + count * type.bytes;
  if (bytes.length !== expectedLength) {
    const verb = bytes.length < expectedLength ? 'is truncated' : 'has trailing bytes';
    throw malformed(
      source,
      `file ${verb}: ${bytes.length} bytes; expected ${expectedLength} (${headerLength}-byte header + ${dims.join(' x ')} ${type.name} values)`,
    );
  }
  return { type: type.name, dims, data: decodeValues(view, headerLength, count, typeCode as IdxTypeCode) };
}

function decodeValues(view: DataView, offset: number, count: number, typeCode: IdxTypeCode): IdxData {
  switch (typeCode) {
    case 0x08:
      return new Uint8Array(view.buffer, view.byteOffset + offset, count).slice();
    case 0x09:
      return new Int8Array(view.buffer, view.byteOffset + offset, count).slice();
    case 0x0b: {
      const out = new Int16Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt16(offset + 2 * i, false);
      return out;
    }
    case 0x0c: {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt32(offset + 4 * i, false);
      return out;
    }
    case 0x0d: {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(offset + 4 * i, false);
      return out;
    }
    case 0x0e: {
      const out = new Float64Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat64(offset + 8 * i, false);
      return out;
    }
  }
}

/** Encodes values as an IDX byte string (the inverse of parseIdx). */
export function encodeIdx(dims: readonly number[], data: IdxData): Uint8Array {
  const typeCode = typeCodeOf(data);
  const bytesPerValue = IDX_TYPES[typeCode].bytes;
  if (dims.length === 0 || dims.length > 255) throw new DataError('INVALID_ARGUMENT', 'IDX_BAD_DIMS', `dims must have 1..255 entries, got ${dims.length}`);
  let count = 1;
  for (const [axis, dim] of dims.entries()) count *= requireInteger(`dims[${axis}]`, dim, 0, 0xffffffff);
  if (count !== data.length) {
    throw new DataError('INVALID_ARGUMENT', 'IDX_BAD_DIMS', `data has ${data.length} values; dims [${dims.join(', ')}] need ${count}`);
  }
  const headerLength = 4 + 4 * dims.length;
  const out = new Uint8Array(headerLength + count * bytesPerValue);
  const view = new DataView(out.buffer);
  out[2] = typeCode;
  out[3] = dims.length;
  dims.forEach((dim, axis) => view.setUint32(4 + 4 * axis, dim, false));
  for (let i = 0; i < count; i++) {
    const at = headerLength + i * bytesPerValue;
    const value = data[i] as number;
    switch (typeCode) {
      case 0x08: view.setUint8(at, value); break;
      case 0x09: view.setInt8(at, value); break;
      case 0x0b: view.setInt16(at, value, false); break;
      case 0x0c: view.setInt32(at, value, false); break;
      case 0x0d: view.setFloat32(at, value, false); break;
      case 0x0e: view.setFloat64(at, value, false); break;
    }
  }
  return out;
}

function typeCodeOf(data: IdxData): IdxTypeCode {
  if (data instanceof Uint8Array) return 0x08;
  if (data instanceof Int8Array) return 0x09;
  if (data instanceof Int16Array) return 0x0b;
  if (data instanceof Int32Array) return 0x0c;
  if (data instanceof Float32Array) return 0x0d;
  return 0x0e;
}

/** Reads an IDX or IDX.gz file. */
export async function loadIdx(path: string): Promise<IdxArray> {
  const bytes = await maybeGunzip(await readDataFile(path), path);
  return parseIdx(bytes, path);
}

export interface IdxDatasetOptions {
  /** Path of the images file, e.g. train-images-idx3-ubyte.gz: dims [N, ...exampleShape]. */
  readonly images: string;
  /** Path of the labels file, e.g. train-labels-idx1-ubyte.gz: dims [N]. */
  readonly labels: string;
  /** Number of classes. @default 10 */
  readonly classes?: number;
  /** Shape of one example. @default [1, ...image dims] (channel first, as a CNN expects) */
  readonly exampleShape?: readonly number[];
}

/**
 * Loads an images file and a labels file as a Dataset. Pixel values are kept as they are (0..255 for
 * MNIST); scaling is the task's normalisation, applied by `normalize`.
 */
export async function loadIdxDataset(options: IdxDatasetOptions): Promise<Dataset> {
  const [images, labels] = await Promise.all([loadIdx(options.images), loadIdx(options.labels)]);
  if (images.dims.length < 2) {
    throw malformed(options.images, `has ${images.dims.length} dimension; expected [examples, ...example shape]`);
  }
  if (labels.dims.length !== 1 || labels.type === 'float32' || labels.type === 'float64') {
    throw malformed(options.labels, `holds ${labels.type} [${labels.dims.join(', ')}]; expected integer labels of dims [examples]`);
  }
  const count = images.dims[0] as number;
  if (labels.dims[0] !== count) {
    throw new DataError('INVALID_ARGUMENT', 'IDX_COUNT_MISMATCH', `${options.labels} has ${labels.dims[0]} labels but ${options.images} has ${count} images; expected the same number`);
  }
  return createDataset({
    features: new Float32Array(images.data),
    labels: new Int32Array(labels.data),
    exampleShape: options.exampleShape ?? [1, ...images.dims.slice(1)],
    classes: options.classes ?? 10,
    source: options.labels,
  });
}

function hex(byte: number | undefined): string {
  return (byte ?? 0).toString(16).padStart(2, '0');
}
