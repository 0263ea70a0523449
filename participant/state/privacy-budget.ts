/**
 * What a site has spent of its privacy budget, per dataset (the dataset id is a hash the caller computes
 * of the data it trains on, so the same records are charged whatever task uses them). Each entry is the
 * RDP curve one round of one task spent on that dataset (crypto/dp: DP-SGD's steps composed, evaluations,
 * distributed-DP releases); the total is their sum, and the site asks before a round whether the total
 * plus that round's curve stays within its (epsilon, delta).
 *
 * Record before release: the caller charges a round (spendWithinBudget) before anything computed from the
 * data leaves the site. A crash after charging and before the upload over-counts by one round; nothing
 * can under-count. Every change is persisted like site-state.ts (temporary file, fsync, rename, directory
 * fsync; serialised writes; memory changes only after the disk did), so concurrent rounds cannot both pass
 * a check that only one of them fits.
 *
 * Curves are kept on one grid of orders (crypto/dp DEFAULT_ORDERS unless the store was created with
 * another). A curve bounded only on some of them (the snapped Gaussian's integer orders) counts as
 * unbounded (+Infinity, stored as null) on the others, which then never set the epsilon.
 */
import { join } from 'node:path';
import { fromHex, toHex } from '../../crypto/bytes.js';
import { DEFAULT_ORDERS, rdpToEpsilon, type Conversion, type RdpCurve } from '../../crypto/dp/rdp.js';
import { PRIVATE_DIRECTORY_MODE, PRIVATE_FILE_MODE, FedgateError, ensureDirectory, readFileIfExists, writeFileAtomic } from '../../platform/index.js';

export const PRIVACY_BUDGET_FORMAT_VERSION = 1;
export const PRIVACY_BUDGET_FILE = 'privacy-budget.json';

/** A site's budget for one dataset, from site.yaml `privacy: {epsilon, delta}`. */
export interface PrivacyBudget {
  readonly epsilon: number;
  readonly delta: number;
}

/** One round's charge. */
export interface BudgetEntry {
  readonly taskHash: Uint8Array;
  readonly roundId: Uint8Array;
  readonly curve: RdpCurve;
}

export interface BudgetCheck {
  readonly allowed: boolean;
  readonly epsilonBefore: number;
  readonly epsilonAfter: number;
}

export interface PrivacyBudgetOptions {
  /** Test hook: called after the new file is written and before it replaces the old one. */
  readonly beforeRename?: () => void;
  /** The grid of RDP orders of a new store; an existing store keeps the grid it was created with. */
  readonly orders?: readonly number[];
  /** @default 'classic' */
  readonly conversion?: Conversion;
}

interface StoredEntry {
  readonly taskHash: string;
  readonly roundId: string;
  readonly rdp: readonly number[];
}

export class PrivacyBudgetStore {
  private writes: Promise<void> = Promise.resolve();

  private constructor(
    readonly directory: string,
    readonly orders: readonly number[],
    private readonly datasets: Map<string, StoredEntry[]>,
    private readonly options: PrivacyBudgetOptions,
  ) {}

  /** Opens (creating on first use) the budget file in `directory`; a damaged file is an error, never a reset. */
  static async open(directory: string, options: PrivacyBudgetOptions = {}): Promise<PrivacyBudgetStore> {
    await ensureDirectory(directory, PRIVATE_DIRECTORY_MODE);
    const path = join(directory, PRIVACY_BUDGET_FILE);
    const bytes = await readFileIfExists(path);
    if (bytes === undefined) return new PrivacyBudgetStore(directory, [...(options.orders ?? DEFAULT_ORDERS)], new Map(), options);
    const { orders, datasets } = parseBudget(Buffer.from(bytes).toString('utf8'), path);
    return new PrivacyBudgetStore(directory, orders, datasets, options);
  }

  /** The sum of every curve charged to `datasetId` (zero when none). */
  spent(datasetId: Uint8Array): RdpCurve {
    const total = new Array<number>(this.orders.length).fill(0);
    for (const entry of this.datasets.get(datasetKey(datasetId)) ?? []) {
      for (let i = 0; i < total.length; i++) total[i]! += entry.rdp[i]!;
    }
    return { orders: [...this.orders], rdp: total };
  }

  /** Epsilon spent on `datasetId` at `delta` (0 before any round). */
  epsilonSpent(datasetId: Uint8Array, delta: number): number {
    return this.epsilonOf(this.spent(datasetId).rdp, delta);
  }

