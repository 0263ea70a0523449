/**
 * The training state of one Trainer (worker side): parameters and optimizer state double-buffered in two
 * flat Float32Arrays with an ONNX tensor over every slice, plus the scalar inputs and outputs. Built once
 * per worker; `run` alternates A -> B and B -> A so ORT writes each step's updated tensors into the
 * buffer the previous step read from two steps earlier (inputs and outputs never alias).
 */
import type * as ort from 'onnxruntime-node';
import { Tensor } from 'onnxruntime-node';
import type { PlanLayout, TensorLayout } from './plan.js';

type Feeds = Record<string, Tensor>;

const CONTRACT_INPUTS = new Set(['input', 'label', 'learning_rate', 'proximal_mu']);

function tensorsOver(buffer: Float32Array, tensors: readonly TensorLayout[]): Map<string, Tensor> {
  return new Map(tensors.map((t) => [t.name, new Tensor('float32', buffer.subarray(t.offset, t.offset + t.size), [...t.shape])]));
}

function scalar(): { value: Float32Array; tensor: Tensor } {
  const value = new Float32Array(1);
  return { value, tensor: new Tensor('float32', value, []) };
}

export class StateBuffers {
  /** True when the train graph takes FedProx's 'proximal_mu' (and 'global.<param>' inputs). */
  readonly hasProximal: boolean;
  private readonly buffers: [Float32Array, Float32Array];
  private readonly globalBuffer: Float32Array;
  private readonly evalBuffer: Float32Array;
  private readonly learningRate = scalar();
  private readonly proximalMu = scalar();
  private readonly loss = scalar();
  private readonly correct = scalar();
  private readonly lossSum = scalar();
  /** feeds[i] reads buffers[i]; fetches[i] writes buffers[1 - i]. */
  private readonly feeds: [Feeds, Feeds];
  private readonly fetches: [Feeds, Feeds];
  private readonly evalFeeds: Feeds;
  private readonly evalFetches: Feeds;
  private readonly trainInputs: ReadonlySet<string>;
  private current: 0 | 1 = 0;

  /** The evalStep's outputs beyond loss_sum and correct (see EvaluateOutcome.sums). */
  private readonly evalSums: ReadonlyMap<string, { value: Float32Array; tensor: Tensor }>;

  constructor(
    private readonly layout: PlanLayout,
    trainInputNames: readonly string[],
    evalSumNames: readonly string[] = [],
  ) {
    this.trainInputs = new Set(trainInputNames);
    this.hasProximal = this.trainInputs.has('proximal_mu');
    const all = [...layout.parameters, ...layout.optimizerState];
    this.buffers = [new Float32Array(layout.totalSize), new Float32Array(layout.totalSize)];
    this.globalBuffer = new Float32Array(layout.parameterSize);
    this.evalBuffer = new Float32Array(layout.parameterSize);
    const views = this.buffers.map((buffer) => tensorsOver(buffer, all)) as [Map<string, Tensor>, Map<string, Tensor>];
    const globals = tensorsOver(this.globalBuffer, layout.parameters);
    const makeFeeds = (side: 0 | 1): Feeds => {
      const feeds: Feeds = { learning_rate: this.learningRate.tensor };
      for (const [name, tensor] of views[side]) feeds[name] = tensor;
      if (this.hasProximal) {
        feeds['proximal_mu'] = this.proximalMu.tensor;
        for (const [name, tensor] of globals) if (this.trainInputs.has(`global.${name}`)) feeds[`global.${name}`] = tensor;
      }
      return feeds;
    };
    const makeFetches = (side: 0 | 1): Feeds => {
      const fetches: Feeds = { loss: this.loss.tensor, correct: this.correct.tensor };
      for (const [name, tensor] of views[side]) fetches[`updated.${name}`] = tensor;
      return fetches;
    };
    this.feeds = [makeFeeds(0), makeFeeds(1)];
    this.fetches = [makeFetches(1), makeFetches(0)];
    this.evalFeeds = Object.fromEntries(tensorsOver(this.evalBuffer, layout.parameters));
    this.evalSums = new Map(evalSumNames.map((name) => [name, scalar()]));
    this.evalFetches = { loss_sum: this.lossSum.tensor, correct: this.correct.tensor };
    for (const [name, sum] of this.evalSums) this.evalFetches[name] = sum.tensor;
  }

  /** Whether the loop knows what to feed for a train-graph input of this name. */
  knows(name: string): boolean {
    if (CONTRACT_INPUTS.has(name) || name.startsWith('input.')) return true;
    if (name.startsWith('global.') && this.hasProximal) return this.layout.parameters.some((t) => `global.${t.name}` === name);
    return [...this.layout.parameters, ...this.layout.optimizerState].some((t) => t.name === name);
  }

  /**
   * Starts a call: parameters from the caller, optimizer state zeroed (local optimizer state does not
   * carry over between rounds: each round starts from the new global model), the FedProx anchor w^t
   * (Li et al., "Federated optimization in heterogeneous networks", MLSys 2020, Algorithm 2).
   */
  reset(parameters: Float32Array, globalParameters: Float32Array, learningRate: number, proximalMu: number): void {
    const start = this.buffers[0];
    start.set(parameters, 0);
    start.fill(0, this.layout.parameterSize);
    this.globalBuffer.set(globalParameters);
    this.learningRate.value[0] = learningRate;
    this.proximalMu.value[0] = proximalMu;
    this.current = 0;
  }

  /** One session.run of a train graph on the data inputs by name ('input', or 'input.<name>'); returns its 'loss' and 'correct' outputs. */
  async run(session: ort.InferenceSession, inputs: Readonly<Record<string, Tensor>>, label: Tensor): Promise<{ loss: number; correct: number }> {
    const feeds = this.feeds[this.current];
    for (const name in inputs) feeds[name] = inputs[name] as Tensor;
    feeds['label'] = label;
    await session.run(feeds, this.fetches[this.current]);
    this.current = this.current === 0 ? 1 : 0;
    return { loss: this.loss.value[0] as number, correct: this.correct.value[0] as number };
  }

  /** A copy of the parameters after the last step. */
  currentParameters(): Float32Array {
    return this.buffers[this.current].slice(0, this.layout.parameterSize);
  }

  setEvalParameters(parameters: Float32Array): void {
    this.evalBuffer.set(parameters);
  }

  /** One evalStep run; adds the further sums of the batch to `sums`. */
  async runEval(session: ort.InferenceSession, inputs: Readonly<Record<string, Tensor>>, label: Tensor, sums?: Record<string, number>): Promise<{ lossSum: number; correct: number }> {
    for (const name in inputs) this.evalFeeds[name] = inputs[name] as Tensor;
    this.evalFeeds['label'] = label;
    await session.run(this.evalFeeds, this.evalFetches);
    if (sums !== undefined) for (const [name, sum] of this.evalSums) sums[name] = (sums[name] ?? 0) + (sum.value[0] as number);
    return { lossSum: this.lossSum.value[0] as number, correct: this.correct.value[0] as number };
  }
}
