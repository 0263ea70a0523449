/**
 * `fedgate task embed-weights`: a model whose weights are in side files becomes one file that `task
 * check` trains and whose SHA-256 the task pins; side files that are missing, truncated or reached
 * through a symbolic link out of the model's directory are refused naming file and tensor, and nothing
 * is written. `task hash` / `task check` handed the side-file model say to run embed-weights. With
 * Debian's python3-onnx, a model written by onnx.save_model(..., save_as_external_data=True) is embedded
 * and read back as onnx wrote it.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkTask } from '../../../cli/commands/task-check.js';
import { buildTrainingPlan } from '../../../model/plan.js';
import { decodeModel } from '../../../model/onnx/codec.js';
import { readFloat32 } from '../../../model/onnx/tensor.js';
import { runFedgateInProcess, type CliRun } from '../../support/cli-in-process.js';
import { externalizeInitializers } from '../../support/model/external-data.js';
import { fixtureBytes, onnxTask, sha256, SMALL_CNN_LABELS, SMALL_CNN_SHAPE } from '../../support/model/fixtures.js';
import { checkSystemDependency, DEBIAN_PYTHON, systemDependencies } from '../../support/system-deps.js';

/** Runs `fedgate ARGS` in-process, capturing stdout (results) and stderr (errors, notes). */
const fedgate = (...args: string[]): Promise<CliRun> => runFedgateInProcess(args);

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'fedgate-embed-weights-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/** A directory holding the small CNN fixture saved with its initializers in `weights.bin`. */
async function externalCnn(name: string): Promise<{ dir: string; model: string; data: Uint8Array }> {
  const dir = join(work, name);
  await mkdir(dir, { recursive: true });
  const { model, files } = externalizeInitializers(fixtureBytes('small_cnn.onnx'), 'weights.bin');
  await writeFile(join(dir, 'in.onnx'), model);
  const data = files['weights.bin'] ?? new Uint8Array(0);
  await writeFile(join(dir, 'weights.bin'), data);
  return { dir, model: join(dir, 'in.onnx'), data };
}

const taskYaml = (modelSha256: string): string =>
  JSON.stringify({ ...onnxTask(fixtureBytes('small_cnn.onnx'), SMALL_CNN_SHAPE, SMALL_CNN_LABELS), model: { kind: 'onnx', modelSha256 } });

