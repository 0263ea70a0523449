/**
 * PyTorch reference harness, TypeScript side. `runTorchReference('cnn', 'resnet18')` runs
 * scripts/torch_reference/cnn.py with Debian's python3 into a temporary directory: the model exported
 * in training mode (torch.onnx.export, opset 17, do_constant_folding=False) and, for one fixed batch,
 * PyTorch's loss, every parameter gradient and the updated BatchNorm running statistics
 * (scripts/torch_reference/common.py documents the manifest). `fedgateTrainingStep` imports the same
 * .onnx through fedgate's own import path (buildTrainingPlan) and runs one step of the plan's trainBlock;
 * `compareWithTorch` measures ||g_fedgate - g_torch|| / ||g_torch|| per parameter tensor, against
 * PyTorch's float32 gradient and against its float64 one (see NOISE_FACTOR).
 *
 * The gradient is read from the trainer's own graph: with SGD, momentum > 0 and zero velocity, the
 * updated velocity of every trainable parameter is exactly its gradient (v' = m * 0 + g).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildTrainingPlan, namedInputsOf, unflattenParameters, type TaskDocument } from '../../model/index.js';
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
  readonly parameters: readonly {
    readonly name: string;
    readonly shape: readonly number[];
    readonly gradient: string;
    /** The gradient of the same model in float64 (stored as float32). */
    readonly gradientFloat64: string;
  }[];
  /** Largest relative distance of PyTorch's float32 gradients from its float64 ones (its own noise). */
  readonly torchFloat32Error: number;
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
  /** The same computed by PyTorch in float64 (exact for float32 purposes). */
  readonly gradientsFloat64: ReadonlyMap<string, Float32Array>;
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
      gradientsFloat64: new Map(manifest.parameters.map((p) => [p.name, readFloats(dir, p.gradientFloat64, p.shape)])),
      buffers: new Map(manifest.buffers.map((b) => [b.name, readFloats(dir, b.updatedOnnx ?? b.updated, b.shape)])),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The kind-'onnx' task the reference is trained under: SGD with momentum, so velocity' = gradient. One
 * float32 input is the plan's 'input'; several inputs, or int64 ids, become the task's named inputs
 * (namedInputsOf), each read from a column of its own name, in the manifest's order.
 */
