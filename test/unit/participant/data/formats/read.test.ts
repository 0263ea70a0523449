import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TableFormat, detectFormat, readColumnTable } from '../../../../../participant/data/formats/index.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fedgate-read-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('readColumnTable', () => {
  it.each([
    ['a.npy', 'npy'],
    ['a.NPZ', 'npz'],
    ['a.parquet', 'parquet'],
    ['a.pq', 'parquet'],
    ['a.csv', 'csv'],
    ['a.csv.gz', 'csv'],
    ['a.tsv', 'csv'],
    ['a.bin', undefined],
  ])('detects %s as %s', async (name, format) => {
    expect(await detectFormat(join(dir, name))).toBe(format);
  });

  it('an explicit format overrides the extension', async () => {
    const path = join(dir, 'table.dat');
    await writeFile(path, 'a,b\n1,x\n');
    await expect(readColumnTable(path)).rejects.toMatchObject({ reason: 'UNKNOWN_FORMAT', message: expect.stringContaining(`${path}: cannot tell the data format from the name`) });
    const table = await readColumnTable(path, { format: 'csv' });
    expect([...table.columns.keys()]).toEqual(['a', 'b']);
    // The CSV read as NPY is an NPY error naming the file, not a crash.
    await expect(readColumnTable(path, { format: 'npy' })).rejects.toThrow(`${path}: not an NPY array`);
  });

  it('rejects an unknown format name', async () => {
    await expect(readColumnTable(join(dir, 'a.csv'), { format: 'xlsx' as TableFormat })).rejects.toThrow(/format "xlsx" is not one of npy, npz, parquet, csv, images/);
  });
});
