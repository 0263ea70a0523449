/**
 * PyTorch reference harness, TypeScript side. `runTorchReference('cnn', 'resnet18')` runs
 * scripts/torch_reference/cnn.py with Debian's python3 into a temporary directory: the model exported
 * in training mode (torch.onnx.export, opset 17, do_constant_folding=False) and, for one fixed batch,
 * PyTorch's loss, every parameter gradient and the updated BatchNorm running statistics
 * (scripts/torch_reference/common.py documents the manifest). `fedgateTrainingStep` imports the same
 * .onnx through fedgate's own import path (buildTrainingPlan) and runs one step of the plan's trainBlock;
 * `compareWithTorch` measures ||g_fedgate - g_torch|| / ||g_torch|| per parameter tensor.
 *
 * The gradient is read from the trainer's own graph: with SGD, momentum > 0 and zero velocity, the
 * updated velocity of every trainable parameter is exactly its gradient (v' = m * 0 + g).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildTrainingPlan, unflattenParameters, type TaskDocument } from '../../model/index.js';
import { DEBIAN_PYTHON } from './system-deps.js';
import { sha256 } from './model/fixtures.js';
import { f32, output, run, session, type Feed } from './model/ort.js';

/** Every parameter tensor's relative gradient error, and the loss's, must stay at or below this. */
export const TORCH_TOLERANCE = 1e-4;

const SCRIPTS = fileURLToPath(new URL('../../scripts/torch_reference/', import.meta.url));

interface ManifestArray {
  readonly name?: string;
  readonly dtype: 'float32' | 'int64';
  readonly shape: readonly number[];
  readonly file: string;
}

export interface TorchManifest {
  readonly format: 1;
  readonly family: string;
  readonly model: string;
  readonly loss: { readonly kind: string; readonly value: number };
  readonly classes: number;
  readonly inputs: readonly (ManifestArray & { readonly name: string })[];
  readonly targets: ManifestArray;
  readonly parameters: readonly { readonly name: string; readonly shape: readonly number[]; readonly gradient: string }[];
  readonly buffers: readonly {
    readonly name: string;
    readonly shape: readonly number[];
    readonly role: 'running_mean' | 'running_var';
    readonly updated: string;
    /** running_var only: the update with the population batch variance (ONNX BatchNormalization-15). */
    readonly updatedOnnx?: string;
  }[];
}

export interface TorchArray {
  readonly shape: readonly number[];
  readonly data: Float32Array | BigInt64Array;
}

export interface TorchReference {
  readonly manifest: TorchManifest;
  readonly model: Uint8Array;
  readonly inputs: ReadonlyMap<string, TorchArray>;
  readonly targets: TorchArray;
  /** PyTorch's d loss / d parameter, by ONNX initializer name. */
  readonly gradients: ReadonlyMap<string, Float32Array>;
  /**
   * Running statistics after the step, by ONNX initializer name: PyTorch's, except that running_var is
   * the ONNX-spec update fedgate implements (population batch variance; PyTorch blends the unbiased one).
   */
  readonly buffers: ReadonlyMap<string, Float32Array>;
}

function readArray(dir: string, entry: ManifestArray): TorchArray {
  const bytes = readFileSync(join(dir, entry.file));
  const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  const data = entry.dtype === 'float32' ? new Float32Array(buffer) : new BigInt64Array(buffer);
  const expected = entry.shape.reduce((n, d) => n * d, 1);
  if (data.length !== expected) throw new Error(`${entry.file}: ${data.length} values, expected ${expected} for shape [${entry.shape.join(', ')}]`);
  return { shape: entry.shape, data };
}

function readFloats(dir: string, file: string, shape: readonly number[]): Float32Array {
  return readArray(dir, { dtype: 'float32', shape, file }).data as Float32Array;
}

/**
 * Runs `scripts/torch_reference/<script>.py <family> <tmp>` and reads its outputs (the directory is
 * removed afterwards). Throws with the script's stderr when it fails.
 */
