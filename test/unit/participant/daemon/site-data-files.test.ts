/**
 * A site's data files as site.yaml names them (participant/daemon/site-data-check.ts,
 * participant/daemon/site-data.ts), for the csv and idx formats and the table format's separate test
 * file: every file is read in full at start, before the site dials anyone, so a hostile or broken file
 * (a separate test file included) stops the site there; the header setting is obeyed, a separate test
 * file is the test split, and a simulation partition picks this site's share. (The table format's
 * readers are covered in site-data-table.test.ts, polling in site-data-watch.test.ts.)
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TaskDocument } from '../../../../model/index.js';
import { DataError } from '../../../../participant/data/errors.js';
import { encodeIdx, loadCsv, partitionDirichlet, partitionIid, partitionShards } from '../../../../participant/data/index.js';
import { SiteDataInvalidError, checkSiteDataStructure, isDataError } from '../../../../participant/daemon/site-data-check.js';
import { loadSiteData, tableReadOptions, type PartitionSpec, type SiteDataSpec } from '../../../../participant/daemon/site-data.js';
import { taskFor } from '../../../support/model/tasks.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fedgate-site-data-files-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

let written = 0;
async function file(name: string, contents: string | Uint8Array): Promise<string> {
  const path = join(dir, `${written++}-${name}`);
  await writeFile(path, contents);
  return path;
}

const task = taskFor({ kind: 'logreg', inputShape: [6], classes: 3 });
const csvSpec = (path: string, header: 'auto' | 'yes' | 'no', extra: Partial<Extract<SiteDataSpec, { format: 'csv' }>> = {}): SiteDataSpec => ({
  format: 'csv',
  path,
  label_column: -1,
  header,
  test_fraction: 0.25,
  split_seed: 1,
  ...extra,
});
/** `count` rows of 6 features and a class label, each row's features starting at its own index. */
const csvRows = (count: number): string => Array.from({ length: count }, (_, row) => [...Array.from({ length: 6 }, (_, column) => row * 10 + column), row % 3].join(',')).join('\n');

/** IDX images [count, 2, 3] and labels [count]. */
async function idxPair(count: number, labels = Uint8Array.from({ length: count }, (_, i) => i % 3)): Promise<{ images: string; labels: string }> {
  return {
    images: await file('images-idx3-ubyte', encodeIdx([count, 2, 3], Uint8Array.from({ length: count * 6 }, (_, i) => i % 256))),
    labels: await file('labels-idx1-ubyte', encodeIdx([labels.length], labels)),
  };
}

async function failure(work: Promise<unknown>): Promise<Error> {
  return work.then(
    () => {
      throw new Error('expected a failure');
    },
    (error: unknown) => error as Error,
  );
}

describe('the start-time check of csv files', () => {
  it('obeys the header setting: "no" reads the first row as data (a text row is refused), "yes" skips it', async () => {
    const withHeader = await file('header.csv', `a,b,c,d,e,f,label\n${csvRows(4)}\n`);
    await expect(checkSiteDataStructure(csvSpec(withHeader, 'yes'))).resolves.toBeUndefined();
    await expect(checkSiteDataStructure(csvSpec(withHeader, 'auto'))).resolves.toBeUndefined();
    const refused = await failure(checkSiteDataStructure(csvSpec(withHeader, 'no')));
    expect(refused).toBeInstanceOf(DataError);
    expect(refused.message).toMatch(/row 1/);
    // A first row that looks like data but is declared a header is skipped: one row fewer.
    const numeric = await file('numeric.csv', `${csvRows(4)}\n`);
    const rows = async (spec: SiteDataSpec): Promise<number> => {
      const data = await loadSiteData(spec, task);
      return data.train.count + data.test.count;
    };
    expect(await rows(csvSpec(numeric, 'yes'))).toBe(3);
    expect(await rows(csvSpec(numeric, 'no'))).toBe(4);
    expect(await rows(csvSpec(numeric, 'auto'))).toBe(4);
    expect(await rows(csvSpec(withHeader, 'auto'))).toBe(4);
  });

  it('refuses a non-numeric feature cell anywhere in the file, naming row and column', async () => {
    const path = await file('cell.csv', `${csvRows(3)}\n1,2,3,NaNish,5,6,0\n`);
    expect((await failure(checkSiteDataStructure(csvSpec(path, 'no')))).message).toMatch(/row 4, column 4/);
  });
});

