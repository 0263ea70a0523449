/**
 * bench:train - local training speed through the real Trainer (worker thread, one intra-op thread) on
 * synthetic data, the main thread's event-loop lag while the worker trains, raw session.run on the main
 * thread for comparison (what the worker and the training loop cost on top of ONNX Runtime's kernels),
 * and Fashion-MNIST accuracy when the Debian dataset is installed.
 *
 * Every speed figure is the median of WINDOWS timed windows after a warm-up call. The last line of stdout
 * is one JSON object; progress notes go to stderr.
 *
 * Targets (the issue): mlp_784_128_10_b64_steps_per_s >= 2000 (PyTorch 1.13, 1 thread: 1608 on the
 * reference machine), mlp_1m_b256_ms_per_step <= 13 (PyTorch: 27), event_loop_max_lag_ms <= 20.
 */
import { existsSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import * as ort from 'onnxruntime-node';
import { type ModelSpec, type TaskDocument, type TrainingPlan, buildTrainingPlan, parseTaskDocument } from '../model/index.js';
import { type Dataset, Trainer, createDataset, loadIdxDataset, normalize, reshapeExamples } from '../participant/index.js';

const WINDOWS = 5;
const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';
const LABELS = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];

function note(message: string): void {
  process.stderr.write(`[bench:train] ${message}\n`);
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

const round = (value: number, digits = 3): number => Number(value.toFixed(digits));

function taskFor(model: ModelSpec, inputShape: number[], batchSize: number, normalization: TaskDocument['normalization'] = { scale: 1, offset: 0 }): TaskDocument {
  return parseTaskDocument({
    formatVersion: 1,
    model,
    loss: 'cross_entropy',
    input: { shape: inputShape, dtype: 'float32' },
    normalization,
    labels: LABELS,
    optimizer: { kind: 'sgd', learningRate: 0.01 },
    training: { epochs: 1, batchSize, proximalMu: 0, seed: 1 },
  });
}

/** Uniform random features in [0, 1) and cycling labels: speed does not depend on the values. */
function syntheticData(count: number, exampleShape: number[]): Dataset {
  const size = exampleShape.reduce((n, d) => n * d, 1);
  const features = new Float32Array(count * size);
  let state = 12345;
  for (let i = 0; i < features.length; i++) {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    features[i] = state / 4294967296;
  }
  return createDataset({ features, labels: Int32Array.from({ length: count }, (_, i) => i % 10), exampleShape, classes: 10 });
}

interface Speed {
  /** Wall-clock milliseconds per step (the headline figures). */
  readonly msPerStep: number;
  /**
   * CPU milliseconds the whole process (main thread + worker) spent per step: close to the wall-clock
   * figure on an idle machine, and still meaningful when other processes compete for the cores.
   */
  readonly cpuMsPerStep: number;
  /** Optimisation steps per session.run in the timed calls (> 1 when trainBlock was used). */
  readonly stepsPerRun: number;
}

/** Median ms per optimisation step through the Trainer: each window is one train() call of `steps` steps. */
async function trainerSpeed(plan: TrainingPlan, exampleShape: number[], batchSize: number, steps: number, stepsPerRun: 'auto' | number): Promise<Speed> {
  const data = syntheticData(batchSize * steps, exampleShape);
  const trainer = await Trainer.create({ plan, device: 'cpu', intraOpThreads: 1, stepsPerRun });
  try {
    const options = { epochs: 1, batchSize, learningRate: 0.01, seed: 1 };
    await trainer.train(plan.initialParameters, data, options); // warm-up; also shares the dataset
    const times: number[] = [];
    const cpuTimes: number[] = [];
    let stepsPerRunMeasured = 1;
    for (let window = 0; window < WINDOWS; window++) {
      const cpuStart = process.cpuUsage();
      const start = performance.now();
      const result = await trainer.train(plan.initialParameters, data, { ...options, seed: window + 2 });
      times.push((performance.now() - start) / result.steps);
      const cpu = process.cpuUsage(cpuStart);
      cpuTimes.push((cpu.user + cpu.system) / 1000 / result.steps);
      stepsPerRunMeasured = result.steps / result.runs;
    }
    return { msPerStep: median(times), cpuMsPerStep: median(cpuTimes), stepsPerRun: round(stepsPerRunMeasured, 2) };
  } finally {
    await trainer.close();
  }
}

/**
 * Median ms per raw session.run of the train-step graph on this thread, with the same double-buffered
 * preallocated outputs the trainer uses: ONNX Runtime's own cost, without worker, batching or messages.
 */
async function rawSessionRun(plan: TrainingPlan, exampleShape: number[], batchSize: number, steps: number): Promise<{ ms: number; cpuMs: number }> {
  const session = await ort.InferenceSession.create(plan.trainStep, {
    executionProviders: ['cpu'],
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'extended', // as the trainer (participant/trainer/ort-sessions.ts)
    logSeverityLevel: 3,
  });
  try {
    const tensors = [...plan.parameters, ...plan.optimizerState];
    const sides = [0, 1].map(() => {
      const map: Record<string, ort.Tensor> = {};
      let offset = 0;
      for (const t of tensors) {
        const size = t.shape.reduce((n, d) => n * d, 1);
        const values = new Float32Array(size);
        if (offset < plan.initialParameters.length) values.set(plan.initialParameters.subarray(offset, offset + size));
        map[t.name] = new ort.Tensor('float32', values, [...t.shape]);
        offset += size;
      }
      return map;
    });
    const data = syntheticData(batchSize, exampleShape);
    const scalar = (value: number): ort.Tensor => new ort.Tensor('float32', Float32Array.of(value), []);
    const shared = {
      input: new ort.Tensor('float32', data.features, [batchSize, ...exampleShape]),
      label: new ort.Tensor('int64', BigInt64Array.from(data.labels, (l) => BigInt(l)), [batchSize]),
      learning_rate: scalar(0.01),
    };
    const outputs = { loss: scalar(0), correct: scalar(0) };
    const feeds = sides.map((side) => ({ ...side, ...shared }));
    const fetches = [1, 0].map((i) => {
      const map: Record<string, ort.Tensor> = { ...outputs };
      for (const [name, tensor] of Object.entries(sides[i] as Record<string, ort.Tensor>)) map[`updated.${name}`] = tensor;
      return map;
    });
    let current = 0;
    const run = async (): Promise<void> => {
      await session.run(feeds[current] as ort.InferenceSession.FeedsType, fetches[current] as ort.InferenceSession.FetchesType);
      current = 1 - current;
    };
    for (let i = 0; i < Math.min(steps, 20); i++) await run();
    const times: number[] = [];
    const cpuTimes: number[] = [];
    for (let window = 0; window < WINDOWS; window++) {
      const cpuStart = process.cpuUsage();
      const start = performance.now();
      for (let i = 0; i < steps; i++) await run();
      times.push((performance.now() - start) / steps);
      const cpu = process.cpuUsage(cpuStart);
      cpuTimes.push((cpu.user + cpu.system) / 1000 / steps);
    }
    return { ms: median(times), cpuMs: median(cpuTimes) };
  } finally {
    await session.release();
  }
}

/** Largest gap beyond its period between two firings of a 1 ms timer while the worker trains. */
async function eventLoopLag(plan: TrainingPlan, exampleShape: number[], batchSize: number, steps: number): Promise<number> {
  const data = syntheticData(batchSize * steps, exampleShape);
  const trainer = await Trainer.create({ plan, device: 'cpu', intraOpThreads: 1 });
  try {
    const options = { epochs: 1, batchSize, learningRate: 0.01, seed: 1 };
    await trainer.train(plan.initialParameters, data, { ...options, epochs: 1 }); // shares the dataset first
    let last = performance.now();
    let maxLag = 0;
    const timer = setInterval(() => {
      const now = performance.now();
      maxLag = Math.max(maxLag, now - last - 1);
      last = now;
    }, 1);
    try {
      for (let window = 0; window < 2; window++) await trainer.train(plan.initialParameters, data, { ...options, seed: window });
    } finally {
      clearInterval(timer);
    }
    return maxLag;
  } finally {
    await trainer.close();
  }
}

async function fashionMnistAccuracy(): Promise<number | null> {
  if (!existsSync(`${FASHION_MNIST_DIR}/train-images-idx3-ubyte.gz`)) return null;
  const normalization = { mean: [72.94], std: [90.02] };
  const load = async (prefix: string): Promise<Dataset> =>
    reshapeExamples(
      normalize(await loadIdxDataset({ images: `${FASHION_MNIST_DIR}/${prefix}-images-idx3-ubyte.gz`, labels: `${FASHION_MNIST_DIR}/${prefix}-labels-idx1-ubyte.gz` }), normalization),
      [784],
    );
  const [train, test] = await Promise.all([load('train'), load('t10k')]);
  const doc = taskFor({ kind: 'mlp', inputShape: [784], hidden: [128], classes: 10 }, [784], 32, normalization);
  const plan = buildTrainingPlan(doc);
  const trainer = await Trainer.create({ plan, device: 'cpu', intraOpThreads: 1 });
  try {
    const result = await trainer.train(plan.initialParameters, train, { epochs: 2, batchSize: 32, learningRate: 0.05, seed: 1 });
    const evaluation = await trainer.evaluate(result.parameters, test, { batchSize: 1000 });
    return evaluation.correct / evaluation.examples;
  } finally {
    await trainer.close();
  }
}

async function main(): Promise<void> {
  // Other processes on the machine slow every wall-clock figure down; the load average says how busy it was.
  const loadStart = loadavg()[0] ?? 0;
  const mlpSmall = buildTrainingPlan(taskFor({ kind: 'mlp', inputShape: [784], hidden: [128], classes: 10 }, [784], 64));
  const mlp1m = buildTrainingPlan(taskFor({ kind: 'mlp', inputShape: [784], hidden: [1024, 256], classes: 10 }, [784], 256));
  const cnn = buildTrainingPlan(taskFor({ kind: 'cnn', inputShape: [1, 28, 28], classes: 10 }, [1, 28, 28], 32));
  note(`parameters: mlp 784-128-10 ${mlpSmall.initialParameters.length}, mlp 784-1024-256-10 ${mlp1m.initialParameters.length}, cnn ${cnn.initialParameters.length}; trainBlock: ${mlpSmall.trainBlock === undefined ? 'absent' : 'present'}`);

  const speeds: Record<string, Speed> = {};
  // 'auto' (the default: trainBlock when the plan has it) and 1 (the single-step graph only).
  for (const stepsPerRun of ['auto', 1] as const) {
    const suffix = stepsPerRun === 'auto' ? '' : '_single_step';
    speeds[`mlp_b64${suffix}`] = await trainerSpeed(mlpSmall, [784], 64, 400, stepsPerRun);
    speeds[`mlp_b256${suffix}`] = await trainerSpeed(mlpSmall, [784], 256, 200, stepsPerRun);
    speeds[`mlp_1m_b256${suffix}`] = await trainerSpeed(mlp1m, [784], 256, 32, stepsPerRun);
    speeds[`cnn_b32${suffix}`] = await trainerSpeed(cnn, [1, 28, 28], 32, 16, stepsPerRun);
    note(`trainer speeds (stepsPerRun ${stepsPerRun}) done`);
  }
  const raw = {
    mlp_b64: await rawSessionRun(mlpSmall, [784], 64, 400),
    mlp_b256: await rawSessionRun(mlpSmall, [784], 256, 200),
    mlp_1m_b256: await rawSessionRun(mlp1m, [784], 256, 32),
    cnn_b32: await rawSessionRun(cnn, [1, 28, 28], 32, 16),
  };
  note('raw session.run done');
  const lag = await eventLoopLag(mlp1m, [784], 1024, 8);
  note('event-loop lag done');
  const accuracy = await fashionMnistAccuracy();
  note('fashion-mnist done');

  const at = (key: string): Speed => speeds[key] as Speed;
  console.log(
    JSON.stringify({
      mlp_784_128_10_b64_steps_per_s: round(1000 / at('mlp_b64').msPerStep, 0),
      mlp_784_128_10_b256_steps_per_s: round(1000 / at('mlp_b256').msPerStep, 0),
      mlp_1m_b256_ms_per_step: round(at('mlp_1m_b256').msPerStep),
      cnn_b32_ms_per_step: round(at('cnn_b32').msPerStep),
      event_loop_max_lag_ms: round(lag),
      fmnist_mlp_2ep_test_acc: accuracy === null ? null : round(accuracy, 4),
      steps_per_run: { mlp_b64: at('mlp_b64').stepsPerRun, mlp_b256: at('mlp_b256').stepsPerRun, mlp_1m_b256: at('mlp_1m_b256').stepsPerRun, cnn_b32: at('cnn_b32').stepsPerRun },
      single_step_graph: {
        mlp_784_128_10_b64_steps_per_s: round(1000 / at('mlp_b64_single_step').msPerStep, 0),
        mlp_784_128_10_b256_steps_per_s: round(1000 / at('mlp_b256_single_step').msPerStep, 0),
        mlp_1m_b256_ms_per_step: round(at('mlp_1m_b256_single_step').msPerStep),
        cnn_b32_ms_per_step: round(at('cnn_b32_single_step').msPerStep),
        mlp_784_128_10_b64_steps_per_cpu_s: round(1000 / at('mlp_b64_single_step').cpuMsPerStep, 0),
        mlp_1m_b256_cpu_ms_per_step: round(at('mlp_1m_b256_single_step').cpuMsPerStep),
        cnn_b32_cpu_ms_per_step: round(at('cnn_b32_single_step').cpuMsPerStep),
      },
      cpu_time_per_step: {
        mlp_784_128_10_b64_steps_per_cpu_s: round(1000 / at('mlp_b64').cpuMsPerStep, 0),
        mlp_784_128_10_b256_steps_per_cpu_s: round(1000 / at('mlp_b256').cpuMsPerStep, 0),
        mlp_1m_b256_cpu_ms_per_step: round(at('mlp_1m_b256').cpuMsPerStep),
        cnn_b32_cpu_ms_per_step: round(at('cnn_b32').cpuMsPerStep),
      },
      raw_session_run_main_thread: {
        mlp_784_128_10_b64_steps_per_s: round(1000 / raw.mlp_b64.ms, 0),
        mlp_784_128_10_b256_steps_per_s: round(1000 / raw.mlp_b256.ms, 0),
        mlp_1m_b256_ms_per_step: round(raw.mlp_1m_b256.ms),
        cnn_b32_ms_per_step: round(raw.cnn_b32.ms),
        mlp_784_128_10_b64_steps_per_cpu_s: round(1000 / raw.mlp_b64.cpuMs, 0),
        mlp_1m_b256_cpu_ms_per_step: round(raw.mlp_1m_b256.cpuMs),
        cnn_b32_cpu_ms_per_step: round(raw.cnn_b32.cpuMs),
      },
      load_average_1m: { start: round(loadStart, 2), end: round(loadavg()[0] ?? 0, 2) },
      cores: availableParallelism(),
      intra_op_threads: 1,
      windows: WINDOWS,
      onnxruntime_node: ort.env.versions.node ?? null,
    }),
  );
}

await main();
