/**
 * Round benchmark (`npm run bench:round`): real processes on this machine - one coordinator and 10
 * participant daemons over mutual TLS on loopback - training a 101,770-parameter MLP (784-128-10), each
 * site 1 local epoch on 500 examples, complete graph (k = 9, t = 7, the default threshold, which
 * sites accept; the long run's three sites get t = 3) - once with secure aggregation and
 * once with `secure_aggregation: false`, both federations up side by side.
 *
 * secagg_overhead_ratio compares rounds run under the same load: the two federations take turns, one
 * timed round each (secure, plain, plain, secure, ...), at least 9 timed rounds each, and the ratio is
 * of the medians. A turn restarts that federation's coordinator on its state directory (with
 * --exit-when-done and two more rounds) while its sites stay up and reconnect; the turn's first round
 * warms the fresh coordinator and is not timed. Before the turns, each federation runs one warm-up round
 * (task download, plan, worker start). Load that comes and goes (other work on the machine) then lands on
 * both modes alike instead of on whichever ran during it.
 *
 * Also: chunked transfer throughput for a 64 MiB model (bench/transfer.ts),
 * the coordinator's peak RSS, and its RSS growth per 100 rounds from a longer run with a small model.
 * Prints one JSON object as the last line of stdout.
 *
 * RSS growth: V8 collects the old generation only every few hundred of these short rounds, so RSS
 * climbs between full collections and drops at each one; a 100-round window measures the slope of one
 * climb, not growth. The figure is the least-squares slope of RSS over rounds 50..500 (RSS sampled
 * at every commit), which spans several collections; the first and last samples are printed too.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { initCertificateAuthority, issueBundle, type IssuedBundle } from '../certs/index.js';
import { spawnFedgate, stopAll, type FedgateProcess } from '../cli/demo/processes.js';
import { canonicalTaskBytes, parseTaskDocument, taskHash, type TaskDocument } from '../model/task.js';
import { pinTask } from '../model/task-pin.js';
import { encodeIdx } from '../participant/data/idx.js';

const { values: args } = parseArgs({
  options: {
    sites: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '9' },
    'long-rounds': { type: 'string', default: '500' },
    'skip-transfer': { type: 'boolean', default: false },
  },
});
const SITES = Number(args.sites);
const TIMED_ROUNDS = Number(args.rounds);
if (!Number.isInteger(TIMED_ROUNDS) || TIMED_ROUNDS < 1) throw new Error(`--rounds must be a positive whole number, got ${args.rounds}`);
const LONG_ROUNDS = Number(args['long-rounds']);

const MLP_TASK: TaskDocument = parseTaskDocument({
  formatVersion: 1,
  model: { kind: 'mlp', inputShape: [784], hidden: [128], classes: 10 },
  loss: 'cross_entropy',
  input: { shape: [784], dtype: 'float32' },
  normalization: { scale: 1 / 255, offset: 0 },
  labels: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'],
  optimizer: { kind: 'sgd', learningRate: 0.05 },
  training: { epochs: 1, batchSize: 32, proximalMu: 0, seed: 1 },
});

const SMALL_TASK: TaskDocument = parseTaskDocument({ ...MLP_TASK, model: { kind: 'logreg', inputShape: [784], classes: 10 } });

interface RoundEvent {
  type?: string;
  seconds?: number;
  stageSeconds?: Record<string, number>;
  sequence?: number;
}

/** Synthetic but learnable data: labels from a fixed random linear teacher on uint8 "images". */
async function writeSiteData(directory: string, site: number, examples: number): Promise<void> {
  let state = 0x9e3779b9 ^ (site * 7919);
  const next = (): number => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 4294967296;
  };
  const teacher = Float64Array.from({ length: 784 * 10 }, (_, i) => Math.sin(i * 12.9898) * 43758.5453 % 1);
  const images = new Uint8Array(examples * 784);
  const labels = new Uint8Array(examples);
  for (let e = 0; e < examples; e++) {
    const scores = new Float64Array(10);
    for (let p = 0; p < 784; p++) {
      const value = Math.floor(next() * 256);
      images[e * 784 + p] = value;
      for (let k = 0; k < 10; k++) scores[k] = (scores[k] as number) + value * (teacher[p * 10 + k] as number);
    }
    labels[e] = scores.indexOf(Math.max(...scores));
  }
  await writeFile(join(directory, 'images.idx'), encodeIdx([examples, 28, 28], images));
  await writeFile(join(directory, 'labels.idx'), encodeIdx([examples], labels));
}

