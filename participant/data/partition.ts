/**
 * Partitioners that split one dataset among simulated clients, for experiments and tests of federated
 * training on IID and non-IID data. Each returns one Int32Array of example indices per client; every
 * example is assigned to exactly one client, and the result depends only on the seed.
 */
import type { Dataset } from './dataset.js';
import { DataError, invalidOption, requireInteger } from './errors.js';
import { Random } from './random.js';

type Labelled = Pick<Dataset, 'labels' | 'classes' | 'count'>;

function checkClients(clients: number, count: number, perClient = 1): void {
  requireInteger('clients', clients, 1);
  if (count < clients * perClient) {
    throw invalidOption(
      'TOO_FEW_EXAMPLES',
      `cannot give ${clients} clients ${perClient} example(s) each from ${count} examples; expected at least ${clients * perClient}`,
    );
  }
}

/** IID: a seeded shuffle cut into `clients` contiguous parts whose sizes differ by at most one. */
export function partitionIid(dataset: Pick<Dataset, 'count'>, options: { clients: number; seed: number }): Int32Array[] {
  const { clients, seed } = options;
  checkClients(clients, dataset.count);
  const order = new Int32Array(dataset.count);
  for (let i = 0; i < order.length; i++) order[i] = i;
  new Random(seed).shuffle(order);
  const parts: Int32Array[] = [];
  for (let c = 0; c < clients; c++) {
    parts.push(order.slice(Math.floor((c * dataset.count) / clients), Math.floor(((c + 1) * dataset.count) / clients)));
  }
  return parts;
}

export interface DirichletOptions {
  readonly clients: number;
  /** Concentration: small (0.1) gives each client few dominant classes, large (100) is close to IID. */
  readonly alpha: number;
  readonly seed: number;
  /**
   * Redraw the proportions until every client has at least this many examples (as NIID-Bench does).
   * @default 1
   */
  readonly minExamplesPerClient?: number;
  /** Give up after this many draws. @default 1000 */
  readonly maxAttempts?: number;
  /**
   * NIID-Bench's balancing: a client that already holds at least count / clients examples gets no share
   * of the classes dealt after that (its proportion is zeroed and the rest renormalised). Off by default.
   */
  readonly capAtEqualShare?: boolean;
}

/**
 * Dirichlet label skew: for every class k draw p_k ~ Dir(alpha, ..., alpha) over the clients and deal the
 * class's (shuffled) examples out in those proportions. This is the scheme of Yurochkin et al., "Bayesian
 * nonparametric federated learning of neural networks", ICML 2019, as used by Hsu et al. 2019 and Li et
 * al., "Federated learning on non-IID data silos" (NIID-Bench), ICDE 2022. Cutting each class at
 * round(cumsum(p_k) * n_k) assigns every example exactly once.
 */
export function partitionDirichlet(dataset: Labelled, options: DirichletOptions): Int32Array[] {
  const { clients, alpha, seed } = options;
  const minSize = requireInteger('minExamplesPerClient', options.minExamplesPerClient ?? 1, 0);
  const maxAttempts = requireInteger('maxAttempts', options.maxAttempts ?? 1000, 1);
  if (!(alpha > 0) || !Number.isFinite(alpha)) {
    throw invalidOption('INVALID_ALPHA', `alpha must be a finite number > 0, got ${String(alpha)}`);
  }
  checkClients(clients, dataset.count, minSize);
  const random = new Random(seed);
  const byClass = indicesByClass(dataset, random);
  const sizes = new Int32Array(clients);
  // cuts[k * (clients + 1) + c] = first position of class k's examples that goes to client c.
  const cuts = new Int32Array(dataset.classes * (clients + 1));
  for (let attempt = 0; attempt < maxAttempts; attempt++) {
    sizes.fill(0);
    for (let k = 0; k < dataset.classes; k++) {
      const n = (byClass[k] as Int32Array).length;
      const p = random.nextDirichlet(alpha, clients);
      if (options.capAtEqualShare === true) capAtEqualShare(p, sizes, dataset.count / clients);
      let cumulative = 0;
      const base = k * (clients + 1);
      cuts[base] = 0;
      for (let c = 0; c < clients; c++) {
        cumulative += p[c] as number;
        const cut = c === clients - 1 ? n : Math.min(n, Math.round(cumulative * n));
        cuts[base + c + 1] = cut;
        sizes[c] = (sizes[c] as number) + cut - (cuts[base + c] as number);
      }
    }
    if (sizes.every((size) => size >= minSize)) {
      return gather(byClass, cuts, sizes, clients);
    }
  }
  throw new DataError(
    'FAILED_PRECONDITION',
    'DIRICHLET_MIN_SIZE_UNREACHABLE',
    `no Dirichlet(alpha=${alpha}) draw in ${maxAttempts} attempts gave all ${clients} clients >= ${minSize} examples of ${dataset.count}; expected fewer clients, a larger alpha or a smaller minExamplesPerClient`,
  );
}

