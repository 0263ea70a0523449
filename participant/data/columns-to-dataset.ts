/**
 * Maps a ColumnTable (what a file-format reader found) onto what the task trains: the model's named
 * inputs (float32 values or int64 ids, a string column through the task's vocabulary) and its targets
 * (class indices, multi-hot labels or real values, as the loss needs). Every failure names the file, the
 * row (0-based, as the reader counts them) and the column, with the value found and what was expected.
 */
import type { InputSpec, TaskDocument } from '../../model/task.js';
import { lossOf, namedInputsOf, targetKindOf } from '../../model/task.js';
import { createDataset, createNamedInputDataset, createTargetDataset, type Dataset, type NamedInputValues } from './dataset.js';
import { DataError, quoteValue } from './errors.js';
import { cellSize, type Column, type ColumnTable, type NumericColumn } from './table.js';

/** One model input of every example, row after row. */
export type InputValues =
  | { readonly dtype: 'float32'; readonly shape: readonly number[]; readonly values: Float32Array }
  | { readonly dtype: 'int64'; readonly shape: readonly number[]; readonly values: BigInt64Array };

export interface MappedExamples {
  readonly count: number;
  /** By model input name, in the task's order. */
  readonly inputs: ReadonlyMap<string, InputValues>;
  /** Class indices (cross_entropy). */
  readonly labels?: Int32Array;
  /** Multi-hot labels or real targets, targetSize per example. */
  readonly targets?: Float32Array;
  readonly targetSize: number;
}

type TaskMapping = Pick<TaskDocument, 'loss' | 'labels' | 'input' | 'inputs' | 'target'>;

export interface MappingOptions {
  /**
   * By int64 input name, the rows of the embedding table it indexes (the training plan's idRanges): ids
   * are checked against them here, where the file, row and column are known, and not only when the
   * trainer first sees the batch. An input with a vocabulary is held to the smaller of the two.
   */
  readonly idRanges?: Readonly<Record<string, number>> | undefined;
}

function mappingError(reason: Uppercase<string>, message: string): DataError {
  return new DataError('INVALID_ARGUMENT', reason, message);
}

function columnOf(table: ColumnTable, name: string, role: string): Column {
  const column = table.columns.get(name);
  if (column === undefined) {
    throw mappingError('COLUMN_MISSING', `${table.source}: the task's ${role} reads column '${name}', which the file lacks; columns present: ${[...table.columns.keys()].join(', ')}`);
  }
  return column;
}

function numericColumn(table: ColumnTable, name: string, role: string): NumericColumn {
  const column = columnOf(table, name, role);
  if (column.kind !== 'numeric') {
    const first = column.values[0];
    throw mappingError(
      'COLUMN_TYPE_MISMATCH',
      `${table.source}, column '${name}': holds text (row 0: ${first === undefined ? 'empty' : quoteValue(first)}); the task's ${role} expects numbers${role.startsWith('input') ? ' (give the input a vocabulary and dtype int64 to map text to ids)' : ''}`,
    );
  }
  return column;
}

function checkFinite(table: ColumnTable, name: string, value: number, row: number): void {
  if (!Number.isFinite(value)) throw mappingError('VALUE_NOT_FINITE', `${table.source}, row ${row}, column '${name}': ${String(value)}; expected a finite number`);
}

/** Scalar numeric columns, one value each, interleaved into rows of `names.length` values. */
function gatherScalars(table: ColumnTable, names: readonly string[], role: string): Float32Array {
  const out = new Float32Array(table.rows * names.length);
  for (const [offset, name] of names.entries()) {
    const column = numericColumn(table, name, role);
    if (column.cellShape.length !== 0) {
      throw mappingError('COLUMN_SHAPE_MISMATCH', `${table.source}, column '${name}': cells of shape [${column.cellShape.join(', ')}]; the task's ${role} lists it among scalar columns`);
    }
    for (let row = 0; row < table.rows; row++) {
      const value = column.values[row] as number;
      checkFinite(table, name, value, row);
      out[row * names.length + offset] = value;
    }
  }
  return out;
}

/** One numeric column whose cells hold `size` values each. */
function gatherCells(table: ColumnTable, name: string, size: number, role: string): Float32Array {
  const column = numericColumn(table, name, role);
  if (cellSize(column.cellShape) !== size) {
    throw mappingError(
      'COLUMN_SHAPE_MISMATCH',
      `${table.source}, column '${name}': cells of shape [${column.cellShape.join(', ')}] (${cellSize(column.cellShape)} values); the task's ${role} needs ${size} values per row`,
    );
  }
  const out = Float32Array.from(column.values);
  for (let i = 0; i < out.length; i++) checkFinite(table, name, out[i] as number, Math.floor(i / size));
  return out;
}

