/**
 * The task document (DESIGN.md "The task"): what a federation trains, as one canonical document whose
 * SHA-256 sites pin. Parsing validates every key and fills documented defaults, so two documents that
 * mean the same training produce the same canonical bytes and hash.
 */
import { z } from 'zod';
import { sha256Hex } from './digest.js';
import { ModelError, describeValue } from './errors.js';
import { keyHint } from './key-suggestions.js';
import type { ServerOptimizerSpec } from './server-optimizer.js';

export type ModelSpec =
  | { kind: 'logreg'; inputShape: number[]; classes: number }
  | { kind: 'mlp'; inputShape: number[]; hidden: number[]; classes: number; activation?: 'relu' | 'tanh' | 'sigmoid' }
  | { kind: 'cnn'; inputShape: [number, number, number]; classes: number }
  | { kind: 'onnx'; modelSha256: string };

export type OptimizerSpec =
  | { kind: 'sgd'; learningRate: number; momentum?: number; weightDecay?: number }
  | { kind: 'adam'; learningRate: number; beta1?: number; beta2?: number; epsilon?: number };

export interface TaskDocument {
  formatVersion: 1;
  model: ModelSpec;
  loss: 'cross_entropy';
  input: { shape: number[]; dtype: 'float32' };
  /** x' = (x - mean) / std (per channel, or one value for all), or x' = x * scale + offset. */
  normalization: { mean: number[]; std: number[] } | { scale: number; offset: number };
  /** Class index -> name. */
  labels: string[];
  optimizer: OptimizerSpec;
  training: { epochs: number; batchSize: number; proximalMu: number; seed: number };
  /**
   * The model round 1 starts from: SHA-256 (hex) of the canonical encoding of the initial weights
   * (weight-codec.ts). Every site verifies the chain of commit records back to it. A draft document
   * may leave it out; task-pin.ts `pinTask` computes it from the model the task builds.
   *
   * `warmStart: true`: the initial weights are not the ones the task builds (zoo models from
   * training.seed, an imported model's own initializers) but a given model of the same architecture -
   * an ONNX model exported by fedgate, or a committed model of another federation - named by this hash.
   * The coordinator loads it from its `initial_model` file and refuses one of another hash; every site
   * downloads it by hash and checks it before training.
   */
  initialModel?: { sha256: string; warmStart?: true };
  /**
   * The server optimiser (DESIGN.md step 6) the federation runs: the coordinator takes it from here, and
   * a site refuses optimiser state of another kind or hyper-parameters. `pinTask` fills FedAvg with
   * learning rate 1 when a draft document leaves it out.
   */
  serverOptimizer?: ServerOptimizerSpec;
}

/** A task whose document pins its initial model and server optimiser: the only kind a federation runs. */
export type PinnedTaskDocument = TaskDocument & { initialModel: { sha256: string; warmStart?: true }; serverOptimizer: ServerOptimizerSpec };

const dim = z.number().int().positive();
const finite = z.number().finite();
const unitInterval = finite.min(0).lt(1);

const modelSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('logreg'), inputShape: z.array(dim).min(1), classes: dim.min(2) }),
  z.strictObject({
    kind: z.literal('mlp'),
    inputShape: z.array(dim).min(1),
    hidden: z.array(dim).min(1),
    classes: dim.min(2),
    activation: z.enum(['relu', 'tanh', 'sigmoid']).default('relu'),
  }),
  z.strictObject({ kind: z.literal('cnn'), inputShape: z.tuple([dim, dim.min(4), dim.min(4)]), classes: dim.min(2) }),
  z.strictObject({ kind: z.literal('onnx'), modelSha256: z.string().regex(/^[0-9a-f]{64}$/, 'expected 64 lower-case hex characters') }),
]);

