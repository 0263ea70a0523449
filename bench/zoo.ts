/**
 * bench:zoo - the training step of the models teams bring, through the real Trainer (worker thread, one
 * intra-op thread, its trainBlock path), against PyTorch 1.13 on one CPU thread with the same models and
 * batches. ResNet-18, MobileNetV2, the Transformer encoder, the LSTM and the tabular net are exported by
 * scripts/bench/zoo_models.py exactly as a team would (torch.onnx.export, opset 17, training mode);
 * fedavg_cnn is fedgate's own zoo CNN.
 *
 * Each model runs in its own child process, so `peak_rss_mib` (ResNet-18's) is that run's own peak. Every
 * figure is the median ms per step of WINDOWS timed train() calls after a warm-up call. `*_vs_pytorch`
 * divides by the PyTorch figures measured on the reference machine (the issue's table); `-- --pytorch`
 * also times PyTorch here (`pytorch_here_*_ms`). `-- --only resnet18,lstm` runs a subset. The last line of
 * stdout is one JSON object; progress notes go to stderr. Needs Debian's python3-torch and
 * python3-torchvision to export the models.
 */
import { createHash } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ModelSpec, buildTrainingPlan, parseTaskDocument } from '../model/index.js';
import { Trainer, createDataset } from '../participant/index.js';

// The issue asks for the median of >= 5 windows; 9 makes the median robust to one or two windows that
// this shared VM runs slowly (single windows of the same code vary by up to 30 %).
const WINDOWS = 9;
const PYTHON = '/usr/bin/python3';
const SCRIPT = fileURLToPath(new URL('../scripts/bench/zoo_models.py', import.meta.url));

interface Row {
  /** JSON key prefix. */
  readonly key: string;
  /** The exported model's file name, or the zoo model spec. */
  readonly model: string | ModelSpec;
  readonly exampleShape: number[];
  readonly batch: number;
  readonly classes: number;
  /** Steps per timed window. */
  readonly steps: number;
  /** PyTorch 1.13 CPU, 1 thread, reference machine (issue 12's table). */
  readonly pytorchMs: number;
}

const ROWS: readonly Row[] = [
  { key: 'resnet18_c32_b32', model: 'resnet18', exampleShape: [3, 32, 32], batch: 32, classes: 10, steps: 8, pytorchMs: 141 },
  { key: 'mobilenet_v2_c32_b32', model: 'mobilenet_v2', exampleShape: [3, 32, 32], batch: 32, classes: 10, steps: 8, pytorchMs: 119 },
  { key: 'fedavg_cnn_b32', model: { kind: 'cnn', inputShape: [1, 28, 28], classes: 10 }, exampleShape: [1, 28, 28], batch: 32, classes: 10, steps: 40, pytorchMs: 27.8 },
  { key: 'transformer_b32', model: 'transformer', exampleShape: [64, 16], batch: 32, classes: 10, steps: 16, pytorchMs: 78.6 },
  { key: 'lstm_b32', model: 'lstm', exampleShape: [50, 16], batch: 32, classes: 10, steps: 40, pytorchMs: 18.4 },
  { key: 'tabular_b256', model: 'tabular', exampleShape: [64], batch: 256, classes: 2, steps: 100, pytorchMs: 2.9 },
];

const PYTORCH_KEYS: Readonly<Record<string, string>> = {
  resnet18_c32_b32: 'resnet18',
  fedavg_cnn_b32: 'fedavg_cnn',
  mobilenet_v2_c32_b32: 'mobilenet_v2',
  transformer_b32: 'transformer',
  lstm_b32: 'lstm',
  tabular_b256: 'tabular',
};

