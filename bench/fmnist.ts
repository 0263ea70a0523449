/**
 * bench:fmnist - Fashion-MNIST on the NIID-Bench setup, as a real federation on this machine: one
 * coordinator and 10 participant daemons (separate processes, mutual TLS on loopback, secure aggregation
 * on), every site training every round. NIID-Bench's SimpleCNN (scripts/bench/niid_fmnist.py, exported
 * from PyTorch with torch.manual_seed(seed)), 50 rounds, 10 local epochs, batch 64, SGD (lr 0.01, momentum
 * 0.9, weight decay 1e-5), pixels scaled to [0, 1]. Partitions of the 60,000 training images: IID (equal
 * random parts) and Dirichlet(0.5) label skew with NIID-Bench's balancing (participant/data/partition.ts
 * capAtEqualShare, at least 10 examples a site). Published FedAvg (Flower baselines / NIID-Bench, mean
 * +- std over seeds): IID 89.23 +- 0.45 %, Dirichlet(0.5) 88.09 +- 0.29 %.
 *
 * Accuracy is on the central 10,000-image test set: each site evaluates on its own tenth of it (1,000
 * images), so the secure sum of the sites' correct counts is the global model's score on all 10,000.
 * Round r's federated evaluation scores the model round r started from; the evaluation-only round after
 * the last commit scores the final model. `*_best_acc` is the best over those.
 *
 * Beside it, the same federation in plain PyTorch (scripts/bench/niid_fmnist.py fedavg: sites trained in
 * turn on this machine's 2 threads, no secure aggregation, same partition and initial weights):
 * `pytorch_round_s` is its median round time over `--pytorch-rounds` rounds (default 2; `--pytorch-full`
 * runs all rounds and plots its accuracy too), `round_vs_pytorch` = fedgate's median round / PyTorch's.
 *
 *   npm run bench:fmnist                                 # iid and dir05, seed 1, full setup
 *   npm run bench:fmnist -- --run iid --seeds 1,2,3      # one partition, mean over 3 seeds
 *   npm run bench:fmnist -- --quick                      # 3 rounds of 1 epoch: checks the harness
 *   npm run bench:fmnist -- --run dp --dp-eps 3          # record-level DP-SGD at epsilon 3 only
 *
 * The DP runs (`--run dp`, Dirichlet(0.5), the first seed) train every site with record-level DP-SGD
 * (task privacy.recordLevel): `--dp-rounds` rounds of `--dp-steps` Poisson-sampled steps at sampling rate
 * `--dp-rate`, clip norm `--dp-clip`, SGD at `--dp-lr` with momentum `--dp-momentum` (0.9, from zero each
 * round), and FedAvgM on the coordinator with `--dp-server-momentum` (0: plain FedAvg). The DP runs train the
 * same CNN with tanh in place of ReLU (`--dp-activation`, default tanh: Papernot et al.'s tempered sigmoid;
 * scripts/bench/niid_fmnist.py) on pixels standardised with Fashion-MNIST's published mean and deviation
 * (`--dp-inputs standardized`; `scaled` is the [0, 1] scaling of the non-private runs). The defaults (30 rounds
 * of 20 steps at q 0.05, C 1, lr 0.4) are the tuned setup whose figures README quotes; the noise multiplier
 * is the smallest whose accounting (crypto/dp dpSgdRoundsEpsilon, the curve each site charges) stays within
 * epsilon at delta 1e-5 after all rounds. Each site's site.yaml sets that budget, and
 * `dp_epsN_spent` is the largest epsilon any site's own log says it spent.
 *
 * Prints progress to stderr and one JSON object as the last line of stdout; writes the PNG plot of
 * accuracy per round (vega-lite, rendered by sharp) to reports/bench/fmnist.png unless --plot says where.
 * Needs Debian's dataset-fashion-mnist and python3-torch.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { initCertificateAuthority, issueBundle, type IssuedBundle } from '../certs/index.js';
import { spawnFedgate, stopAll, type FedgateProcess } from '../cli/demo/processes.js';
import { dpSgdRoundsEpsilon } from '../crypto/dp/dp-sgd-round.js';
import { buildTrainingPlan } from '../model/plan.js';
import { pinTask } from '../model/task-pin.js';
import { canonicalTaskBytes, parseTaskDocument, taskHash, type TaskDocument } from '../model/task.js';
import { createDataset } from '../participant/data/dataset.js';
import { encodeIdx, loadIdx } from '../participant/data/idx.js';
import { partitionDirichlet, partitionIid } from '../participant/data/partition.js';
import { renderLinePlot } from './plot.js';

const PYTHON = '/usr/bin/python3';
const SCRIPT = fileURLToPath(new URL('../scripts/bench/niid_fmnist.py', import.meta.url));
const DATA = '/usr/share/datasets/fashion-mnist';
const SITES = 10;
const TEST_IMAGES = 10_000;
const PUBLISHED = { iid: { mean: 89.23, std: 0.45 }, dir05: { mean: 88.09, std: 0.29 } } as const;

const { values: args } = parseArgs({
  options: {
    run: { type: 'string', default: 'iid,dir05' },
    seeds: { type: 'string', default: '1' },
    rounds: { type: 'string' },
    epochs: { type: 'string' },
    quick: { type: 'boolean', default: false },
    'pytorch-rounds': { type: 'string', default: '2' },
    'pytorch-full': { type: 'boolean', default: false },
    plot: { type: 'string', default: 'reports/bench/fmnist.png' },
    'dp-eps': { type: 'string', default: '1,3,8' },
    'dp-rounds': { type: 'string' },
    'dp-steps': { type: 'string' },
    'dp-rate': { type: 'string', default: '0.05' },
    'dp-clip': { type: 'string', default: '1' },
    'dp-lr': { type: 'string', default: '0.4' },
    'dp-momentum': { type: 'string', default: '0.9' },
    'dp-server-momentum': { type: 'string', default: '0' },
    'dp-activation': { type: 'string', default: 'tanh' },
    'dp-inputs': { type: 'string', default: 'standardized' },
  },
});

/** `--name`'s value as a number `accepts`, or an error saying it must be `what`. */
function numberOption(name: string, text: string, accepts: (value: number) => boolean, what: string): number {
  const value = Number(text);
  if (!accepts(value)) throw new Error(`--${name} must be ${what}, got ${text}`);
  return value;
}
/** `--name`'s value if it is one of `choices`, or an error listing them. */
function choiceOption<T extends string>(name: string, text: string, choices: readonly T[]): T {
  const choice = choices.find((candidate) => candidate === text);
  if (choice === undefined) throw new Error(`--${name} must be ${choices.join(' or ')}, got ${text}`);
  return choice;
}
const positiveInteger = (name: string, text: string): number => numberOption(name, text, (value) => Number.isInteger(value) && value >= 1, 'a positive whole number');
const positiveNumber = (name: string, text: string): number => numberOption(name, text, (value) => Number.isFinite(value) && value > 0, 'a number > 0');
const unitFraction = (name: string, text: string): number => numberOption(name, text, (value) => value >= 0 && value < 1, 'a number in [0, 1)');

