/**
 * The DP-SGD loop of a round (Abadi et al. 2016, Algorithm 1), worker side: stepsPerRound steps, each on
 * a Poisson sample of the site's training examples (poisson.ts), each one run of the plan's gradientSum
 * graph (per-example gradients clipped to C and summed, in the graph), noise added here, then one run of
 * the update graph (noisy sum / (q N), then the task's optimiser).
 *
 * The noise: the clipped sum is released as snap(S) + discrete Gaussian noise of standard deviation
 * sigma * C on the grid 2^-k (crypto/dp addSnappedGaussianNoise: exact sampling, node:crypto randomness,
 * no floating-point side channel), then rounded to float32 for the update graph (post-processing). No
 * graph draws random numbers for it. An empty sample (B = 0) skips the gradient graph: S = 0, and the
 * step still adds the noise and updates, as the accountant assumes for every step.
 *
 * What the site's accountant needs comes back as DpSgdAccounting: q, sigma, C, the steps actually run,
 * the dimension d and the grid exponent k (crypto/dp snappedDpSgdStepRdp({ q, sigma, clipNorm, dimension,
 * gridExponent }) composed over `steps`).
 */
import type * as ort from 'onnxruntime-node';
import { Tensor } from 'onnxruntime-node';
import { addSnappedGaussianNoise, DEFAULT_GRID_EXPONENT } from '../../crypto/dp/index.js';
import { checkPerExampleMemory } from '../../model/index.js';
import { TrainerError, invalidArgument } from './errors.js';
import type { PlanLayout, TensorLayout } from './plan.js';
import { PoissonSampler } from './poisson.js';

/** The task's privacy.recordLevel plus the dimension the plan computed. */
export interface DpSgdSpec {
  readonly clipNorm: number;
  readonly noiseMultiplier: number;
  readonly samplingRate: number;
  readonly stepsPerRound: number;
  readonly dimension: number;
}

/**
 * What one train() call spent, for the site's RDP accountant: stepsRun subsampled Gaussian steps at
 * sampling rate q = samplingRate with noise multiplier sigma = noiseMultiplier, each releasing a sum of
 * `dimension` coordinates of per-example L2 sensitivity clipNorm, snapped to the grid 2^-gridExponent
 * (account with crypto/dp snappedDpSgdStepRdp, integer orders). stepsRun < stepsPerRound only when the
 * call was aborted, which then throws; a returned result always has stepsRun = stepsPerRound.
 */
export interface DpSgdAccounting {
  readonly samplingRate: number;
  readonly noiseMultiplier: number;
  readonly clipNorm: number;
  readonly stepsRun: number;
  readonly dimension: number;
  readonly gridExponent: number;
  /** N: the training examples the Poisson sample was drawn from (the divisor is q * N). */
  readonly trainingExamples: number;
  /** Sum of the step batch sizes (local diagnostics only: not part of the release). */
  readonly sampledExamples: number;
}

/** Replaces a clipped sum by its noisy release, in place. */
export type NoiseFunction = (values: Float64Array, noiseStd: number) => void;

export const snappedNoise: NoiseFunction = (values, noiseStd) => addSnappedGaussianNoise(values, { noiseStd, gridExponent: DEFAULT_GRID_EXPONENT });

/** The data feeds ('input' or 'input.<name>', and 'label') of the examples indices[0..count). */
export type GatherFeeds = (indices: Int32Array, count: number) => Record<string, Tensor>;

export interface DpSgdRequest {
  readonly learningRate: number;
  readonly proximalMu: number;
}

export interface DpSgdResult {
  readonly parameters: Float32Array;
  readonly accounting: DpSgdAccounting;
  /** Mean per-example loss and accuracy over every sampled example (0 when no step sampled any). */
  readonly meanLoss: number;
  readonly trainAccuracy: number;
}

export interface DpSgdOptions {
  readonly noise?: NoiseFunction;
  readonly sampler?: PoissonSampler;
  /** Called after every step with its batch size (tests, progress). */
  readonly onStep?: (step: number, batchSize: number, soFar: DpSgdProgress) => void;
}

/** Running figures after a step (local reporting only). */
export interface DpSgdProgress {
  readonly sampledExamples: number;
  readonly meanLoss: number;
  readonly trainAccuracy: number;
}

const clipped = (name: string): string => `clipped_sum.${name}`;
const noisy = (name: string): string => `noisy_sum.${name}`;

export class DpSgdRunner {
  private readonly trainable: readonly TensorLayout[];
  private readonly noise: NoiseFunction;
  private readonly sampler: PoissonSampler;

  constructor(
    private readonly gradientSession: ort.InferenceSession,
    private readonly updateSession: ort.InferenceSession,
    private readonly layout: PlanLayout,
    readonly spec: DpSgdSpec,
    private readonly options: DpSgdOptions = {},
  ) {
    const outputs = new Set(gradientSession.outputNames);
    this.trainable = layout.parameters.filter((t) => outputs.has(clipped(t.name)));
    const dimension = this.trainable.reduce((n, t) => n + t.size, 0);
    if (this.trainable.length === 0 || dimension !== spec.dimension) {
      throw invalidArgument('PLAN_MISMATCH', `plan.dpSgd.gradientSum sums ${dimension} trainable values; plan.dpSgd.dimension says ${spec.dimension}; expected the same, non-zero`);
    }
    for (const t of this.trainable) {
      if (!updateSession.inputNames.includes(noisy(t.name))) throw invalidArgument('PLAN_MISMATCH', `plan.dpSgd.update has no input '${noisy(t.name)}'`);
    }
    this.noise = options.noise ?? snappedNoise;
    this.sampler = options.sampler ?? new PoissonSampler(spec.samplingRate);
    if (this.sampler.rate !== spec.samplingRate) throw invalidArgument('PLAN_MISMATCH', `the Poisson sampler's rate ${this.sampler.rate} is not the task's samplingRate ${spec.samplingRate}`);
  }