describe('fedgate task embed-weights', () => {
  it('writes one self-contained model, prints its SHA-256 and the task line; task check and task hash accept it', async () => {
    const { dir, model } = await externalCnn('ok');
    const out = join(dir, 'model.onnx');
    const run = await fedgate('task', 'embed-weights', '--model', model, '--out', out);
    expect(run.code).toBe(0);
    const bytes = new Uint8Array(await readFile(out));
    const hash = sha256(bytes);
    expect(run.stdout).toBe(`${hash}  ${out}\nmodel: {kind: onnx, modelSha256: ${hash}}\n`);
    expect(run.stderr).toMatch(/tensor\(s\) from 1 side file\(s\) embedded/);
    expect(decodeModel(bytes)).toEqual(decodeModel(fixtureBytes('small_cnn.onnx')));
    const task = join(dir, 'task.json');
    await writeFile(task, taskYaml(hash));
    const checked = await fedgate('task', 'check', task, '--model', out, '--json');
    expect(checked.code).toBe(0);
    expect(JSON.parse(checked.stdout)).toMatchObject({ loss: 'cross_entropy', outputs: 3 });
    expect((await fedgate('task', 'hash', task, '--model', out)).code).toBe(0);
    const json = await fedgate('task', 'embed-weights', '--model', model, '--out', join(dir, 'again.onnx'), '--json');
    expect(JSON.parse(json.stdout)).toMatchObject({ sha256: hash, embeddedTensors: decodeModel(bytes).graph.initializers.length, sideFiles: ['weights.bin'], taskModel: { kind: 'onnx', modelSha256: hash } });
  }, 60_000);

  it('task hash and task check handed the side-file model say to run embed-weights, whatever hash the task names', async () => {
    const { dir, model } = await externalCnn('hint');
    const stubHash = sha256(new Uint8Array(await readFile(model)));
    for (const modelSha256 of [stubHash, '0'.repeat(64)]) {
      const task = join(dir, 'task.json');
      await writeFile(task, taskYaml(modelSha256));
      for (const command of ['hash', 'check']) {
        const run = await fedgate('task', command, task, '--model', model);
        expect(run.code).toBe(1);
        expect(run.stderr).toContain(`fedgate: forward model ${model} keeps the data of`);
        expect(run.stderr).toContain(`in side files (ONNX external data)`);
        expect(run.stderr).toContain(`run \`fedgate task embed-weights --model ${model} --out ${join(dir, 'model-embedded.onnx')}\``);
        expect(run.stderr).not.toMatch(/unexpected error/);
      }
    }
    // The same advice from the model reader itself, for callers that bypass readTaskFile.
    const bytes = new Uint8Array(await readFile(model));
    expect(() => buildTrainingPlan(onnxTask(bytes, SMALL_CNN_SHAPE, SMALL_CNN_LABELS), bytes)).toThrow(/stores its data in the external file "weights\.bin".*fedgate task embed-weights/);
  });

  async function refused(dir: string, model: string): Promise<string> {
    const out = join(dir, 'model.onnx');
    const run = await fedgate('task', 'embed-weights', '--model', model, '--out', out);
    expect(run.code).toBe(1);
    expect(run.stderr).not.toMatch(/unexpected error/);
    expect(existsSync(out)).toBe(false);
    return run.stderr;
  }

  it('refuses a missing side file, naming it, the tensor and what to do', async () => {
    const { dir, model } = await externalCnn('missing');
    await rm(join(dir, 'weights.bin'));
    expect(await refused(dir, model)).toMatch(new RegExp(`side file ${join(dir, 'weights.bin')} \\(external_data location "weights.bin" of tensor '[^']+' in ${model}\\) does not exist: copy the data files`));
  });

  it('refuses a truncated side file (offset + length past its end)', async () => {
    const { dir, model, data } = await externalCnn('truncated');
    await writeFile(join(dir, 'weights.bin'), data.subarray(0, data.byteLength - 4));
    expect(await refused(dir, model)).toMatch(new RegExp(`side file ${join(dir, 'weights.bin')} has ${data.byteLength - 4} bytes; tensor '[^']+' in ${model} needs bytes \\d+ to ${data.byteLength} .*the file is truncated`));
  });

  it('refuses a side file that is a symbolic link out of the model directory', async () => {
    const { dir, model, data } = await externalCnn('symlink');
    const elsewhere = join(work, 'elsewhere.bin');
    await writeFile(elsewhere, data);
    await rm(join(dir, 'weights.bin'));
    await symlink(elsewhere, join(dir, 'weights.bin'));
    expect(await refused(dir, model)).toMatch(new RegExp(`resolves to ${elsewhere}, outside the model's directory ${dir} \\(a symbolic link\\?\\)`));
    // A link that stays inside the directory is fine.
    await rm(join(dir, 'weights.bin'));
    await writeFile(join(dir, 'real.bin'), data);
    await symlink(join(dir, 'real.bin'), join(dir, 'weights.bin'));
    expect((await fedgate('task', 'embed-weights', '--model', model, '--out', join(dir, 'model.onnx'))).code).toBe(0);
  });

  it('refuses a location outside the directory before opening anything, naming the model file', async () => {
    const dir = join(work, 'escape');
    await mkdir(dir, { recursive: true });
    for (const location of ['../elsewhere.bin', '/etc/passwd']) {
      const { model } = externalizeInitializers(fixtureBytes('small_cnn.onnx'), location);
      await writeFile(join(dir, 'in.onnx'), model);
      const stderr = await refused(dir, join(dir, 'in.onnx'));
      expect(stderr).toMatch(new RegExp(`--model ${join(dir, 'in.onnx')}: tensor '[^']+': external_data location`));
    }
  });
});

const onnxCheck = checkSystemDependency(systemDependencies.pythonOnnx);

