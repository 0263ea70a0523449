/**
 * The local training loop, run inside the worker thread: minibatch SGD epochs over a shuffled dataset,
 * one ONNX Runtime session.run per step (or per block of steps when the plan has a trainBlock graph).
 *
 * Allocation discipline (the loop runs tens of thousands of steps per round):
 * - parameters and optimizer state live in two flat buffers A and B; a step reads A and ORT writes the
 *   updated tensors straight into B through preallocated output tensors, the next step reads B and writes
 *   A. Nothing proportional to the model is allocated per step;
 * - batches are gathered into one preallocated input buffer and label buffer (batches.ts) whose tensors
 *   are created once per call and fed again every step.
 */
import type * as ort from 'onnxruntime-node';
import { Tensor } from 'onnxruntime-node';
import { Random } from '../data/random.js';
import { BatchBuffer, NamedInputBuffers, type NamedInputLayout } from './batches.js';
import { TrainerError, invalidArgument } from './errors.js';
import { type PlanLayout, type TensorLayout, planLayout } from './plan.js';
import type { EvaluateOutcome, InitMessage, ProgressEvent, ReadyInfo, SharedDataset, TrainOutcome, TrainRequest } from './protocol.js';
import { exampleShapeOf, openSessions, requireIo } from './ort-sessions.js';
import { StateBuffers } from './state-buffers.js';
import { DpSgdRunner } from './dp-sgd.js';

/** Upper bound on the block input buffer: S * B * featureSize * 4 bytes. */
const MAX_BLOCK_BYTES = 64 * 1024 * 1024;
/**
 * Steps per block run in 'auto' mode (InitMessage.stepsPerRun = 0). A block saves the fixed cost of a
 * session.run (argument marshalling, one event-loop turn) for every step but one. Measured in CPU time
 * per step (bench:train, and A/B runs of 1/4/16/64 steps per run), blocks of 16 were never slower than
 * single steps: -35% for the 784-128-10 MLP at batch 64, -5..10% for the 1M-parameter MLP at batch 256
 * and the CNN at batch 32, where the kernels dominate. Wall-clock comparisons on the shared machine were
 * too noisy to rank them.
 */
const AUTO_STEPS_PER_RUN = 16;

interface Batch {
  readonly buffer: BatchBuffer;
  /** Set for a plan with named inputs. */
  readonly named: NamedInputBuffers | undefined;
  /** The data inputs by plan name: 'input', or 'input.<name>' for every named input. */
  readonly inputs: Readonly<Record<string, Tensor>>;
  readonly label: Tensor;
}

type NamedInputInfo = NonNullable<ReadyInfo['namedInputs']>[number];

const NAMED_PREFIX = 'input.';

/** The train graph's named inputs ('input.<name>'), with their types and example shapes; [] if it takes 'input'. */
function namedInputsOf(session: ort.InferenceSession, graph: string, leadingDims: number): NamedInputInfo[] {
  const named: NamedInputInfo[] = [];
  for (const [index, plan] of session.inputNames.entries()) {
    if (!plan.startsWith(NAMED_PREFIX)) continue;
    const meta = session.inputMetadata[index];
    const dtype = meta?.isTensor === true ? meta.type : undefined;
    if (dtype !== 'float32' && dtype !== 'int64') {
      throw invalidArgument('PLAN_MISMATCH', `plan.${graph} input '${plan}' is ${String(dtype)}; expected float32 or int64`);
    }
    named.push({ name: plan.slice(NAMED_PREFIX.length), dtype, shape: exampleShapeOf(session, graph, leadingDims, plan, true) });
  }
  return named;
}

const describeInputs = (inputs: readonly NamedInputInfo[]): string => inputs.map((i) => `${i.name} ${i.dtype} [${i.shape.join(', ')}]`).join(', ');

export class TrainingEngine {
  private batchCache = new Map<string, Batch>();

  private constructor(
    readonly info: ReadyInfo,
    private readonly layout: PlanLayout,
    private readonly trainSession: ort.InferenceSession,
    private readonly blockSession: ort.InferenceSession | undefined,
    private readonly evalSession: ort.InferenceSession,
    private readonly state: StateBuffers,
    /** 0: the plan's 'label' is int64 class indices; n: float32 targets, n per example. */
    private readonly targetSize: number,
    private readonly evalSumNames: readonly string[],
    /** Set for a DP-SGD plan: train() runs it instead of minibatch epochs. */
    private readonly dpSgd: DpSgdRunner | undefined,
  ) {}

