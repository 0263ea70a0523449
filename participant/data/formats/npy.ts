/**
 * NPY arrays (numpy's `np.save`) as columns. The format (numpy's "NEP 1", format versions 1.0-3.0):
 * the magic "\x93NUMPY", a version byte pair, a little-endian header length (uint16 for 1.x, uint32
 * for 2.x/3.x), a Python dict literal {'descr', 'fortran_order', 'shape'}, then the raw elements.
 * npyjs decodes the numeric elements; this file checks everything npyjs takes on trust (the dtype is
 * one we read, the data is as long as the shape says, the order is C or converted from Fortran) so a
 * bad file is an error naming it instead of a RangeError or silently wrong numbers.
 *
 * An array is one column: its first axis is rows, the remaining axes are the cell shape.
 */
import { basename, extname } from 'node:path';
import { parse as parseNpyBuffer } from 'npyjs';
import { DataError, quoteValue } from '../errors.js';
import { readDataFile } from '../files.js';
import type { Column, ColumnTable } from '../table.js';

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // "\x93NUMPY"

/** The element types read, by numpy type code (without byte order): bytes per element. */
const NUMERIC_ITEM_SIZE: Readonly<Record<string, number>> = { f4: 4, f8: 8, i1: 1, i2: 2, i4: 4, i8: 8, u1: 1, u2: 2, u4: 4, u8: 8, b1: 1 };

export interface NpyHeader {
  /** numpy type code without the byte order, e.g. 'f4', 'i8', 'U12'. */
  readonly dtype: string;
  readonly fortranOrder: boolean;
  readonly shape: readonly number[];
  /** Byte offset of the first element. */
  readonly dataOffset: number;
}

function badNpy(source: string, problem: string, cause?: unknown): DataError {
  return new DataError('INVALID_ARGUMENT', 'NPY_INVALID', `${source}: ${problem}`, cause === undefined ? undefined : { cause });
}

/** Reads and checks the header; `source` names the file (and NPZ entry) in errors. */
export function parseNpyHeader(bytes: Uint8Array, source: string): NpyHeader {
  if (bytes.length < 10 || MAGIC.some((byte, i) => bytes[i] !== byte)) {
    throw badNpy(source, 'not an NPY array (the file does not start with "\\x93NUMPY"); expected a file written by numpy.save');
  }
  const major = bytes[6] as number;
  if (major < 1 || major > 3) throw badNpy(source, `NPY format version ${major}.${bytes[7] ?? 0} is not supported; expected 1.0, 2.0 or 3.0`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lengthBytes = major === 1 ? 2 : 4;
  if (bytes.length < 8 + lengthBytes) throw badNpy(source, 'the header is truncated');
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const dataOffset = 8 + lengthBytes + headerLength;
  if (dataOffset > bytes.length) throw badNpy(source, `the header claims ${headerLength} bytes but the file ends first; the file is truncated`);
  const header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(bytes.subarray(8 + lengthBytes, dataOffset));

  const descr = /'descr'\s*:\s*'([<>|=]?)([A-Za-z]\d*)'/.exec(header);
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header);
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header);
  if (descr === null || fortran === null || shapeText === null) {
    const object = /'descr'\s*:\s*'\|?O'/.test(header) ? ' (an object array, stored with pickle: save a numeric or fixed-width string dtype instead)' : '';
    throw badNpy(source, `the header ${quoteValue(header.trim(), 80)} is not a plain dtype with 'descr', 'fortran_order' and 'shape'${object}`);
  }
  const [, byteOrder, dtype] = descr as unknown as [string, string, string];
  const shape = (shapeText[1] as string)
    .split(',')
    .map((dim) => dim.trim())
    .filter((dim) => dim !== '')
    .map(Number);
  if (shape.some((dim) => !Number.isSafeInteger(dim) || dim < 0)) throw badNpy(source, `shape (${shapeText[1] ?? ''}) is not a tuple of non-negative integers`);
  const itemSize = NUMERIC_ITEM_SIZE[dtype] ?? (/^U\d+$/.test(dtype) ? 4 * Number(dtype.slice(1)) : undefined);
  if (itemSize === undefined) {
    throw new DataError(
      'INVALID_ARGUMENT',
      'NPY_UNSUPPORTED_DTYPE',
      `${source}: dtype '${byteOrder}${dtype}'${dtype === 'O' ? ' (an object array, stored with pickle)' : ''} is not supported; expected float32/float64, int8..int64, uint8..uint64, bool or a fixed-width unicode string ('<U')`,
    );
  }
  if (byteOrder === '>' && itemSize > 1 && dtype !== 'b1') {
    throw new DataError('INVALID_ARGUMENT', 'NPY_UNSUPPORTED_DTYPE', `${source}: dtype '>${dtype}' is big-endian; expected little-endian (save array.astype('<${dtype}'))`);
  }
  const expected = shape.reduce((n, dim) => n * dim, 1) * itemSize;
  if (bytes.length - dataOffset < expected) {
    throw new DataError(
      'DATA_LOSS',
      'NPY_TRUNCATED',
      `${source}: shape (${shape.join(', ')}) of '${dtype}' needs ${expected} data bytes but the file holds ${bytes.length - dataOffset}; the file is truncated`,
    );
  }
  return { dtype, fortranOrder: fortran[1] === 'True', shape, dataOffset };
}