function note(message: string): void {
  process.stderr.write(`[bench:zoo] ${message}\n`);
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

const round = (value: number, digits = 2): number => Number(value.toFixed(digits));

function argument(name: string): string | undefined {
  const index = process.argv.indexOf(name);
  return index < 0 ? undefined : process.argv[index + 1];
}

interface RowResult {
  readonly ms: number;
  readonly cpuMs: number;
  readonly peakRssMib: number;
}

/** One row, in this (child) process: import or build the model, warm up, time WINDOWS windows. */
async function runRow(row: Row, modelDir: string): Promise<RowResult> {
  let model: ModelSpec;
  let bytes: Uint8Array | undefined;
  if (typeof row.model === 'string') {
    bytes = readFileSync(join(modelDir, `${row.model}.onnx`));
    model = { kind: 'onnx', modelSha256: createHash('sha256').update(bytes).digest('hex') };
  } else {
    model = row.model;
  }
  const task = parseTaskDocument({
    formatVersion: 1,
    model,
    loss: 'cross_entropy',
    input: { shape: row.exampleShape, dtype: 'float32' },
    normalization: { scale: 1, offset: 0 },
    labels: Array.from({ length: row.classes }, (_, i) => String(i)),
    optimizer: { kind: 'sgd', learningRate: 0.01 },
    training: { epochs: 1, batchSize: row.batch, proximalMu: 0, seed: 1 },
  });
  const plan = buildTrainingPlan(task, bytes);
  const count = row.batch * row.steps;
  const size = row.exampleShape.reduce((n, d) => n * d, 1);
  let state = 12345;
  const features = Float32Array.from({ length: count * size }, () => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return state / 4294967296;
  });
  const labels = Int32Array.from({ length: count }, (_, i) => i % row.classes);
  const data = createDataset({ features, labels, exampleShape: row.exampleShape, classes: row.classes });
  const trainer = await Trainer.create({ plan, device: 'cpu', intraOpThreads: 1, stepsPerRun: 'auto' });
  try {
    const options = { epochs: 1, batchSize: row.batch, learningRate: 0.01, seed: 1 };
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
      note(`${row.key} window ${window + 1}/${WINDOWS}: ${(times[window] as number).toFixed(2)} ms/step`);
    }
    return { ms: median(times), cpuMs: median(cpuTimes), peakRssMib: process.resourceUsage().maxRSS / 1024 };
  } finally {
    await trainer.close();
  }
}

function exportModels(dir: string): void {
  if (!existsSync(PYTHON) || spawnSync(PYTHON, ['-c', 'import torch, torchvision'], { stdio: 'ignore' }).status !== 0) {
    throw new Error(
      `bench:zoo exports its models with PyTorch: ${PYTHON} cannot import torch and torchvision. Install them with: apt-get install -y python3-torch python3-torchvision`,
    );
  }
  note('exporting the models with PyTorch');
  execFileSync(PYTHON, [SCRIPT, dir], { stdio: ['ignore', 'ignore', 'ignore'] });
}

async function main(): Promise<void> {
  const rowKey = argument('--row');
  if (rowKey !== undefined) {
    const row = ROWS.find((candidate) => candidate.key === rowKey);
    const modelDir = argument('--models');
    if (row === undefined || modelDir === undefined) throw new Error(`--row ${rowKey}: unknown row or missing --models`);
    process.stdout.write(`${JSON.stringify(await runRow(row, modelDir))}\n`);
    return;
  }
  const only = argument('--only')?.split(',');
  const rows = ROWS.filter((row) => only === undefined || only.some((prefix) => row.key.startsWith(prefix)));
  if (rows.length === 0) throw new Error(`--only ${only?.join(',')}: no row matches; rows are ${ROWS.map((r) => r.key).join(', ')}`);
  const load = loadavg()[0] as number;
  const modelDir = mkdtempSync(join(tmpdir(), 'fedgate-bench-zoo-'));
  const result: Record<string, number | string> = {};
  try {
    if (rows.some((row) => typeof row.model === 'string')) exportModels(modelDir);
    for (const row of rows) {
      const child = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--row', row.key, '--models', modelDir], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'inherit'],
        maxBuffer: 1 << 20,
      });
      const last = child.stdout.trim().split('\n').at(-1);
      if (child.status !== 0 || last === undefined) throw new Error(`${row.key}: the benchmark process failed (exit ${String(child.status)})`);
      const measured = JSON.parse(last) as RowResult;
      result[`${row.key}_ms`] = round(measured.ms);
      result[`${row.key}_vs_pytorch`] = round(measured.ms / row.pytorchMs, 3);
      result[`${row.key}_cpu_ms`] = round(measured.cpuMs);
      if (row.key.startsWith('resnet18')) result['peak_rss_mib'] = round(measured.peakRssMib, 0);
    }
    if (process.argv.includes('--pytorch')) {
      note('timing PyTorch on this machine');
      const out = execFileSync(PYTHON, [SCRIPT, modelDir, '--time'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
      const pytorch = JSON.parse(out.trim().split('\n').at(-1) ?? '{}') as Record<string, number>;
      for (const row of rows) {
        const key = PYTORCH_KEYS[row.key];
        const here = key === undefined ? undefined : pytorch[key];
        if (here !== undefined) result[`pytorch_here_${row.key}_ms`] = here;
      }
    }
  } finally {
    rmSync(modelDir, { recursive: true, force: true });
  }
  result['load_average_1m'] = round(load);
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

await main();
