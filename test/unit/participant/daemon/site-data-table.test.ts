/**
 * site.yaml `data.format: table`: a site's Parquet, NPZ or CSV file goes through the format readers and
 * columnsToDataset as the task's inputs and target say (named inputs with a vocabulary, a regression
 * target, class names), the task's normalisation applied to the one float input; a corrupt file fails
 * the start-time check (before the site dials anyone) naming the file, and a column of the wrong type or
 * a category outside the vocabulary fails when the task is prepared, naming row and column.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { zipSync } from 'fflate';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileSiteConfig } from '../../../../cli/config/site-config.js';
import type { TaskDocument } from '../../../../model/index.js';
import { SiteDataInvalidError, SiteDataWatch, checkSiteDataStructure } from '../../../../participant/daemon/site-data-check.js';
import { loadSiteData, type TableDataSpec } from '../../../../participant/daemon/site-data.js';
import { bytesOf, encodeNpy } from '../../../support/npy-writer.js';
import { writeParquet } from '../../../support/parquet-writer.js';
import { taskFor } from '../../../support/model/tasks.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fedgate-site-table-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const table = (path: string, extra: Partial<TableDataSpec> = {}): TableDataSpec => ({ format: 'table', path, header: 'auto', test_fraction: 0.25, split_seed: 1, ...extra });

const CITIES = ['paris', 'lyon', 'nice'];
/** Named inputs (numeric columns + a categorical city through the vocabulary), class target 'outcome'. */
const mixed: TaskDocument = {
  ...taskFor({ kind: 'logreg', inputShape: [2], classes: 2 }),
  model: { kind: 'onnx', modelSha256: '0'.repeat(64) },
  labels: ['no', 'yes'],
  inputs: [
    { name: 'numeric', columns: ['age', 'income'], dtype: 'float32', shape: [2] },
    { name: 'city', column: 'city', dtype: 'int64', shape: [], vocabulary: CITIES },
  ],
  target: { column: 'outcome' },
  normalization: { scale: 1, offset: 0 },
};

const rows = 8;
const ages = Array.from({ length: rows }, (_, i) => 20 + i);
const cities = Array.from({ length: rows }, (_, i) => CITIES[i % 3] as string);
const outcomes = Array.from({ length: rows }, (_, i) => (i % 2 === 0 ? 'yes' : 'no'));

