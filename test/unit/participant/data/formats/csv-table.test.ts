import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCsvTable, readColumnTable } from '../../../../../participant/data/formats/index.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fedgate-csv-table-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('CSV as a column table', () => {
  it('numeric columns are numbers, a column with any non-number is strings', () => {
    const table = parseCsvTable('age,city,bmi,outcome\n30,Oslo,22.5,yes\n41,"Bern, CH",27,no\r\n52,12,31.25,yes\n', { source: 's.csv' });
    expect(table.rows).toBe(3);
    expect([...table.columns.keys()]).toEqual(['age', 'city', 'bmi', 'outcome']);
    expect(table.columns.get('age')).toEqual({ kind: 'numeric', values: Float64Array.from([30, 41, 52]), cellShape: [], integer: true });
    expect(table.columns.get('bmi')).toEqual({ kind: 'numeric', values: Float64Array.from([22.5, 27, 31.25]), cellShape: [], integer: false });
    // '12' in a column of city names stays the string '12'.
    expect(table.columns.get('city')).toEqual({ kind: 'string', values: ['Oslo', 'Bern, CH', '12'] });
    expect(table.columns.get('outcome')).toEqual({ kind: 'string', values: ['yes', 'no', 'yes'] });
  });

  it('names the columns column1.. when there is no header, and reads gzip and TSV files', async () => {
    expect([...parseCsvTable('1,a\n2,b\n').columns.keys()]).toEqual(['column1', 'column2']);
    const path = join(dir, 'data.tsv.gz');
    await writeFile(path, gzipSync('x\tlabel\n1.5\tcat\n2\tdog\n'));
    const table = await readColumnTable(path);
    expect(table.columns.get('label')).toEqual({ kind: 'string', values: ['cat', 'dog'] });
    expect(table.columns.get('x')).toMatchObject({ kind: 'numeric', integer: false });
  });

  it.each([
    ['an empty cell in a numeric column', 'a,b\n1,x\n,y\n', /t\.csv row 3, column 1 \("a"\): the cell is empty in a numeric column; expected a number/],
    ['a ragged row', 'a,b\n1,2\n3\n', /t\.csv row 3: found 1 columns; expected 2 like the header/],
    ['a duplicate header name', 'a,a\n1,2\n', /t\.csv row 1, column 2: column name "a" appears twice/],
    ['an empty header cell', 'a,,c\nx,y,z\n', /t\.csv row 1, column 2: the header cell is empty/],
    ['no data rows', 'a,b\n', /t\.csv: no data rows/],
    ['a number that overflows', 'a\n1\n1e999\n', /t\.csv row 3, column 1 \("a"\): "1e999" overflows a float64/],
    ['an unterminated quote', 'a,b\n1,"x\n', /t\.csv row 2, column 2: quoted field is never closed/],
  ])('rejects %s naming the row and column', (_, text, message) => {
    expect(() => parseCsvTable(text, { source: 't.csv' })).toThrow(message);
  });
});
