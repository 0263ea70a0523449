import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { zipSync } from 'fflate';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseNpyColumn, parseNpz, readColumnTable, readNpy } from '../../../../../participant/data/formats/index.js';
import type { Column, NumericColumn } from '../../../../../participant/data/table.js';
import { bytesOf, encodeNpy, utf32 } from '../../../../support/npy-writer.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fedgate-npy-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function numeric(column: Column | undefined): NumericColumn {
  if (column?.kind !== 'numeric') throw new Error(`expected a numeric column, got ${column?.kind ?? 'none'}`);
  return column;
}

describe('NPY arrays', () => {
  it.each([
    ['<f4', new Float32Array([1.5, -2, 3.25, 4]), false, Float32Array],
    ['<f8', new Float64Array([1.5, -2, 3.25, 4]), false, Float64Array],
    ['|i1', new Int8Array([-128, 0, 5, 127]), true, Float32Array],
    ['|u1', new Uint8Array([0, 1, 200, 255]), true, Float32Array],
    ['<i2', new Int16Array([-300, 0, 7, 300]), true, Float32Array],
    ['<u2', new Uint16Array([0, 1, 60000, 3]), true, Float32Array],
    ['<i4', new Int32Array([-70000, 0, 1, 2 ** 31 - 1]), true, Float64Array],
    ['<u4', new Uint32Array([0, 1, 2 ** 32 - 1, 3]), true, Float64Array],
    ['<i8', new BigInt64Array([-(2n ** 53n) + 1n, 0n, 1n, 2n ** 53n - 1n]), true, Float64Array],
    ['<u8', new BigUint64Array([0n, 1n, 2n, 2n ** 53n - 1n]), true, Float64Array],
  ] as const)('reads %s with the first axis as rows', (descr, data, integer, storage) => {
    const { rows, column } = parseNpyColumn(encodeNpy(bytesOf(data), { descr, shape: [2, 2] }), 'a.npy');
    expect(rows).toBe(2);
    const col = numeric(column);
    expect(col.cellShape).toEqual([2]);
    expect(col.integer).toBe(integer);
    expect(col.values).toBeInstanceOf(storage);
    expect([...col.values]).toEqual([...data].map(Number));
  });

  it('reads bool as 0/1 integers and 3-D arrays as cells of shape [H, W]', () => {
    const bools = parseNpyColumn(encodeNpy(Uint8Array.from([1, 0, 0, 1]), { descr: '|b1', shape: [4] }), 'b.npy');
    expect(numeric(bools.column)).toMatchObject({ cellShape: [], integer: true });
    expect([...numeric(bools.column).values]).toEqual([1, 0, 0, 1]);
    const images = parseNpyColumn(encodeNpy(bytesOf(new Float32Array(3 * 2 * 4)), { descr: '<f4', shape: [3, 2, 4] }), 'c.npy');
    expect(images.rows).toBe(3);
    expect(numeric(images.column).cellShape).toEqual([2, 4]);
  });

  it('converts Fortran order to C order', () => {
    // C-order [[1, 2, 3], [4, 5, 6]] stored column-major is 1 4 2 5 3 6.
    const { column } = parseNpyColumn(encodeNpy(bytesOf(new Float32Array([1, 4, 2, 5, 3, 6])), { descr: '<f4', shape: [2, 3], fortranOrder: true }), 'f.npy');
    expect([...numeric(column).values]).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('reads a 1-D unicode array as a string column', () => {
    const { rows, column } = parseNpyColumn(encodeNpy(utf32(['cat', 'dog', 'émeu'], 4), { descr: '<U4', shape: [3] }), 'labels.npy');
    expect(rows).toBe(3);
    expect(column).toEqual({ kind: 'string', values: ['cat', 'dog', 'émeu'] });
  });

  it('readNpy names the column after the file unless told otherwise', async () => {
    const path = join(dir, 'features.npy');
    await writeFile(path, encodeNpy(bytesOf(new Float32Array([1, 2, 3])), { descr: '<f4', shape: [3] }));
    const table = await readNpy(path);
    expect(table).toMatchObject({ source: path, rows: 3 });
    expect([...table.columns.keys()]).toEqual(['features']);
    expect([...(await readColumnTable(path, { column: 'x' })).columns.keys()]).toEqual(['x']);
  });

  it.each([
    ['not NPY', new TextEncoder().encode('hello world, not numpy'), /bad\.npy: not an NPY array/],
    ['a pickled object array', encodeNpy(new Uint8Array(8), { descr: '|O', shape: [1] }), /bad\.npy: .*object array, stored with pickle/],
    ['float16', encodeNpy(new Uint8Array(8), { descr: '<f2', shape: [4] }), /bad\.npy: dtype '<f2' is not supported; expected float32/],
    ['complex', encodeNpy(new Uint8Array(16), { descr: '<c8', shape: [2] }), /dtype '<c8' is not supported/],
    ['big-endian', encodeNpy(new Uint8Array(16), { descr: '>f4', shape: [4] }), /dtype '>f4' is big-endian; expected little-endian/],
    ['truncated data', encodeNpy(new Uint8Array(12), { descr: '<f4', shape: [2, 2] }), /bad\.npy: shape \(2, 2\) of 'f4' needs 16 data bytes but the file holds 12; the file is truncated/],
    ['a truncated header', encodeNpy(new Uint8Array(0), { descr: '<f4', shape: [0] }).slice(0, 30), /bad\.npy: the header claims \d+ bytes but the file ends first/],
    ['a scalar', encodeNpy(bytesOf(new Float32Array([1])), { descr: '<f4', shape: [] }), /holds a scalar/],
    ['a NaN', encodeNpy(bytesOf(new Float32Array([1, Number.NaN])), { descr: '<f4', shape: [2] }), /bad\.npy: row 1 holds NaN; expected finite numbers/],
    ['an int64 beyond 2^53', encodeNpy(bytesOf(new BigInt64Array([0n, 2n ** 60n])), { descr: '<i8', shape: [2] }), /bad\.npy: row 1 holds 1152921504606846976, beyond 2\^53/],
    ['a 2-D string array', encodeNpy(utf32(['a', 'b'], 1), { descr: '<U1', shape: [1, 2] }), /expected one string per row/],
  ])('rejects %s with an error naming the file', (_, bytes, message) => {
    expect(() => parseNpyColumn(bytes, 'bad.npy')).toThrow(message);
  });

  it('a missing file is NOT_FOUND naming the path', async () => {
    await expect(readNpy(join(dir, 'missing.npy'))).rejects.toMatchObject({ code: 'NOT_FOUND', reason: 'FILE_NOT_FOUND' });
  });
});

describe('NPZ archives', () => {
  const x = encodeNpy(bytesOf(new Float32Array([1, 2, 3, 4, 5, 6])), { descr: '<f4', shape: [3, 2] });
  const y = encodeNpy(bytesOf(new BigInt64Array([0n, 1n, 0n])), { descr: '<i8', shape: [3] });

  it('reads every array as a column, stored or deflated, in archive order', async () => {
    for (const level of [0, 6] as const) {
      const path = join(dir, `data-${level}.npz`);
      await writeFile(path, zipSync({ 'x.npy': x, 'y.npy': y }, { level }));
      const table = await readColumnTable(path);
      expect(table.rows).toBe(3);
      expect([...table.columns.keys()]).toEqual(['x', 'y']);
      expect(numeric(table.columns.get('x')).cellShape).toEqual([2]);
      expect([...numeric(table.columns.get('y')).values]).toEqual([0, 1, 0]);
    }
  });

  it.each([
    ['arrays with different row counts', zipSync({ 'x.npy': x, 'y.npy': encodeNpy(bytesOf(new Int32Array([1, 2])), { descr: '<i4', shape: [2] }) }), /d\.npz entry "y\.npy": 2 rows \(first axis\), but entry "x\.npy" has 3/],
    ['a corrupt entry', zipSync({ 'x.npy': x, 'y.npy': y.slice(0, y.length - 4) }), /d\.npz entry "y\.npy": shape \(3\) of 'i8' needs 24 data bytes/],
    ['a non-.npy entry', zipSync({ 'x.npy': x, 'notes.txt': new TextEncoder().encode('hi') }), /d\.npz: entry "notes\.txt" is not an \.npy array/],
    ['an empty archive', zipSync({}), /d\.npz: the archive holds no arrays/],
    ['bytes that are not a zip', new TextEncoder().encode('definitely not a zip file'), /d\.npz: not a readable zip archive/],
  ])('rejects %s', (_, bytes, message) => {
    expect(() => parseNpz(bytes, 'd.npz')).toThrow(message);
  });

  it('a truncated archive is an error naming the file', () => {
    const whole = zipSync({ 'x.npy': x, 'y.npy': y });
    expect(() => parseNpz(whole.slice(0, whole.length - 30), 'd.npz')).toThrow(/d\.npz: not a readable zip archive/);
  });
});
