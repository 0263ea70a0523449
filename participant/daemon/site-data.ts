/**
 * Loads a site's local data as site.yaml describes it, normalised with the task's constants, split into
 * a training part and the local test part used for federated evaluation. Simulation partitions (one
 * shard of a shared dataset per site) are applied before the split, so each site's test split comes from
 * its own distribution.
 */
import { lossOf, targetKindOf, type TaskDocument } from '../../model/task.js';
import { columnsToDataset } from '../data/columns-to-dataset.js';
import { loadCsv } from '../data/csv.js';
import { readColumnTable, type ReadTableOptions, type TableFormat } from '../data/formats/index.js';
import { createDataset, subset, type Dataset } from '../data/dataset.js';
import { loadDigits } from '../data/digits.js';
import { DataError } from '../data/errors.js';
import { loadIdxDataset } from '../data/idx.js';
import { normalize } from '../data/normalize.js';
import { partitionDirichlet, partitionIid, partitionShards } from '../data/partition.js';
import { trainTestSplit } from '../data/split.js';

export type PartitionSpec =
  | { readonly kind: 'iid'; readonly count: number; readonly index: number; readonly seed: number }
  | { readonly kind: 'dirichlet'; readonly alpha: number; readonly count: number; readonly index: number; readonly seed: number }
  | { readonly kind: 'shards'; readonly shards_per_site: number; readonly count: number; readonly index: number; readonly seed: number };

export type SiteDataSpec =
  | { readonly format: 'csv'; readonly path: string; readonly label_column: string | number; readonly header: 'auto' | 'yes' | 'no'; readonly test_fraction: number; readonly split_seed: number; readonly partition?: PartitionSpec | undefined }
  | { readonly format: 'idx'; readonly images: string; readonly labels: string; readonly test_images?: string | undefined; readonly test_labels?: string | undefined; readonly test_fraction: number; readonly split_seed: number; readonly partition?: PartitionSpec | undefined }
  | { readonly format: 'digits'; readonly test_fraction: number; readonly split_seed: number; readonly partition?: PartitionSpec | undefined }
  | TableDataSpec;

/**
 * A column-format file (NPY, NPZ, Parquet, CSV with named and string columns, or a folder of class
 * folders of images) mapped onto the task's inputs and targets by columnsToDataset.
 */
export interface TableDataSpec {
  readonly format: 'table';
  readonly path: string;
  /** @default from the path (participant/data/formats/read.ts) */
  readonly file_format?: TableFormat | undefined;
  /** CSV: whether the first row is a header. */
  readonly header: 'auto' | 'yes' | 'no';
  /** Image folders: [channels, height, width] to convert to. @default the task's input.shape */
  readonly image_shape?: readonly [number, number, number] | undefined;
  /** A separate test file of the same format; without it test_fraction of `path` is held out. */
  readonly test_path?: string | undefined;
  readonly test_fraction: number;
  readonly split_seed: number;
  readonly partition?: PartitionSpec | undefined;
}

export interface SiteData {
  readonly train: Dataset;
  readonly test: Dataset;
}

/**
 * The csv, idx and digits formats read one float input and one class-index column: a task with float
 * targets (multi-label, regression) or an `inputs` mapping needs a column format (columns-to-dataset.ts).
 */
function checkFormatFitsTask(spec: SiteDataSpec, task: TaskDocument): void {
  if (spec.format === 'table') return;
  const loss = lossOf(task).kind;
  const problem =
    targetKindOf(loss) !== 'class' ? `its loss ${loss} needs float targets` : task.inputs !== undefined ? 'it maps named inputs from columns (task inputs)' : undefined;
  if (problem === undefined) return;
  throw new DataError(
    'FAILED_PRECONDITION',
    'DATA_FORMAT_UNFIT',
    `data.format ${spec.format} reads features and one class-index column, but the task does not fit it: ${problem}; give the site its data in a column format`,
  );
}

export interface LoadSiteDataOptions {
  /**
   * The training plan's idRanges (rows of the embedding table each int64 input indexes): an id outside
   * them fails here, naming file, row and column, when the task is prepared, not at the first round.
   */
  readonly idRanges?: Readonly<Record<string, number>> | undefined;
}

export async function loadSiteData(spec: SiteDataSpec, task: TaskDocument, options: LoadSiteDataOptions = {}): Promise<SiteData> {
  checkFormatFitsTask(spec, task);
  const classes = task.labels.length;
  const exampleShape = task.input.shape;
  let all: Dataset;
  let separateTest: Dataset | undefined;
  switch (spec.format) {
    case 'csv':
      all = await loadCsv(spec.path, { classes, label: spec.label_column, header: spec.header === 'auto' ? 'auto' : spec.header === 'yes', exampleShape });
      break;
    case 'idx':
      all = await loadIdxDataset({ images: spec.images, labels: spec.labels, classes, exampleShape });
      if (spec.test_images !== undefined && spec.test_labels !== undefined) {
        separateTest = await loadIdxDataset({ images: spec.test_images, labels: spec.test_labels, classes, exampleShape });
      }
      break;
    case 'digits':
      all = reshape(await loadDigits(), exampleShape);
      break;
    case 'table':
      all = columnsToDataset(await readColumnTable(spec.path, tableReadOptions(spec, task)), task, options);
      if (spec.test_path !== undefined) separateTest = columnsToDataset(await readColumnTable(spec.test_path, tableReadOptions(spec, task)), task, options);
      break;
  }
  if (spec.partition !== undefined) all = subset(all, partitionOf(all, spec.partition));
  const normalized = normalize(all, task.normalization);
  if (separateTest !== undefined) return { train: normalized, test: normalize(separateTest, task.normalization) };
  return trainTestSplit(normalized, { testFraction: spec.test_fraction, seed: spec.split_seed });
}

/** How to read a table file: its format, CSV header, and the shape images are converted to. */
export function tableReadOptions(spec: TableDataSpec, task?: Pick<TaskDocument, 'input'>): ReadTableOptions {
  const shape = spec.image_shape ?? (task?.input.shape.length === 3 ? (task.input.shape as [number, number, number]) : undefined);
  return {
    ...(spec.file_format === undefined ? {} : { format: spec.file_format }),
    header: spec.header === 'auto' ? 'auto' : spec.header === 'yes',
    ...(shape === undefined ? {} : { imageShape: shape }),
  };
}

function partitionOf(dataset: Dataset, partition: PartitionSpec): Int32Array {
  const parts =
    partition.kind === 'iid'
      ? partitionIid(dataset, { clients: partition.count, seed: partition.seed })
      : partition.kind === 'dirichlet'
        ? partitionDirichlet(dataset, { clients: partition.count, alpha: partition.alpha, seed: partition.seed })
        : partitionShards(dataset, { clients: partition.count, shardsPerClient: partition.shards_per_site, seed: partition.seed });
  const part = parts[partition.index];
  if (part === undefined) throw new RangeError(`data.partition.index ${partition.index} is outside 0..${parts.length - 1}`);
  return part;
}

function reshape(dataset: Dataset, exampleShape: readonly number[]): Dataset {
  if (dataset.exampleShape.join(',') === exampleShape.join(',')) return dataset;
  return createDataset({ features: dataset.features, labels: dataset.labels, exampleShape, classes: dataset.classes, source: 'digits' });
}