interface FederationRun {
  readonly rounds: RoundEvent[];
  readonly peakRssMib: number;
  readonly rssSamples: { round: number; rssMib: number }[];
}

async function runFederation(options: { work: string; task: TaskDocument; rounds: number; secure: boolean; sites: number; examples: number; bundles: { coordinator: IssuedBundle; sites: IssuedBundle[] } }): Promise<FederationRun> {
  const { work } = options;
  // The coordinator pins a draft task (initial model hash, server optimiser): sites pin that document's hash.
  const task = pinTask(options.task);
  const name = `${options.secure ? 'secure' : 'plain'}-${task.model.kind}-${options.rounds}`;
  const root = join(work, name);
  await mkdir(root, { recursive: true });
  await writeFile(join(root, 'task.json'), Buffer.from(canonicalTaskBytes(task)));
  const coordinator = options.bundles.coordinator;
  await writeFile(
    join(root, 'coordinator.yaml'),
    [
      `federation_id: bench-${name}`,
      'listen: "127.0.0.1:0"',
      `tls: {ca: ${JSON.stringify(coordinator.caCertificatePath)}, cert: ${JSON.stringify(coordinator.certificatePath)}, key: ${JSON.stringify(coordinator.privateKeyPath)}}`,
      `state_dir: ${JSON.stringify(join(root, 'state'))}`,
      'task: task.json',
      `rounds: ${options.rounds}`,
      `participants: {min: ${options.sites}}`,
      `secure_aggregation: ${options.secure}`,
      'secagg: {clip: 1.0, max_weight: 1000, max_eval_examples: 1000}',
      'deadlines: {advertise_keys: 30s, share_keys: 30s, masked_input: 120s, consistency_check: 30s, unmask: 30s, commit: 30s}',
      '',
    ].join('\n'),
  );
  const rounds: RoundEvent[] = [];
  let port: number | undefined;
  const processes: FedgateProcess[] = [];
  const rssSamples: { round: number; rssMib: number }[] = [];
  const coordinatorProcess = spawnFedgate('coordinator', ['coordinator', '--config', join(root, 'coordinator.yaml'), '--exit-when-done'], (entry) => {
    if (entry['msg'] === 'coordinator listening') port = Number(entry['port']);
    const event = entry['event'] as RoundEvent | undefined;
    if (event?.type === 'round_committed') {
      rounds.push(event);
      rssSamples.push({ round: rounds.length, rssMib: rssOf(coordinatorProcess.child.pid) });
    }
  });
  processes.push(coordinatorProcess);
  let peakRssMib = 0;
  const poll = setInterval(() => {
    peakRssMib = Math.max(peakRssMib, peakOf(coordinatorProcess.child.pid));
  }, 100);
  try {
    for (let wait = 0; port === undefined && wait < 300; wait++) await new Promise((resolve) => setTimeout(resolve, 100));
    if (port === undefined) throw new Error(`coordinator did not start:\n${coordinatorProcess.tail()}`);
    const hash = taskHash(task);
    for (let site = 0; site < options.sites; site++) {
      const bundle = options.bundles.sites[site] as IssuedBundle;
      const siteDir = join(root, `site-${site}`);
      await mkdir(siteDir, { recursive: true });
      await writeFile(join(siteDir, 'images.idx'), await readFile(join(work, `data-${site}`, 'images.idx')));
      await writeFile(join(siteDir, 'labels.idx'), await readFile(join(work, `data-${site}`, 'labels.idx')));
      await writeFile(
        join(siteDir, 'site.yaml'),
        [
          `coordinator: "127.0.0.1:${port}"`,
          `tls: {ca: ${JSON.stringify(bundle.caCertificatePath)}, cert: ${JSON.stringify(bundle.certificatePath)}, key: ${JSON.stringify(bundle.privateKeyPath)}}`,
          'data: {format: idx, images: images.idx, labels: labels.idx, test_fraction: 0.1}',
          `accepted_tasks: [${hash}]`,
          `policy: {min_participants: ${options.sites}, min_threshold: 2, allow_plaintext: ${!options.secure}}`,
          'device: cpu',
          '',
        ].join('\n'),
      );
      processes.push(spawnFedgate(`site-${site}`, ['participant', '--config', join(siteDir, 'site.yaml')], () => undefined));
    }
    const code = await coordinatorProcess.exited;
    if (code !== 0) throw new Error(`coordinator exited with ${String(code)}:\n${coordinatorProcess.tail()}`);
  } finally {
    clearInterval(poll);
    await stopAll(processes);
  }
  return { rounds, peakRssMib, rssSamples };
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address !== null ? address.port : 0));
    });
  });
}

