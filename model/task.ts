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

/**
 * The training loss. The bare string 'cross_entropy' is plain softmax cross-entropy (the form every task
 * written before other losses existed uses; parsing turns an object form with no options into it, so both
 * spellings hash alike). Semantics follow PyTorch exactly:
 * - cross_entropy: torch.nn.CrossEntropyLoss(weight=classWeights, label_smoothing=labelSmoothing), with its
 *   weighted mean (sum of w[y_i] * loss_i divided by sum of w[y_i]); integer class targets;
 * - binary_cross_entropy: torch.nn.BCEWithLogitsLoss(pos_weight=posWeight), mean over every element;
 *   multi-hot float targets in {0, 1}, one per output (binary classification: one output);
 * - mse, l1, huber: torch.nn.MSELoss / L1Loss / HuberLoss(delta), mean over every element; float targets,
 *   one per output.
 */
export type LossSpec =
  | 'cross_entropy'
  | { kind: 'cross_entropy'; classWeights?: number[]; labelSmoothing?: number }
  | { kind: 'binary_cross_entropy'; posWeight?: number[] }
  | { kind: 'mse' }
  | { kind: 'l1' }
  | { kind: 'huber'; delta: number };

export type LossKind = 'cross_entropy' | 'binary_cross_entropy' | 'mse' | 'l1' | 'huber';

/** What the targets of a loss are: class indices, multi-hot labels, or real values. */
export type TargetKind = 'class' | 'multi_label' | 'regression';

/** A loss with every option spelled out (lossOf). */
export type ResolvedLoss =
  | { kind: 'cross_entropy'; classWeights: readonly number[] | undefined; labelSmoothing: number }
  | { kind: 'binary_cross_entropy'; posWeight: readonly number[] | undefined }
  | { kind: 'mse' }
  | { kind: 'l1' }
  | { kind: 'huber'; delta: number };

/**
 * One named model input fed from data columns (see `inputs`): either `columns` (scalar numeric columns,
 * one value each, in this order) or `column` (one column whose cells have `shape`, or a string column
 * mapped to ids through `vocabulary`).
 */
export interface InputSpec {
  name: string;
  column?: string;
  columns?: string[];
  dtype: 'float32' | 'int64';
  /** Shape of one example of this input (without the batch dimension). */
  shape: number[];
  /** For an int64 input read from a string column: id i is vocabulary[i]; any other string is an error. */
  vocabulary?: string[];
}

/** Where the targets come from: one column (class index/name, or one real target) or several (multi-hot or several real targets). */
export type TargetSpec = { column: string } | { columns: string[] };

export interface TaskDocument {
  formatVersion: 1;
  model: ModelSpec;
  loss: LossSpec;
  input: { shape: number[]; dtype: 'float32' };
  /** x' = (x - mean) / std (per channel, or one value for all), or x' = x * scale + offset. */
  normalization: { mean: number[]; std: number[] } | { scale: number; offset: number };
  /**
   * One name per model output: class index -> class name (cross_entropy), label names (binary /
   * multi-label), target names (regression).
   */
  labels: string[];
  /**
   * The data columns behind the model's inputs, by input name. Absent: the single float32 `input` read
   * as the site's loader delivers it (CSV feature columns, IDX images), as before.
   */
  inputs?: InputSpec[];
  /** The data column(s) the targets come from; absent: the loader's label column. */
  target?: TargetSpec;
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
  privacy?: PrivacySpec;
}

/**
 * Record-level differential privacy (DP-SGD) every site runs on its own records: each local step takes
 * each training example independently with probability `samplingRate` (Poisson sampling), clips each
 * example's gradient to L2 norm `clipNorm`, sums, adds Gaussian noise of standard deviation
 * noiseMultiplier x clipNorm, and divides by the expected batch samplingRate x (the site's training
 * examples). A round is `stepsPerRound` such steps (training.epochs and training.batchSize do not set
 * the local steps then). All four are public: with them anyone computes the epsilon a round spends
 * (crypto/dp subsampled Gaussian RDP), so the task hash pins them.
 */
export interface RecordLevelDpSpec {
  clipNorm: number;
  noiseMultiplier: number;
  samplingRate: number;
  stepsPerRound: number;
}

