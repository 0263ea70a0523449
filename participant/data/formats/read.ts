/**
 * readColumnTable: one entry point for every file format a site may hold. The format comes from
 * `options.format` or, when absent, from the path: a folder is an image folder; otherwise the
 * extension decides (.npy, .npz, .parquet/.pq, .csv/.tsv/.txt, optionally followed by .gz for CSV).
 */
import { stat } from 'node:fs/promises';
import { DataError, invalidOption, quoteValue } from '../errors.js';
import type { ColumnTable } from '../table.js';
import { readCsvTable } from './csv-table.js';
import { readImageFolder } from './images.js';
import { readNpy } from './npy.js';
import { readNpz } from './npz.js';
import { readParquet } from './parquet.js';

export const TABLE_FORMATS = ['npy', 'npz', 'parquet', 'csv', 'images'] as const;
export type TableFormat = (typeof TABLE_FORMATS)[number];

export interface ReadTableOptions {
  /** @default chosen from the path (see the file comment) */
  readonly format?: TableFormat;
  /** CSV: whether the first row is a header. @default 'auto' */
  readonly header?: boolean | 'auto';
  /** CSV: @default ',' (a '.tsv' file: tab) */
  readonly delimiter?: string;
  /** NPY: the column name. @default the file name without extension */
  readonly column?: string;
  /** Image folders: [channels, height, width] after conversion; required for format 'images'. */
  readonly imageShape?: readonly [number, number, number];
}

/** The format a path names, or undefined when neither the path nor the file system tells. */
export async function detectFormat(path: string): Promise<TableFormat | undefined> {
  const lower = path.toLowerCase().replace(/\.gz$/, '');
  if (lower.endsWith('.npy')) return 'npy';
  if (lower.endsWith('.npz')) return 'npz';
  if (lower.endsWith('.parquet') || lower.endsWith('.pq')) return 'parquet';
  if (lower.endsWith('.csv') || lower.endsWith('.tsv') || lower.endsWith('.txt')) return 'csv';
  try {
    if ((await stat(path)).isDirectory()) return 'images';
  } catch {
    // A missing path is reported by the reader; here it only means "not a folder".
  }
  return undefined;
}

export async function readColumnTable(path: string, options: ReadTableOptions = {}): Promise<ColumnTable> {
  if (options.format !== undefined && !(TABLE_FORMATS as readonly string[]).includes(options.format)) {
    throw invalidOption('UNKNOWN_FORMAT', `format ${quoteValue(String(options.format))} is not one of ${TABLE_FORMATS.join(', ')}`);
  }
  const format = options.format ?? (await detectFormat(path));
  switch (format) {
    case 'npy':
      return readNpy(path, options.column === undefined ? {} : { column: options.column });
    case 'npz':
      return readNpz(path);
    case 'parquet':
      return readParquet(path);
    case 'csv': {
      const delimiter = options.delimiter ?? (/\.tsv(\.gz)?$/i.test(path) ? '\t' : ',');
      return readCsvTable(path, { delimiter, ...(options.header === undefined ? {} : { header: options.header }) });
    }
    case 'images':
      if (options.imageShape === undefined) {
        throw invalidOption('INVALID_OPTION', `${path}: an image folder needs imageShape [channels, height, width] to resize its images to`);
      }
      return readImageFolder(path, { shape: options.imageShape });
    case undefined:
      throw new DataError(
        'INVALID_ARGUMENT',
        'UNKNOWN_FORMAT',
        `${path}: cannot tell the data format from the name; expected a .npy, .npz, .parquet, .csv or .tsv file or a folder of class folders, or give format (one of ${TABLE_FORMATS.join(', ')})`,
      );
  }
}