/** One of the two federations of the interleaved comparison: its sites stay up, its coordinator runs a turn at a time. */
interface TurnFederation {
  readonly secure: boolean;
  readonly root: string;
  readonly port: number;
  readonly sites: FedgateProcess[];
  /** coordinator.yaml for a coordinator that stops once `rounds` rounds have committed. */
  coordinatorYaml: (rounds: number) => string;
  committed: number;
  peakRssMib: number;
}

async function prepareTurnFederation(options: { work: string; task: TaskDocument; secure: boolean; sites: number; bundles: { coordinator: IssuedBundle; sites: IssuedBundle[] } }): Promise<TurnFederation> {
  const task = pinTask(options.task);
  const root = join(options.work, `turns-${options.secure ? 'secure' : 'plain'}`);
  await mkdir(root, { recursive: true });
  await writeFile(join(root, 'task.json'), Buffer.from(canonicalTaskBytes(task)));
  const port = await freePort();
  const hash = taskHash(task);
  const federation: TurnFederation = { secure: options.secure, root, port, sites: [], coordinatorYaml: () => '', committed: 0, peakRssMib: 0 };
  for (let site = 0; site < options.sites; site++) {
    const bundle = options.bundles.sites[site] as IssuedBundle;
    const siteDir = join(root, `site-${site}`);
    await mkdir(siteDir, { recursive: true });
    await writeFile(join(siteDir, 'images.idx'), await readFile(join(options.work, `data-${site}`, 'images.idx')));
    await writeFile(join(siteDir, 'labels.idx'), await readFile(join(options.work, `data-${site}`, 'labels.idx')));
    await writeFile(
      join(siteDir, 'site.yaml'),
      [
        `coordinator: "127.0.0.1:${port}"`,
        `tls: {ca: ${JSON.stringify(bundle.caCertificatePath)}, cert: ${JSON.stringify(bundle.certificatePath)}, key: ${JSON.stringify(bundle.privateKeyPath)}}`,
        'data: {format: idx, images: images.idx, labels: labels.idx, test_fraction: 0.1}',
        `accepted_tasks: [${hash}]`,
        `policy: {min_participants: ${options.sites}, min_threshold: 2, allow_plaintext: ${!options.secure}}`,
        'device: cpu',
        // Back within half a second of each coordinator restart.
        'reconnect: {initial: 100ms, max: 500ms}',
        '',
      ].join('\n'),
    );
    federation.sites.push(spawnFedgate(`${options.secure ? 'secure' : 'plain'}-site-${site}`, ['participant', '--config', join(siteDir, 'site.yaml')], () => undefined));
  }
  const coordinator = options.bundles.coordinator;
  federation.coordinatorYaml = (rounds: number): string =>
    [
      `federation_id: bench-turns-${options.secure ? 'secure' : 'plain'}`,
      `listen: "127.0.0.1:${port}"`,
      `tls: {ca: ${JSON.stringify(coordinator.caCertificatePath)}, cert: ${JSON.stringify(coordinator.certificatePath)}, key: ${JSON.stringify(coordinator.privateKeyPath)}}`,
      `state_dir: ${JSON.stringify(join(root, 'state'))}`,
      'task: task.json',
      `rounds: ${rounds}`,
      `participants: {min: ${options.sites}}`,
      `secure_aggregation: ${options.secure}`,
      'secagg: {clip: 1.0, max_weight: 1000, max_eval_examples: 1000}',
      'deadlines: {advertise_keys: 30s, share_keys: 30s, masked_input: 120s, consistency_check: 30s, unmask: 30s, commit: 30s}',
      '',
    ].join('\n');
  return federation;
}

