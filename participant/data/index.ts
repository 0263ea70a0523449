// Public API of participant/data: loaders, normalisation, splits and simulation partitioners.
export { DataError, type DataErrorCode } from './errors.js';
export { type Dataset, type DatasetInit, type NamedInputDatasetInit, type NamedInputValues, type TargetDatasetInit, createDataset, createNamedInputDataset, createTargetDataset, featureSize, labelHistogram, reshapeExamples, subset, validateLabels } from './dataset.js';
export { type CsvOptions, loadCsv, parseCsv } from './csv.js';
export { type IdxArray, type IdxData, type IdxDatasetOptions, encodeIdx, loadIdx, loadIdxDataset, parseIdx } from './idx.js';
export { type Normalization, normalize, normalizeFeatures } from './normalize.js';
export { Random, shuffledIndices } from './random.js';
export { type SplitIndices, type SplitOptions, splitIndices, trainTestSplit } from './split.js';
export { type DirichletOptions, type ShardOptions, partitionDirichlet, partitionIid, partitionShards } from './partition.js';
export { DIGITS_CLASSES, DIGITS_EXAMPLE_SHAPE, DIGITS_LABELS, DIGITS_MAX_VALUE, digitsPath, loadDigits } from './digits.js';
export { columnsToDataset, columnsToExamples, type InputValues, type MappedExamples } from './columns-to-dataset.js';
export { type CsvTableOptions, type ImageFolderOptions, type ImageFolderTable, type ReadTableOptions, type TableFormat, TABLE_FORMATS, readColumnTable } from './formats/index.js';
