/**
 * DP-SGD through the Trainer on a model with several named inputs, int64 ids among them (the PyTorch
 * model of scripts/torch_reference/mixed_inputs.py: a float 'numeric' input and an nn.Embedding over
 * 'category'): the worker gathers Poisson batches of every named input, the embedding table gets its
 * per-example gradient (one-hot MatMul), and with labels that depend on the category alone the model
 * learns them under noise (sigma 1, C 1, q = 32/600, 300 steps), which it cannot without a working
 * embedding gradient.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildTrainingPlan } from '../../model/plan.js';
import type { TaskDocument } from '../../model/task.js';
import { Random, Trainer, columnsToDataset } from '../../participant/index.js';
import type { Column, ColumnTable } from '../../participant/data/table.js';
import { DEBIAN_PYTHON, checkSystemDependency, systemDependencies } from '../support/system-deps.js';

const torch = checkSystemDependency(systemDependencies.pythonTorch);
const CITIES = ['lyon', 'paris', 'nice', 'brest', 'metz', 'caen'];
const CLASSES = ['low', 'mid', 'high'];

function siteTable(rows: number, seed: number): ColumnTable {
  const random = new Random(seed);
  const columns = new Map<string, Column>();
  for (let j = 0; j < 4; j++) columns.set(`x${j}`, { kind: 'numeric', values: Float64Array.from({ length: rows }, () => random.nextNormal()), cellShape: [], integer: false });
  const city = Array.from({ length: rows }, () => random.nextInt(CITIES.length));
  columns.set('city', { kind: 'string', values: city.map((c) => CITIES[c] as string) });
  columns.set('risk', { kind: 'string', values: city.map((c) => CLASSES[c % 3] as string) });
  return { source: 'site.parquet', rows, columns };
}

describe.skipIf(torch.skip)(`DP-SGD on named inputs with int64 ids ${torch.reason}`, () => {
  it('gathers every named input per Poisson batch and learns the categories under noise', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fedgate-dp-named-'));
    try {
      const out = join(dir, 'mixed.onnx');
      const made = spawnSync(DEBIAN_PYTHON, ['scripts/torch_reference/mixed_inputs.py', out], { encoding: 'utf8' });
      expect(made.status, made.stderr).toBe(0);
      const model = new Uint8Array(readFileSync(out));
      const task: TaskDocument = {
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
        optimizer: { kind: 'sgd', learningRate: 0.5, momentum: 0.5 },
        training: { epochs: 1, batchSize: 16, proximalMu: 0, seed: 0 },
        privacy: { recordLevel: { clipNorm: 1, noiseMultiplier: 1, samplingRate: 32 / 600, stepsPerRound: 300 } },
      };
      const plan = buildTrainingPlan(task, model);
      expect(plan.dpSgd).toBeDefined();
      const train = columnsToDataset(siteTable(600, 1), task);
      const test = columnsToDataset(siteTable(300, 2), task);
      const trainer = await Trainer.create({ plan, device: 'cpu', intraOpThreads: 1 });
      try {
        const before = await trainer.evaluate(plan.initialParameters, test, { batchSize: 64 });
        const result = await trainer.train(plan.initialParameters, train, { epochs: 1, batchSize: 16, seed: 3, learningRate: 0.5 });
        const after = await trainer.evaluate(result.parameters, test, { batchSize: 64 });
        console.log(`DP-SGD named inputs: test accuracy ${(before.correct / before.examples).toFixed(3)} -> ${(after.correct / after.examples).toFixed(3)}`);
        expect(result.dpSgd).toMatchObject({ stepsRun: 300, trainingExamples: 600, samplingRate: 32 / 600 });
        expect(after.correct / after.examples).toBeGreaterThan(0.9);
      } finally {
        await trainer.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 180_000);
});
