/**
 * The column table every file-format reader produces (NPY/NPZ, Parquet, CSV, image folders) before the
 * task document maps columns onto the model's inputs and targets. Readers know files, not tasks: they
 * report what a file holds (names, types, per-row shapes) and leave the choice of columns, vocabularies
 * and dtypes to the mapping, which then names the column in its errors.
 */

/** Numbers, one fixed-shape cell per row, row after row (rows * product(cellShape) values). */
export interface NumericColumn {
  readonly kind: 'numeric';
  readonly values: Float32Array | Float64Array;
  /** Shape of one cell: [] for a scalar column, [3, 32, 32] for an image, [50, 16] for a sequence. */
  readonly cellShape: readonly number[];
  /** Every value is an integer (the file stored an integer type): candidates for ids and class indices. */
  readonly integer: boolean;
}

/** Text cells (categorical columns, class names), one per row. */
export interface StringColumn {
  readonly kind: 'string';
  readonly values: readonly string[];
}

export type Column = NumericColumn | StringColumn;

export interface ColumnTable {
  /** The file or folder, for error messages. */
  readonly source: string;
  readonly rows: number;
  /** In file order. */
  readonly columns: ReadonlyMap<string, Column>;
}

/** Number of values in one cell of the shape. */
export function cellSize(cellShape: readonly number[]): number {
  let size = 1;
  for (const dim of cellShape) size *= dim;
  return size;
}
