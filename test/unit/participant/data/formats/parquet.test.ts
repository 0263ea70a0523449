import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseParquet, readColumnTable } from '../../../../../participant/data/formats/index.js';
import { type ParquetTestColumn, writeParquet } from '../../../../support/parquet-writer.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fedgate-parquet-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const table: ParquetTestColumn[] = [
  { name: 'age', type: 'INT32', values: [30, 41, 52] },
  { name: 'visits', type: 'INT64', values: [1n, 20n, 300n] },
  { name: 'weight', type: 'FLOAT', values: [0.5, 1.5, 2.5] },
  { name: 'income', type: 'DOUBLE', values: [1000.25, 2e6, -3] },
  { name: 'smoker', type: 'BOOLEAN', values: [true, false, true] },
  { name: 'city', type: 'STRING', values: ['Oslo', 'Bern', 'Oslo'] },
];

describe('Parquet tables', () => {
  it('reports each column with the type the schema declares, in file order', async () => {
    const path = join(dir, 'patients.parquet');
    await writeFile(path, writeParquet(table));
    const read = await readColumnTable(path);
    expect(read.rows).toBe(3);
    expect([...read.columns.keys()]).toEqual(['age', 'visits', 'weight', 'income', 'smoker', 'city']);
    const summary = Object.fromEntries(
      [...read.columns].map(([name, column]) => [name, column.kind === 'numeric' ? { integer: column.integer, storage: column.values.constructor.name, values: [...column.values] } : column.values]),
    );
    expect(summary).toEqual({
      age: { integer: true, storage: 'Float64Array', values: [30, 41, 52] },
      visits: { integer: true, storage: 'Float64Array', values: [1, 20, 300] },
      weight: { integer: false, storage: 'Float32Array', values: [0.5, 1.5, 2.5] },
      income: { integer: false, storage: 'Float64Array', values: [1000.25, 2e6, -3] },
      smoker: { integer: true, storage: 'Float64Array', values: [1, 0, 1] },
      city: ['Oslo', 'Bern', 'Oslo'],
    });
  });

  it('an optional column without nulls reads normally', async () => {
    // A column with a null is written OPTIONAL; here the null is in another column.
    const read = await parseParquet(writeParquet([{ name: 'x', type: 'DOUBLE', values: [1, 2] }]), 'ok.parquet');
    expect(read.rows).toBe(2);
  });

  it.each([
    ['a null number', [{ name: 'bmi', type: 'DOUBLE', values: [22.5, null, 30] }], /t\.parquet row 1, column "bmi": the value is null; expected a number/],
    ['a null string', [{ name: 'city', type: 'STRING', values: ['Oslo', 'Bern', null] }], /t\.parquet row 2, column "city": the value is null; expected a string/],
    ['a date column', [{ name: 'admitted', type: 'INT32', convertedType: 'DATE', values: [1, 2] }], /t\.parquet: column "admitted" is a INT32 DATE column; expected numeric, boolean or string columns/],
    ['a binary column', [{ name: 'blob', type: 'BINARY', values: ['a', 'b'] }], /t\.parquet: column "blob" is a binary \(BYTE_ARRAY\) column/],
    ['a NaN', [{ name: 'x', type: 'DOUBLE', values: [1, Number.NaN] }], /t\.parquet row 1, column "x": the value is NaN; expected a finite number/],
    ['an int64 beyond 2^53', [{ name: 'id', type: 'INT64', values: [1n, 2n ** 62n] }], /t\.parquet row 1, column "id": 4611686018427387904 is beyond 2\^53/],
  ] as [string, ParquetTestColumn[], RegExp][])('rejects %s naming the column (and row)', async (_, columns, message) => {
    await expect(parseParquet(writeParquet(columns), 't.parquet')).rejects.toThrow(message);
  });

  it('rejects a file that is not Parquet, and a truncated one', async () => {
    await expect(parseParquet(new TextEncoder().encode('a,b\n1,2\n'), 't.parquet')).rejects.toMatchObject({ reason: 'PARQUET_INVALID', message: expect.stringMatching(/^t\.parquet: not a readable Parquet file/) });
    const whole = writeParquet(table);
    await expect(parseParquet(whole.slice(0, whole.length - 20), 't.parquet')).rejects.toMatchObject({ reason: 'PARQUET_INVALID', message: expect.stringMatching(/^t\.parquet: /) });
  });

  it('rejects corrupt column data with an error naming the file', async () => {
    const bytes = writeParquet(table);
    // Overwrite the first page header (right after "PAR1") with garbage; the footer still parses.
    bytes.fill(0xff, 4, 12);
    await expect(parseParquet(bytes, 't.parquet')).rejects.toMatchObject({ reason: 'PARQUET_INVALID', message: expect.stringMatching(/^t\.parquet: the column data cannot be decoded/) });
  });
});