const ROUNDS = positiveInteger('rounds', args.rounds ?? (args.quick ? '3' : '50'));
const EPOCHS = positiveInteger('epochs', args.epochs ?? (args.quick ? '1' : '10'));
const SEEDS = (args.seeds ?? '1').split(',').map((seed) => positiveInteger('seeds', seed.trim()));
const PYTORCH_ROUNDS = args['pytorch-full']
  ? ROUNDS
  : numberOption('pytorch-rounds', args['pytorch-rounds'] ?? '2', (value) => Number.isInteger(value) && value >= 0, 'a whole number >= 0');

type Partition = 'iid' | 'dir05';
const RUNS = (args.run ?? '').split(',').map((run) => run.trim());
for (const run of RUNS) {
  if (run !== 'iid' && run !== 'dir05' && run !== 'dp') throw new Error(`--run takes iid, dir05 and/or dp (comma-separated), got '${run}'`);
}
const PARTITIONS = RUNS.filter((run): run is Partition => run !== 'dp');
const DELTA = 1e-5;
const DP = {
  epsilons: (args['dp-eps'] ?? '').split(',').map((text) => positiveNumber('dp-eps', text.trim())),
  rounds: positiveInteger('dp-rounds', args['dp-rounds'] ?? (args.quick ? '2' : '30')),
  stepsPerRound: positiveInteger('dp-steps', args['dp-steps'] ?? (args.quick ? '3' : '20')),
  samplingRate: numberOption('dp-rate', args['dp-rate'] ?? '0.05', (value) => value > 0 && value <= 1, 'a probability in (0, 1]'),
  clipNorm: positiveNumber('dp-clip', args['dp-clip'] ?? '1'),
  learningRate: positiveNumber('dp-lr', args['dp-lr'] ?? '0.4'),
  momentum: unitFraction('dp-momentum', args['dp-momentum'] ?? '0.9'),
  serverMomentum: unitFraction('dp-server-momentum', args['dp-server-momentum'] ?? '0'),
  activation: choiceOption('dp-activation', args['dp-activation'] ?? 'tanh', ['relu', 'tanh'] as const),
  standardize: choiceOption('dp-inputs', args['dp-inputs'] ?? 'standardized', ['standardized', 'scaled'] as const) === 'standardized',
};