  static async open(init: InitMessage): Promise<TrainingEngine> {
    const layout = planLayout(init);
    const { factory, first: trainSession } = await openSessions(init.device, init.intraOpThreads, init.tuning, init.trainStep);
    const evalSession = await factory.create(init.evalStep, 'evalStep');
    const stateNames = [...layout.parameters, ...layout.optimizerState].map((t) => t.name);
    const namedInputs = trainSession.inputNames.includes('input') ? [] : namedInputsOf(trainSession, 'trainStep', 1);
    const dataInputs = namedInputs.length === 0 ? ['input'] : namedInputs.map((input) => `${NAMED_PREFIX}${input.name}`);
    const trainInputs = [...stateNames, ...dataInputs, 'label', 'learning_rate'];
    const trainOutputs = [...stateNames.map((n) => `updated.${n}`), 'loss', 'correct'];
    requireIo(trainSession, 'trainStep', trainInputs, trainOutputs);
    requireIo(evalSession, 'evalStep', [...layout.parameters.map((t) => t.name), ...dataInputs, 'label'], ['loss_sum', 'correct']);
    const inputShape = namedInputs.length === 0 ? exampleShapeOf(trainSession, 'trainStep', 1) : [];
    if (namedInputs.length === 0) {
      const evalShape = exampleShapeOf(evalSession, 'evalStep', 1);
      if (evalShape.join(',') !== inputShape.join(',')) {
        throw invalidArgument('PLAN_MISMATCH', `plan.evalStep takes examples of shape [${evalShape.join(', ')}] but plan.trainStep takes [${inputShape.join(', ')}]; expected the same`);
      }
    } else if (describeInputs(namedInputsOf(evalSession, 'evalStep', 1)) !== describeInputs(namedInputs)) {
      throw invalidArgument('PLAN_MISMATCH', `plan.evalStep takes inputs ${describeInputs(namedInputsOf(evalSession, 'evalStep', 1))} but plan.trainStep takes ${describeInputs(namedInputs)}; expected the same`);
    }
    let blockSession: ort.InferenceSession | undefined;
    let stepsPerRun = 1;
    if (init.trainBlock !== undefined && init.stepsPerRun !== 1) {
      blockSession = await factory.create(init.trainBlock, 'trainBlock');
      requireIo(blockSession, 'trainBlock', trainInputs, trainOutputs);
      if (namedInputs.length === 0) {
        const blockShape = exampleShapeOf(blockSession, 'trainBlock', 2);
        if (blockShape.join(',') !== inputShape.join(',')) {
          throw invalidArgument('PLAN_MISMATCH', `plan.trainBlock takes examples of shape [${blockShape.join(', ')}] but plan.trainStep takes [${inputShape.join(', ')}]; expected the same`);
        }
      } else if (describeInputs(namedInputsOf(blockSession, 'trainBlock', 2)) !== describeInputs(namedInputs)) {
        throw invalidArgument('PLAN_MISMATCH', `plan.trainBlock takes inputs ${describeInputs(namedInputsOf(blockSession, 'trainBlock', 2))} but plan.trainStep takes ${describeInputs(namedInputs)}; expected the same`);
      }
      stepsPerRun = init.stepsPerRun === 0 ? AUTO_STEPS_PER_RUN : init.stepsPerRun;
    }
    const targetSize = labelTargetSize(trainSession, 'trainStep', 1);
    if (labelTargetSize(evalSession, 'evalStep', 1) !== targetSize) {
      throw invalidArgument('PLAN_MISMATCH', "plan.evalStep and plan.trainStep disagree on the type of 'label'; expected the same");
    }
    const evalSumNames = evalSession.outputNames.filter((name) => name !== 'loss_sum' && name !== 'correct');
    const state = new StateBuffers(layout, trainSession.inputNames, evalSumNames);
    for (const name of trainSession.inputNames) {
      if (!state.knows(name)) {
        throw invalidArgument('PLAN_MISMATCH', `plan.trainStep has an input '${name}' that is neither a plan tensor nor part of the train-step contract`);
      }
    }
    const info: ReadyInfo = {
      provider: factory.choice.provider,
      ...(factory.choice.deviceId === undefined ? {} : { deviceId: factory.choice.deviceId }),
      ...(factory.choice.fallbackReason === undefined ? {} : { fallbackReason: factory.choice.fallbackReason }),
      inputShape,
      ...(namedInputs.length === 0 ? {} : { namedInputs }),
      stepsPerRun,
    };
    let dpSgd: DpSgdRunner | undefined;
    if (init.dpSgd !== undefined) {
      const gradientSession = await factory.create(init.dpSgd.gradientSum, 'dpSgd.gradientSum');
      const updateSession = await factory.create(init.dpSgd.update, 'dpSgd.update');
      requireIo(gradientSession, 'dpSgd.gradientSum', [...layout.parameters.map((t) => t.name), ...dataInputs, 'label'], ['loss', 'correct']);
      requireIo(updateSession, 'dpSgd.update', [...stateNames, 'expected_batch', 'learning_rate'], stateNames.map((n) => `updated.${n}`));
      dpSgd = new DpSgdRunner(gradientSession, updateSession, layout, init.dpSgd);
    }
    return new TrainingEngine(info, layout, trainSession, blockSession, evalSession, state, targetSize, evalSumNames, dpSgd);
  }

