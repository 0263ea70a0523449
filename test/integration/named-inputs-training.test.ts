/**
 * Several named inputs, int64 ids among them, the whole way a site goes: a PyTorch model with a float32
 * 'numeric' input and an int64 'category' input through nn.Embedding (scripts/torch_reference/
 * mixed_inputs.py, exported by Debian's torch 1.13) is imported, its plan trained by the Trainer on a
 * column table mapped by columnsToDataset (a string column through the task's vocabulary), and checked by
 * `fedgate task check`. The labels depend on the category alone, so only a trained embedding table
 * separates them: a plan that dropped the ids or fed them wrong stays near
 * chance, and the embedding table must have moved (a cut Gather gradient would leave it as exported).
 * Wrong dtypes and shapes of a named input are refused with messages naming the input.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkTask } from '../../cli/commands/task-check.js';
import { fromHex, toHex } from '../../crypto/bytes.js';
import { exportInferenceModel } from '../../model/export.js';
import { buildTrainingPlan } from '../../model/plan.js';
import { canonicalTaskBytes, taskHash, type TaskDocument } from '../../model/task.js';
import { pinTask } from '../../model/task-pin.js';
import { SiteDataInvalidError, isDataError } from '../../participant/daemon/site-data-check.js';
import { buildTaskContext } from '../../participant/daemon/task-context.js';
import { SiteStateStore } from '../../participant/state/index.js';
import { Random, Trainer, columnsToDataset, createNamedInputDataset, subset } from '../../participant/index.js';
import type { Column, ColumnTable } from '../../participant/data/table.js';
import { DEBIAN_PYTHON, checkSystemDependency, systemDependencies } from '../support/system-deps.js';

const torch = checkSystemDependency(systemDependencies.pythonTorch);

const CITIES = ['lyon', 'paris', 'nice', 'brest', 'metz', 'caen'];
const CLASSES = ['low', 'mid', 'high'];

function taskFor(model: Uint8Array, overrides: Partial<TaskDocument> = {}): TaskDocument {
  return {
    formatVersion: 1,
    model: { kind: 'onnx', modelSha256: createHash('sha256').update(model).digest('hex') },
    loss: 'cross_entropy',
    input: { shape: [4], dtype: 'float32' },
    normalization: { scale: 1, offset: 0 },
    labels: CLASSES,
    inputs: [
      { name: 'numeric', columns: ['x0', 'x1', 'x2', 'x3'], dtype: 'float32', shape: [4] },
      { name: 'category', column: 'city', dtype: 'int64', shape: [], vocabulary: CITIES },
    ],
    target: { column: 'risk' },
    optimizer: { kind: 'sgd', learningRate: 0.1, momentum: 0.9 },
    training: { epochs: 1, batchSize: 16, proximalMu: 0, seed: 0 },
    ...overrides,
  };
}

/** Rows whose class is the city's index mod 3; the numeric columns are noise. */
function siteTable(rows: number, seed: number): ColumnTable {
  const random = new Random(seed);
  const columns = new Map<string, Column>();
  for (let j = 0; j < 4; j++) columns.set(`x${j}`, { kind: 'numeric', values: Float64Array.from({ length: rows }, () => random.nextNormal()), cellShape: [], integer: false });
  const city = Array.from({ length: rows }, () => random.nextInt(CITIES.length));
  columns.set('city', { kind: 'string', values: city.map((c) => CITIES[c] as string) });
  columns.set('risk', { kind: 'string', values: city.map((c) => CLASSES[c % 3] as string) });
  return { source: 'site.parquet', rows, columns };
}