describe('the start-time check of idx files', () => {
  it('reads the separate test files too: a broken test label file stops the site at start', async () => {
    const train = await idxPair(4);
    const test = await idxPair(2);
    const spec: SiteDataSpec = { format: 'idx', images: train.images, labels: train.labels, test_images: test.images, test_labels: test.labels, test_fraction: 0, split_seed: 1 };
    await expect(checkSiteDataStructure(spec)).resolves.toBeUndefined();
    // Test labels for 3 images, the test image file holds 2: refused at start, naming the count.
    const mismatched = await idxPair(2, Uint8Array.of(0, 1, 2));
    const broken = { ...spec, test_labels: mismatched.labels };
    expect(isDataError(await failure(checkSiteDataStructure(broken)))).toBe(true);
    // The training pair itself is checked as well.
    expect(isDataError(await failure(checkSiteDataStructure({ ...spec, labels: mismatched.labels })))).toBe(true);
  });

  it('uses the separate test files as the test split, normalised like the training files', async () => {
    const train = await idxPair(4);
    const test = await idxPair(2);
    const data = await loadSiteData({ format: 'idx', images: train.images, labels: train.labels, test_images: test.images, test_labels: test.labels, test_fraction: 0.5, split_seed: 1 }, { ...task, normalization: { scale: 0.5, offset: 0 } });
    expect([data.train.count, data.test.count]).toEqual([4, 2]);
    expect(Array.from(data.test.labels)).toEqual([0, 1]);
    expect(Array.from(data.test.features.subarray(0, 3))).toEqual([0, 0.5, 1]);
    // Without them, test_fraction of the training files is held out.
    const split = await loadSiteData({ format: 'idx', images: train.images, labels: train.labels, test_fraction: 0.5, split_seed: 1 }, task);
    expect(split.train.count + split.test.count).toBe(4);
    expect(split.test.count).toBe(2);
  });
});

describe('the start-time check of a table with a separate test file', () => {
  it('reads the test file too: a corrupt one stops the site at start; a good one is the test split', async () => {
    const path = await file('train.csv', `a,b,c,d,e,f,label\n${csvRows(4)}\n`);
    const corrupt = await file('test.parquet', 'PAR1 not a parquet file PAR1');
    const spec: SiteDataSpec = { format: 'table', path, test_path: corrupt, header: 'auto', test_fraction: 0.25, split_seed: 1 };
    const refused = await failure(checkSiteDataStructure(spec));
    expect(refused.message).toMatch(/test\.parquet/);
    await expect(checkSiteDataStructure({ ...spec, test_path: undefined })).resolves.toBeUndefined();
    const test = await file('test.csv', `a,b,c,d,e,f,label\n${csvRows(2)}\n`);
    await expect(checkSiteDataStructure({ ...spec, test_path: test })).resolves.toBeUndefined();
    const tableTask = { ...task, target: { column: 'label' } };
    const data = await loadSiteData({ ...spec, test_path: test }, tableTask);
    expect([data.train.count, data.test.count]).toEqual([4, 2]);
  });

  it('reads a table the way site.yaml says: its file format and header setting, images at their shape', () => {
    expect(tableReadOptions({ format: 'table', path: '/p', header: 'no', test_fraction: 0, split_seed: 1 })).toEqual({ header: false });
    expect(tableReadOptions({ format: 'table', path: '/p', header: 'yes', file_format: 'csv', test_fraction: 0, split_seed: 1 })).toEqual({ format: 'csv', header: true });
    expect(tableReadOptions({ format: 'table', path: '/p', header: 'auto', test_fraction: 0, split_seed: 1 }, { input: { shape: [3, 8, 8], dtype: 'float32' } })).toEqual({ header: 'auto', imageShape: [3, 8, 8] });
    expect(tableReadOptions({ format: 'table', path: '/p', header: 'auto', image_shape: [1, 4, 4], test_fraction: 0, split_seed: 1 }, { input: { shape: [3, 8, 8], dtype: 'float32' } })).toEqual({ header: 'auto', imageShape: [1, 4, 4] });
    expect(tableReadOptions({ format: 'table', path: '/p', header: 'auto', test_fraction: 0, split_seed: 1 }, { input: { shape: [64], dtype: 'float32' } })).toEqual({ header: 'auto' });
  });
});