  async train(
    data: SharedDataset,
    parameters: Float32Array,
    globalParameters: Float32Array | undefined,
    request: TrainRequest,
    abortFlag: Int32Array,
    onProgress: (event: ProgressEvent) => void,
  ): Promise<TrainOutcome> {
    this.checkData(data);
    this.checkParameters(parameters, 'parameters');
    if (globalParameters !== undefined) this.checkParameters(globalParameters, 'globalParameters');
    if (request.proximalMu > 0 && !this.state.hasProximal) {
      throw invalidArgument('PLAN_MISMATCH', `proximalMu is ${request.proximalMu} but plan.trainStep has no 'proximal_mu' input; build the plan with training.proximalMu > 0`);
    }
    if (this.dpSgd !== undefined) return this.trainDpSgd(this.dpSgd, data, parameters, globalParameters ?? parameters, request, abortFlag, onProgress);
    const { batchSize, epochs } = request;
    const featureSize = data.featureSize;
    // Block sizing counts 4-byte words per example: an int64 id is two.
    const exampleWords = this.info.namedInputs === undefined ? featureSize : (data.inputs ?? []).reduce((n, input) => n + input.size * (input.dtype === 'int64' ? 2 : 1), 0);
    const stepsPerEpoch = Math.ceil(data.count / batchSize);
    const totalSteps = stepsPerEpoch * epochs;
    const blockSteps = this.blockSteps(batchSize, exampleWords);
    this.state.reset(parameters, globalParameters ?? parameters, request.learningRate, request.proximalMu);

    const random = new Random(request.seed);
    const order = new Int32Array(data.count);
    for (let i = 0; i < order.length; i++) order[i] = i;
    let step = 0;
    let runs = 0;
    let lossSum = 0;
    let correctSum = 0;
    let seen = 0;
    let windowLoss = 0;
    let windowCorrect = 0;
    let windowExamples = 0;
    let lastReport = performance.now();
    if (Atomics.load(abortFlag, 0) !== 0) {
      throw new TrainerError('CANCELLED', 'TRAINING_ABORTED', 'training aborted by the caller before it started');
    }
    for (let epoch = 1; epoch <= epochs; epoch++) {
      random.shuffle(order);
      let epochLoss = 0;
      let epochCorrect = 0;
      for (let position = 0; position < data.count; ) {
        const remaining = data.count - position;
        const blockExamples = blockSteps * batchSize;
        const useBlock = blockSteps > 1 && remaining >= blockExamples;
        const examples = useBlock ? blockExamples : Math.min(batchSize, remaining);
        const batch = useBlock ? this.batch('block', blockSteps, batchSize, featureSize) : this.batch('step', 1, examples, featureSize);
        this.gather(batch, data, order, position, examples);
        const { loss, correct } = await this.state.run(useBlock ? (this.blockSession as ort.InferenceSession) : this.trainSession, batch.inputs, batch.label);
        const steps = useBlock ? blockSteps : 1;
        // 'loss' is a batch mean (a sum of `steps` batch means for a block); weight it back to a sum.
        const batchLossSum = loss * (examples / steps);
        if (!Number.isFinite(loss)) {
          const where = steps === 1 ? `step ${step + 1}` : `steps ${step + 1}-${step + steps}`;
          throw new TrainerError('ABORTED', 'TRAINING_DIVERGED', `epoch ${epoch}, ${where}: the training loss is ${loss}; expected a finite value (is learningRate ${request.learningRate} too high?)`);
        }
        position += examples;
        step += steps;
        runs++;
        seen += examples;
        epochLoss += batchLossSum;
        epochCorrect += correct;
        windowLoss += batchLossSum;
        windowCorrect += correct;
        windowExamples += examples;
        if (Atomics.load(abortFlag, 0) !== 0) {
          throw new TrainerError('CANCELLED', 'TRAINING_ABORTED', `training aborted by the caller after ${step} of ${totalSteps} steps`);
        }
        if (request.reportProgress && position < data.count && performance.now() - lastReport >= request.progressIntervalMs) {
          onProgress({ kind: 'step', epoch, epochs, step, totalSteps, loss: windowLoss / windowExamples, accuracy: windowCorrect / windowExamples, examplesSeen: seen });
          lastReport = performance.now();
          windowLoss = windowCorrect = windowExamples = 0;
        }
      }
      lossSum += epochLoss;
      correctSum += epochCorrect;
      if (request.reportProgress) {
        onProgress({ kind: 'epoch', epoch, epochs, step, totalSteps, loss: epochLoss / data.count, accuracy: epochCorrect / data.count, examplesSeen: seen });
        lastReport = performance.now();
        windowLoss = windowCorrect = windowExamples = 0;
      }
    }
    return {
      parameters: this.state.currentParameters(),
      examples: data.count,
      meanLoss: lossSum / seen,
      trainAccuracy: correctSum / seen,
      steps: step,
      runs,
    };
  }