/** Runs `rounds` more rounds of `federation` under a fresh coordinator process; resolves with their events. */
async function runTurn(federation: TurnFederation, rounds: number): Promise<RoundEvent[]> {
  const target = federation.committed + rounds;
  const config = join(federation.root, 'coordinator.yaml');
  await writeFile(config, federation.coordinatorYaml(target));
  const events: RoundEvent[] = [];
  const coordinatorProcess = spawnFedgate(`${federation.secure ? 'secure' : 'plain'}-coordinator`, ['coordinator', '--config', config, '--exit-when-done'], (entry) => {
    const event = entry['event'] as RoundEvent | undefined;
    if (event?.type === 'round_committed') events.push(event);
  });
  const poll = setInterval(() => {
    federation.peakRssMib = Math.max(federation.peakRssMib, peakOf(coordinatorProcess.child.pid));
  }, 100);
  try {
    const code = await coordinatorProcess.exited;
    if (code !== 0) throw new Error(`coordinator exited with ${String(code)}:\n${coordinatorProcess.tail()}`);
  } finally {
    clearInterval(poll);
  }
  federation.committed = target;
  return events;
}

/**
 * The interleaved comparison: a warm-up round each, then turns (secure, plain, plain, secure, ...), each
 * a fresh coordinator's untimed first round and one timed round.
 */
async function interleaved(work: string, bundles: { coordinator: IssuedBundle; sites: IssuedBundle[] }): Promise<{ secure: RoundEvent[]; plain: RoundEvent[]; securePeakRssMib: number }> {
  const secure = await prepareTurnFederation({ work, task: MLP_TASK, secure: true, sites: SITES, bundles });
  const plain = await prepareTurnFederation({ work, task: MLP_TASK, secure: false, sites: SITES, bundles });
  const timedRounds = { secure: [] as RoundEvent[], plain: [] as RoundEvent[] };
  try {
    await runTurn(secure, 1);
    await runTurn(plain, 1);
    for (let turn = 0; turn < TIMED_ROUNDS; turn++) {
      const order = turn % 2 === 0 ? [secure, plain] : [plain, secure];
      for (const federation of order) {
        const events = await runTurn(federation, 2);
        const timedRound = events.at(-1);
        if (events.length !== 2 || timedRound === undefined) throw new Error(`a turn of the ${federation.secure ? 'secure' : 'plain'} federation committed ${events.length} rounds, expected 2`);
        (federation.secure ? timedRounds.secure : timedRounds.plain).push(timedRound);
      }
    }
  } finally {
    await stopAll([...secure.sites, ...plain.sites]);
  }
  return { ...timedRounds, securePeakRssMib: secure.peakRssMib };
}

function procStatus(pid: number | undefined, field: string): number {
  if (pid === undefined) return 0;
  try {
    const status = execFileSync('cat', [`/proc/${pid}/status`], { encoding: 'utf8' });
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
    return match === null ? 0 : Number(match[1]) / 1024;
  } catch {
    return 0;
  }
}
const rssOf = (pid: number | undefined): number => procStatus(pid, 'VmRSS');
const peakOf = (pid: number | undefined): number => procStatus(pid, 'VmHWM');

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** Slope of the least-squares line through (x, y) points. */
function leastSquaresSlope(points: readonly (readonly [number, number])[]): number {
  const n = points.length;
  const meanX = points.reduce((sum, [x]) => sum + x, 0) / n;
  const meanY = points.reduce((sum, [, y]) => sum + y, 0) / n;
  let covariance = 0;
  let variance = 0;
  for (const [x, y] of points) {
    covariance += (x - meanX) * (y - meanY);
    variance += (x - meanX) ** 2;
  }
  return covariance / variance;
}

