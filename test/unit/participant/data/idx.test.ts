import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataError, encodeIdx, loadIdx, loadIdxDataset, parseIdx } from '../../../../participant/data/index.js';

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fedgate-idx-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Three 2x3 "images" and their labels, written as MNIST-style files. */
async function writeTinyMnist(gzip: boolean): Promise<{ images: string; labels: string; pixels: Uint8Array }> {
  const pixels = Uint8Array.from({ length: 18 }, (_, i) => (i * 37) % 256);
  const suffix = gzip ? '.gz' : '';
  const images = join(dir, `images-idx3-ubyte${suffix}`);
  const labels = join(dir, `labels-idx1-ubyte${suffix}`);
  const imageBytes = encodeIdx([3, 2, 3], pixels);
  const labelBytes = encodeIdx([3], Uint8Array.of(9, 0, 4));
  await writeFile(images, gzip ? gzipSync(imageBytes) : imageBytes);
  await writeFile(labels, gzip ? gzipSync(labelBytes) : labelBytes);
  return { images, labels, pixels };
}

describe('IDX', () => {
  it('writes the header LeCun specifies: 0x00 0x00, type code, rank, big-endian dims', () => {
    const bytes = encodeIdx([2, 258], new Uint8Array(516));
    expect(Array.from(bytes.subarray(0, 12))).toEqual([0, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 1, 2]);
  });

  it('round-trips every IDX type through a file the test writes, plain and gzip', async () => {
    const arrays = [
      Uint8Array.of(0, 1, 255, 128),
      Int8Array.of(-128, 0, 1, 127),
      Int16Array.of(-32768, 2, 300, 32767),
      Int32Array.of(-2147483648, 5, 70000, 2147483647),
      Float32Array.of(-1.5, 0, 3.25, 1e-3),
      Float64Array.of(Math.PI, -0, 1e300, -2.5),
    ];
    for (const [i, data] of arrays.entries()) {
      const bytes = encodeIdx([2, 2], data);
      expect(parseIdx(bytes)).toEqual({ type: expect.any(String) as unknown, dims: [2, 2], data });
      const path = join(dir, `roundtrip-${i}.gz`);
      await writeFile(path, gzipSync(bytes));
      const loaded = await loadIdx(path);
      expect(loaded.dims).toEqual([2, 2]);
      expect(loaded.data).toEqual(data);
    }
  });

  it('loads an images + labels pair as a Dataset with channel-first example shape', async () => {
    for (const gzip of [false, true]) {
      const { images, labels, pixels } = await writeTinyMnist(gzip);
      const data = await loadIdxDataset({ images, labels });
      expect(data.count).toBe(3);
      expect(data.exampleShape).toEqual([1, 2, 3]);
      expect(Array.from(data.features)).toEqual(Array.from(pixels));
      expect(Array.from(data.labels)).toEqual([9, 0, 4]);
    }
  });

  it('rejects a truncated IDX file naming the file and the expected length', async () => {
    const path = join(dir, 'truncated-idx3-ubyte');
    await writeFile(path, encodeIdx([3, 2, 3], new Uint8Array(18)).subarray(0, 25));
    const error = await loadIdx(path).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DataError);
    expect(error).toMatchObject({ code: 'DATA_LOSS', reason: 'IDX_MALFORMED' });
    expect((error as Error).message).toBe(`${path}: file is truncated: 25 bytes; expected 34 (16-byte header + 3 x 2 x 3 uint8 values)`);
  });

  it('rejects a truncated IDX.gz naming the file', async () => {
    const path = join(dir, 'truncated.gz');
    const gz = gzipSync(encodeIdx([100, 28, 28], new Uint8Array(78400).fill(7)));
    await writeFile(path, gz.subarray(0, Math.floor(gz.length / 2)));
    await expect(loadIdx(path)).rejects.toThrow(`${path}: the gzip stream is truncated (unexpected end of file); expected a complete gzip file`);
  });

  it('rejects malformed headers with what was expected', () => {
    const cases: [Uint8Array, string][] = [
      [Uint8Array.of(0, 0), 'expected at least the 4-byte IDX magic number'],
      [Uint8Array.of(0x50, 0x4b, 3, 4), 'expected 0x00 0x00 (is this an IDX file?)'],
      [Uint8Array.of(0, 0, 0x07, 1, 0, 0, 0, 0), 'type code 0x07 is unknown'],
      [Uint8Array.of(0, 0, 0x08, 0), 'number of dimensions is 0'],
      [Uint8Array.of(0, 0, 0x08, 3, 0, 0, 0, 1), 'expected a 16-byte header for 3 dimensions'],
      [Uint8Array.of(0, 0, 0x08, 1, 0, 0, 0, 1, 5, 6), 'file has trailing bytes: 10 bytes; expected 9'],
    ];
    for (const [bytes, message] of cases) {
      expect(() => parseIdx(bytes, 'x.idx')).toThrow(message);
    }
  });

  it('rejects labels outside the class range and mismatched counts', async () => {
    const images = join(dir, 'c-images');
    const labels = join(dir, 'c-labels');
    await writeFile(images, encodeIdx([2, 1, 1], Uint8Array.of(1, 2)));
    await writeFile(labels, encodeIdx([2], Uint8Array.of(3, 10)));
    await expect(loadIdxDataset({ images, labels })).rejects.toThrow(`${labels} example 1 (0-based): label 10 is outside the class range; expected an integer in [0, 9]`);
    await writeFile(labels, encodeIdx([3], Uint8Array.of(1, 2, 3)));
    await expect(loadIdxDataset({ images, labels })).rejects.toMatchObject({ reason: 'IDX_COUNT_MISMATCH' });
  });
});