describe.skipIf(torch.skip)(`an imported model with a float input and int64 ids trains ${torch.reason}`, () => {
  let dir: string;
  let model: Uint8Array;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'fedgate-named-inputs-'));
    const out = join(dir, 'mixed.onnx');
    const result = spawnSync(DEBIAN_PYTHON, ['scripts/torch_reference/mixed_inputs.py', out], { encoding: 'utf8' });
    if (result.status !== 0) throw new Error(`mixed_inputs.py failed: ${result.stderr}`);
    model = readFileSync(out);
  }, 120_000);

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('through columnsToDataset and the Trainer (blocks and single steps): the loss falls and the categories are learnt', async () => {
    const task = taskFor(model);
    const plan = buildTrainingPlan(task, model);
    const train = columnsToDataset(siteTable(600, 1), task);
    const test = columnsToDataset(siteTable(300, 2), task);
    for (const stepsPerRun of ['auto', 1] as const) {
      const trainer = await Trainer.create({ plan, device: 'cpu', intraOpThreads: 1, stepsPerRun });
      try {
        const before = await trainer.evaluate(plan.initialParameters, test, { batchSize: 64 });
        const result = await trainer.train(plan.initialParameters, train, { epochs: 8, batchSize: 16, seed: 3, learningRate: 0.1 });
        const after = await trainer.evaluate(result.parameters, test, { batchSize: 64 });
        const [lossBefore, lossAfter] = [before.lossSum / before.examples, after.lossSum / after.examples];
        console.log(`named inputs, stepsPerRun ${stepsPerRun}: test loss ${lossBefore.toFixed(3)} -> ${lossAfter.toFixed(3)}, accuracy ${(before.correct / before.examples).toFixed(3)} -> ${(after.correct / after.examples).toFixed(3)}`);
        expect(lossAfter).toBeLessThan(lossBefore * 0.25);
        expect(after.correct / after.examples).toBeGreaterThan(0.97);
        const table = plan.parameters.findIndex((p) => p.name === 'embedding.weight');
        expect(table).toBeGreaterThanOrEqual(0);
        const offset = plan.parameters.slice(0, table).reduce((n, p) => n + p.shape.reduce((m, d) => m * d, 1), 0);
        const moved = result.parameters.subarray(offset, offset + 24).map((v, i) => Math.abs(v - (plan.initialParameters[offset + i] as number)));
        expect(Math.max(...moved)).toBeGreaterThan(0.05);
        // The exported inference model takes the same named inputs and predicts as the evaluation did.
        const exported = await ort.InferenceSession.create(exportInferenceModel(task, result.parameters, model));
        const [numeric, category] = test.inputs ?? [];
        const outputs = await exported.run({
          numeric: new ort.Tensor('float32', numeric?.values as Float32Array, [test.count, 4]),
          category: new ort.Tensor('int64', category?.values as BigInt64Array, [test.count]),
        });
        const logits = outputs['logits']?.data as Float32Array;
        let correct = 0;
        for (let i = 0; i < test.count; i++) {
          const row = [...logits.subarray(3 * i, 3 * i + 3)];
          if (row.indexOf(Math.max(...row)) === test.labels[i]) correct++;
        }
        expect(correct).toBe(after.correct);
      } finally {
        await trainer.close();
      }
    }
  }, 120_000);

  it('passes `fedgate task check`', async () => {
    const report = await checkTask(taskFor(model), model);
    expect(report.inputs).toEqual([
      { name: 'numeric', dtype: 'float32', shape: [4] },
      { name: 'category', dtype: 'int64', shape: [] },
    ]);
    expect(Number.isFinite(report.stepLoss)).toBe(true);
  }, 60_000);

  it('refuses a named input of the wrong dtype or shape, or a missing one, naming it', () => {
    const inputs = taskFor(model).inputs ?? [];
    const [numeric, category] = inputs as [NonNullable<TaskDocument['inputs']>[number], NonNullable<TaskDocument['inputs']>[number]];
    const asFloat = { name: 'category', column: 'city_code', dtype: 'float32' as const, shape: [] };
    expect(() => buildTrainingPlan(taskFor(model, { inputs: [numeric, asFloat] }), model)).toThrow(/input 'category' is INT64; the task's inputs declare it float32/);
    const wide = { ...numeric, columns: ['x0', 'x1', 'x2', 'x3', 'x4'], shape: [5] };
    expect(() => buildTrainingPlan(taskFor(model, { inputs: [wide, category] }), model)).toThrow(/input 'numeric' has shape \["batch",4\]; expected \[batch, 5\]/);
    expect(() => buildTrainingPlan(taskFor(model, { inputs: [category] }), model)).toThrow(/data inputs 'numeric', 'category' but the task's inputs are 'category'; not in the task 'numeric'/);
  });

  it('refuses a dataset whose named inputs are not the plan\'s, or ids outside the embedding table, naming them', async () => {
    const task = taskFor(model);
    const plan = buildTrainingPlan(task, model);
    const good = subset(columnsToDataset(siteTable(8, 4), task), [0, 1, 2, 3]);
    const [numeric] = good.inputs ?? [];
    const ids = { name: 'category', dtype: 'float32' as const, shape: [], values: new Float32Array(4) };
    const wrong = createNamedInputDataset({ inputs: [numeric as NonNullable<typeof numeric>, ids], labels: good.labels, classes: 3 });
    const trainer = await Trainer.create({ plan, device: 'cpu', intraOpThreads: 1 });
    try {
      await expect(trainer.train(plan.initialParameters, wrong, { epochs: 1, batchSize: 4, seed: 1, learningRate: 0.1 })).rejects.toThrow(
        /dataset inputs are numeric float32 \(4 values\), category float32 \(1 values\); the plan's are numeric float32 \[4\], category int64 \[\]/,
      );
      expect(plan.idRanges).toEqual({ category: CITIES.length });
      for (const id of [6n, -1n]) {
        const ids = BigInt64Array.of(0n, 1n, id, 2n);
        const outOfRange = createNamedInputDataset({ inputs: [numeric as NonNullable<typeof numeric>, { name: 'category', dtype: 'int64', shape: [], values: ids }], labels: good.labels, classes: 3 });
        await expect(trainer.train(plan.initialParameters, outOfRange, { epochs: 1, batchSize: 4, seed: 1, learningRate: 0.1 })).rejects.toThrow(
          `data input 'category', example 2 (0-based): id ${id}; expected ids in [0, 5] (the rows of the embedding table it indexes)`,
        );
      }
    } finally {
      await trainer.close();
    }
  }, 60_000);

  it('a site preparing the task refuses ids outside the embedding table, naming file, row and column, before any round', async () => {
    // An int64 column of raw ids (no vocabulary): only the plan's idRanges bound it.
    const numeric = (taskFor(model).inputs ?? [])[0] as NonNullable<TaskDocument['inputs']>[number];
    const pinned = pinTask(taskFor(model, { inputs: [numeric, { name: 'category', column: 'city_code', dtype: 'int64', shape: [] }] }), model);
    const hash = fromHex(taskHash(pinned, model));
    const taskBytes = canonicalTaskBytes(pinned);
    const blobs = { fetch: async (requested: Uint8Array): Promise<Uint8Array> => (toHex(requested) === toHex(hash) ? taskBytes : model) };
    const lines = ['x0,x1,x2,x3,city_code,risk', ...Array.from({ length: 12 }, (_, row) => `0.1,0.2,0.3,0.4,${row === 7 ? CITIES.length : row % CITIES.length},${CLASSES[row % 3]}`)];
    const path = join(dir, 'ids.csv');
    writeFileSync(path, `${lines.join('\n')}\n`);
    const state = mkdtempSync(join(dir, 'state-'));
    const prepared = buildTaskContext(hash, {
      blobs,
      randomness: await SiteStateStore.open(state),
      data: { format: 'table', path, header: 'yes', test_fraction: 0.25, split_seed: 1 },
      device: 'cpu',
      intraOpThreads: 1,
      logger: pino({ level: 'silent' }),
    });
    const error = await prepared.then(
      () => undefined,
      (failure: unknown) => failure,
    );
    // A DataError: the daemon turns it into SITE_DATA_INVALID (stops at start-up, sits rounds out later).
    expect(isDataError(error)).toBe(true);
    expect((error as Error).message).toBe(
      `${path}, row 7, column 'city_code': id ${CITIES.length} is out of range; input 'category' expects integers in [0, ${CITIES.length - 1}] (the rows of the embedding table it indexes)`,
    );
    expect(new SiteDataInvalidError(error, 'task').reason).toBe('SITE_DATA_INVALID');
  }, 60_000);
});
