import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataError, loadCsv, parseCsv } from '../../../../participant/data/index.js';

function thrown(fn: () => unknown): DataError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(DataError);
    return error as DataError;
  }
  throw new Error('expected a DataError, nothing was thrown');
}

describe('parseCsv', () => {
  it('reads a file with a header, label by name, in any column', () => {
    const data = parseCsv('a,species,b\n1.5,2,-3\n4,0,5e-1\n', { classes: 3, label: 'species' });
    expect(data.count).toBe(2);
    expect(Array.from(data.features)).toEqual([1.5, -3, 4, 0.5]);
    expect(Array.from(data.labels)).toEqual([2, 0]);
    expect(data.exampleShape).toEqual([2]);
  });

  it('reads a file without a header, label by index (0-based, negative from the end)', () => {
    const text = '7,1,2\n1,3,4\n';
    const first = parseCsv(text, { classes: 8, label: 0 });
    expect(Array.from(first.labels)).toEqual([7, 1]);
    expect(Array.from(first.features)).toEqual([1, 2, 3, 4]);
    const last = parseCsv(text, { classes: 8 });
    expect(Array.from(last.labels)).toEqual([2, 4]);
    expect(Array.from(last.features)).toEqual([7, 1, 1, 3]);
    expect(Array.from(parseCsv(text, { classes: 8, label: -2 }).labels)).toEqual([1, 3]);
  });

  it('detects a header only when no cell of the first row is a number, and obeys header: false/true', () => {
    expect(parseCsv('x,y\n1,0\n', { classes: 2 }).count).toBe(1);
    expect(parseCsv('1,0\n2,1\n', { classes: 2 }).count).toBe(2);
    expect(parseCsv('10,0\n2,1\n', { classes: 2, header: true }).count).toBe(1);
    const err = thrown(() => parseCsv('x,y\n1,0\n', { classes: 2, header: false }));
    expect(err.reason).toBe('CSV_NON_NUMERIC_CELL');
  });

  it('handles CRLF, quoted fields with delimiters and escaped quotes, blank lines, a BOM and other delimiters', () => {
    const text = '\uFEFF"feat, one","say ""hi""",label\r\n1,2,0\r\n\r\n"3",4,1\r\n';
    const data = parseCsv(text, { classes: 2, label: 'label' });
    expect(Array.from(data.features)).toEqual([1, 2, 3, 4]);
    expect(Array.from(parseCsv('1;2;1\n', { classes: 2, delimiter: ';' }).features)).toEqual([1, 2]);
    // Row numbers stay file line numbers across CRLF, blank lines and a quoted field spanning two lines.
    const err = thrown(() => parseCsv('a,b,label\r\n"multi\nline",2,0\r\n\r\n1,x,1\r\n', { classes: 2, header: true }));
    expect(err.message).toContain('row 2, column 1 ("a")');
    const later = thrown(() => parseCsv('a,b,label\r\n1,2,0\r\n\r\n1,x,1\r\n', { classes: 2 }));
    expect(later.message).toContain('row 4, column 2 ("b")');
  });

  it('maps label names from the task label map', () => {
    const data = parseCsv('f,label\n1,cat\n2,dog\n3,1\n', { classes: 2, labelNames: ['cat', 'dog'] });
    expect(Array.from(data.labels)).toEqual([0, 1, 1]);
  });

  it('names the row, the column and the cell of a non-numeric value', () => {
    const err = thrown(() => parseCsv('a,b,label\n1,2,0\n3,abc,1\n', { classes: 2, source: 'site.csv' }));
    expect(err.code).toBe('INVALID_ARGUMENT');
    expect(err.reason).toBe('CSV_NON_NUMERIC_CELL');
    expect(err.message).toContain('site.csv row 3, column 2 ("b")');
    expect(err.message).toContain('"abc" is not a number');
    const noHeader = thrown(() => parseCsv('1,2,0\n3,4,1\n5,,1\n', { classes: 2 }));
    expect(noHeader.message).toContain('row 3, column 2');
    expect(noHeader.message).toContain('is empty');
    expect(thrown(() => parseCsv('1,0x10,0\n', { classes: 2 })).message).toContain('"0x10" is not a number');
    expect(thrown(() => parseCsv('1,Infinity,0\n', { classes: 2 })).reason).toBe('CSV_NON_NUMERIC_CELL');
    expect(thrown(() => parseCsv('1,1e39,0\n', { classes: 2 })).message).toContain('does not fit a float32');
  });

  it('rejects ragged rows naming the row and both column counts', () => {
    const err = thrown(() => parseCsv('a,b,label\n1,2,0\n3,1\n', { classes: 2 }));
    expect(err.reason).toBe('CSV_RAGGED_ROW');
    expect(err.message).toContain('row 3: found 2 columns; expected 3 like the header');
  });

  it('rejects a label outside the class range naming the row', () => {
    const err = thrown(() => parseCsv('1,2,0\n3,4,10\n', { classes: 10 }));
    expect(err.reason).toBe('LABEL_OUT_OF_RANGE');
    expect(err.message).toContain('row 2, column 3');
    expect(err.message).toContain('label 10 is outside the class range; expected an integer in [0, 9]');
    expect(thrown(() => parseCsv('1,-1\n', { classes: 10 })).reason).toBe('LABEL_OUT_OF_RANGE');
    expect(thrown(() => parseCsv('1,2.5\n', { classes: 10 })).reason).toBe('CSV_BAD_LABEL');
  });

  it('reports a quoted field that never closes and an unknown label column', () => {
    expect(thrown(() => parseCsv('1,"2\n3,0\n', { classes: 2 })).reason).toBe('CSV_UNTERMINATED_QUOTE');
    const unknown = thrown(() => parseCsv('a,b\n1,0\n', { classes: 2, label: 'target' }));
    expect(unknown.message).toContain('no column named "target"');
    expect(thrown(() => parseCsv('1,0\n', { classes: 2, label: 'target' })).reason).toBe('CSV_LABEL_NEEDS_HEADER');
    expect(thrown(() => parseCsv('1,0\n', { classes: 2, label: 5 })).reason).toBe('CSV_LABEL_INDEX_OUT_OF_RANGE');
    expect(thrown(() => parseCsv('a,b\n', { classes: 2 })).reason).toBe('CSV_EMPTY');
  });

  it('checks exampleShape against the feature count', () => {
    expect(parseCsv('1,2,3,4,0\n', { classes: 2, exampleShape: [1, 2, 2] }).exampleShape).toEqual([1, 2, 2]);
    expect(thrown(() => parseCsv('1,2,3,0\n', { classes: 2, exampleShape: [2, 2] })).reason).toBe('FEATURE_LENGTH_MISMATCH');
  });
});

describe('loadCsv', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fedgate-csv-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads plain and gzip-compressed files and names the file in errors', async () => {
    await writeFile(join(dir, 'a.csv'), 'x,label\n1,1\n');
    await writeFile(join(dir, 'a.csv.gz'), gzipSync('x,label\n1,1\n'));
    expect((await loadCsv(join(dir, 'a.csv'), { classes: 2 })).count).toBe(1);
    expect((await loadCsv(join(dir, 'a.csv.gz'), { classes: 2 })).count).toBe(1);
    await writeFile(join(dir, 'bad.csv'), 'x,label\n1,q\n');
    await expect(loadCsv(join(dir, 'bad.csv'), { classes: 2 })).rejects.toThrow(`${join(dir, 'bad.csv')} row 2, column 2`);
    await expect(loadCsv(join(dir, 'missing.csv'), { classes: 2 })).rejects.toMatchObject({ code: 'NOT_FOUND', reason: 'FILE_NOT_FOUND' });
  });
});
