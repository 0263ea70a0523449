/**
 * Writes NPY bytes by hand, per numpy's format spec (version 1.0): magic "\x93NUMPY", version 1.0,
 * uint16 little-endian header length, a dict literal padded with spaces and a newline so the data
 * starts at a multiple of 64 bytes, then the raw little-endian elements. Independent of npyjs, so the
 * reader's tests do not check npyjs against itself.
 */
export interface NpyWriteOptions {
  /** numpy descr, e.g. '<f4', '|u1', '<i8', '|b1', '<U5'. */
  readonly descr: string;
  readonly shape: readonly number[];
  readonly fortranOrder?: boolean;
}

export function encodeNpy(data: Uint8Array, options: NpyWriteOptions): Uint8Array {
  const shape = options.shape.length === 1 ? `(${options.shape[0]},)` : `(${options.shape.join(', ')})`;
  let header = `{'descr': '${options.descr}', 'fortran_order': ${options.fortranOrder === true ? 'True' : 'False'}, 'shape': ${shape}, }`;
  const unpadded = 10 + header.length + 1;
  header += ' '.repeat((64 - (unpadded % 64)) % 64) + '\n';
  const out = new Uint8Array(10 + header.length + data.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0], 0);
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  out.set(data, 10 + header.length);
  return out;
}

/** The bytes of a typed array (little-endian on every platform Node runs on here). */
export function bytesOf(array: ArrayBufferView): Uint8Array {
  return new Uint8Array(array.buffer, array.byteOffset, array.byteLength).slice();
}

/** numpy '<U width' strings: UTF-32LE code points, NUL-padded. */
export function utf32(strings: readonly string[], width: number): Uint8Array {
  const out = new Uint32Array(strings.length * width);
  strings.forEach((text, row) => [...text].forEach((char, i) => (out[row * width + i] = char.codePointAt(0) as number)));
  return bytesOf(out);
}