function mapIds(table: ColumnTable, input: InputSpec & { column: string }, embeddingRows: number | undefined): BigInt64Array {
  const role = `input '${input.name}'`;
  const column = columnOf(table, input.column, role);
  const size = cellSize(input.shape);
  if (column.kind === 'string') {
    const vocabulary = input.vocabulary;
    if (vocabulary === undefined) {
      throw mappingError('VOCABULARY_MISSING', `${table.source}, column '${input.column}': holds text; the task's ${role} needs a vocabulary to map it to ids`);
    }
    if (size !== 1) throw mappingError('COLUMN_SHAPE_MISMATCH', `${table.source}, column '${input.column}': one word per row, but ${role} has shape [${input.shape.join(', ')}]`);
    const ids = new Map(vocabulary.map((word, id) => [word, id]));
    const out = new BigInt64Array(table.rows);
    for (let row = 0; row < table.rows; row++) {
      const word = column.values[row] as string;
      const id = ids.get(word);
      if (id !== undefined && embeddingRows !== undefined && id >= embeddingRows) {
        throw mappingError(
          'ID_OUT_OF_RANGE',
          `${table.source}, row ${row}, column '${input.column}': ${quoteValue(word)} is id ${id} of the vocabulary of input '${input.name}', but the embedding table it indexes has ${embeddingRows} rows; the task's vocabulary and model disagree (fix the task)`,
        );
      }
      if (id === undefined) {
        throw mappingError(
          'ID_OUT_OF_VOCABULARY',
          `${table.source}, row ${row}, column '${input.column}': ${quoteValue(word)} is not in the vocabulary of input '${input.name}' (${vocabulary.length} entries: ${vocabulary.slice(0, 5).map((w) => quoteValue(w)).join(', ')}${vocabulary.length > 5 ? ', ...' : ''}); add it to the task's vocabulary (a new task hash) or fix the row`,
        );
      }
      out[row] = BigInt(id);
    }
    return out;
  }
  const values = gatherCells(table, input.column, size, role);
  const limit = smallest(input.vocabulary?.length, embeddingRows);
  const out = new BigInt64Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const id = values[i] as number;
    if (!Number.isInteger(id) || id < 0 || (limit !== undefined && id >= limit)) {
      throw mappingError(
        'ID_OUT_OF_RANGE',
        `${table.source}, row ${Math.floor(i / size)}, column '${input.column}': id ${id} is out of range; input '${input.name}' expects integers in [0, ${limit === undefined ? 'the embedding size' : limit - 1}]${embeddingRows === limit && limit !== undefined ? ' (the rows of the embedding table it indexes)' : ''}`,
      );
    }
    out[i] = BigInt(id);
  }
  return out;
}

function smallest(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined ? b : b === undefined ? a : Math.min(a, b);
}

function mapInput(table: ColumnTable, input: InputSpec, options: MappingOptions): InputValues {
  const size = cellSize(input.shape);
  if (input.dtype === 'int64') {
    if (input.column === undefined) throw mappingError('INPUT_MAPPING_INVALID', `input '${input.name}': int64 ids come from one column; expected column, not columns`);
    return { dtype: 'int64', shape: input.shape, values: mapIds(table, { ...input, column: input.column }, options.idRanges?.[input.name]) };
  }
  const role = `input '${input.name}'`;
  const values = input.columns !== undefined ? gatherScalars(table, input.columns, role) : gatherCells(table, input.column as string, size, role);
  return { dtype: 'float32', shape: input.shape, values };
}

/** Without an `inputs` mapping: every numeric column but the targets, in file order, as the one float input. */
function defaultInputs(table: ColumnTable, task: TaskMapping, targetColumns: readonly string[]): InputSpec[] {
  const columns = [...table.columns.entries()].filter(([name, column]) => column.kind === 'numeric' && !targetColumns.includes(name)).map(([name]) => name);
  const single = columns.length === 1 ? (table.columns.get(columns[0] as string) as NumericColumn) : undefined;
  if (single !== undefined && single.cellShape.length > 0) return [{ name: 'input', column: columns[0] as string, dtype: 'float32', shape: task.input.shape }];
  return [{ name: 'input', columns, dtype: 'float32', shape: task.input.shape }];
}

function targetColumnsOf(task: TaskMapping): string[] {
  if (task.target === undefined) return ['label'];
  return 'column' in task.target ? [task.target.column] : task.target.columns;
}