function timed(rounds: readonly RoundEvent[]): { roundSeconds: number; stages: Record<string, number> } {
  const stages: Record<string, number> = {};
  for (const stage of Object.keys(rounds[0]?.stageSeconds ?? {})) {
    stages[stage] = Number(median(rounds.map((round) => round.stageSeconds?.[stage] ?? 0)).toFixed(3));
  }
  return { roundSeconds: median(rounds.map((round) => round.seconds ?? 0)), stages };
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'fedgate-bench-round-'));
  try {
    const caDir = join(work, 'ca');
    await initCertificateAuthority({ dir: caDir, commonName: 'bench CA', validDays: 3 });
    const coordinator = await issueBundle({ dir: caDir, role: 'coordinator', name: 'coordinator', hosts: ['127.0.0.1'], validDays: 2 });
    const sites = [];
    for (let site = 0; site < SITES; site++) {
      sites.push(await issueBundle({ dir: caDir, role: 'participant', name: `site-${site}`, validDays: 2 }));
      await mkdir(join(work, `data-${site}`), { recursive: true });
      await writeSiteData(join(work, `data-${site}`), site, 500);
    }
    const bundles = { coordinator, sites };
    const turns = await interleaved(work, bundles);
    const secureTimed = timed(turns.secure);
    const plainTimed = timed(turns.plain);
    process.stderr.write(`secure rounds (s): ${JSON.stringify(turns.secure.map((round) => round.seconds))}\nplain rounds (s): ${JSON.stringify(turns.plain.map((round) => round.seconds))}\n`);

    const long = await runFederation({ work, task: SMALL_TASK, rounds: LONG_ROUNDS, secure: true, sites: 3, examples: 500, bundles: { coordinator, sites: sites.slice(0, 3) } });
    const settled = long.rssSamples.filter((sample) => sample.round >= 50);
    const growth = settled.length >= 10 ? leastSquaresSlope(settled.map((sample) => [sample.round, sample.rssMib])) * 100 : null;
    const [first, last] = [long.rssSamples[0], long.rssSamples.at(-1)];

    let transfer: Record<string, number> = {};
    if (!args['skip-transfer']) {
      const output = execFileSync(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'transfer.ts'), '--mib', '64', '--runs', '5'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
      transfer = JSON.parse(output.trim().split('\n').at(-1) as string) as Record<string, number>;
    }
    const result = {
      sites: SITES,
      parameters: 784 * 128 + 128 + 128 * 10 + 10,
      examples_per_site: 500,
      timed_rounds: TIMED_ROUNDS,
      interleaved: true,
      secure_round_s: Number(secureTimed.roundSeconds.toFixed(3)),
      plain_round_s: Number(plainTimed.roundSeconds.toFixed(3)),
      secagg_overhead_ratio: Number((secureTimed.roundSeconds / plainTimed.roundSeconds).toFixed(3)),
      secure_stage_s: secureTimed.stages,
      plain_stage_s: plainTimed.stages,
      download_mib_per_s: transfer['download_mib_per_s'] ?? null,
      upload_mib_per_s: transfer['upload_mib_per_s'] ?? null,
      coordinator_peak_rss_mib: Number(turns.securePeakRssMib.toFixed(1)),
      long_run_rounds: long.rounds.length,
      coordinator_rss_growth_mib_per_100_rounds: growth === null ? null : Number(growth.toFixed(2)),
      coordinator_rss_first_last_mib: [first, last].map((sample) => (sample === undefined ? null : Number(sample.rssMib.toFixed(1)))),
    };
    console.log(JSON.stringify(result));
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

await main();