  /** One round of DP-SGD (dp-sgd.ts): epochs and batchSize do not apply; the task's record-level parameters do. */
  private async trainDpSgd(
    runner: DpSgdRunner,
    data: SharedDataset,
    parameters: Float32Array,
    globalParameters: Float32Array,
    request: TrainRequest,
    abortFlag: Int32Array,
    onProgress: (event: ProgressEvent) => void,
  ): Promise<TrainOutcome> {
    if (Atomics.load(abortFlag, 0) !== 0) throw new TrainerError('CANCELLED', 'TRAINING_ABORTED', 'training aborted by the caller before it started');
    const gather = (indices: Int32Array, count: number): Record<string, Tensor> => {
      // One buffer per power-of-two capacity (Poisson batch sizes vary every step); views of count rows.
      const capacity = 2 ** Math.ceil(Math.log2(count));
      const batch = this.batch('step', 1, capacity, data.featureSize);
      this.gather(batch, data, indices, 0, count);
      const feeds: Record<string, Tensor> = {};
      for (const [name, tensor] of Object.entries(batch.inputs)) {
        const rowSize = tensor.dims.slice(1).reduce((n, d) => n * d, 1);
        const values = tensor.data as Float32Array | BigInt64Array;
        const rows = values.subarray(0, count * rowSize);
        feeds[name] = rows instanceof BigInt64Array ? new Tensor('int64', rows, [count, ...tensor.dims.slice(1)]) : new Tensor('float32', rows, [count, ...tensor.dims.slice(1)]);
      }
      const labels = batch.label.data as BigInt64Array | Float32Array;
      feeds['label'] =
        labels instanceof BigInt64Array
          ? new Tensor('int64', labels.subarray(0, count), [count])
          : new Tensor('float32', labels.subarray(0, count * this.targetSize), [count, this.targetSize]);
      return feeds;
    };
    const total = runner.spec.stepsPerRound;
    let lastReport = performance.now();
    const onStep = (step: number, _batch: number, soFar: { sampledExamples: number; meanLoss: number; trainAccuracy: number }): void => {
      if (!request.reportProgress) return;
      const last = step === total;
      if (!last && performance.now() - lastReport < request.progressIntervalMs) return;
      // One 'epoch' = the round's stepsPerRound Poisson-sampled steps.
      onProgress({ kind: last ? 'epoch' : 'step', epoch: 1, epochs: 1, step, totalSteps: total, loss: soFar.meanLoss, accuracy: soFar.trainAccuracy, examplesSeen: soFar.sampledExamples });
      lastReport = performance.now();
    };
    const result = await runner.train(parameters, globalParameters, request, data.count, gather, () => Atomics.load(abortFlag, 0) !== 0, onStep);
    return {
      parameters: result.parameters,
      examples: data.count,
      meanLoss: result.meanLoss,
      trainAccuracy: result.trainAccuracy,
      steps: result.accounting.stepsRun,
      runs: 2 * result.accounting.stepsRun,
      dpSgd: result.accounting,
    };
  }