/**
 * Fashion-MNIST's published per-pixel mean and standard deviation (0.2860 and 0.3530 of full scale), in the
 * raw 0-255 units the sites read: public constants, not statistics of any site's records.
 */
const STANDARDIZE = { mean: [0.286 * 255], std: [0.353 * 255] } as const;

type Activation = 'relu' | 'tanh';

function note(message: string): void {
  process.stderr.write(`[bench:fmnist ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

function checkPrerequisites(): void {
  const missing: string[] = [];
  if (!existsSync(join(DATA, 'train-images-idx3-ubyte.gz'))) missing.push('dataset-fashion-mnist');
  if (!existsSync(PYTHON) || !python(['-c', 'import torch'], { quiet: true })) missing.push('python3-torch');
  if (missing.length > 0) throw new Error(`bench:fmnist needs Debian packages: sudo apt-get install ${missing.join(' ')}`);
}

function python(argv: readonly string[], options: { quiet?: boolean } = {}): boolean {
  try {
    execFileSync(PYTHON, argv, { stdio: options.quiet === true ? 'ignore' : ['ignore', 'ignore', 'inherit'] });
    return true;
  } catch (error) {
    if (options.quiet === true) return false;
    throw error;
  }
}

interface Fmnist {
  readonly trainImages: Uint8Array;
  readonly trainLabels: Uint8Array;
  readonly testImages: Uint8Array;
  readonly testLabels: Uint8Array;
}

async function loadFmnist(): Promise<Fmnist> {
  const read = async (name: string): Promise<Uint8Array> => {
    const idx = await loadIdx(join(DATA, name));
    if (!(idx.data instanceof Uint8Array)) throw new Error(`${name}: expected unsigned bytes, got ${idx.type}`);
    return idx.data;
  };
  return {
    trainImages: await read('train-images-idx3-ubyte.gz'),
    trainLabels: await read('train-labels-idx1-ubyte.gz'),
    testImages: await read('t10k-images-idx3-ubyte.gz'),
    testLabels: await read('t10k-labels-idx1-ubyte.gz'),
  };
}

function partitionOf(data: Fmnist, partition: Partition, seed: number): Int32Array[] {
  const labelled = createDataset({ features: new Float32Array(data.trainLabels.length), labels: Int32Array.from(data.trainLabels), exampleShape: [1], classes: 10 });
  if (partition === 'iid') return partitionIid(labelled, { clients: SITES, seed });
  return partitionDirichlet(labelled, { clients: SITES, alpha: 0.5, seed, minExamplesPerClient: 10, capAtEqualShare: true });
}

async function writeSiteData(directory: string, data: Fmnist, part: Int32Array, site: number): Promise<void> {
  await mkdir(directory, { recursive: true });
  const images = new Uint8Array(part.length * 784);
  const labels = new Uint8Array(part.length);
  part.forEach((index, i) => {
    images.set(data.trainImages.subarray(index * 784, (index + 1) * 784), i * 784);
    labels[i] = data.trainLabels[index] as number;
  });
  const share = TEST_IMAGES / SITES;
  await writeFile(join(directory, 'images.idx'), encodeIdx([part.length, 28, 28], images));
  await writeFile(join(directory, 'labels.idx'), encodeIdx([part.length], labels));
  await writeFile(join(directory, 'test-images.idx'), encodeIdx([share, 28, 28], data.testImages.subarray(site * share * 784, (site + 1) * share * 784)));
  await writeFile(join(directory, 'test-labels.idx'), encodeIdx([share], data.testLabels.subarray(site * share, (site + 1) * share)));
}

function taskFor(modelSha256: string, seed: number, recordLevel?: { noiseMultiplier: number }): TaskDocument {
  const dp =
    recordLevel === undefined
      ? {}
      : {
          optimizer: { kind: 'sgd', learningRate: DP.learningRate, momentum: DP.momentum },
          // Local momentum starts from zero every round; server momentum (FedAvgM) carries across rounds.
          ...(DP.serverMomentum > 0 ? { serverOptimizer: { kind: 'fedavgm', learningRate: 1, momentum: DP.serverMomentum } } : {}),
          privacy: { recordLevel: { clipNorm: DP.clipNorm, noiseMultiplier: recordLevel.noiseMultiplier, samplingRate: DP.samplingRate, stepsPerRound: DP.stepsPerRound } },
        };
  return parseTaskDocument({
    formatVersion: 1,
    model: { kind: 'onnx', modelSha256 },
    loss: 'cross_entropy',
    input: { shape: [1, 28, 28], dtype: 'float32' },
    normalization: recordLevel !== undefined && DP.standardize ? STANDARDIZE : { scale: 1 / 255, offset: 0 },
    labels: ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'],
    optimizer: { kind: 'sgd', learningRate: 0.01, momentum: 0.9, weightDecay: 1e-5 },
    training: { epochs: EPOCHS, batchSize: 64, proximalMu: 0, seed },
    ...dp,
  });
}

interface RoundEvent {
  readonly type?: string;
  readonly seconds?: number;
  readonly metrics?: { evalCorrect?: number | string; evalExamples?: number | string };
}

interface RunResult {
  /** Accuracy (%) of the model after round r, r = 0 (initial) .. rounds. */
  readonly accuracy: number[];
  readonly roundSeconds: number[];
  /** The largest epsilon any site's log says it has spent (DP runs). */
  readonly epsilonSpent: number | undefined;
}

/** One federation of the bench: its partition, seed, rounds and, for DP, the noise and each site's budget. */
interface RunSpec {
  readonly name: string;
  readonly partition: Partition;
  readonly seed: number;
  readonly rounds: number;
  readonly dp?: { readonly noiseMultiplier: number; readonly epsilon: number; readonly activation: Activation };
}

async function exportModel(root: string, seed: number, activation: Activation = 'relu'): Promise<Buffer> {
  const modelPath = join(root, 'model.onnx');
  if (!existsSync(modelPath)) python([SCRIPT, 'export', modelPath, '--seed', String(seed), '--activation', activation]);
  return readFile(modelPath);
}

/** The smallest noise multiplier (to 0.1 %) whose `DP.rounds` rounds spend at most `epsilon` at DELTA. */
function noiseFor(epsilon: number, dimension: number): number {
  const spent = (noiseMultiplier: number): number =>
    dpSgdRoundsEpsilon({ clipNorm: DP.clipNorm, noiseMultiplier, samplingRate: DP.samplingRate, stepsPerRound: DP.stepsPerRound, dimension }, DP.rounds, DELTA);
  let [low, high] = [0.3, 64];
  if (spent(high) > epsilon) throw new Error(`no noise multiplier up to ${high} keeps ${DP.rounds} rounds within epsilon ${epsilon}; lower --dp-rounds, --dp-steps or --dp-rate`);
  while (high - low > 1e-3 * high) {
    const mid = (low + high) / 2;
    if (spent(mid) <= epsilon) high = mid;
    else low = mid;
  }
  return Number(high.toFixed(4));
}

function accuracyOf(event: RoundEvent): number | undefined {
  const examples = Number(event.metrics?.evalExamples ?? 0);
  return examples > 0 ? (100 * Number(event.metrics?.evalCorrect ?? 0)) / examples : undefined;
}

async function runFederation(work: string, data: Fmnist, spec: RunSpec, bundles: { coordinator: IssuedBundle; sites: IssuedBundle[] }): Promise<RunResult> {
  const { partition, seed, rounds, name } = spec;
  const root = join(work, name);
  await mkdir(root, { recursive: true });
  const model = await exportModel(root, seed, spec.dp?.activation);
  const task = pinTask(taskFor(createHash('sha256').update(model).digest('hex'), seed, spec.dp), model);
  await writeFile(join(root, 'task.json'), Buffer.from(canonicalTaskBytes(task)));
  const parts = partitionOf(data, partition, seed);
  note(`${name}: site sizes ${parts.map((part) => part.length).join(' ')}`);
  await writeFile(join(root, 'parts.json'), JSON.stringify(parts.map((part) => Array.from(part))));
  const coordinator = bundles.coordinator;
  await writeFile(
    join(root, 'coordinator.yaml'),
    [
      `federation_id: bench-fmnist-${name}`,
      'listen: "127.0.0.1:0"',
      `tls: {ca: ${JSON.stringify(coordinator.caCertificatePath)}, cert: ${JSON.stringify(coordinator.certificatePath)}, key: ${JSON.stringify(coordinator.privateKeyPath)}}`,
      `state_dir: ${JSON.stringify(join(root, 'state'))}`,
      'task: task.json',
      'model: model.onnx',
      `rounds: ${rounds}`,
      `participants: {min: ${SITES}}`,
      'secure_aggregation: true',
      // Weights proportional to example counts (FedAvg's n_k / n) up to 60,000; |w * delta| <= 4 per coordinate.
      'secagg: {clip: 4.0, max_weight: 60000, max_eval_examples: 10000}',
      'deadlines: {advertise_keys: 60s, share_keys: 60s, masked_input: 60m, consistency_check: 60s, unmask: 60s, commit: 60s}',
      '',
    ].join('\n'),
  );
  const processes: FedgateProcess[] = [];
  const accuracy: number[] = [];
  const roundSeconds: number[] = [];
  let port: number | undefined;
  let epsilonSpent: number | undefined;
  const coordinatorProcess = spawnFedgate('coordinator', ['coordinator', '--config', join(root, 'coordinator.yaml'), '--exit-when-done'], (entry) => {
    if (entry['msg'] === 'coordinator listening') port = Number(entry['port']);
    const event = entry['event'] as RoundEvent | undefined;
    if (event?.type !== 'round_committed' && event?.type !== 'round_evaluated') return;
    const score = accuracyOf(event);
    if (score !== undefined) accuracy.push(score);
    if (event.type === 'round_committed' && event.seconds !== undefined) {
      roundSeconds.push(event.seconds);
      note(`${name}: round ${roundSeconds.length}/${rounds} ${event.seconds.toFixed(1)} s, accuracy of its starting model ${score?.toFixed(2) ?? '-'} %`);
    }
  });
  processes.push(coordinatorProcess);
  try {
    for (let wait = 0; port === undefined && wait < 600; wait++) await new Promise((done) => setTimeout(done, 100));
    if (port === undefined) throw new Error(`coordinator did not start:\n${coordinatorProcess.tail()}`);
    const hash = taskHash(task);
    for (let site = 0; site < SITES; site++) {
      const bundle = bundles.sites[site] as IssuedBundle;
      const siteDir = join(root, `site-${site}`);
      await writeSiteData(siteDir, data, parts[site] as Int32Array, site);
      await writeFile(
        join(siteDir, 'site.yaml'),
        [
          `coordinator: "127.0.0.1:${port}"`,
          `tls: {ca: ${JSON.stringify(bundle.caCertificatePath)}, cert: ${JSON.stringify(bundle.certificatePath)}, key: ${JSON.stringify(bundle.privateKeyPath)}}`,
          'data: {format: idx, images: images.idx, labels: labels.idx, test_images: test-images.idx, test_labels: test-labels.idx}',
          `accepted_tasks: [${hash}]`,
          `policy: {min_participants: ${SITES}, min_threshold: 2}`,
          ...(spec.dp === undefined ? [] : [`privacy: {epsilon: ${spec.dp.epsilon}, delta: ${DELTA}}`]),
          'device: cpu',
          '',
        ].join('\n'),
      );
      const onSiteLog = (entry: Record<string, unknown>): void => {
        const spent = entry['epsilonSpent'];
        if (typeof spent === 'number') epsilonSpent = Math.max(epsilonSpent ?? 0, spent);
      };
      processes.push(spawnFedgate(`site-${site}`, ['participant', '--config', join(siteDir, 'site.yaml')], onSiteLog));
    }
    // A site that dies (out of memory, a crash) would leave the coordinator waiting for its quorum forever.
    const siteDied = Promise.race(
      processes.slice(1).map(async (site) => {
        const siteCode = await site.exited;
        return { site, siteCode };
      }),
    );
    const first = await Promise.race([coordinatorProcess.exited.then((code) => ({ code })), siteDied]);
    if ('site' in first) throw new Error(`${first.site.name} exited with ${String(first.siteCode)} before the federation finished (out of memory? see dmesg):\n${first.site.tail()}`);
    if (first.code !== 0) throw new Error(`coordinator exited with ${String(first.code)}:\n${coordinatorProcess.tail()}`);
  } finally {
    await stopAll(processes);
  }
  if (roundSeconds.length !== rounds) throw new Error(`${name}: ${roundSeconds.length} of ${rounds} rounds committed`);
  if (accuracy.length !== rounds + 1) throw new Error(`${name}: ${accuracy.length} evaluations for ${rounds} rounds and the final model; expected ${rounds + 1}`);
  return { accuracy, roundSeconds, epsilonSpent };
}

interface PytorchResult {
  readonly rounds: { round: number; seconds: number; accuracy: number }[];
}

async function runPytorch(work: string, partition: Partition, seed: number, rounds: number): Promise<PytorchResult> {
  const root = join(work, `${partition}-seed${seed}`);
  const argv = [SCRIPT, 'fedavg', '--data', DATA, '--parts', join(root, 'parts.json'), '--seed', String(seed), '--rounds', String(rounds), '--epochs', String(EPOCHS)];
  const child = spawn(PYTHON, argv, { stdio: ['ignore', 'pipe', 'inherit'] });
  let last = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    for (const line of chunk.split('\n').filter((text) => text.trim() !== '')) {
      last = line;
      const progress = (JSON.parse(line) as { progress?: { round: number; seconds: number; accuracy: number } }).progress;
      if (progress !== undefined) note(`pytorch ${partition} seed ${seed}: round ${progress.round}/${rounds} ${progress.seconds.toFixed(1)} s, accuracy ${(100 * progress.accuracy).toFixed(2)} %`);
    }
  });
  const code = await new Promise<number | null>((done) => child.once('exit', done));
  if (code !== 0) throw new Error(`PyTorch reference exited with ${String(code)}`);
  return JSON.parse(last) as PytorchResult;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

const mean = (values: readonly number[]): number => values.reduce((sum, value) => sum + value, 0) / values.length;
const fixed = (value: number, digits = 2): number => Number(value.toFixed(digits));

async function main(): Promise<void> {
  checkPrerequisites();
  const work = await mkdtemp(join(tmpdir(), 'fedgate-bench-fmnist-'));
  try {
    const caDir = join(work, 'ca');
    await initCertificateAuthority({ dir: caDir, commonName: 'bench CA', validDays: 3 });
    const coordinator = await issueBundle({ dir: caDir, role: 'coordinator', name: 'coordinator', hosts: ['127.0.0.1'], validDays: 2 });
    const sites: IssuedBundle[] = [];
    for (let site = 0; site < SITES; site++) sites.push(await issueBundle({ dir: caDir, role: 'participant', name: `site-${site}`, validDays: 2 }));
    const data = await loadFmnist();
    // The FedAvg setup keys describe the iid/dir05 runs; a DP-only run states its own setup in dp_setup.
    const result: Record<string, unknown> = {
      sites: SITES,
      ...(PARTITIONS.length > 0 ? { rounds: ROUNDS, local_epochs: EPOCHS, batch: 64, seeds: SEEDS } : {}),
      secure_aggregation: true,
      quick: args.quick,
    };
    const series: { run: string; round: number; accuracy: number }[] = [];
    const fedgateSeconds: number[] = [];
    const pytorchSeconds: number[] = [];
    for (const partition of PARTITIONS) {
      const best: number[] = [];
      for (const seed of SEEDS) {
        const run = await runFederation(work, data, { name: `${partition}-seed${seed}`, partition, seed, rounds: ROUNDS }, { coordinator, sites });
        best.push(Math.max(...run.accuracy));
        fedgateSeconds.push(...run.roundSeconds);
        run.accuracy.forEach((accuracy, round) => series.push({ run: `fedgate ${partition} seed ${seed}`, round, accuracy }));
        note(`${partition} seed ${seed}: best ${Math.max(...run.accuracy).toFixed(2)} %, median round ${median(run.roundSeconds).toFixed(1)} s`);
        if (PYTORCH_ROUNDS > 0 && seed === SEEDS[0]) {
          const reference = await runPytorch(work, partition, seed, PYTORCH_ROUNDS);
          pytorchSeconds.push(...reference.rounds.map((round) => round.seconds));
          if (args['pytorch-full']) {
            reference.rounds.forEach((round) => series.push({ run: `PyTorch ${partition} seed ${seed}`, round: round.round, accuracy: 100 * round.accuracy }));
            result[`pytorch_${partition}_best_acc`] = fixed(100 * Math.max(...reference.rounds.map((round) => round.accuracy)));
          }
        }
      }
      result[`${partition}_best_acc`] = fixed(mean(best));
      result[`${partition}_best_acc_per_seed`] = best.map((value) => fixed(value));
      result[`${partition}_published`] = PUBLISHED[partition];
    }
    if (RUNS.includes('dp')) {
      const seed = SEEDS[0] as number;
      const root = join(work, `dp-seed${seed}`);
      await mkdir(root, { recursive: true });
      const model = await exportModel(root, seed, DP.activation);
      const dimension = buildTrainingPlan(taskFor(createHash('sha256').update(model).digest('hex'), seed), model).parameters.reduce((sum, p) => sum + p.shape.reduce((n, d) => n * d, 1), 0);
      result['dp_setup'] = { partition: 'dir05', seed, delta: DELTA, rounds: DP.rounds, steps_per_round: DP.stepsPerRound, sampling_rate: DP.samplingRate, expected_batch_at_6000: Math.round(DP.samplingRate * 6000), clip_norm: DP.clipNorm, learning_rate: DP.learningRate, momentum: DP.momentum, server_momentum: DP.serverMomentum, activation: DP.activation, standardized_inputs: DP.standardize, parameters: dimension };
      for (const epsilon of DP.epsilons) {
        const noiseMultiplier = noiseFor(epsilon, dimension);
        note(`dp eps ${epsilon}: noise multiplier ${noiseMultiplier} over ${DP.rounds} rounds of ${DP.stepsPerRound} steps at q = ${DP.samplingRate}`);
        const run = await runFederation(work, data, { name: `dp-eps${epsilon}-seed${seed}`, partition: 'dir05', seed, rounds: DP.rounds, dp: { noiseMultiplier, epsilon, activation: DP.activation } }, { coordinator, sites });
        const key = `dp_eps${String(epsilon).replace('.', '_')}`;
        result[`${key}_acc`] = fixed(Math.max(...run.accuracy));
        result[`${key}_spent`] = run.epsilonSpent === undefined ? null : fixed(run.epsilonSpent, 3);
        result[`${key}_noise_multiplier`] = noiseMultiplier;
        result[`${key}_round_s_median`] = fixed(median(run.roundSeconds), 3);
        run.accuracy.forEach((accuracy, round) => series.push({ run: `fedgate DP-SGD eps ${epsilon} dir05`, round, accuracy }));
      }
    }
    const roundS = fedgateSeconds.length > 0 ? median(fedgateSeconds) : undefined;
    if (roundS !== undefined) result['round_s_median'] = fixed(roundS, 3);
    if (pytorchSeconds.length > 0 && roundS !== undefined) {
      const pytorchS = median(pytorchSeconds);
      result['pytorch_round_s'] = fixed(pytorchS, 3);
      result['round_vs_pytorch'] = fixed(roundS / pytorchS, 3);
    }
    const plotPath = resolve(args.plot ?? 'reports/bench/fmnist.png');
    await mkdir(dirname(plotPath), { recursive: true });
    await renderLinePlot(plotPath, {
      title: `Fashion-MNIST, NIID-Bench CNN, ${SITES} sites: accuracy on the 10,000 test images (FedAvg ${EPOCHS} local epoch${EPOCHS === 1 ? '' : 's'} a round${RUNS.includes('dp') ? `; DP-SGD ${DP.stepsPerRound} steps a round` : ''})`,
      xTitle: 'round (0 = initial model)',
      yTitle: 'accuracy (%)',
      points: series.map((point) => ({ series: point.run, x: point.round, y: point.accuracy })),
      rules: PARTITIONS.map((run) => ({ label: `published FedAvg ${run} ${PUBLISHED[run].mean} %`, y: PUBLISHED[run].mean })),
    });
    result['plot_path'] = plotPath;
    console.log(JSON.stringify(result));
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

await main();
