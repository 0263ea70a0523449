/**
 * CSV loader for tabular sites: numeric feature columns plus one label column. Parsing follows RFC 4180
 * (Sec. 2: fields separated by the delimiter, records by CRLF or LF, fields optionally enclosed in double
 * quotes with "" as an escaped quote); blank lines are skipped and a UTF-8 byte order mark is ignored.
 *
 * Errors name the file, the row (the 1-based line number where the record starts, as a text editor shows
 * it, header included), the column (1-based, and its header name when there is one) and the bad cell.
 */
import { type Dataset, createDataset } from './dataset.js';
import { DataError, invalidOption, quoteValue, requireInteger } from './errors.js';
import { maybeGunzip, readDataFile } from './files.js';

export interface CsvOptions {
  /** Number of classes; every label must be an integer in [0, classes). */
  readonly classes: number;
  /**
   * The label column: its header name, or its 0-based index (negative counts from the end).
   * @default -1 (the last column)
   */
  readonly label?: string | number;
  /**
   * Whether the first record is a header. 'auto' treats it as a header when none of its cells is a
   * number (a data row with one bad cell is then still reported as a bad cell, not taken for a header).
   * @default 'auto'
   */
  readonly header?: boolean | 'auto';
  /** @default ',' */
  readonly delimiter?: string;
  /** Class names (the task's label map): a label cell may hold a name instead of its index. */
  readonly labelNames?: readonly string[];
  /** Shape of one example; its size must equal the number of feature columns. @default [featureColumns] */
  readonly exampleShape?: readonly number[];
  /** Name used in error messages. @default 'csv' */
  readonly source?: string;
}

// A decimal number as written by spreadsheets and numpy: no hex, no Infinity/NaN, no empty string
// (Number() would accept all of those).
export const DECIMAL = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
export const INTEGER = /^[+-]?\d+$/;

/** Parses CSV text into a Dataset; see CsvOptions. */
export function parseCsv(text: string, options: CsvOptions): Dataset {
  const source = options.source ?? 'csv';
  const classes = requireInteger('classes', options.classes, 1, 0x7fffffff);
  const delimiter = options.delimiter ?? ',';
  if (delimiter.length !== 1 || delimiter === '"' || delimiter === '\n' || delimiter === '\r') {
    throw invalidOption('INVALID_DELIMITER', `delimiter must be one character other than a quote or newline, got ${quoteValue(delimiter)}`);
  }
  const headerOption = options.header ?? 'auto';
  const labelNameIndex = new Map((options.labelNames ?? []).map((name, index) => [name, index] as const));

  // Upper bound on the number of records, so the feature buffer is allocated once.
  let maxRecords = 1;
  for (let at = text.indexOf('\n'); at !== -1; at = text.indexOf('\n', at + 1)) maxRecords++;

  let columnNames: readonly string[] | undefined;
  let columnCount = -1;
  let labelColumn = -1;
  let featureCount = 0;
  let features = new Float32Array(0);
  let labels = new Int32Array(0);
  let count = 0;

  const where = (line: number, column: number): string => {
    const name = columnNames?.[column];
    return `${source} row ${line}, column ${column + 1}${name === undefined ? '' : ` (${quoteValue(name)})`}`;
  };

  forEachRecord(text, delimiter, source, (fields, line) => {
    if (columnCount === -1) {
      const isHeader = headerOption === 'auto' ? fields.every((cell) => !DECIMAL.test(cell.trim())) : headerOption;
      columnCount = fields.length;
      if (columnCount < 2) {
        throw new DataError('INVALID_ARGUMENT', 'CSV_TOO_FEW_COLUMNS', `${source} row ${line}: found ${columnCount} column; expected at least one feature column and one label column`);
      }
      if (isHeader) columnNames = fields.map((cell) => cell.trim());
      labelColumn = resolveLabelColumn(options.label ?? -1, columnNames, columnCount, source);
      featureCount = columnCount - 1;
      const expected = options.exampleShape === undefined ? featureCount : options.exampleShape.reduce((product, dim) => product * dim, 1);
      if (expected !== featureCount) {
        throw new DataError(
          'INVALID_ARGUMENT',
          'FEATURE_LENGTH_MISMATCH',
          `${source} row ${line}: ${featureCount} feature columns besides the label column; the task's input shape [${(options.exampleShape ?? []).join(', ')}] needs ${expected}`,
        );
      }
      features = new Float32Array(maxRecords * featureCount);
      labels = new Int32Array(maxRecords);
      if (isHeader) return;
    }
    if (fields.length !== columnCount) {
      throw new DataError(
        'INVALID_ARGUMENT',
        'CSV_RAGGED_ROW',
        `${source} row ${line}: found ${fields.length} columns; expected ${columnCount} like the ${columnNames === undefined ? 'first row' : 'header'}`,
      );
    }
    let out = count * featureCount;
    for (let column = 0; column < columnCount; column++) {
      const cell = (fields[column] as string).trim();
      if (column === labelColumn) {
        labels[count] = parseLabel(cell, classes, labelNameIndex, () => where(line, column));
        continue;
      }
      if (!DECIMAL.test(cell)) {
        const problem = cell === '' ? 'is empty' : `${quoteValue(cell)} is not a number`;
        throw new DataError('INVALID_ARGUMENT', 'CSV_NON_NUMERIC_CELL', `${where(line, column)}: ${problem}; expected a decimal number`);
      }
      const value = Number(cell);
      if (!Number.isFinite(value) || Math.abs(value) > 3.4028234663852886e38) {
        throw new DataError('INVALID_ARGUMENT', 'CSV_NON_NUMERIC_CELL', `${where(line, column)}: ${quoteValue(cell)} does not fit a float32; expected a finite number`);
      }
      features[out++] = value;
    }
    count++;
  });

  if (count === 0) {
    throw new DataError('INVALID_ARGUMENT', 'CSV_EMPTY', `${source}: no data rows; expected at least one row of ${columnCount > 0 ? columnCount : 'feature and label'} columns`);
  }
  const exampleShape = options.exampleShape ?? [featureCount];
  return createDataset({
    features: features.slice(0, count * featureCount),
    labels: labels.slice(0, count),
    exampleShape,
    classes,
    source,
  });
}