const optimizerSchema = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('sgd'),
    learningRate: finite.positive(),
    momentum: unitInterval.default(0),
    weightDecay: finite.min(0).default(0),
  }),
  z.strictObject({
    kind: z.literal('adam'),
    learningRate: finite.positive(),
    beta1: unitInterval.default(0.9),
    beta2: unitInterval.default(0.999),
    epsilon: finite.positive().default(1e-8),
  }),
]);

const sha256Hex64 = z.string().regex(/^[0-9a-f]{64}$/, 'expected 64 lower-case hex characters');

const serverOptimizerSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('fedavg'), learningRate: finite.positive() }),
  z.strictObject({ kind: z.literal('fedavgm'), learningRate: finite.positive(), momentum: unitInterval.default(0.9) }),
]);

const taskSchema = z.strictObject({
  formatVersion: z.literal(1),
  model: modelSchema,
  loss: z.literal('cross_entropy'),
  input: z.strictObject({ shape: z.array(dim).min(1), dtype: z.literal('float32') }),
  normalization: z.union([
    z.strictObject({ mean: z.array(finite).min(1), std: z.array(finite.positive()).min(1) }),
    z.strictObject({ scale: finite, offset: finite }),
  ]),
  labels: z.array(z.string().min(1)).min(2),
  optimizer: optimizerSchema,
  training: z.strictObject({
    epochs: dim,
    batchSize: dim,
    proximalMu: finite.min(0),
    seed: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  }),
  initialModel: z.strictObject({ sha256: sha256Hex64, warmStart: z.literal(true).optional() }).optional(),
  serverOptimizer: serverOptimizerSchema.optional(),
});

function invalid(message: string): ModelError {
  return new ModelError('INVALID_ARGUMENT', 'TASK_INVALID', `task document: ${message}`);
}

function formatIssue(issue: z.core.$ZodIssue, root: unknown): string {
  const path = issue.path.length === 0 ? '(document)' : issue.path.map(String).join('.');
  const input = (issue as { input?: unknown }).input;
  if (issue.code === 'invalid_type' && input === undefined) {
    return `${path}: missing; expected ${issue.expected}`;
  }
  if (issue.code === 'unrecognized_keys') return `${path}: unknown key(s) ${issue.keys.map((k) => `'${k}'${keyHint(taskSchema, issue.path, k, root)}`).join(', ')}`;
  const got =
    input === undefined || issue.code === 'invalid_union' ? '' : `, got ${describeValue(input)}`;
  return `${path}: ${issue.message}${got}`;
}

/** Per-channel normalisation needs one value for all, one per channel (shape[0]) or one per element. */
function checkNormalization(task: TaskDocument): void {
  const norm = task.normalization;
  if (!('mean' in norm)) return;
  const channels = task.input.shape[0] as number;
  const elements = task.input.shape.reduce((n, d) => n * d, 1);
  if (norm.mean.length !== norm.std.length) {
    throw invalid(`normalization.mean has ${norm.mean.length} values but normalization.std has ${norm.std.length}; expected equal lengths`);
  }
  if (![1, channels, elements].includes(norm.mean.length)) {
    throw invalid(
      `normalization.mean has ${norm.mean.length} values; expected 1, ${channels} (channels = input.shape[0]) or ${elements} (elements)`,
    );
  }
}

function checkConsistency(task: TaskDocument): void {
  const model = task.model;
  if (model.kind !== 'onnx') {
    const same = model.inputShape.length === task.input.shape.length && model.inputShape.every((d, i) => d === task.input.shape[i]);
    if (!same) {
      throw invalid(`input.shape [${task.input.shape.join(', ')}] differs from model.inputShape [${model.inputShape.join(', ')}]; expected them equal`);
    }
    if (task.labels.length !== model.classes) {
      throw invalid(`labels has ${task.labels.length} entries but model.classes is ${model.classes}; expected one label per class`);
    }
  }
  const seen = new Set<string>();
  for (const [index, label] of task.labels.entries()) {
    if (seen.has(label)) throw invalid(`labels.${index}: duplicate label ${JSON.stringify(label)}; expected unique names`);
    seen.add(label);
  }
  checkNormalization(task);
}