/**
 * Participant-level distributed DP over secure aggregation (Kairouz, Liu, Steinke 2021): each site clips
 * its whole update to L2 norm `clipNorm`, rotates, scales and rounds it, and adds its share of discrete
 * Gaussian noise in the ring Z_{2^ringBits}, so that the unmasked sum carries noise of standard deviation
 * noiseMultiplier x clipNorm per coordinate even when only t sites survive and `toleratedColluders` of them
 * reveal their noise to the coordinator. The scale gamma (ring units per model unit) is not a task
 * parameter: each round derives it from these values and the round's public |U|, t and model size
 * (crypto/secagg/distributed-dp-round.ts), and every site recomputes and checks it. ringBits absent means
 * 32, SecAgg's own ring (one spelling: 32 is dropped).
 */
export interface ParticipantLevelDpSpec {
  mechanism: 'discrete_gaussian';
  clipNorm: number;
  noiseMultiplier: number;
  toleratedColluders: number;
  ringBits?: number;
}

/** The privacy mechanisms a task asks its sites to run (absent: none). */
export interface PrivacySpec {
  recordLevel?: RecordLevelDpSpec;
  participantLevel?: ParticipantLevelDpSpec;
}

/** A task whose document pins its initial model and server optimiser: the only kind a federation runs. */
export type PinnedTaskDocument = TaskDocument & { initialModel: { sha256: string; warmStart?: true }; serverOptimizer: ServerOptimizerSpec };

const dim = z.number().int().positive();
const finite = z.number().finite();
const unitInterval = finite.min(0).lt(1);

// YAML reads an unquoted hash of digits only (or digits and one 'e') as a number: say so.
const sha256Hex64 = z
  .string({ error: 'expected 64 lower-case hex characters as a string (in YAML, quote a hash that looks like a number)' })
  .regex(/^[0-9a-f]{64}$/, 'expected 64 lower-case hex characters');

const modelSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('logreg'), inputShape: z.array(dim).min(1), classes: dim }),
  z.strictObject({
    kind: z.literal('mlp'),
    inputShape: z.array(dim).min(1),
    hidden: z.array(dim).min(1),
    classes: dim,
    activation: z.enum(['relu', 'tanh', 'sigmoid']).default('relu'),
  }),
  z.strictObject({ kind: z.literal('cnn'), inputShape: z.tuple([dim, dim.min(4), dim.min(4)]), classes: dim }),
  z.strictObject({ kind: z.literal('onnx'), modelSha256: sha256Hex64 }),
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


const serverOptimizerSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('fedavg'), learningRate: finite.positive() }),
  z.strictObject({ kind: z.literal('fedavgm'), learningRate: finite.positive(), momentum: unitInterval.default(0.9) }),
]);

const lossSchema = z.union([
  z.literal('cross_entropy'),
  z.discriminatedUnion('kind', [
    z.strictObject({
      kind: z.literal('cross_entropy'),
      classWeights: z.array(finite.min(0)).min(2).optional(),
      labelSmoothing: finite.min(0).max(1).optional(),
    }),
    z.strictObject({ kind: z.literal('binary_cross_entropy'), posWeight: z.array(finite.positive()).min(1).optional() }),
    z.strictObject({ kind: z.literal('mse') }),
    z.strictObject({ kind: z.literal('l1') }),
    // torch.nn.HuberLoss's default delta, written into the document so its hash pins it.
    z.strictObject({ kind: z.literal('huber'), delta: finite.positive().default(1) }),
  ]),
]);

const columnName = z.string().min(1);

const inputSchema = z.strictObject({
  name: z.string().min(1),
  column: columnName.optional(),
  columns: z.array(columnName).min(1).optional(),
  dtype: z.enum(['float32', 'int64']),
  shape: z.array(dim),
  vocabulary: z.array(z.string()).min(1).optional(),
});

const targetSchema = z.union([z.strictObject({ column: columnName }), z.strictObject({ columns: z.array(columnName).min(1) })]);