  /** The rounds charged to `datasetId`, oldest first. */
  entries(datasetId: Uint8Array): { taskHash: Uint8Array; roundId: Uint8Array; curve: RdpCurve }[] {
    return (this.datasets.get(datasetKey(datasetId)) ?? []).map((entry) => ({ taskHash: fromHex(entry.taskHash), roundId: fromHex(entry.roundId), curve: { orders: [...this.orders], rdp: [...entry.rdp] } }));
  }

  /** Would charging `curve` to `datasetId` stay within `budget`? Answers without recording anything. */
  check(datasetId: Uint8Array, curve: RdpCurve, budget: PrivacyBudget): BudgetCheck {
    checkBudget(budget);
    return this.project(datasetId, curve, budget);
  }

  /** check() without validating the budget (an epsilon of Infinity caps nothing). */
  private project(datasetId: Uint8Array, curve: RdpCurve, budget: PrivacyBudget): BudgetCheck {
    const round = this.onGrid(curve);
    const spent = this.spent(datasetId).rdp;
    const after = spent.map((value, i) => value + round[i]!);
    const epsilonAfter = this.epsilonOf(after, budget.delta);
    return { allowed: epsilonAfter <= budget.epsilon, epsilonBefore: this.epsilonOf(spent, budget.delta), epsilonAfter };
  }

  /**
   * Charges `entry` to `datasetId` if the total stays within `budget`, persisted before it resolves; the
   * check and the write happen under one lock. Refuses with PRIVACY_BUDGET_EXCEEDED otherwise. Charging
   * the same (task, round) again with the same curve is a no-op (a retried round); with another curve it
   * is refused (ROUND_ALREADY_CHARGED).
   */
  async spendWithinBudget(datasetId: Uint8Array, entry: BudgetEntry, budget: PrivacyBudget): Promise<BudgetCheck> {
    checkBudget(budget);
    let result: BudgetCheck | undefined;
    await this.update(() => {
      const charged = this.charge(datasetId, entry);
      if (charged === 'already') {
        const epsilon = this.epsilonSpent(datasetId, budget.delta);
        result = { allowed: true, epsilonBefore: epsilon, epsilonAfter: epsilon };
        return false;
      }
      const check = this.check(datasetId, entry.curve, budget);
      if (!check.allowed) throw budgetExceeded(datasetId, check, budget);
      charged();
      result = check;
      return true;
    });
    return result!;
  }

  /**
   * Like spendWithinBudget, but a round id is charged at most once to `datasetId`, whatever task hash
   * comes with it: any earlier entry with `entry.roundId` refuses the charge (ROUND_ALREADY_CHARGED)
   * instead of answering "allowed" for a retry. What a site calls before it trains: a coordinator that
   * re-sends a round (the same task, or another) gets neither a second charge nor a second training on
   * the first one. The look-up, the check and the write happen under one lock. A `budget` without
   * epsilon caps nothing (a site with no budget still keeps count); its delta is where epsilon is read.
   */
  async spendOnce(datasetId: Uint8Array, entry: BudgetEntry, budget: PrivacyBudget | { readonly delta: number; readonly epsilon?: undefined }): Promise<BudgetCheck> {
    checkBudget({ epsilon: budget.epsilon ?? Number.MAX_VALUE, delta: budget.delta });
    let result: BudgetCheck | undefined;
    await this.update(() => {
      const round = entry.roundId instanceof Uint8Array ? toHex(entry.roundId) : '';
      const earlier = (this.datasets.get(datasetKey(datasetId)) ?? []).find((item) => item.roundId === round);
      if (earlier !== undefined) {
        throw new FedgateError('FAILED_PRECONDITION', `round ${round} was already charged to this dataset (task ${earlier.taskHash.slice(0, 16)}...): a round is charged, and trained, once`, { reason: 'ROUND_ALREADY_CHARGED' });
      }
      const charged = this.charge(datasetId, entry);
      if (charged === 'already') throw new Error('unreachable: no entry of this round exists');
      const check = this.project(datasetId, entry.curve, { epsilon: budget.epsilon ?? Infinity, delta: budget.delta });
      if (!check.allowed) throw budgetExceeded(datasetId, check, budget);
      charged();
      result = check;
      return true;
    });
    return result!;
  }

  /** Charges `entry` unconditionally (a release the site already made), persisted before it resolves. */
  async record(datasetId: Uint8Array, entry: BudgetEntry): Promise<void> {
    await this.update(() => {
      const charged = this.charge(datasetId, entry);
      if (charged === 'already') return false;
      charged();
      return true;
    });
  }