/** Zeroes the proportions of clients already at their equal share; keeps p as drawn if that zeroes all. */
function capAtEqualShare(p: Float64Array, sizes: Int32Array, share: number): void {
  let kept = 0;
  for (let c = 0; c < p.length; c++) if ((sizes[c] as number) < share) kept += p[c] as number;
  if (kept <= 0) return;
  for (let c = 0; c < p.length; c++) p[c] = (sizes[c] as number) < share ? (p[c] as number) / kept : 0;
}

function gather(byClass: readonly Int32Array[], cuts: Int32Array, sizes: Int32Array, clients: number): Int32Array[] {
  const parts = Array.from(sizes, (size) => new Int32Array(size));
  const filled = new Int32Array(clients);
  for (const [k, members] of byClass.entries()) {
    const base = k * (clients + 1);
    for (let c = 0; c < clients; c++) {
      const slice = members.subarray(cuts[base + c] as number, cuts[base + c + 1] as number);
      (parts[c] as Int32Array).set(slice, filled[c] as number);
      filled[c] = (filled[c] as number) + slice.length;
    }
  }
  return parts;
}

export interface ShardOptions {
  readonly clients: number;
  /** @default 2 (McMahan et al.: 200 shards of 300 MNIST examples, 2 per client) */
  readonly shardsPerClient?: number;
  readonly seed: number;
}

/**
 * Pathological non-IID label shards, McMahan et al., "Communication-efficient learning of deep networks
 * from decentralized data", AISTATS 2017, Sec. 3: sort the examples by label, cut them into
 * clients * shardsPerClient shards of (nearly) equal size, and give each client shardsPerClient random
 * shards, so most clients see only about shardsPerClient classes.
 */
export function partitionShards(dataset: Labelled, options: ShardOptions): Int32Array[] {
  const { clients, seed } = options;
  const shardsPerClient = requireInteger('shardsPerClient', options.shardsPerClient ?? 2, 1);
  checkClients(clients, dataset.count, shardsPerClient);
  const random = new Random(seed);
  // Sorted by label; within a label in random order, so a shard is a random sample of its classes.
  const sorted = new Int32Array(dataset.count);
  let at = 0;
  for (const members of indicesByClass(dataset, random)) {
    sorted.set(members, at);
    at += members.length;
  }
  const shardCount = clients * shardsPerClient;
  const shardOrder = new Int32Array(shardCount);
  for (let s = 0; s < shardCount; s++) shardOrder[s] = s;
  random.shuffle(shardOrder);
  const shardStart = (s: number): number => Math.floor((s * dataset.count) / shardCount);
  const parts: Int32Array[] = [];
  for (let c = 0; c < clients; c++) {
    const shards = shardOrder.subarray(c * shardsPerClient, (c + 1) * shardsPerClient);
    let size = 0;
    for (const s of shards) size += shardStart(s + 1) - shardStart(s);
    const part = new Int32Array(size);
    let filled = 0;
    for (const s of shards) {
      part.set(sorted.subarray(shardStart(s), shardStart(s + 1)), filled);
      filled += shardStart(s + 1) - shardStart(s);
    }
    parts.push(part);
  }
  return parts;
}

/** Indices of each class, each list shuffled with `random`. */
function indicesByClass(dataset: Labelled, random: Random): Int32Array[] {
  const counts = new Int32Array(dataset.classes);
  for (let i = 0; i < dataset.labels.length; i++) {
    const label = dataset.labels[i] as number;
    if (label < 0 || label >= dataset.classes) {
      throw invalidOption('LABEL_OUT_OF_RANGE', `example ${i} (0-based): label ${label} is outside the class range; expected an integer in [0, ${dataset.classes - 1}]`);
    }
    counts[label] = (counts[label] as number) + 1;
  }
  const byClass = Array.from(counts, (n) => new Int32Array(n));
  const filled = new Int32Array(dataset.classes);
  for (let i = 0; i < dataset.labels.length; i++) {
    const label = dataset.labels[i] as number;
    (byClass[label] as Int32Array)[filled[label] as number] = i;
    filled[label] = (filled[label] as number) + 1;
  }
  for (const members of byClass) random.shuffle(members);
  return byClass;
}
