/**
 * bench:zoo's LSTM row on its own: the training step of LSTM(16, 128) over 50 steps, the last hidden
 * state into Linear(128, 10), cross-entropy, batch 32, through the real Trainer (worker thread, one
 * intra-op thread, its trainBlock path). The model is the graph torch.onnx.export writes for
 * `lstm(x)[1][0].squeeze(0)` with batch_first (Transpose, LSTM with a zero initial state, Squeeze, Gemm),
 * built here so the benchmark needs no Python.
 *
 * Median ms per step of WINDOWS timed train() calls after a warm-up. The last line of stdout is one JSON
 * object; progress notes go to stderr. PyTorch 1.13 CPU, 1 thread, on the reference machine: 18.4 ms.
 */
import { createHash } from 'node:crypto';
import { loadavg } from 'node:os';
import { GraphBuilder, attr } from '../model/graph/builder.js';
import { modelFromGraph } from '../model/graph/model.js';
import { encodeModel } from '../model/onnx/codec.js';
import { DataType } from '../model/onnx/schema.js';
import { makeTensor } from '../model/onnx/tensor.js';
import { buildTrainingPlan, parseTaskDocument } from '../model/index.js';
import { Trainer, createDataset } from '../participant/index.js';

const WINDOWS = 5;
const STEPS = 20;
const BATCH = 32;
const SEQ = 50;
const FEATURES = 16;
const HIDDEN = 128;
const CLASSES = 10;
const PYTORCH_MS = 18.4;

function note(message: string): void {
  process.stderr.write(`[bench:zoo-lstm] ${message}\n`);
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** PyTorch's default init for LSTM and Linear: uniform(-1/sqrt(fan), 1/sqrt(fan)), from a fixed LCG. */
function uniform(name: string, dims: number[], bound: number, seed: number): ReturnType<typeof makeTensor> {
  let state = seed;
  const count = dims.reduce((n, d) => n * d, 1);
  const values = Float32Array.from({ length: count }, () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return (state / 4294967296) * 2 * bound - bound;
  });
  return makeTensor(name, DataType.FLOAT, dims, values);
}

function lstmClassifier(): Uint8Array {
  const b = new GraphBuilder('lstm_classifier');
  b.addInput('input', DataType.FLOAT, ['batch', SEQ, FEATURES]);
  const bound = 1 / Math.sqrt(HIDDEN);
  const w = b.addInitializer(uniform('lstm.W', [1, 4 * HIDDEN, FEATURES], bound, 1));
  const r = b.addInitializer(uniform('lstm.R', [1, 4 * HIDDEN, HIDDEN], bound, 2));
  const bias = b.addInitializer(uniform('lstm.B', [1, 8 * HIDDEN], bound, 3));
  const fcW = b.addInitializer(uniform('fc.weight', [CLASSES, HIDDEN], bound, 4));
  const fcB = b.addInitializer(uniform('fc.bias', [CLASSES], bound, 5));
  const batch = b.op('Gather', [b.op('Shape', ['input']), b.constant(DataType.INT64, [], [0])], { axis: attr.int(0) });
  const stateShape = b.op('Concat', [b.int64s([1]), b.op('Unsqueeze', [batch, b.int64s([0])]), b.int64s([HIDDEN])], { axis: attr.int(0) });
  const zeros = b.op('ConstantOfShape', [stateShape], { value: attr.tensor(makeTensor('zero', DataType.FLOAT, [1], [0])) });
  const timeMajor = b.op('Transpose', ['input'], { perm: attr.ints([1, 0, 2]) });
  const [, lastHidden] = b.node('LSTM', [timeMajor, w, r, bias, '', zeros, zeros], { outputs: 3, attributes: { hidden_size: attr.int(HIDDEN) } });
  const features = b.op('Squeeze', [lastHidden as string, b.int64s([0])]);
  b.appendNode('Gemm', [features, fcW, fcB], ['logits'], { transB: attr.int(1) });
  b.addOutput('logits', DataType.FLOAT, ['batch', CLASSES]);
  return encodeModel(modelFromGraph(b.build()));
}

async function main(): Promise<void> {
  const load = loadavg()[0] as number;
  const model = lstmClassifier();
  const task = parseTaskDocument({
    formatVersion: 1,
    model: { kind: 'onnx', modelSha256: createHash('sha256').update(model).digest('hex') },
    loss: 'cross_entropy',
    input: { shape: [SEQ, FEATURES], dtype: 'float32' },
    normalization: { scale: 1, offset: 0 },
    labels: Array.from({ length: CLASSES }, (_, i) => String(i)),
    optimizer: { kind: 'sgd', learningRate: 0.01 },
    training: { epochs: 1, batchSize: BATCH, proximalMu: 0, seed: 1 },
  });
  const plan = buildTrainingPlan(task, model);
  const count = BATCH * STEPS;
  let state = 12345;
  const features = Float32Array.from({ length: count * SEQ * FEATURES }, () => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return state / 4294967296;
  });
  const data = createDataset({ features, labels: Int32Array.from({ length: count }, (_, i) => i % CLASSES), exampleShape: [SEQ, FEATURES], classes: CLASSES });
  const trainer = await Trainer.create({ plan, device: 'cpu', intraOpThreads: 1, stepsPerRun: 'auto' });
  try {
    const options = { epochs: 1, batchSize: BATCH, learningRate: 0.01, seed: 1 };
    await trainer.train(plan.initialParameters, data, options);
    const times: number[] = [];
    const cpuTimes: number[] = [];
    for (let window = 0; window < WINDOWS; window++) {
      const cpuStart = process.cpuUsage();
      const start = performance.now();
      const result = await trainer.train(plan.initialParameters, data, { ...options, seed: window + 2 });
      times.push((performance.now() - start) / result.steps);
      const cpu = process.cpuUsage(cpuStart);
      cpuTimes.push((cpu.user + cpu.system) / 1000 / result.steps);
      note(`window ${window + 1}/${WINDOWS}: ${times[window]?.toFixed(2)} ms/step, ${cpuTimes[window]?.toFixed(2)} CPU ms/step`);
    }
    const ms = median(times);
    process.stdout.write(
      `${JSON.stringify({
        lstm_b32_ms: Number(ms.toFixed(2)),
        lstm_b32_vs_pytorch: Number((ms / PYTORCH_MS).toFixed(3)),
        // CPU time of the whole process per step: close to the wall-clock figure on an idle machine, and
        // still meaningful when other processes compete for the cores.
        lstm_b32_cpu_ms: Number(median(cpuTimes).toFixed(2)),
        load_average_1m: Number(load.toFixed(2)),
      })}\n`,
    );
  } finally {
    await trainer.close();
  }
}

await main();
