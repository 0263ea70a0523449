/**
 * Export of the inference model: predictions in onnxruntime-node agree with the training plan's
 * evaluation graph and with the original forward model; the file passes onnx.checker (full_check)
 * when Debian's python3-onnx is present.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ModelError, buildTrainingPlan, exportInferenceModel, modelHash, taskHash, type TaskDocument } from '../../../model/index.js';
import { decodeModel } from '../../../model/onnx/codec.js';
import { DEBIAN_PYTHON, checkSystemDependency, systemDependencies } from '../../support/system-deps.js';
import { SMALL_CNN_LABELS, SMALL_CNN_SHAPE, fixtureBytes, onnxTask } from '../../support/model/fixtures.js';
import { f32, i64, output, pseudoRandom, run, session, type Feed } from '../../support/model/ort.js';
import { taskFor } from '../../support/model/tasks.js';

const smallCnn = fixtureBytes('small_cnn.onnx');

function parameterFeeds(plan: ReturnType<typeof buildTrainingPlan>, flat: Float32Array): Record<string, Feed> {
  const feeds: Record<string, Feed> = {};
  let offset = 0;
  for (const p of plan.parameters) {
    const size = p.shape.reduce((n, d) => n * d, 1);
    feeds[p.name] = f32(flat.subarray(offset, offset + size), p.shape);
    offset += size;
  }
  return feeds;
}

describe('exportInferenceModel', () => {
  it('matches the evaluation graph for a zoo MLP, normalisation applied inside the exported model', async () => {
    const task: TaskDocument = {
      ...taskFor({ kind: 'mlp', inputShape: [6], hidden: [5], classes: 3, activation: 'tanh' }),
      normalization: { mean: [10], std: [4] },
    };
    const plan = buildTrainingPlan(task);
    // Perturb the initial weights so that biases are non-zero.
    const weights = plan.initialParameters.map((w, i) => w + 0.05 * Math.sin(i));
    const exported = exportInferenceModel(task, weights);
    const raw = pseudoRandom(5 * 6, 3, 0, 20);
    const labels = [0, 1, 2, 1, 0];
    const predicted = await run(await session(exported), { input: f32(raw, [5, 6]) });
    const evaluated = await run(await session(plan.evalStep), {
      ...parameterFeeds(plan, weights),
      input: f32(raw.map((v) => Math.fround((Math.fround(v) - 10) / 4)), [5, 6]),
      label: i64(labels, [5]),
    });
    const probabilities = output(predicted, 'probabilities').data;
    const logits = output(predicted, 'logits').data;
    expect(output(predicted, 'logits').dims).toEqual([5, 3]);
    let lossSum = 0;
    let correct = 0;
    labels.forEach((label, row) => {
      const p = Array.from(probabilities.subarray(row * 3, row * 3 + 3));
      const z = Array.from(logits.subarray(row * 3, row * 3 + 3));
      expect(p.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
      expect(p.indexOf(Math.max(...p))).toBe(z.indexOf(Math.max(...z)));
      lossSum -= Math.log(p[label] as number);
      if (p.indexOf(Math.max(...p)) === label) correct++;
    });
    expect(output(evaluated, 'loss_sum').data[0]).toBeCloseTo(lossSum, 4);
    expect(output(evaluated, 'correct').data[0]).toBe(correct);
  });

  it('predicts exactly what the original imported model predicts (same weights, no normalisation)', async () => {
    const task = onnxTask(smallCnn, SMALL_CNN_SHAPE, SMALL_CNN_LABELS);
    const plan = buildTrainingPlan(task, smallCnn);
    const exported = exportInferenceModel(task, plan.initialParameters, smallCnn);
    const x = pseudoRandom(4 * 144, 5, -1, 1);
    const ours = output(await run(await session(exported), { input: f32(x, [4, ...SMALL_CNN_SHAPE]) }), 'probabilities').data;
    const original = output(await run(await session(smallCnn), { x: f32(x, [4, ...SMALL_CNN_SHAPE]) }), 'probs').data;
    expect(Array.from(ours)).toEqual(Array.from(original));
  });

  it('records labels, normalisation, task hash and model hash in metadata_props', () => {
    const task = taskFor({ kind: 'logreg', inputShape: [4], classes: 2 });
    const plan = buildTrainingPlan(task);
    const model = decodeModel(exportInferenceModel(task, plan.initialParameters));
    const metadata = Object.fromEntries(model.metadata.map((e) => [e.key, e.value]));
    expect(JSON.parse(metadata['fedgate.labels'] ?? '')).toEqual(['class0', 'class1']);
    expect(metadata['fedgate.task_hash']).toBe(taskHash(task));
    expect(metadata['fedgate.model_hash']).toBe(modelHash(plan, plan.initialParameters));
    expect(model.graph.inputs.map((i) => i.name)).toEqual(['input']);
    expect(model.graph.outputs.map((o) => o.name)).toEqual(['logits', 'probabilities']);
  });

  it('refuses weights of the wrong length or with NaN', () => {
    const task = taskFor({ kind: 'logreg', inputShape: [4], classes: 2 });
    const plan = buildTrainingPlan(task);
    expect(() => exportInferenceModel(task, plan.initialParameters.subarray(1))).toThrow(/expected a Float32Array of 10 values/);
    const poisoned = plan.initialParameters.slice();
    poisoned[3] = Number.NaN;
    expect(() => exportInferenceModel(task, poisoned)).toThrow(ModelError);
  });
});

const onnxCheck = checkSystemDependency(systemDependencies.pythonOnnx);

describe.skipIf(onnxCheck.skip)(`onnx.checker.check_model(full_check=True) accepts exported models ${onnxCheck.reason}`, () => {
  const directory = mkdtempSync(join(tmpdir(), 'fedgate-export-'));
  afterAll(() => rmSync(directory, { recursive: true, force: true }));

  /** One Python process checks every model (starting Python and importing onnx is the slow part). */
  function check(models: Readonly<Record<string, Uint8Array>>): void {
    const paths = Object.entries(models).map(([name, bytes]) => {
      const path = join(directory, `${name}.onnx`);
      writeFileSync(path, bytes);
      return path;
    });
    const script = [
      'import sys, onnx',
      'for path in sys.argv[1:]:',
      '    m = onnx.load(path)',
      '    onnx.checker.check_model(m, full_check=True)',
      '    print(m.opset_import[0].version)',
    ].join('\n');
    const result = spawnSync(DEBIAN_PYTHON, ['-c', script, ...paths], { encoding: 'utf8' });
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(result.stdout.trim().split('\n')).toEqual(paths.map(() => '17'));
  }

  it('zoo CNN, MLP, the imported model and the training graphs', () => {
    const cnnTask: TaskDocument = { ...taskFor({ kind: 'cnn', inputShape: [1, 12, 12], classes: 3 }), normalization: { mean: [0.5], std: [0.25] } };
    const mlpTask: TaskDocument = { ...taskFor({ kind: 'mlp', inputShape: [2, 3], hidden: [4], classes: 2, activation: 'sigmoid' }), normalization: { scale: 0.5, offset: -1 } };
    const imported = onnxTask(smallCnn, SMALL_CNN_SHAPE, SMALL_CNN_LABELS);
    // The training graphs are valid ONNX as well (Adam + FedProx has the most inputs and nodes).
    const trainTask = taskFor({ kind: 'cnn', inputShape: [1, 8, 8], classes: 3 }, { optimizer: { kind: 'adam', learningRate: 0.01 }, proximalMu: 0.1 });
    const plan = buildTrainingPlan(trainTask);
    check({
      cnn: exportInferenceModel(cnnTask, buildTrainingPlan(cnnTask).initialParameters),
      mlp: exportInferenceModel(mlpTask, buildTrainingPlan(mlpTask).initialParameters),
      imported: exportInferenceModel(imported, buildTrainingPlan(imported, smallCnn).initialParameters, smallCnn),
      'train-step': plan.trainStep,
      'train-block': plan.trainBlock as Uint8Array,
      'eval-step': plan.evalStep,
    });
  });
});
