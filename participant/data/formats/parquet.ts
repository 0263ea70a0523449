/**
 * Parquet tables, read with hyparquet (all of Parquet's encodings and the usual codecs: snappy, gzip,
 * and what hyparquet ships). Every top-level column becomes a column of the table, typed from the
 * file's schema rather than guessed from values:
 * - BOOLEAN, INT32/INT64 (any INTEGER logical type) -> numeric, integer;
 * - FLOAT, DOUBLE, DECIMAL -> numeric;
 * - BYTE_ARRAY as STRING/UTF8/ENUM (pandas categoricals are dictionary-encoded strings) -> string.
 * Dates, times, timestamps, binary, nested (list, map, struct) and other types are reported with the
 * column's name and type, and so is a null cell (with its row), since a site must decide how to fill
 * missing values before training.
 */
import { parquetMetadata, parquetReadObjects, parquetSchema, type FileMetaData, type SchemaElement, type SchemaTree } from 'hyparquet';
import { DataError, quoteValue } from '../errors.js';
import { readDataFile } from '../files.js';
import type { Column, ColumnTable } from '../table.js';

type ColumnKind = 'integer' | 'float32' | 'float64' | 'string';

/** The kind a column's schema element maps to, or a description of why it is not read. */
function columnKind(element: SchemaElement, nested: boolean): ColumnKind | { unsupported: string } {
  const logical = element.logical_type?.type;
  const converted = element.converted_type;
  const typeName = [element.type ?? 'group', logical ?? converted].filter((part) => part !== undefined).join(' ');
  if (nested || element.repetition_type === 'REPEATED') return { unsupported: `a nested column (${logical ?? converted ?? 'group'})` };
  if (logical === 'DECIMAL' || converted === 'DECIMAL') return 'float64';
  if (logical === 'DATE' || logical === 'TIME' || logical === 'TIMESTAMP' || converted?.startsWith('DATE') || converted?.startsWith('TIME')) {
    return { unsupported: `a ${typeName} column` };
  }
  switch (element.type) {
    case 'BOOLEAN':
    case 'INT32':
    case 'INT64':
      return 'integer';
    case 'FLOAT':
      return 'float32';
    case 'DOUBLE':
      return 'float64';
    case 'BYTE_ARRAY':
      if (logical === 'STRING' || logical === 'ENUM' || converted === 'UTF8' || converted === 'ENUM') return 'string';
      return { unsupported: `a binary (${typeName}) column` };
    default:
      return { unsupported: `a ${typeName} column` };
  }
}

/** Parses Parquet bytes; `source` names the file in errors. */
export async function parseParquet(bytes: Uint8Array, source: string): Promise<ColumnTable> {
  const file = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  let metadata: FileMetaData;
  let schema: SchemaTree;
  try {
    metadata = parquetMetadata(file);
    schema = parquetSchema(metadata);
  } catch (error) {
    throw new DataError('INVALID_ARGUMENT', 'PARQUET_INVALID', `${source}: not a readable Parquet file (${error instanceof Error ? error.message : String(error)}); expected a file written by pyarrow, pandas, Spark or polars`, { cause: error });
  }
  const kinds = new Map<string, ColumnKind>();
  for (const child of schema.children) {
    const kind = columnKind(child.element, child.children.length > 0);
    const name = child.element.name;
    if (typeof kind !== 'string') {
      throw new DataError('INVALID_ARGUMENT', 'PARQUET_UNSUPPORTED_COLUMN', `${source}: column ${quoteValue(name)} is ${kind.unsupported}; expected numeric, boolean or string columns (convert it, or drop it before training)`);
    }
    kinds.set(name, kind);
  }

  let rows: Record<string, unknown>[];
  try {
    rows = await parquetReadObjects({ file, metadata });
  } catch (error) {
    throw new DataError('DATA_LOSS', 'PARQUET_INVALID', `${source}: the column data cannot be decoded (${error instanceof Error ? error.message : String(error)}); the file is corrupt or truncated`, { cause: error });
  }
  const columns = new Map<string, Column>();
  for (const [name, kind] of kinds) columns.set(name, toColumn(rows, name, kind, source));
  return { source, rows: rows.length, columns };
}

function toColumn(rows: readonly Record<string, unknown>[], name: string, kind: ColumnKind, source: string): Column {
  const where = (row: number): string => `${source} row ${row}, column ${quoteValue(name)}`;
  const missing = (row: number): DataError =>
    new DataError('INVALID_ARGUMENT', 'PARQUET_NULL_VALUE', `${where(row)}: the value is null; expected a ${kind === 'string' ? 'string' : 'number'} (fill or drop missing values first)`);
  if (kind === 'string') {
    return {
      kind: 'string',
      values: rows.map((row, index) => {
        const value = row[name];
        if (value === null || value === undefined) throw missing(index);
        return String(value);
      }),
    };
  }
  const values = kind === 'float32' ? new Float32Array(rows.length) : new Float64Array(rows.length);
  rows.forEach((row, index) => {
    const raw = row[name];
    if (raw === null || raw === undefined) throw missing(index);
    const value = typeof raw === 'bigint' || typeof raw === 'boolean' ? Number(raw) : raw;
    if (typeof value !== 'number') throw new DataError('INVALID_ARGUMENT', 'PARQUET_UNSUPPORTED_COLUMN', `${where(index)}: decoded a ${typeof value}; expected a number`);
    if (typeof raw === 'bigint' && !Number.isSafeInteger(value)) {
      throw new DataError('INVALID_ARGUMENT', 'PARQUET_INTEGER_TOO_LARGE', `${where(index)}: ${String(raw)} is beyond 2^53; expected integers a float64 holds exactly`);
    }
    if (!Number.isFinite(value)) throw new DataError('INVALID_ARGUMENT', 'PARQUET_NON_FINITE', `${where(index)}: the value is ${String(value)}; expected a finite number (fill or drop missing values first)`);
    values[index] = value;
  });
  return { kind: 'numeric', values, cellShape: [], integer: kind === 'integer' };
}

export async function readParquet(path: string): Promise<ColumnTable> {
  return parseParquet(await readDataFile(path), path);
}