/** Parses one NPY array into a column (first axis = rows). */
export function parseNpyColumn(bytes: Uint8Array, source: string): { rows: number; column: Column } {
  const header = parseNpyHeader(bytes, source);
  const { shape, dtype } = header;
  if (shape.length === 0) throw badNpy(source, 'holds a scalar (shape ()); expected an array whose first axis is the rows');
  const rows = shape[0] as number;
  const cellShape = shape.slice(1);
  const count = shape.reduce((n, dim) => n * dim, 1);

  if (dtype.startsWith('U')) {
    if (cellShape.length > 0) throw badNpy(source, `a string array of shape (${shape.join(', ')}); expected one string per row (shape (rows,))`);
    return { rows, column: { kind: 'string', values: decodeUtf32Strings(bytes, header.dataOffset, rows, Number(dtype.slice(1))) } };
  }

  // npyjs views the elements in place: hand it an aligned copy holding exactly header + data.
  const itemSize = NUMERIC_ITEM_SIZE[dtype] as number;
  const exact = bytes.slice(0, header.dataOffset + count * itemSize);
  let data: ArrayLike<number | bigint | boolean>;
  try {
    data = parseNpyBuffer(exact.buffer).data as unknown as ArrayLike<number | bigint | boolean>;
  } catch (error) {
    throw badNpy(source, `cannot be decoded (${error instanceof Error ? error.message : String(error)})`, error);
  }
  const float = dtype === 'f4' || dtype === 'f8';
  // Integers up to 16 bits and bools are exact in float32; wider integers and float64 keep float64.
  const values = dtype === 'f4' || itemSize <= 2 ? new Float32Array(count) : new Float64Array(count);
  const cell = count / Math.max(rows, 1);
  for (let i = 0; i < count; i++) {
    const raw = data[i] as number | bigint | boolean;
    const value = typeof raw === 'number' ? raw : Number(raw);
    if (typeof raw === 'bigint' && !Number.isSafeInteger(value)) {
      throw new DataError('INVALID_ARGUMENT', 'NPY_INTEGER_TOO_LARGE', `${source}: row ${Math.floor(i / cell)} holds ${String(raw)}, beyond 2^53; expected integers a float64 holds exactly`);
    }
    if (float && !Number.isFinite(value)) {
      throw new DataError('INVALID_ARGUMENT', 'NPY_NON_FINITE', `${source}: row ${Math.floor(i / cell)} holds ${String(value)}; expected finite numbers (fill or drop missing values first)`);
    }
    values[i] = value;
  }
  return { rows, column: { kind: 'numeric', values: header.fortranOrder ? fortranToC(values, shape) : values, cellShape, integer: !float } };
}

/** numpy's '<U n' strings: n UTF-32LE code points per element, NUL-padded. */
function decodeUtf32Strings(bytes: Uint8Array, offset: number, count: number, width: number): string[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset + offset, count * width * 4);
  const strings: string[] = [];
  for (let row = 0; row < count; row++) {
    const codePoints: number[] = [];
    for (let j = 0; j < width; j++) {
      const codePoint = view.getUint32((row * width + j) * 4, true);
      if (codePoint === 0) break;
      codePoints.push(codePoint);
    }
    strings.push(String.fromCodePoint(...codePoints));
  }
  return strings;
}

/** Reorders column-major (Fortran) elements into row-major (C) order. */
function fortranToC<T extends Float32Array | Float64Array>(values: T, shape: readonly number[]): T {
  const out = values.slice() as T;
  const rank = shape.length;
  const index = new Array<number>(rank).fill(0);
  const fortranStride: number[] = [];
  let stride = 1;
  for (const dim of shape) {
    fortranStride.push(stride);
    stride *= dim;
  }
  for (let c = 0; c < values.length; c++) {
    let f = 0;
    for (let axis = 0; axis < rank; axis++) f += (index[axis] as number) * (fortranStride[axis] as number);
    out[c] = values[f] as number;
    for (let axis = rank - 1; axis >= 0; axis--) {
      index[axis] = (index[axis] as number) + 1;
      if ((index[axis] as number) < (shape[axis] as number)) break;
      index[axis] = 0;
    }
  }
  return out;
}

export interface NpyOptions {
  /** Column name. @default the file name without its extension */
  readonly column?: string;
}

/** Reads a .npy file as a one-column table. */
export async function readNpy(path: string, options: NpyOptions = {}): Promise<ColumnTable> {
  const { rows, column } = parseNpyColumn(await readDataFile(path), path);
  const name = options.column ?? basename(path, extname(path));
  return { source: path, rows, columns: new Map([[name, column]]) };
}
