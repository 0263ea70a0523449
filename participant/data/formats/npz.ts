/**
 * NPZ archives (numpy's `np.savez` / `np.savez_compressed`): a zip of NPY files, one per array, named
 * '<key>.npy'. fflate unzips them (stored or deflated entries); each array becomes the column named by
 * its key, and all arrays must have the same number of rows (their first axis).
 */
import { unzipSync } from 'fflate';
import { DataError, quoteValue } from '../errors.js';
import { readDataFile } from '../files.js';
import type { Column, ColumnTable } from '../table.js';
import { parseNpyColumn } from './npy.js';

/** Parses NPZ bytes; `source` names the file in errors. */
export function parseNpz(bytes: Uint8Array, source: string): ColumnTable {
  let entries: Record<string, Uint8Array>;
  try {
    // Synchronous: an NPZ that a site trains on fits in memory anyway, and reading happens at start-up.
    entries = unzipSync(bytes);
  } catch (error) {
    throw new DataError('INVALID_ARGUMENT', 'NPZ_INVALID', `${source}: not a readable zip archive (${error instanceof Error ? error.message : String(error)}); expected a file written by numpy.savez`, { cause: error });
  }
  const columns = new Map<string, Column>();
  let rows = -1;
  let firstEntry = '';
  for (const [entry, data] of Object.entries(entries)) {
    if (entry.endsWith('/')) continue; // a directory record
    if (!entry.endsWith('.npy')) {
      throw new DataError('INVALID_ARGUMENT', 'NPZ_INVALID', `${source}: entry ${quoteValue(entry)} is not an .npy array; expected only the '<name>.npy' entries numpy.savez writes`);
    }
    const where = `${source} entry ${quoteValue(entry)}`;
    const parsed = parseNpyColumn(data, where);
    if (rows === -1) {
      rows = parsed.rows;
      firstEntry = entry;
    } else if (parsed.rows !== rows) {
      throw new DataError(
        'INVALID_ARGUMENT',
        'NPZ_ROW_MISMATCH',
        `${where}: ${parsed.rows} rows (first axis), but entry ${quoteValue(firstEntry)} has ${rows}; expected every array to have one row per example`,
      );
    }
    columns.set(entry.slice(0, -'.npy'.length), parsed.column);
  }
  if (columns.size === 0) throw new DataError('INVALID_ARGUMENT', 'NPZ_EMPTY', `${source}: the archive holds no arrays; expected at least one '<name>.npy' entry`);
  return { source, rows, columns };
}

export async function readNpz(path: string): Promise<ColumnTable> {
  return parseNpz(await readDataFile(path), path);
}