/** Reads a CSV file (gzip-compressed or plain, detected from its content) into a Dataset. */
export async function loadCsv(path: string, options: CsvOptions): Promise<Dataset> {
  const source = options.source ?? path;
  const bytes = await readDataFile(path);
  const text = new TextDecoder('utf-8').decode(await maybeGunzip(bytes, source));
  return parseCsv(text, { ...options, source });
}

function resolveLabelColumn(label: string | number, names: readonly string[] | undefined, columnCount: number, source: string): number {
  if (typeof label === 'string') {
    if (names === undefined) {
      throw invalidOption('CSV_LABEL_NEEDS_HEADER', `${source}: label column ${quoteValue(label)} given by name, but the file has no header row; give the label column's index instead`);
    }
    const index = names.indexOf(label);
    if (index === -1) {
      throw invalidOption('CSV_UNKNOWN_LABEL_COLUMN', `${source}: no column named ${quoteValue(label)}; the header has ${names.map((n) => quoteValue(n, 20)).join(', ')}`);
    }
    return index;
  }
  if (!Number.isInteger(label) || label >= columnCount || label < -columnCount) {
    throw invalidOption('CSV_LABEL_INDEX_OUT_OF_RANGE', `${source}: label column index ${String(label)} is outside the ${columnCount} columns; expected 0..${columnCount - 1} or -${columnCount}..-1`);
  }
  return label < 0 ? columnCount + label : label;
}

function parseLabel(cell: string, classes: number, names: ReadonlyMap<string, number>, where: () => string): number {
  if (INTEGER.test(cell)) {
    const value = Number(cell);
    if (value < 0 || value >= classes) {
      throw new DataError('INVALID_ARGUMENT', 'LABEL_OUT_OF_RANGE', `${where()}: label ${cell} is outside the class range; expected an integer in [0, ${classes - 1}]`);
    }
    return value;
  }
  const named = names.get(cell);
  if (named !== undefined) return named;
  const expected = names.size > 0 ? `a class index in [0, ${classes - 1}] or one of the label names` : `an integer class index in [0, ${classes - 1}]`;
  throw new DataError('INVALID_ARGUMENT', 'CSV_BAD_LABEL', `${where()}: label ${quoteValue(cell)} is not ${expected}`);
}

/**
 * Splits `text` into records and calls `onRecord(fields, line)` with the 1-based line number where each
 * record starts. A quoted field may span lines (RFC 4180 Sec. 2, rule 6).
 */
export function forEachRecord(text: string, delimiter: string, source: string, onRecord: (fields: string[], line: number) => void): void {
  const QUOTE = 34;
  const LF = 10;
  const CR = 13;
  const delimiterCode = delimiter.charCodeAt(0);
  let at = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  let line = 1;
  const end = text.length;
  while (at < end) {
    const recordLine = line;
    const fields: string[] = [];
    let recordDone = false;
    while (!recordDone) {
      let field: string;
      if (text.charCodeAt(at) === QUOTE) {
        const openLine = line;
        let value = '';
        let from = at + 1;
        for (;;) {
          const close = text.indexOf('"', from);
          if (close === -1) {
            throw new DataError('INVALID_ARGUMENT', 'CSV_UNTERMINATED_QUOTE', `${source} row ${openLine}, column ${fields.length + 1}: quoted field is never closed; expected a closing '"'`);
          }
          value += text.slice(from, close);
          for (let i = from; i < close; i++) if (text.charCodeAt(i) === LF) line++;
          if (text.charCodeAt(close + 1) === QUOTE) {
            value += '"';
            from = close + 2;
            continue;
          }
          at = close + 1;
          break;
        }
        const next = text.charCodeAt(at);
        if (at < end && next !== delimiterCode && next !== LF && next !== CR) {
          throw new DataError('INVALID_ARGUMENT', 'CSV_BAD_QUOTE', `${source} row ${line}, column ${fields.length + 1}: unexpected ${quoteValue(text.charAt(at))} after a closing quote; expected the delimiter or the end of the row`);
        }
        field = value;
      } else {
        let stop = at;
        while (stop < end) {
          const code = text.charCodeAt(stop);
          if (code === delimiterCode || code === LF || code === CR) break;
          stop++;
        }
        field = text.slice(at, stop);
        at = stop;
      }
      fields.push(field);
      const code = text.charCodeAt(at);
      if (at < end && code === delimiterCode) {
        at++;
        continue;
      }
      // End of record: CRLF, LF, a lone CR, or end of text.
      if (code === CR) at++;
      if (text.charCodeAt(at) === LF) at++;
      if (at <= end) line++;
      recordDone = true;
    }
    const blank = fields.length === 1 && (fields[0] as string).trim() === '';
    if (!blank) onRecord(fields, recordLine);
  }
}