export function referenceTask(reference: TorchReference): TaskDocument {
  const inputs = reference.manifest.inputs;
  const first = inputs[0];
  if (first === undefined) throw new Error('the reference has no input');
  if (reference.manifest.loss.kind !== 'cross_entropy') {
    throw new Error(`referenceTask handles cross_entropy; the reference's loss is ${reference.manifest.loss.kind} (pass a task)`);
  }
  const named = inputs.length > 1 || first.dtype !== 'float32';
  const floatInput = inputs.find((input) => input.dtype === 'float32');
  return {
    formatVersion: 1,
    model: { kind: 'onnx', modelSha256: sha256(reference.model) },
    loss: 'cross_entropy',
    // With named inputs this is only the task's nominal float input; the plan feeds `inputs` by name.
    input: { shape: floatInput === undefined ? [1] : floatInput.shape.slice(1), dtype: 'float32' },
    normalization: { scale: 1, offset: 0 },
    labels: Array.from({ length: reference.manifest.classes }, (_, i) => `class${i}`),
    ...(named ? { inputs: inputs.map((input) => ({ name: input.name, column: input.name, dtype: input.dtype, shape: input.shape.slice(1) })) } : {}),
    optimizer: { kind: 'sgd', learningRate: 0.1, momentum: 0.9 },
    training: { epochs: 1, batchSize: first.shape[0] as number, proximalMu: 0, seed: 0 },
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
  const named = namedInputsOf(task);
  if (named === undefined) {
    const [input] = reference.inputs.values();
    if (input === undefined) throw new Error('the reference has no input');
    feeds['input'] = feedOf(input, [1, ...input.shape]);
  } else {
    // Several named inputs (or int64 ids): 'input.<name>' each, as the Trainer feeds a Dataset's inputs.
    for (const spec of named) {
      const input = reference.inputs.get(spec.name);
      if (input === undefined) throw new Error(`the task names input '${spec.name}', which the reference does not have (it has ${[...reference.inputs.keys()].join(', ')})`);
      feeds[`input.${spec.name}`] = feedOf(input, [1, ...input.shape]);
    }
  }
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
  /**
   * ||fedgate - torch|| / ||torch||; for a tensor whose gradient is zero in exact arithmetic (torch's norm
   * below ZERO_FRACTION of the largest in the model) the difference is divided by that bound instead.
   */
  readonly relativeError: number;
  readonly torchNorm: number;
}

/** One parameter's gradient measured against PyTorch float32 and against exact (float64) arithmetic. */
export interface GradientError extends TensorError {
  /** fedgate against PyTorch's float64 gradient. */
  readonly exactError: number;
  /** PyTorch's float32 gradient against its float64 one: float32 noise for this tensor on this batch. */
  readonly torchFloat32Error: number;
}

/**
 * How far beyond PyTorch's own float32 noise fedgate's gradient may be from exact. Deep BatchNorm nets at
 * random initialisation on a small batch are ill-conditioned: PyTorch's float32 gradient of ResNet-50 is
 * 1-3% from its float64 one, so no float32 engine meets 1e-4 against it. The bound for every tensor of a
 * model is max(1e-4, NOISE_FACTOR * PyTorch float32's largest error on that model): fedgate must be as
 * close to exact as PyTorch is, within this factor. Where PyTorch is exact to 2.5e-5 (ResNet-18 here),
 * the bound is 1e-4.
 */
export const NOISE_FACTOR = 4;

export interface TorchComparison {
  readonly lossRelativeError: number;
  readonly gradients: readonly GradientError[];
  /** Largest gradient error against PyTorch float32 and the parameter it belongs to. */
  readonly maxGradientError: number;
  readonly worstParameter: string;
  /** Largest error against float64, and PyTorch float32's own largest error against float64. */
  readonly maxExactError: number;
  readonly maxTorchFloat32Error: number;
  /** max(TORCH_TOLERANCE, NOISE_FACTOR * maxTorchFloat32Error): the bound for this model. */
  readonly tolerance: number;
  /** Parameters whose exactError, and running statistics whose error, exceed `tolerance`. */
  readonly outOfTolerance: readonly TensorError[];
  /** Running statistics after the step against PyTorch's. */
  readonly buffers: readonly TensorError[];
  readonly maxBufferError: number;
  /** Parameters PyTorch has a gradient for that fedgate did not train, or the reverse. */
  readonly unmatched: readonly string[];
}

/**
 * A tensor whose PyTorch norm is below this fraction of the model's largest is zero in exact arithmetic
 * and rounding noise in float32: e.g. the bias of a BatchNorm whose output reaches the loss only through
 * a bias-free linear layer and another BatchNorm (which removes any constant shift), or the running mean
 * after such a layer. Its error is measured against that bound, not against its own noise.
 */
export const ZERO_FRACTION = 1e-6;

const norm = (values: Float32Array): number => Math.sqrt(values.reduce((sum, v) => sum + v * v, 0));

function relativeError(name: string, ours: Float32Array, theirs: Float32Array, zeroBound: number): TensorError {
  if (ours.length !== theirs.length) return { name, relativeError: Infinity, torchNorm: 0 };
  let diff = 0;
  for (let i = 0; i < theirs.length; i++) {
    const d = (ours[i] as number) - (theirs[i] as number);
    diff += d * d;
  }
  const torchNorm = norm(theirs);
  return { name, relativeError: Math.sqrt(diff) / Math.max(torchNorm, zeroBound), torchNorm };
}

function zeroBound(tensors: Iterable<Float32Array>): number {
  let largest = 0;
  for (const t of tensors) largest = Math.max(largest, norm(t));
  return largest * ZERO_FRACTION;
}

export function compareWithTorch(reference: TorchReference, step: FedgateStep): TorchComparison {
  const gradients: GradientError[] = [];
  const unmatched: string[] = [];
  const gradientZero = zeroBound(reference.gradients.values());
  const exactZero = zeroBound(reference.gradientsFloat64.values());
  const bufferZero = zeroBound(reference.buffers.values());
  for (const [name, theirs] of reference.gradients) {
    const ours = step.gradients.get(name);
    if (ours === undefined) unmatched.push(`${name} (torch has a gradient, fedgate does not train it)`);
    else {
      const exact = reference.gradientsFloat64.get(name) as Float32Array;
      const torchFloat32Error = relativeError(name, theirs, exact, exactZero).relativeError;
      gradients.push({
        ...relativeError(name, ours, theirs, gradientZero),
        exactError: relativeError(name, ours, exact, exactZero).relativeError,
        torchFloat32Error,
      });
    }
  }
  for (const name of step.gradients.keys()) {
    if (!reference.gradients.has(name)) unmatched.push(`${name} (fedgate trains it, torch has no such parameter)`);
  }
  const buffers: TensorError[] = [];
  for (const [name, theirs] of reference.buffers) {
    const ours = step.updated.get(name);
    if (ours === undefined) unmatched.push(`${name} (running statistic fedgate does not carry)`);
    else buffers.push(relativeError(name, ours, theirs, bufferZero));
  }
  const maxTorchFloat32Error = gradients.reduce((m, g) => Math.max(m, g.torchFloat32Error), 0);
  const tolerance = Math.max(TORCH_TOLERANCE, NOISE_FACTOR * maxTorchFloat32Error);
  const worst = gradients.reduce<GradientError | undefined>((a, b) => (a === undefined || b.relativeError > a.relativeError ? b : a), undefined);
  return {
    lossRelativeError: Math.abs(step.loss - reference.manifest.loss.value) / Math.abs(reference.manifest.loss.value),
    gradients,
    maxGradientError: worst?.relativeError ?? Infinity,
    worstParameter: worst?.name ?? '(none)',
    maxExactError: gradients.reduce((m, g) => Math.max(m, g.exactError), 0),
    maxTorchFloat32Error,
    tolerance,
    outOfTolerance: [
      ...gradients.filter((g) => !(g.exactError <= tolerance)),
      ...buffers.filter((b) => !(b.relativeError <= tolerance)),
    ],
    buffers,
    maxBufferError: buffers.reduce((m, b) => Math.max(m, b.relativeError), 0),
    unmatched,
  };
}

/** One line for a test log: family, loss error, worst gradient error and where. */
export function describeComparison(family: string, c: TorchComparison): string {
  const e = (x: number): string => x.toExponential(2);
  return `${family}: loss rel err ${e(c.lossRelativeError)}; max gradient rel err vs torch float32 ${e(c.maxGradientError)} (${c.worstParameter}, ${c.gradients.length} tensors), vs float64 ${e(c.maxExactError)} (torch float32 itself ${e(c.maxTorchFloat32Error)}, bound ${e(c.tolerance)}); max running-statistic rel err ${e(c.maxBufferError)} (${c.buffers.length} tensors)`;
}