export function runTorchReference(script: string, family: string): TorchReference {
  const dir = mkdtempSync(join(tmpdir(), `fedgate-torch-${family}-`));
  try {
    const result = spawnSync(DEBIAN_PYTHON, [join(SCRIPTS, `${script}.py`), family, dir], {
      encoding: 'utf8',
      env: { ...process.env, PYTHONWARNINGS: 'ignore', OMP_NUM_THREADS: '1' },
      maxBuffer: 64 * 1024 * 1024,
    });
    if (result.status !== 0) {
      throw new Error(`${script}.py ${family} failed (exit ${String(result.status)}): ${result.stderr.slice(-4000)}`);
    }
    const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as TorchManifest;
    if (manifest.format !== 1) throw new Error(`manifest format ${String(manifest.format)}; this harness reads format 1`);
    return {
      manifest,
      model: new Uint8Array(readFileSync(join(dir, manifest.model))),
      inputs: new Map(manifest.inputs.map((entry) => [entry.name, readArray(dir, entry)])),
      targets: readArray(dir, manifest.targets),
      gradients: new Map(manifest.parameters.map((p) => [p.name, readFloats(dir, p.gradient, p.shape)])),
      buffers: new Map(manifest.buffers.map((b) => [b.name, readFloats(dir, b.updatedOnnx ?? b.updated, b.shape)])),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The kind-'onnx' task the reference is trained under: SGD with momentum, so velocity' = gradient. */
export function referenceTask(reference: TorchReference): TaskDocument {
  const input = reference.manifest.inputs[0];
  if (input === undefined || reference.manifest.inputs.length !== 1) {
    throw new Error(`referenceTask handles one input; the reference has ${reference.manifest.inputs.length} (pass a task)`);
  }
  if (reference.manifest.loss.kind !== 'cross_entropy') {
    throw new Error(`referenceTask handles cross_entropy; the reference's loss is ${reference.manifest.loss.kind} (pass a task)`);
  }
  return {
    formatVersion: 1,
    model: { kind: 'onnx', modelSha256: sha256(reference.model) },
    loss: 'cross_entropy',
    input: { shape: input.shape.slice(1), dtype: 'float32' },
    normalization: { scale: 1, offset: 0 },
    labels: Array.from({ length: reference.manifest.classes }, (_, i) => `class${i}`),
    optimizer: { kind: 'sgd', learningRate: 0.1, momentum: 0.9 },
    training: { epochs: 1, batchSize: input.shape[0] as number, proximalMu: 0, seed: 0 },
  };
}

export interface FedgateStep {
  readonly loss: number;
  /** d loss / d parameter for every trainable parameter, by name. */
  readonly gradients: ReadonlyMap<string, Float32Array>;
  /** Every parameter after the step (running statistics included), by name. */
  readonly updated: ReadonlyMap<string, Float32Array>;
}

function feedOf(array: TorchArray, blockShape: readonly number[]): Feed {
  if (array.data instanceof Float32Array) return { type: 'float32', data: array.data, dims: blockShape };
  return { type: 'int64', data: array.data, dims: blockShape };
}

/**
 * One step of the training plan's trainBlock (S = 1) on the reference batch, from the model file's
 * initial parameters. `task` defaults to referenceTask (the optimiser must be SGD with momentum > 0).
 */
export async function fedgateTrainingStep(reference: TorchReference, task: TaskDocument = referenceTask(reference)): Promise<FedgateStep> {
  if (task.optimizer.kind !== 'sgd' || (task.optimizer.momentum ?? 0) <= 0) {
    throw new Error('fedgateTrainingStep reads gradients from the SGD velocity: the task needs sgd with momentum > 0');
  }
  const plan = buildTrainingPlan(task, reference.model);
  if (plan.trainBlock === undefined) throw new Error('the training plan has no trainBlock');
  const feeds: Record<string, Feed> = { learning_rate: f32([task.optimizer.learningRate], []) };
  const shapes = new Map(plan.parameters.map((p) => [p.name, p.shape]));
  for (const [name, values] of unflattenParameters(plan, plan.initialParameters)) feeds[name] = f32(values, shapes.get(name) ?? []);
  for (const state of plan.optimizerState) feeds[state.name] = f32(new Float32Array(state.shape.reduce((n, d) => n * d, 1)), state.shape);
  const [input] = reference.inputs.values();
  if (input === undefined) throw new Error('the reference has no input');
  feeds['input'] = feedOf(input, [1, ...input.shape]);
  feeds['label'] = feedOf(reference.targets, [1, ...reference.targets.shape]);
  const results = await run(await session(plan.trainBlock), feeds);
  const gradients = new Map<string, Float32Array>();
  for (const state of plan.optimizerState) {
    gradients.set(state.name.slice('momentum.'.length), Float32Array.from(output(results, `updated.${state.name}`).data));
  }
  const updated = new Map(plan.parameters.map((p) => [p.name, Float32Array.from(output(results, `updated.${p.name}`).data)]));
  return { loss: output(results, 'loss').data[0] as number, gradients, updated };
}

export interface TensorError {
  readonly name: string;
  /** ||fedgate - torch|| / ||torch|| (absolute ||fedgate|| where torch's norm is below ZERO_NORM). */
  readonly relativeError: number;
  readonly torchNorm: number;
}

export interface TorchComparison {
  readonly lossRelativeError: number;
  readonly gradients: readonly TensorError[];
  /** Largest gradient error and the parameter it belongs to. */
  readonly maxGradientError: number;
  readonly worstParameter: string;
  /** Running statistics after the step against PyTorch's. */
  readonly buffers: readonly TensorError[];
  readonly maxBufferError: number;
  /** Parameters PyTorch has a gradient for that fedgate did not train, or the reverse. */
  readonly unmatched: readonly string[];
}

/** A torch gradient norm below this is a mathematically zero gradient (rounding noise only). */
const ZERO_NORM = 1e-8;

function relativeError(name: string, ours: Float32Array, theirs: Float32Array): TensorError {
  if (ours.length !== theirs.length) return { name, relativeError: Infinity, torchNorm: 0 };
  let diff = 0;
  let norm = 0;
  for (let i = 0; i < theirs.length; i++) {
    const t = theirs[i] as number;
    const d = (ours[i] as number) - t;
    diff += d * d;
    norm += t * t;
  }
  const torchNorm = Math.sqrt(norm);
  return { name, relativeError: Math.sqrt(diff) / (torchNorm < ZERO_NORM ? 1 : torchNorm), torchNorm };
}

export function compareWithTorch(reference: TorchReference, step: FedgateStep): TorchComparison {
  const gradients: TensorError[] = [];
  const unmatched: string[] = [];
  for (const [name, theirs] of reference.gradients) {
    const ours = step.gradients.get(name);
    if (ours === undefined) unmatched.push(`${name} (torch has a gradient, fedgate does not train it)`);
    else gradients.push(relativeError(name, ours, theirs));
  }
  for (const name of step.gradients.keys()) {
    if (!reference.gradients.has(name)) unmatched.push(`${name} (fedgate trains it, torch has no such parameter)`);
  }
  const buffers: TensorError[] = [];
  for (const [name, theirs] of reference.buffers) {
    const ours = step.updated.get(name);
    if (ours === undefined) unmatched.push(`${name} (running statistic fedgate does not carry)`);
    else buffers.push(relativeError(name, ours, theirs));
  }
  const worst = gradients.reduce<TensorError | undefined>((a, b) => (a === undefined || b.relativeError > a.relativeError ? b : a), undefined);
  return {
    lossRelativeError: Math.abs(step.loss - reference.manifest.loss.value) / Math.abs(reference.manifest.loss.value),
    gradients,
    maxGradientError: worst?.relativeError ?? Infinity,
    worstParameter: worst?.name ?? '(none)',
    buffers,
    maxBufferError: buffers.reduce((m, b) => Math.max(m, b.relativeError), 0),
    unmatched,
  };
}

/** One line for a test log: family, loss error, worst gradient error and where. */
export function describeComparison(family: string, c: TorchComparison): string {
  return `${family}: loss rel err ${c.lossRelativeError.toExponential(2)}, max gradient rel err ${c.maxGradientError.toExponential(2)} (${c.worstParameter}, ${c.gradients.length} tensors), max running-statistic rel err ${c.maxBufferError.toExponential(2)} (${c.buffers.length} tensors)`;
}