function mapClassTargets(table: ColumnTable, name: string, classNames: readonly string[]): Int32Array {
  const column = columnOf(table, name, 'target');
  const labels = new Int32Array(table.rows);
  if (column.kind === 'string') {
    const index = new Map(classNames.map((label, i) => [label, i]));
    for (let row = 0; row < table.rows; row++) {
      const label = index.get(column.values[row] as string);
      if (label === undefined) {
        throw mappingError('LABEL_UNKNOWN', `${table.source}, row ${row}, column '${name}': class ${quoteValue(column.values[row] as string)} is not among the task's labels (${classNames.map((l) => quoteValue(l)).join(', ')})`);
      }
      labels[row] = label;
    }
    return labels;
  }
  if (column.cellShape.length !== 0) throw mappingError('COLUMN_SHAPE_MISMATCH', `${table.source}, column '${name}': cells of shape [${column.cellShape.join(', ')}]; a class target is one index per row`);
  for (let row = 0; row < table.rows; row++) {
    const value = column.values[row] as number;
    if (!Number.isInteger(value) || value < 0 || value >= classNames.length) {
      throw mappingError('LABEL_OUT_OF_RANGE', `${table.source}, row ${row}, column '${name}': class index ${value}; expected an integer in [0, ${classNames.length - 1}]`);
    }
    labels[row] = value;
  }
  return labels;
}

function mapFloatTargets(table: ColumnTable, task: TaskMapping, columns: readonly string[], multiLabel: boolean): Float32Array {
  const width = task.labels.length;
  const values = columns.length === 1 && width > 1 ? gatherCells(table, columns[0] as string, width, 'target') : gatherScalars(table, columns, 'target');
  if (values.length !== table.rows * width) {
    throw mappingError('TARGET_SHAPE_MISMATCH', `${table.source}: target column(s) ${columns.join(', ')} give ${values.length / Math.max(table.rows, 1)} values per row; the task's labels need ${width}`);
  }
  if (multiLabel) {
    for (let i = 0; i < values.length; i++) {
      const value = values[i] as number;
      if (value !== 0 && value !== 1) {
        const row = Math.floor(i / width);
        const column = columns.length === 1 ? columns[0] : columns[i % width];
        throw mappingError('LABEL_NOT_BINARY', `${table.source}, row ${row}, column '${String(column)}': ${value}; a multi-label target is 0 or 1`);
      }
    }
  }
  return values;
}

/** Maps every row of `table` onto the task's inputs and targets. */
export function columnsToExamples(table: ColumnTable, task: TaskMapping, options: MappingOptions = {}): MappedExamples {
  const targetColumns = targetColumnsOf(task);
  const specs = task.inputs ?? defaultInputs(table, task, targetColumns);
  const inputs = new Map(specs.map((spec) => [spec.name, mapInput(table, spec, options)] as const));
  const kind = targetKindOf(lossOf(task).kind);
  if (kind === 'class') {
    return { count: table.rows, inputs, labels: mapClassTargets(table, targetColumns[0] as string, task.labels), targetSize: 0 };
  }
  return { count: table.rows, inputs, targets: mapFloatTargets(table, task, targetColumns, kind === 'multi_label'), targetSize: task.labels.length };
}

/**
 * The Dataset the trainer takes: the one float32 input as `features`, or, when the task names several
 * inputs or int64 ids (namedInputsOf), every input by name in Dataset.inputs.
 */
export function columnsToDataset(table: ColumnTable, task: TaskMapping, options: MappingOptions = {}): Dataset {
  const examples = columnsToExamples(table, task, options);
  if (namedInputsOf(task) !== undefined) {
    const inputs: NamedInputValues[] = [...examples.inputs.entries()].map(([name, input]) => ({ name, ...input }) as NamedInputValues);
    const targets = examples.labels !== undefined ? { labels: examples.labels, classes: task.labels.length } : { targets: examples.targets as Float32Array, targetSize: examples.targetSize };
    return createNamedInputDataset({ inputs, ...targets, source: table.source });
  }
  const [only] = [...examples.inputs.values()];
  if (only === undefined || only.dtype !== 'float32') throw new DataError('INVALID_ARGUMENT', 'INPUTS_UNSUPPORTED', `${table.source}: the task maps no float32 input`);
  const exampleShape = only.shape.length === 0 ? [1] : only.shape;
  if (examples.labels !== undefined) {
    return createDataset({ features: only.values, labels: examples.labels, exampleShape, classes: task.labels.length, source: table.source });
  }
  return createTargetDataset({ features: only.values, targets: examples.targets as Float32Array, targetSize: examples.targetSize, exampleShape, source: table.source });
}