  /** Validates `entry` and returns the change that charges it, or 'already' for an identical retry. */
  private charge(datasetId: Uint8Array, entry: BudgetEntry): 'already' | (() => void) {
    const key = datasetKey(datasetId);
    if (!(entry.taskHash instanceof Uint8Array) || entry.taskHash.length !== 32) throw invalid('entry.taskHash must be a 32-byte SHA-256 digest');
    if (!(entry.roundId instanceof Uint8Array) || entry.roundId.length === 0 || entry.roundId.length > 64) throw invalid('entry.roundId must be 1 to 64 bytes');
    const rdp = this.onGrid(entry.curve);
    const stored: StoredEntry = { taskHash: toHex(entry.taskHash), roundId: toHex(entry.roundId), rdp };
    const list = this.datasets.get(key) ?? [];
    const previous = list.find((item) => item.taskHash === stored.taskHash && item.roundId === stored.roundId);
    if (previous !== undefined) {
      if (previous.rdp.every((value, i) => value === rdp[i])) return 'already';
      throw new FedgateError('FAILED_PRECONDITION', `round ${stored.roundId} of task ${stored.taskHash.slice(0, 16)}... is already charged to this dataset with another RDP curve`, { reason: 'ROUND_ALREADY_CHARGED' });
    }
    return () => this.datasets.set(key, [...list, stored]);
  }

  /** The curve's values on the store's grid; orders it does not bound are +Infinity. */
  private onGrid(curve: RdpCurve): number[] {
    if (curve === null || typeof curve !== 'object' || !Array.isArray(curve.orders) || !Array.isArray(curve.rdp) || curve.orders.length !== curve.rdp.length) {
      throw invalid('the RDP curve must hold orders and rdp arrays of one length');
    }
    const values = new Array<number>(this.orders.length).fill(Infinity);
    curve.orders.forEach((alpha, i) => {
      const index = this.orders.indexOf(alpha);
      if (index < 0) throw invalid(`the RDP curve has order ${alpha}, which is not on this store's grid of ${this.orders.length} orders: compute curves on crypto/dp DEFAULT_ORDERS`);
      const value = curve.rdp[i]!;
      if (typeof value !== 'number' || !(value >= 0)) throw invalid(`the RDP curve's value at order ${alpha} must be a number >= 0, got ${String(value)}`);
      values[index] = value;
    });
    return values;
  }

  private epsilonOf(rdp: readonly number[], delta: number): number {
    // Nothing released yet is epsilon 0 (the conversion alone would print log(1/delta)/(a_max - 1) > 0).
    if (rdp.every((value) => value === 0)) return 0;
    return rdpToEpsilon({ orders: this.orders, rdp }, delta, this.options.conversion ?? 'classic').epsilon;
  }

  /**
   * Runs `change` (which returns whether it changed anything) on the live state, persists it, and puts the
   * previous state back if the write fails. Writes are serialised.
   */
  private update(change: () => boolean): Promise<void> {
    const run = async (): Promise<void> => {
      const before = new Map([...this.datasets].map(([key, list]) => [key, [...list]]));
      try {
        if (!change()) return;
        await writeFileAtomic(join(this.directory, PRIVACY_BUDGET_FILE), serializeBudget(this.orders, this.datasets), {
          mode: PRIVATE_FILE_MODE,
          ...(this.options.beforeRename === undefined ? {} : { beforeRename: this.options.beforeRename }),
        });
      } catch (error) {
        this.datasets.clear();
        for (const [key, list] of before) this.datasets.set(key, list);
        throw error;
      }
    };
    const result = this.writes.then(run);
    this.writes = result.catch(() => undefined);
    return result;
  }
}

function datasetKey(datasetId: Uint8Array): string {
  if (!(datasetId instanceof Uint8Array) || datasetId.length !== 32) throw invalid('the dataset id must be a 32-byte hash of the dataset');
  return toHex(datasetId);
}

function checkBudget(budget: PrivacyBudget): void {
  if (budget === null || typeof budget !== 'object' || !(budget.epsilon > 0) || !Number.isFinite(budget.epsilon) || !(budget.delta > 0 && budget.delta < 1)) {
    throw invalid(`the privacy budget must have epsilon > 0 and delta in (0, 1), got ${JSON.stringify(budget)}`);
  }
}

function invalid(message: string): FedgateError {
  return new FedgateError('INVALID_ARGUMENT', message, { reason: 'INVALID_PRIVACY_CHARGE' });
}