describe('site data in column formats', () => {
  it('maps a Parquet file onto named inputs and class names, train and test together holding every row', async () => {
    const path = join(dir, 'site.parquet');
    await writeFile(path, writeParquet([
      { name: 'age', type: 'DOUBLE', values: ages },
      { name: 'income', type: 'FLOAT', values: ages.map((a) => a / 10) },
      { name: 'city', type: 'STRING', values: cities },
      { name: 'outcome', type: 'STRING', values: outcomes },
    ]));
    const { train, test } = await loadSiteData(table(path), mixed);
    expect(train.count + test.count).toBe(rows);
    for (const part of [train, test]) {
      expect(part.inputs?.map((input) => input.name)).toEqual(['numeric', 'city']);
      const numeric = part.inputs?.[0]?.values as Float32Array;
      const ids = part.inputs?.[1]?.values as BigInt64Array;
      for (let i = 0; i < part.count; i++) {
        const row = (numeric[2 * i] as number) - 20;
        expect(numeric[2 * i + 1]).toBeCloseTo((20 + row) / 10, 5);
        expect(Number(ids[i])).toBe(row % 3);
        expect(part.labels[i]).toBe(row % 2 === 0 ? 1 : 0);
      }
    }
  });

  it('maps an NPZ file with a regression target, normalising the one float input', async () => {
    const path = join(dir, 'site.npz');
    const x = Float32Array.from({ length: rows * 3 }, (_, i) => i);
    const y = Float32Array.from({ length: rows }, (_, i) => 0.5 * i);
    await writeFile(path, zipSync({ 'x.npy': encodeNpy(bytesOf(x), { descr: '<f4', shape: [rows, 3] }), 'y.npy': encodeNpy(bytesOf(y), { descr: '<f4', shape: [rows] }) }));
    const task: TaskDocument = { ...taskFor({ kind: 'logreg', inputShape: [3], classes: 1 }), loss: { kind: 'mse' }, labels: ['y'], target: { column: 'y' }, normalization: { scale: 2, offset: 1 } };
    const { train, test } = await loadSiteData(table(path), task);
    let seen = 0;
    for (const part of [train, test]) {
      expect(part.exampleShape).toEqual([3]);
      for (let i = 0; i < part.count; i++) {
        const row = ((part.features[3 * i] as number) - 1) / 2 / 3;
        expect(part.features[3 * i + 2]).toBe((3 * row + 2) * 2 + 1);
        expect(part.targets?.[i]).toBe(0.5 * row);
        seen++;
      }
    }
    expect(seen).toBe(rows);
  });

  it('maps a CSV file with a categorical string column through the vocabulary, and names a category outside it', async () => {
    const path = join(dir, 'site.csv');
    const lines = ['age,income,city,outcome', ...ages.map((age, i) => `${age},${age / 10},${cities[i]},${outcomes[i]}`)];
    await writeFile(path, `${lines.join('\n')}\n`);
    const { train, test } = await loadSiteData(table(path), mixed);
    expect(train.count + test.count).toBe(rows);
    expect(new Set([...((train.inputs?.[1]?.values as BigInt64Array) ?? [])].map(Number))).toEqual(new Set([0, 1, 2]));

    const unknown = join(dir, 'unknown-city.csv');
    await writeFile(unknown, `${[...lines.slice(0, 4), '40,4,brest,yes'].join('\n')}\n`);
    await expect(loadSiteData(table(unknown), mixed)).rejects.toThrow(/unknown-city\.csv, row 3, column 'city': "brest" is not in the vocabulary/);
  });

  it("holds ids to the plan's embedding tables (idRanges): a vocabulary longer than the table fails at the first word past it", async () => {
    const path = join(dir, 'ranged.csv');
    const lines = ['age,income,city,outcome', ...ages.map((age, i) => `${age},${age / 10},${cities[i]},${outcomes[i]}`)];
    await writeFile(path, `${lines.join('\n')}\n`);
    await expect(loadSiteData(table(path), mixed, { idRanges: { city: 3 } })).resolves.toBeDefined();
    await expect(loadSiteData(table(path), mixed, { idRanges: { city: 2 } })).rejects.toThrow(
      /ranged\.csv, row 2, column 'city': "nice" is id 2 of the vocabulary of input 'city', but the embedding table it indexes has 2 rows/,
    );
  });

  it('names a Parquet column of the wrong type when the task is prepared', async () => {
    const path = join(dir, 'typed.parquet');
    await writeFile(path, writeParquet([
      { name: 'age', type: 'STRING', values: ages.map(String) },
      { name: 'income', type: 'FLOAT', values: ages },
      { name: 'city', type: 'STRING', values: cities },
      { name: 'outcome', type: 'STRING', values: outcomes },
    ]));
    await expect(loadSiteData(table(path), mixed)).rejects.toThrow(/typed\.parquet, column 'age': holds text \(row 0: "20"\); the task's input 'numeric' expects numbers/);
  });

  it('refuses a corrupt file at start, before the site dials anyone, naming the file', async () => {
    const path = join(dir, 'corrupt.parquet');
    await writeFile(path, new TextEncoder().encode('PAR1 this is not a parquet file PAR1'));
    await expect(checkSiteDataStructure(table(path))).rejects.toThrow(/corrupt\.parquet: not a readable Parquet file/);
    const watch = new SiteDataWatch({ spec: table(path), intervalMs: 0, reload: async () => {}, logger: pino({ level: 'silent' }) });
    await expect(watch.checkAtStart()).rejects.toThrow(SiteDataInvalidError);
  });

  it('is a site.yaml data format whose paths resolve against the config directory', () => {
    const config = compileSiteConfig(
      {
        coordinator: 'localhost:7000',
        tls: { ca: 'ca.pem', cert: 'site.pem', key: 'site.key' },
        data: { format: 'table', path: 'data/site.parquet', test_path: 'data/test.parquet' },
        accepted_tasks: ['a'.repeat(64)],
      },
      'site.yaml',
      '/srv/site',
    );
    expect(config.data).toMatchObject({ format: 'table', path: '/srv/site/data/site.parquet', test_path: '/srv/site/data/test.parquet', header: 'auto', test_fraction: 0.2 });
  });
});