/**
 * Validates a task document (e.g. parsed from YAML or JSON) and returns it with defaults filled in.
 * Throws ModelError INVALID_ARGUMENT / TASK_INVALID whose message names every offending key.
 */
export function parseTaskDocument(value: unknown): TaskDocument {
  const result = taskSchema.safeParse(value, { reportInput: true });
  if (!result.success) throw invalid(result.error.issues.map((issue) => formatIssue(issue, value)).join('; '));
  const task = result.data as TaskDocument;
  checkConsistency(task);
  return task;
}

/** Whether `task` pins its initial model and server optimiser (see PinnedTaskDocument). */
export function isPinnedTask(task: TaskDocument): task is PinnedTaskDocument {
  return task.initialModel !== undefined && task.serverOptimizer !== undefined;
}

/**
 * `task` as a PinnedTaskDocument; FAILED_PRECONDITION 'TASK_NOT_PINNED' naming the missing key otherwise.
 * A federation never runs a draft: its hash would not pin where the chain of models starts.
 */
export function requirePinnedTask(task: TaskDocument): PinnedTaskDocument {
  if (isPinnedTask(task)) return task;
  const missing = [task.initialModel === undefined ? 'initialModel' : undefined, task.serverOptimizer === undefined ? 'serverOptimizer' : undefined].filter((key) => key !== undefined);
  throw new ModelError(
    'FAILED_PRECONDITION',
    'TASK_NOT_PINNED',
    `the task document has no ${missing.join(' and no ')}: it does not pin where the federation's models start. Run \`fedgate task hash\` on it, which fills them in, and pin the hash it prints`,
  );
}

/** JSON with keys sorted by UTF-16 code units and no whitespace (the RFC 8785 JCS rules for this data). */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, item]) => item !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${canonicalJson(item)}`).join(',')}}`;
  }
  // ECMAScript Number::toString is the shortest round-trip form, identical on every platform.
  return JSON.stringify(value);
}

/** Canonical UTF-8 bytes of the validated, default-filled document. */
export function canonicalTaskBytes(task: TaskDocument): Uint8Array {
  return new TextEncoder().encode(canonicalJson(parseTaskDocument(task)));
}

/**
 * Hex SHA-256 of the canonical bytes. For kind 'onnx' the document carries the forward model's SHA-256,
 * so the hash binds those bytes; when `forwardModel` is given it must match (else FORWARD_MODEL_HASH_MISMATCH).
 */
export function taskHash(task: TaskDocument, forwardModel?: Uint8Array): string {
  const bytes = canonicalTaskBytes(task);
  if (forwardModel !== undefined) verifyForwardModel(task, forwardModel);
  return sha256Hex(bytes);
}

/** Checks that `forwardModel` is the model a kind-'onnx' task names. */
export function verifyForwardModel(task: TaskDocument, forwardModel: Uint8Array | undefined): Uint8Array | undefined {
  if (task.model.kind !== 'onnx') {
    if (forwardModel !== undefined) {
      throw new ModelError('INVALID_ARGUMENT', 'TASK_INVALID', `a forward ONNX model was supplied but model.kind is '${task.model.kind}'; expected no model bytes`);
    }
    return undefined;
  }
  if (forwardModel === undefined) {
    throw new ModelError(
      'FAILED_PRECONDITION',
      'FORWARD_MODEL_MISSING',
      `model.kind is 'onnx' (modelSha256 ${task.model.modelSha256}) but no forward model bytes were supplied`,
    );
  }
  const actual = sha256Hex(forwardModel);
  if (actual !== task.model.modelSha256) {
    throw new ModelError(
      'INVALID_ARGUMENT',
      'FORWARD_MODEL_HASH_MISMATCH',
      `forward model bytes have SHA-256 ${actual}; model.modelSha256 expects ${task.model.modelSha256}`,
    );
  }
  return forwardModel;
}