  async train(
    parameters: Float32Array,
    globalParameters: Float32Array,
    request: DpSgdRequest,
    trainingExamples: number,
    gather: GatherFeeds,
    aborted: () => boolean,
    onStep?: DpSgdOptions['onStep'],
  ): Promise<DpSgdResult> {
    const { clipNorm, noiseMultiplier, samplingRate, stepsPerRound, dimension } = this.spec;
    const expectedBatch = samplingRate * trainingExamples;
    // Fail before the first step when even the expected batch would not fit.
    this.checkMemory(Math.ceil(expectedBatch));
    const state = new Float32Array(this.layout.totalSize);
    state.set(parameters, 0);
    const all = [...this.layout.parameters, ...this.layout.optimizerState];
    const indices = new Int32Array(trainingExamples);
    const sum = new Float64Array(dimension);
    const scalar = (value: number): Tensor => new Tensor('float32', Float32Array.of(value), []);
    const fixedFeeds: Record<string, Tensor> = { expected_batch: scalar(expectedBatch), learning_rate: scalar(request.learningRate) };
    if (this.updateSession.inputNames.includes('proximal_mu')) {
      fixedFeeds['proximal_mu'] = scalar(request.proximalMu);
      for (const t of this.layout.parameters) fixedFeeds[`global.${t.name}`] = new Tensor('float32', globalParameters.slice(t.offset, t.offset + t.size), [...t.shape]);
    }
    let lossSum = 0;
    let correctSum = 0;
    let sampled = 0;
    for (let step = 1; step <= stepsPerRound; step++) {
      const batch = this.sampler.sample(trainingExamples, indices);
      sum.fill(0);
      const views = new Map(all.map((t) => [t.name, new Tensor('float32', state.slice(t.offset, t.offset + t.size), [...t.shape])]));
      if (batch > 0) {
        this.checkMemory(batch);
        const feeds: Record<string, Tensor> = { ...gather(indices, batch) };
        for (const t of this.layout.parameters) feeds[t.name] = views.get(t.name) as Tensor;
        const result = await this.gradientSession.run(feeds);
        let offset = 0;
        for (const t of this.trainable) {
          sum.set((result[clipped(t.name)] as Tensor).data as Float32Array, offset);
          offset += t.size;
        }
        if (!sum.every(Number.isFinite)) {
          throw new TrainerError('ABORTED', 'TRAINING_DIVERGED', `DP-SGD step ${step}: the clipped gradient sum is not finite; expected finite values (is learningRate ${request.learningRate} too high?)`);
        }
        // 'loss' is for the local log only (a mean with a zero class-weight sum can be infinite).
        const loss = Number((result['loss'] as Tensor).data[0]);
        if (Number.isFinite(loss)) lossSum += loss * batch;
        correctSum += Number((result['correct'] as Tensor).data[0]);
        sampled += batch;
      }
      this.noise(sum, noiseMultiplier * clipNorm);
      const updateFeeds: Record<string, Tensor> = { ...fixedFeeds };
      for (const [name, tensor] of views) updateFeeds[name] = tensor;
      let offset = 0;
      for (const t of this.trainable) {
        updateFeeds[noisy(t.name)] = new Tensor('float32', Float32Array.from(sum.subarray(offset, offset + t.size)), [...t.shape]);
        offset += t.size;
      }
      const updated = await this.updateSession.run(updateFeeds);
      for (const t of all) state.set((updated[`updated.${t.name}`] as Tensor).data as Float32Array, t.offset);
      (onStep ?? this.options.onStep)?.(step, batch, { sampledExamples: sampled, meanLoss: sampled === 0 ? 0 : lossSum / sampled, trainAccuracy: sampled === 0 ? 0 : correctSum / sampled });
      if (aborted()) throw new TrainerError('CANCELLED', 'TRAINING_ABORTED', `training aborted by the caller after ${step} of ${stepsPerRound} DP-SGD steps`);
    }
    return {
      parameters: state.slice(0, this.layout.parameterSize),
      accounting: {
        samplingRate,
        noiseMultiplier,
        clipNorm,
        stepsRun: stepsPerRound,
        dimension,
        gridExponent: DEFAULT_GRID_EXPONENT,
        trainingExamples,
        sampledExamples: sampled,
      },
      meanLoss: sampled === 0 ? 0 : lossSum / sampled,
      trainAccuracy: sampled === 0 ? 0 : correctSum / sampled,
    };
  }

  async release(): Promise<void> {
    await Promise.all([this.gradientSession.release(), this.updateSession.release()]);
  }

  private checkMemory(batch: number): void {
    try {
      checkPerExampleMemory(this.spec.dimension, batch);
    } catch (error) {
      throw new TrainerError('RESOURCE_EXHAUSTED', 'DP_BATCH_TOO_LARGE', (error as Error).message, { cause: error });
    }
  }
}