describe('simulation partitions', () => {
  it("each partition kind gives this site its own share of a shared file; an index outside the partition's sites is refused", async () => {
    const path = await file('shared.csv', `${csvRows(30)}\n`);
    const share = async (partition: PartitionSpec): Promise<number[]> => {
      const data = await loadSiteData(csvSpec(path, 'no', { partition }), task);
      // Each row's first feature is its row index x 10 (normalisation is the identity for this task).
      const firsts = (part: typeof data.train): number[] => Array.from({ length: part.count }, (_, i) => (part.features[i * 6] as number) / 10);
      return [...firsts(data.train), ...firsts(data.test)].sort((a, b) => a - b);
    };
    const whole = await loadCsv(path, { classes: 3, label: -1, header: false });
    const rowsOf = (indices: Int32Array | undefined): number[] => Array.from(indices ?? [], (i) => (whole.features[i * 6] as number) / 10).sort((a, b) => a - b);
    const kinds = [
      { spec: { kind: 'iid', count: 3, seed: 1 }, parts: partitionIid(whole, { clients: 3, seed: 1 }) },
      { spec: { kind: 'dirichlet', alpha: 0.3, count: 3, seed: 1 }, parts: partitionDirichlet(whole, { clients: 3, alpha: 0.3, seed: 1 }) },
      { spec: { kind: 'shards', shards_per_site: 2, count: 3, seed: 1 }, parts: partitionShards(whole, { clients: 3, shardsPerClient: 2, seed: 1 }) },
    ] as const;
    for (const { spec, parts } of kinds) {
      const shares = await Promise.all([0, 1, 2].map((index) => share({ ...spec, index } as PartitionSpec)));
      // This site's share is exactly what the partition kind site.yaml names gives it.
      expect(shares).toEqual([0, 1, 2].map((index) => rowsOf(parts[index])));
      // Disjoint shares that together are the whole file.
      expect(shares.flat().sort((a, b) => a - b)).toEqual(Array.from({ length: 30 }, (_, i) => i));
      const refused = await failure(share({ ...spec, index: 3 } as PartitionSpec));
      expect(refused).toBeInstanceOf(RangeError);
      expect(refused.message).toBe('data.partition.index 3 is outside 0..2');
    }
    // The three kinds split the file differently (so a kind read as another would show above).
    expect(new Set(kinds.map(({ parts }) => rowsOf(parts[0]).join(','))).size).toBe(3);
  });
});

describe('data that does not fit the task', () => {
  it('is a DataError with its own code (the site sits rounds out), and at start a SiteDataInvalidError that says the coordinator learnt nothing', async () => {
    const path = await file('floats.csv', `${csvRows(4)}\n`);
    const regression: TaskDocument = { ...task, loss: { kind: 'mse' } };
    const unfit = await failure(loadSiteData(csvSpec(path, 'no'), regression));
    expect(isDataError(unfit)).toBe(true);
    expect(unfit).toMatchObject({ code: 'FAILED_PRECONDITION', reason: 'DATA_FORMAT_UNFIT' });
    const atTask = new SiteDataInvalidError(unfit, 'task');
    expect(atTask).toMatchObject({ code: 'FAILED_PRECONDITION', reason: 'SITE_DATA_INVALID', name: 'SiteDataInvalidError', cause: unfit });
    expect(atTask.message).toBe(`the site's data failed validation: ${unfit.message}. Fix the file and start the site again (the coordinator was told nothing about the data)`);
    expect(new SiteDataInvalidError('bad row').message).toBe("the site's data failed validation: bad row. Fix the file and start the site again (nothing was sent to the coordinator)");
    expect(isDataError(new Error('download failed'))).toBe(false);
  });
});