  async evaluate(data: SharedDataset, parameters: Float32Array, batchSize: number): Promise<EvaluateOutcome> {
    this.checkData(data);
    this.checkParameters(parameters, 'parameters');
    this.state.setEvalParameters(parameters);
    const order = new Int32Array(data.count);
    for (let i = 0; i < order.length; i++) order[i] = i;
    let lossSum = 0;
    let correct = 0;
    const sums: Record<string, number> = {};
    for (const name of this.evalSumNames) sums[name] = 0;
    for (let position = 0; position < data.count; ) {
      const examples = Math.min(batchSize, data.count - position);
      const batch = this.batch('step', 1, examples, data.featureSize);
      this.gather(batch, data, order, position, examples);
      const result = await this.state.runEval(this.evalSession, batch.inputs, batch.label, sums);
      lossSum += result.lossSum;
      correct += result.correct;
      position += examples;
    }
    return this.evalSumNames.length === 0 ? { lossSum, correct, examples: data.count } : { lossSum, correct, examples: data.count, sums };
  }

  async dispose(): Promise<void> {
    await Promise.all([this.trainSession.release(), this.evalSession.release(), this.blockSession?.release(), this.dpSgd?.release()]);
  }

  /**
   * Steps per block run for this batch size: 1 when blocks are off or the block's input buffer would be
   * too big. A pure function of the configuration and the batch size, so a seed always gives the same
   * result (blocks and single steps differ in the last bits of float rounding).
   */
  private blockSteps(batchSize: number, featureSize: number): number {
    if (this.blockSession === undefined) return 1;
    const fit = Math.floor(MAX_BLOCK_BYTES / (batchSize * featureSize * 4));
    const steps = Math.min(this.info.stepsPerRun, fit);
    return steps >= 2 ? steps : 1;
  }

  /** Input/label tensors for [steps, rows, ...] (steps = 1: [rows, ...]), kept across calls. */
  private batch(kind: 'step' | 'block', steps: number, rows: number, featureSize: number): Batch {
    const key = `${kind}:${steps}:${rows}:${featureSize}`;
    let batch = this.batchCache.get(key);
    if (batch === undefined) {
      if (this.batchCache.size >= 8) this.batchCache = new Map();
      const buffer = new BatchBuffer(steps * rows, featureSize, this.targetSize);
      const lead = kind === 'block' ? [steps, rows] : [rows];
      const named = this.info.namedInputs;
      const layout: NamedInputLayout[] | undefined = named?.map((input) => ({ name: input.name, dtype: input.dtype, size: input.shape.reduce((n, d) => n * d, 1) }));
      const buffers = layout === undefined ? undefined : new NamedInputBuffers(steps * rows, layout);
      const inputs: Record<string, Tensor> = {};
      if (named === undefined || buffers === undefined) inputs['input'] = new Tensor('float32', buffer.input, [...lead, ...this.info.inputShape]);
      else {
        for (const [index, input] of named.entries()) {
          const values = buffers.values[index] as Float32Array | BigInt64Array;
          const dims = [...lead, ...input.shape];
          inputs[`${NAMED_PREFIX}${input.name}`] = values instanceof BigInt64Array ? new Tensor('int64', values, dims) : new Tensor('float32', values, dims);
        }
      }
      batch = {
        buffer,
        named: buffers,
        inputs,
        label: this.targetSize === 0 ? new Tensor('int64', buffer.labels, lead) : new Tensor('float32', buffer.targets, [...lead, this.targetSize]),
      };
      this.batchCache.set(key, batch);
    }
    return batch;
  }

  private gather(batch: Batch, data: SharedDataset, order: Int32Array, position: number, examples: number): void {
    batch.named?.gather((data.inputs ?? []).map((input) => input.values), order, position, examples);
    if (this.targetSize === 0) batch.buffer.gather(data.features, data.labels, order, position, examples);
    else batch.buffer.gatherTargets(data.features, data.targets as Float32Array, order, position, examples);
  }

