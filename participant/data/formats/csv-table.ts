/**
 * CSV as a column table, for tasks that map several columns (numeric features, categorical strings,
 * targets) onto model inputs. It shares the RFC 4180 record splitter of csv.ts (quotes, CRLF, BOM,
 * blank lines) and its number syntax; the Dataset loader of csv.ts is unchanged.
 *
 * A column is numeric when every cell is a decimal number, and a string column as soon as one cell is
 * not (a categorical column, or a class name). An empty cell in a column whose other cells are all
 * numbers is reported as a missing value rather than turning the column into strings.
 */
import { DECIMAL, INTEGER, forEachRecord } from '../csv.js';
import { DataError, invalidOption, quoteValue } from '../errors.js';
import { maybeGunzip, readDataFile } from '../files.js';
import type { Column, ColumnTable } from '../table.js';

export interface CsvTableOptions {
  /**
   * Whether the first record is a header. 'auto' treats it as a header when none of its cells is a
   * number. Without a header the columns are named 'column1', 'column2', ...
   * @default 'auto'
   */
  readonly header?: boolean | 'auto';
  /** @default ',' */
  readonly delimiter?: string;
  /** Name used in error messages. @default 'csv' */
  readonly source?: string;
}

/** Parses CSV text into a ColumnTable; see CsvTableOptions. */
export function parseCsvTable(text: string, options: CsvTableOptions = {}): ColumnTable {
  const source = options.source ?? 'csv';
  const delimiter = options.delimiter ?? ',';
  if (delimiter.length !== 1 || delimiter === '"' || delimiter === '\n' || delimiter === '\r') {
    throw invalidOption('INVALID_DELIMITER', `delimiter must be one character other than a quote or newline, got ${quoteValue(delimiter)}`);
  }
  const headerOption = options.header ?? 'auto';
  let names: string[] | undefined;
  const cells: string[][] = []; // column-major
  const lines: number[] = [];

  forEachRecord(text, delimiter, source, (fields, line) => {
    if (names === undefined) {
      const isHeader = headerOption === 'auto' ? fields.every((cell) => !DECIMAL.test(cell.trim())) : headerOption;
      names = isHeader ? fields.map((cell) => cell.trim()) : fields.map((_, i) => `column${i + 1}`);
      checkNames(names, source, line);
      for (let i = 0; i < names.length; i++) cells.push([]);
      if (isHeader) return;
    }
    if (fields.length !== names.length) {
      throw new DataError('INVALID_ARGUMENT', 'CSV_RAGGED_ROW', `${source} row ${line}: found ${fields.length} columns; expected ${names.length} like the ${headerOption === false ? 'first row' : 'header'}`);
    }
    fields.forEach((cell, column) => (cells[column] as string[]).push(cell.trim()));
    lines.push(line);
  });

  if (names === undefined || lines.length === 0) {
    throw new DataError('INVALID_ARGUMENT', 'CSV_EMPTY', `${source}: no data rows; expected at least one row`);
  }
  const columns = new Map<string, Column>();
  names.forEach((name, index) => columns.set(name, toColumn(cells[index] as string[], (row) => `${source} row ${lines[row] ?? '?'}, column ${index + 1} (${quoteValue(name)})`)));
  return { source, rows: lines.length, columns };
}

function checkNames(names: readonly string[], source: string, line: number): void {
  const seen = new Set<string>();
  names.forEach((name, index) => {
    if (name === '') throw new DataError('INVALID_ARGUMENT', 'CSV_BAD_HEADER', `${source} row ${line}, column ${index + 1}: the header cell is empty; expected a column name`);
    if (seen.has(name)) throw new DataError('INVALID_ARGUMENT', 'CSV_BAD_HEADER', `${source} row ${line}, column ${index + 1}: column name ${quoteValue(name)} appears twice; expected unique names`);
    seen.add(name);
  });
}

/** Numeric when every non-empty cell is a number (an empty one is then a missing value), else strings. */
function toColumn(cells: readonly string[], where: (row: number) => string): Column {
  let numeric = true;
  let sawNumber = false;
  for (const cell of cells) {
    if (cell === '') continue;
    if (!DECIMAL.test(cell)) {
      numeric = false;
      break;
    }
    sawNumber = true;
  }
  if (!numeric || !sawNumber) return { kind: 'string', values: cells };
  const values = new Float64Array(cells.length);
  let integer = true;
  cells.forEach((cell, row) => {
    if (cell === '') throw new DataError('INVALID_ARGUMENT', 'CSV_MISSING_VALUE', `${where(row)}: the cell is empty in a numeric column; expected a number (fill or drop missing values first)`);
    const value = Number(cell);
    if (!Number.isFinite(value)) throw new DataError('INVALID_ARGUMENT', 'CSV_NON_NUMERIC_CELL', `${where(row)}: ${quoteValue(cell)} overflows a float64; expected a finite number`);
    if (!INTEGER.test(cell)) integer = false;
    values[row] = value;
  });
  return { kind: 'numeric', values, cellShape: [], integer };
}

/** Reads a CSV file (gzip-compressed or plain) into a ColumnTable. */
export async function readCsvTable(path: string, options: CsvTableOptions = {}): Promise<ColumnTable> {
  const source = options.source ?? path;
  const text = new TextDecoder('utf-8').decode(await maybeGunzip(await readDataFile(path), source));
  return parseCsvTable(text, { ...options, source });
}
