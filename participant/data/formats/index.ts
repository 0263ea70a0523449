// The file-format readers: each turns a file (or image folder) into a ColumnTable.
export { type CsvTableOptions, parseCsvTable, readCsvTable } from './csv-table.js';
export { type ImageFolderOptions, type ImageFolderTable, readImageFolder } from './images.js';
export { type NpyOptions, parseNpyColumn, readNpy } from './npy.js';
export { parseNpz, readNpz } from './npz.js';
export { parseParquet, readParquet } from './parquet.js';
export { TABLE_FORMATS, type ReadTableOptions, type TableFormat, detectFormat, readColumnTable } from './read.js';