  private checkData(data: SharedDataset): void {
    const dataTargets = data.targets === undefined ? 0 : (data.targetSize ?? 0);
    if (dataTargets !== this.targetSize) {
      const want = this.targetSize === 0 ? 'class labels' : `${this.targetSize} float target(s) per example`;
      const have = dataTargets === 0 ? 'class labels' : `${dataTargets} float target(s) per example`;
      throw invalidArgument('DATASET_TARGET_MISMATCH', `dataset has ${have}; the plan's loss needs ${want}`);
    }
    if (this.info.namedInputs !== undefined) this.checkNamedInputs(data, this.info.namedInputs);
    else if (data.inputs !== undefined) {
      throw invalidArgument('DATASET_SHAPE_MISMATCH', `dataset has named inputs (${data.inputs.map((i) => i.name).join(', ')}); the plan takes one float32 'input' [${this.info.inputShape.join(', ')}]`);
    }
    let size = 1;
    for (const dim of this.info.inputShape) size *= dim;
    if (this.info.namedInputs === undefined && data.featureSize !== size) {
      throw invalidArgument('DATASET_SHAPE_MISMATCH', `dataset examples have ${data.featureSize} values; the model's input [${this.info.inputShape.join(', ')}] needs ${size}`);
    }
    if (data.count === 0) throw invalidArgument('DATASET_EMPTY', 'dataset has no examples; expected at least one');
  }

  /** The dataset's inputs must be the plan's, in its order, each of its dtype and example size. */
  private checkNamedInputs(data: SharedDataset, wanted: readonly NamedInputInfo[]): void {
    const have = data.inputs ?? [];
    const describeHave = have.map((i) => `${i.name} ${i.dtype} (${i.size} values)`).join(', ') || `one float32 input of ${data.featureSize} values`;
    const fits =
      have.length === wanted.length &&
      wanted.every((input, index) => {
        const given = have[index];
        return given !== undefined && given.name === input.name && given.dtype === input.dtype && given.size === input.shape.reduce((n, d) => n * d, 1);
      });
    if (!fits) {
      throw invalidArgument('DATASET_INPUT_MISMATCH', `dataset inputs are ${describeHave}; the plan's are ${describeInputs(wanted)} (by name and order, with these types and shapes)`);
    }
  }

  private checkParameters(values: Float32Array, name: string): void {
    if (values.length !== this.layout.parameterSize) {
      throw invalidArgument('PARAMETERS_LENGTH', `${name} has ${values.length} values; the plan's parameters (${describe(this.layout.parameters)}) need ${this.layout.parameterSize}`);
    }
    for (let i = 0; i < values.length; i++) {
      if (!Number.isFinite(values[i])) {
        const tensor = this.layout.parameters.find((t) => i >= t.offset && i < t.offset + t.size) as TensorLayout;
        throw invalidArgument('PARAMETERS_NOT_FINITE', `${name}[${i}] (${tensor.name}[${i - tensor.offset}]) is ${values[i]}; expected finite values`);
      }
    }
  }
}

/** 0 when the graph's 'label' is int64 class indices, else the number of float targets per example. */
function labelTargetSize(session: ort.InferenceSession, graph: string, leadingDims: number): number {
  const meta = session.inputMetadata[session.inputNames.indexOf('label')];
  if (meta === undefined || !meta.isTensor) throw invalidArgument('PLAN_MISMATCH', `plan.${graph} has no tensor input 'label'`);
  if (meta.type === 'int64' && meta.shape.length === leadingDims) return 0;
  const width = meta.shape[leadingDims];
  if (meta.type === 'float32' && meta.shape.length === leadingDims + 1 && typeof width === 'number' && width > 0) return width;
  throw invalidArgument(
    'PLAN_MISMATCH',
    `plan.${graph} input 'label' is ${meta.type} [${meta.shape.join(', ')}]; expected int64 [batch] (class indices) or float32 [batch, targets]`,
  );
}

function describe(tensors: readonly TensorLayout[]): string {
  const shown = tensors.slice(0, 4).map((t) => `${t.name} [${t.shape.join(', ')}]`);
  return tensors.length > 4 ? `${shown.join(', ')}, ...` : shown.join(', ');
}
