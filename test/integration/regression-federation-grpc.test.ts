/**
 * Regression federated end to end: three real participant daemons and the real coordinator over gRPC and
 * mutual TLS, secure aggregation on, train the diabetes table shipped with Debian's python3-sklearn
 * (442 patients, 10 raw features, disease progression) with MSE. Each site reads its own share of the
 * training split from a Parquet file (site.yaml `data.format: table`, the target column named by the
 * task). R^2 is measured twice: here, by exporting the committed model every site holds as a plain
 * inference model (normalisation inside) and running it with ONNX Runtime on the raw test split; and by
 * the coordinator, from the regression metric slots of the secure sum (sum r^2, sum |r|, sum y, sum y^2
 * over the sites' test sets, RoundConfig metricSlots) in the evaluation-only round on the final model,
 * as the Admin API reports it. Each site evaluates on the same test file, so the pooled R^2 is the test
 * split's. Both must come within 0.05 of scikit-learn's LinearRegression on the same split; a wrong
 * target feed, a broken gradient, an aggregate that lost a site's update, or a regression sum put in
 * the wrong slot or scaled wrong falls short.
 */
import { spawnSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { metricsMessage } from '../../coordinator/admin/admin-wire.js';
import type { TaskDocument } from '../../model/task.js';
import type { SiteDataSpec } from '../../participant/daemon/site-data.js';
import { committedModelOutputs } from '../support/committed-model.js';
import { GrpcFederation } from '../support/grpc-federation.js';
import { writeParquet } from '../support/parquet-writer.js';
import { createTempDirectory, createTestPki, type TempDirectory, type TestPki } from '../support/pki.js';
import { DEBIAN_PYTHON, checkSystemDependency, systemDependencies } from '../support/system-deps.js';

const sklearn = checkSystemDependency(systemDependencies.pythonSklearn);

const SITES = 3;
const ROUNDS = 8;
const FEATURES = Array.from({ length: 10 }, (_, i) => `f${i}`);

interface Split {
  readonly xTrain: number[][];
  readonly yTrain: number[];
  readonly xTest: number[][];
  readonly yTest: number[];
  readonly mean: number[];
  readonly std: number[];
  readonly reference: number;
}

// The same split and reference as test/integration/training-regression.test.ts.
const DIABETES = String.raw`
import json
from sklearn.datasets import load_diabetes
from sklearn.model_selection import train_test_split
from sklearn.linear_model import LinearRegression
X, y = load_diabetes(return_X_y=True, scaled=False)
a, b, c, d = train_test_split(X, y, test_size=0.25, random_state=0)
r2 = LinearRegression().fit(a, c).score(b, d)
print(json.dumps({'xTrain': a.tolist(), 'yTrain': c.tolist(), 'xTest': b.tolist(), 'yTest': d.tolist(),
  'mean': a.mean(0).tolist(), 'std': a.std(0).tolist(), 'reference': r2}))
`;

function parquetOf(x: readonly number[][], y: readonly number[]): Uint8Array {
  return writeParquet([
    ...FEATURES.map((name, j) => ({ name, type: 'DOUBLE' as const, values: x.map((row) => row[j] as number) })),
    { name: 'progression', type: 'DOUBLE' as const, values: [...y] },
  ]);
}

let pki: TestPki;
let files: TempDirectory;
let harness: GrpcFederation | undefined;

beforeAll(async () => {
  pki = await createTestPki('fedgate regression federation CA');
  files = await createTempDirectory('fedgate-regression-');
});

afterAll(async () => {
  await harness?.close();
  await files?.remove();
});

describe.skipIf(sklearn.skip)(`a regression federation over mutual TLS with secure aggregation ${sklearn.reason}`, () => {
  it(`diabetes (MSE), ${SITES} sites reading Parquet, ${ROUNDS} secure rounds: test R^2 of the committed model, and the R^2 the coordinator reports from the secure sum, within 0.05 of LinearRegression`, async () => {
    const result = spawnSync(DEBIAN_PYTHON, ['-c', DIABETES], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    if (result.status !== 0) throw new Error(`python failed: ${result.stderr}`);
    const split = JSON.parse(result.stdout) as Split;

    const testPath = join(files.path, 'test.parquet');
    await writeFile(testPath, parquetOf(split.xTest, split.yTest));
    const sitePaths: string[] = [];
    for (let site = 0; site < SITES; site++) {
      const rows = split.xTrain.map((_, i) => i).filter((i) => i % SITES === site);
      const path = join(files.path, `site-${site + 1}.parquet`);
      await writeFile(path, parquetOf(rows.map((i) => split.xTrain[i] as number[]), rows.map((i) => split.yTrain[i] as number)));
      sitePaths.push(path);
    }

    const task: TaskDocument = {
      formatVersion: 1,
      model: { kind: 'logreg', inputShape: [10], classes: 1 },
      loss: { kind: 'mse' },
      input: { shape: [10], dtype: 'float32' },
      normalization: { mean: split.mean, std: split.std },
      labels: ['progression'],
      inputs: [{ name: 'input', columns: FEATURES, dtype: 'float32', shape: [10] }],
      target: { column: 'progression' },
      optimizer: { kind: 'sgd', learningRate: 0.02 },
      training: { epochs: 60, batchSize: 32, proximalMu: 0, seed: 5 },
    };
    const siteData = (index: number): SiteDataSpec => ({ format: 'table', path: sitePaths[index] as string, test_path: testPath, header: 'auto', test_fraction: 0.2, split_seed: 1 });
    // The bias moves by ~150 in round 1 (progression is 25..346): the per-coordinate bound must hold it.
    // finalEvaluation: the evaluation-only round on the final model, whose secure sum carries the regression slots.
    harness = await GrpcFederation.start({ pki, sites: SITES, rounds: ROUNDS, task, clipBound: 400, finalEvaluation: true, siteOptions: (_siteId, index) => ({ data: siteData(index) }) });
    const started = performance.now();
    await harness.waitUntilDone(300_000);
    const seconds = (performance.now() - started) / 1000;
    expect(harness.committed()).toHaveLength(ROUNDS);
    expect(harness.events.filter((event) => event.type === 'round_aborted')).toEqual([]);

    const predictions = await committedModelOutputs(harness, task, split.xTest);
    const mean = split.yTest.reduce((s, v) => s + v, 0) / split.yTest.length;
    let residual = 0;
    let total = 0;
    split.yTest.forEach((y, i) => {
      residual += (y - (predictions[i] as number)) ** 2;
      total += (y - mean) ** 2;
    });
    const r2 = 1 - residual / total;

    // What the coordinator reports from the secure sum of the final model's evaluation (Admin RoundMetrics).
    const evaluation = harness.coordinator.federation.finalEvaluation;
    expect(evaluation?.survivors).toHaveLength(SITES);
    const reported = metricsMessage(evaluation?.metrics as unknown as Readonly<Record<string, number>>);
    expect(reported?.evalKind).toBe('regression');
    expect(reported?.evalExamples).toBe(SITES * split.yTest.length);
    const secureR2 = Number(reported?.evalR2);
    const secureMse = Number(reported?.evalMse);
    console.log(
      `diabetes federation (${SITES} sites, ${ROUNDS} secure rounds, ${seconds.toFixed(1)} s): test R^2 fedgate ${r2.toFixed(4)} (exported model), ${secureR2.toFixed(4)} (secure sum; MSE ${secureMse.toFixed(1)}, RMSE ${Number(reported?.evalRmse).toFixed(2)}, MAE ${Number(reported?.evalMae).toFixed(2)}), scikit-learn LinearRegression ${split.reference.toFixed(4)}`,
    );
    expect(r2).toBeGreaterThan(split.reference - 0.05);
    expect(Math.abs(secureR2 - split.reference)).toBeLessThan(0.05);
    // The secure sum is of the same model on the same rows: it agrees with the exported model's figures.
    expect(secureR2).toBeCloseTo(r2, 3);
    expect(secureMse).toBeCloseTo(residual / split.yTest.length, 0);
  }, 360_000);
});