describe.skipIf(onnxCheck.skip)(`a model saved by onnx.save_model(..., save_as_external_data=True) ${onnxCheck.reason}`, () => {
  it('is embedded into the tensors onnx wrote, and task check trains it', async () => {
    const dir = join(work, 'python');
    await mkdir(dir, { recursive: true });
    // A Gemm classifier, one side file per tensor under data/ (all_tensors_to_one_file=False) plus one
    // shared file for the rest; prints the values onnx.load (which reads the side files) sees.
    const script = [
      'import json, sys, numpy as np, onnx',
      'from onnx import helper, numpy_helper, TensorProto',
      'rng = np.random.default_rng(0)',
      "w1 = numpy_helper.from_array(rng.standard_normal((8, 4)).astype(np.float32), 'fc1.weight')",
      "b1 = numpy_helper.from_array(rng.standard_normal(8).astype(np.float32), 'fc1.bias')",
      "w2 = numpy_helper.from_array(rng.standard_normal((3, 8)).astype(np.float32), 'fc2.weight')",
      "b2 = numpy_helper.from_array(rng.standard_normal(3).astype(np.float32), 'fc2.bias')",
      "nodes = [helper.make_node('Gemm', ['input', 'fc1.weight', 'fc1.bias'], ['h'], transB=1), helper.make_node('Relu', ['h'], ['r']), helper.make_node('Gemm', ['r', 'fc2.weight', 'fc2.bias'], ['logits'], transB=1)]",
      "graph = helper.make_graph(nodes, 'mlp', [helper.make_tensor_value_info('input', TensorProto.FLOAT, ['batch', 4])], [helper.make_tensor_value_info('logits', TensorProto.FLOAT, ['batch', 3])], [w1, b1, w2, b2])",
      "model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)])",
      'model.ir_version = 8',
      'd = sys.argv[1]',
      "onnx.save_model(model, d + '/split.onnx', save_as_external_data=True, all_tensors_to_one_file=False, size_threshold=0)",
      "onnx.save_model(onnx.load(d + '/split.onnx'), d + '/shared.onnx', save_as_external_data=True, all_tensors_to_one_file=True, location='shared.data', size_threshold=0)",
      "loaded = onnx.load(d + '/shared.onnx')",
      'print(json.dumps({t.name: numpy_helper.to_array(t).flatten().tolist() for t in loaded.graph.initializer}))',
    ].join('\n');
    const result = spawnSync(DEBIAN_PYTHON, ['-c', script, dir], { encoding: 'utf8' });
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    const expected = JSON.parse(result.stdout) as Record<string, number[]>;
    for (const name of ['split', 'shared']) {
      const out = join(dir, `${name}-embedded.onnx`);
      const run = await fedgate('task', 'embed-weights', '--model', join(dir, `${name}.onnx`), '--out', out, '--json');
      expect(run.code).toBe(0);
      expect(JSON.parse(run.stdout)).toMatchObject({ embeddedTensors: 4, sideFiles: name === 'split' ? ['fc1.weight', 'fc1.bias', 'fc2.weight', 'fc2.bias'] : ['shared.data'] });
      const bytes = new Uint8Array(await readFile(out));
      const initializers = decodeModel(bytes).graph.initializers;
      expect(Object.fromEntries(initializers.map((t) => [t.name, Array.from(readFloat32(t))]))).toEqual(
        Object.fromEntries(Object.entries(expected).map(([key, values]) => [key, Array.from(Float32Array.from(values))])),
      );
      const task = { ...onnxTask(bytes, [4], ['a', 'b', 'c']), model: { kind: 'onnx' as const, modelSha256: sha256(bytes) } };
      const report = await checkTask(task, bytes);
      expect(report.parameters).toBe(8 * 4 + 8 + 3 * 8 + 3);
    }
    // onnx itself reads the embedded file as a plain model and its checker accepts it.
    const check = spawnSync(DEBIAN_PYTHON, ['-c', 'import sys, onnx; m = onnx.load(sys.argv[1], load_external_data=False); onnx.checker.check_model(m, full_check=True); print(sum(t.data_location for t in m.graph.initializer))', join(dir, 'shared-embedded.onnx')], { encoding: 'utf8' });
    expect(check.stderr).toBe('');
    expect(check.stdout.trim()).toBe('0');
  }, 120_000);
});