const taskSchema = z.strictObject({
  formatVersion: z.literal(1),
  model: modelSchema,
  loss: lossSchema,
  input: z.strictObject({ shape: z.array(dim).min(1), dtype: z.literal('float32') }),
  normalization: z.union([
    z.strictObject({ mean: z.array(finite).min(1), std: z.array(finite.positive()).min(1) }),
    z.strictObject({ scale: finite, offset: finite }),
  ]),
  labels: z.array(z.string().min(1)).min(1),
  inputs: z.array(inputSchema).min(1).optional(),
  target: targetSchema.optional(),
  optimizer: optimizerSchema,
  training: z.strictObject({
    epochs: dim,
    batchSize: dim,
    proximalMu: finite.min(0),
    seed: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  }),
  initialModel: z.strictObject({ sha256: sha256Hex64, warmStart: z.literal(true).optional() }).optional(),
  serverOptimizer: serverOptimizerSchema.optional(),
  privacy: z
    .strictObject({
      recordLevel: z
        .strictObject({
          clipNorm: finite.positive(),
          noiseMultiplier: finite.positive(),
          samplingRate: finite.gt(0).max(1),
          stepsPerRound: dim,
        })
        .optional(),
      participantLevel: z
        .strictObject({
          mechanism: z.literal('discrete_gaussian'),
          clipNorm: finite.positive(),
          noiseMultiplier: finite.positive(),
          toleratedColluders: z.number().int().min(0),
          ringBits: z.number().int().min(2).max(32).optional(),
        })
        .optional(),
    })
    .optional(),
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

/** The task's loss with every option spelled out. */
export function lossOf(task: Pick<TaskDocument, 'loss'>): ResolvedLoss {
  const loss = task.loss;
  if (loss === 'cross_entropy') return { kind: 'cross_entropy', classWeights: undefined, labelSmoothing: 0 };
  switch (loss.kind) {
    case 'cross_entropy':
      return { kind: 'cross_entropy', classWeights: loss.classWeights, labelSmoothing: loss.labelSmoothing ?? 0 };
    case 'binary_cross_entropy':
      return { kind: 'binary_cross_entropy', posWeight: loss.posWeight };
    case 'huber':
      return { kind: 'huber', delta: loss.delta };
    default:
      return { kind: loss.kind };
  }
}

export function targetKindOf(loss: LossKind): TargetKind {
  if (loss === 'cross_entropy') return 'class';
  return loss === 'binary_cross_entropy' ? 'multi_label' : 'regression';
}

/**
 * What the task's federated evaluation reports, for the metric slots of the secure sum (crypto/secagg/
 * metric-slots.ts): the kind of its targets and T, the outputs per example (labels.length).
 */
export function evaluationShapeOf(task: Pick<TaskDocument, 'loss' | 'labels'>): { readonly kind: TargetKind; readonly outputs: number } {
  return { kind: targetKindOf(lossOf(task).kind), outputs: task.labels.length };
}

/**
 * One spelling per meaning: cross-entropy without options is the bare string (the exact bytes of every
 * task written before losses had options), and a label smoothing of 0 is left out.
 */
function canonicalLoss(loss: LossSpec): LossSpec {
  if (loss === 'cross_entropy' || loss.kind !== 'cross_entropy') return loss;
  const smoothing = loss.labelSmoothing === 0 ? undefined : loss.labelSmoothing;
  if (loss.classWeights === undefined && smoothing === undefined) return 'cross_entropy';
  return { kind: 'cross_entropy', ...(loss.classWeights === undefined ? {} : { classWeights: loss.classWeights }), ...(smoothing === undefined ? {} : { labelSmoothing: smoothing }) };
}

function checkLoss(task: TaskDocument): void {
  const loss = lossOf(task);
  const outputs = task.labels.length;
  if (loss.kind === 'cross_entropy') {
    if (outputs < 2) throw invalid(`labels has ${outputs} entry; cross_entropy needs at least 2 classes (for one yes/no output use loss.kind binary_cross_entropy)`);
    if (loss.classWeights !== undefined) {
      if (loss.classWeights.length !== outputs) throw invalid(`loss.classWeights has ${loss.classWeights.length} values but labels has ${outputs} classes; expected one weight per class`);
      if (!loss.classWeights.some((w) => w > 0)) throw invalid('loss.classWeights are all 0; expected at least one positive weight');
    }
  }
  if (loss.kind === 'binary_cross_entropy' && loss.posWeight !== undefined && loss.posWeight.length !== outputs) {
    throw invalid(`loss.posWeight has ${loss.posWeight.length} values but labels has ${outputs} outputs; expected one weight per label`);
  }
  if (task.target !== undefined && 'columns' in task.target) {
    if (loss.kind === 'cross_entropy') throw invalid('target.columns: cross_entropy reads one class column; expected target.column');
    if (task.target.columns.length !== outputs) {
      throw invalid(`target.columns has ${task.target.columns.length} columns but labels has ${outputs} outputs; expected one column per output`);
    }
  }
}

function checkInputs(task: TaskDocument): void {
  if (task.inputs === undefined) return;
  const names = new Set<string>();
  for (const [index, input] of task.inputs.entries()) {
    const at = `inputs.${index} ('${input.name}')`;
    if (names.has(input.name)) throw invalid(`${at}: duplicate input name; expected unique names`);
    names.add(input.name);
    if ((input.column === undefined) === (input.columns === undefined)) throw invalid(`${at}: expected exactly one of column or columns`);
    const size = input.shape.reduce((n, d) => n * d, 1);
    if (input.columns !== undefined && input.columns.length !== size) {
      throw invalid(`${at}: ${input.columns.length} columns do not fill shape [${input.shape.join(', ')}] (${size} values); expected one scalar column per value`);
    }
    if (input.vocabulary !== undefined) {
      if (input.dtype !== 'int64' || input.column === undefined) throw invalid(`${at}: a vocabulary maps one string column to ids; expected dtype int64 and column`);
      const seen = new Set<string>();
      for (const [position, word] of input.vocabulary.entries()) {
        if (seen.has(word)) throw invalid(`${at}: vocabulary.${position} ${JSON.stringify(word)} appears twice; expected unique entries`);
        seen.add(word);
      }
    }
  }
}

/**
 * The task's inputs when the plan feeds them by name: several inputs, or int64 ids. undefined when the
 * model reads the one float32 'input' (no `inputs`, or one float32 entry), whose plan stays as it was.
 */
export function namedInputsOf(task: Pick<TaskDocument, 'inputs'>): readonly InputSpec[] | undefined {
  const inputs = task.inputs;
  if (inputs === undefined || (inputs.length === 1 && inputs[0]?.dtype === 'float32')) return undefined;
  return inputs;
}

/**
 * Named inputs need an imported model with those graph inputs, and carry no task-level normalisation.
 * Checked when a plan is built from the task (forwardModelFor), which `fedgate task hash` and `task check` do.
 */
export function checkNamedInputs(task: TaskDocument): void {
  const named = namedInputsOf(task);
  if (named === undefined) return;
  const list = named.map((input) => `${input.name} (${input.dtype})`).join(', ');
  if (task.model.kind !== 'onnx') {
    throw invalid(`inputs names ${list}, but model.kind ${task.model.kind} reads one float32 input; expected model.kind onnx with a graph input of each name (or one float32 entry in inputs)`);
  }
  const norm = task.normalization;
  if (!('scale' in norm) || norm.scale !== 1 || norm.offset !== 0) {
    throw invalid(`normalization applies to the one float32 input, but inputs names ${list}; expected normalization { scale: 1, offset: 0 } (normalise the columns beforehand, or inside the model)`);
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
  checkLoss(task);
  checkInputs(task);
}

/**
 * Validates a task document (e.g. parsed from YAML or JSON) and returns it with defaults filled in.
 * Throws ModelError INVALID_ARGUMENT / TASK_INVALID whose message names every offending key.
 */
export function parseTaskDocument(value: unknown): TaskDocument {
  const result = taskSchema.safeParse(value, { reportInput: true });
  if (!result.success) throw invalid(result.error.issues.map((issue) => formatIssue(issue, value)).join('; '));
  const task = { ...(result.data as TaskDocument) };
  task.loss = canonicalLoss(task.loss);
  // `privacy: {}` asks for nothing: one spelling, so it hashes like a task without the key.
  if (task.privacy !== undefined && Object.keys(task.privacy).length === 0) delete task.privacy;
  // ringBits 32 is the default: one spelling, so it hashes like a task without the key.
  if (task.privacy?.participantLevel?.ringBits === 32) {
    const participantLevel = { ...task.privacy.participantLevel };
    delete participantLevel.ringBits;
    task.privacy = { ...task.privacy, participantLevel };
  }
  checkConsistency(task);
  return task;
}

/** The task's participant-level DP with ringBits resolved (absent: 32), or undefined when it asks for none. */
export function participantLevelOf(task: Pick<TaskDocument, 'privacy'>): Required<ParticipantLevelDpSpec> | undefined {
  const spec = task.privacy?.participantLevel;
  return spec === undefined ? undefined : { ...spec, ringBits: spec.ringBits ?? 32 };
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