function serializeBudget(orders: readonly number[], datasets: ReadonlyMap<string, readonly StoredEntry[]>): string {
  const sorted = [...datasets].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `${JSON.stringify(
    {
      formatVersion: PRIVACY_BUDGET_FORMAT_VERSION,
      orders,
      datasets: sorted.map(([datasetId, entries]) => ({
        datasetId,
        // +Infinity (an order the curve does not bound) is not JSON: null.
        entries: entries.map((entry) => ({ taskHash: entry.taskHash, roundId: entry.roundId, rdp: entry.rdp.map((value) => (value === Infinity ? null : value)) })),
      })),
    },
    null,
    1,
  )}\n`;
}

function parseBudget(text: string, path: string): { orders: number[]; datasets: Map<string, StoredEntry[]> } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw corrupt(path, `is not JSON (${(error as Error).message})`);
  }
  const document = value as { formatVersion?: unknown; orders?: unknown; datasets?: unknown } | null;
  if (document === null || typeof document !== 'object') throw corrupt(path, 'is not a JSON object');
  if (document.formatVersion !== PRIVACY_BUDGET_FORMAT_VERSION) {
    throw new FedgateError('FAILED_PRECONDITION', `${path} has format version ${JSON.stringify(document.formatVersion)}; this fedgate reads version ${PRIVACY_BUDGET_FORMAT_VERSION}: run the fedgate release that wrote it, or upgrade`, { reason: 'PRIVACY_BUDGET_VERSION' });
  }
  if (!Array.isArray(document.orders) || document.orders.length === 0 || !document.orders.every((alpha) => typeof alpha === 'number' && alpha > 1)) throw corrupt(path, 'has no valid list of RDP orders');
  const orders = document.orders as number[];
  if (!Array.isArray(document.datasets)) throw corrupt(path, 'has no datasets list');
  const datasets = new Map<string, StoredEntry[]>();
  document.datasets.forEach((item: unknown, index: number) => {
    const where = `datasets[${index}]`;
    const dataset = item as { datasetId?: unknown; entries?: unknown } | null;
    if (dataset === null || typeof dataset !== 'object' || !isHex(dataset.datasetId, 64)) throw corrupt(path, `${where}.datasetId must be a 64-character hex digest`);
    if (datasets.has(dataset.datasetId)) throw corrupt(path, `${where} repeats dataset ${dataset.datasetId}`);
    if (!Array.isArray(dataset.entries)) throw corrupt(path, `${where}.entries must be a list`);
    const entries = dataset.entries.map((raw: unknown, j: number): StoredEntry => {
      const entry = raw as { taskHash?: unknown; roundId?: unknown; rdp?: unknown } | null;
      if (entry === null || typeof entry !== 'object' || !isHex(entry.taskHash, 64) || !isHex(entry.roundId)) throw corrupt(path, `${where}.entries[${j}] must hold hex taskHash and roundId`);
      if (!Array.isArray(entry.rdp) || entry.rdp.length !== orders.length || !entry.rdp.every((v) => v === null || (typeof v === 'number' && v >= 0))) {
        throw corrupt(path, `${where}.entries[${j}].rdp must hold ${orders.length} numbers >= 0 (or null)`);
      }
      return { taskHash: entry.taskHash, roundId: entry.roundId, rdp: entry.rdp.map((v: number | null) => (v === null ? Infinity : v)) };
    });
    datasets.set(dataset.datasetId, entries);
  });
  return { orders, datasets };
}

function isHex(value: unknown, length?: number): value is string {
  return typeof value === 'string' && /^([0-9a-f]{2})+$/.test(value) && (length === undefined || value.length === length);
}

function corrupt(path: string, what: string): FedgateError {
  return new FedgateError(
    'DATA_LOSS',
    `the privacy budget file ${path} ${what}: restore it from a backup. Deleting it would forget the privacy this site has already spent on its data`,
    { reason: 'PRIVACY_BUDGET_CORRUPT' },
  );
}

function budgetExceeded(datasetId: Uint8Array, check: BudgetCheck, budget: { readonly epsilon?: number | undefined; readonly delta: number }): FedgateError {
  return new FedgateError(
    'FAILED_PRECONDITION',
    `this round would bring the privacy spent on dataset ${datasetKey(datasetId).slice(0, 16)}... from epsilon ${check.epsilonBefore.toFixed(4)} to ${check.epsilonAfter.toFixed(4)}, above the site's budget ${String(budget.epsilon)} at delta ${budget.delta}`,
    { reason: 'PRIVACY_BUDGET_EXCEEDED' },
  );
}
