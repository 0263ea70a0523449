/**
 * What a site remembers across reconnects and restarts so that a lying coordinator cannot replay it
 * (DESIGN.md "What a site checks for itself"): per federation, the highest round counter it accepted,
 * the model hashes its masked input was unmasked on (one contribution per model), the model hashes whose
 * evaluation it reported in an unmasked aggregate (metrics of one model at most once), and the head of the
 * verified chain of commit records it trains from, and the public context of the round it last unmasked
 * in with what it signed for it (so that after a restart it can still sign that round's commit when the
 * coordinator asks again: one contribution per model, the round is finished, never re-run); plus a site
 * secret that seeds every local random choice, so no randomness of the site is a function of public
 * values alone.
 *
 * Every change is persisted (temporary file, fsync, rename, directory fsync) before the caller acts on
 * it: a site that crashes between accepting a round and persisting the counter has made no key for that
 * round, and a site that crashes after persisting it refuses the same counter after the restart.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { bytesEqual, fromHex, toHex } from '../../crypto/bytes.js';
import { hmacSha256 } from '../../crypto/hash.js';
import { COMMIT_HASH_FIELDS } from '../../crypto/secagg/commit-hashes.js';
import { unmaskedRound, type UnmaskedRound } from '../../crypto/secagg/commit-resign.js';
import { decodeRoundConfig, encodeRoundConfig } from '../../crypto/secagg/config-codec.js';
import { roundCounter } from '../../crypto/secagg/config.js';
import type { CommitHashes } from '../../crypto/secagg/messages.js';
import { PRIVATE_DIRECTORY_MODE, PRIVATE_FILE_MODE, FedgateError, ensureDirectory, readFileIfExists, writeFileAtomic } from '../../platform/index.js';

export const SITE_STATE_FORMAT_VERSION = 1;
export const SITE_STATE_FILE = 'site-state.json';
export const SITE_SECRET_FILE = 'site-secret.key';
const SITE_SECRET_BYTES = 32;
const SEED_LABEL = new TextEncoder().encode('fedgate/v1/site-seed');

/** The newest commit record this site verified: the model and optimiser state its next round must start from. */
export interface ChainHead {
  /** Round counter of the committed round (0 for the task's initial model). */
  readonly counter: bigint;
  readonly modelHash: Uint8Array;
  readonly optimizerStateHash: Uint8Array;
  /** Hash of the commit record (empty for the task's initial model). */
  readonly recordHash: Uint8Array;
}

/**
 * The round this site last unmasked in: its public context (RoundConfig, H(L), U3; nothing secret) and the
 * commit hashes it signed for it, if it did. Kept until that round's commit record is verified (or a later
 * one's) or the site accepts a newer round.
 */
export interface UnmaskedRoundRecord {
  readonly round: UnmaskedRound;
  readonly signed: CommitHashes | undefined;
}

interface FederationRecord {
  highestRoundCounter: bigint;
  contributedModels: Set<string>;
  /** Models whose evaluation (metric slots) entered an unmasked aggregate; absent from files written before it existed. */
  evaluatedModels: Set<string>;
  chainHead: ChainHead | undefined;
  unmasked: UnmaskedRoundRecord | undefined;
}

export interface SiteStateOptions {
  /** Test hook: called after the new state file is written and before it replaces the old one. */
  readonly beforeRename?: () => void;
}

export class SiteStateStore {
  private writes: Promise<void> = Promise.resolve();

  private constructor(
    readonly directory: string,
    private readonly secret: Uint8Array,
    private readonly federations: Map<string, FederationRecord>,
    private readonly options: SiteStateOptions,
  ) {}

  /** Opens (creating on first use) the state in `directory`; a damaged file is an error, never a reset. */
  static async open(directory: string, options: SiteStateOptions = {}): Promise<SiteStateStore> {
    await ensureDirectory(directory, PRIVATE_DIRECTORY_MODE);
    const secretPath = join(directory, SITE_SECRET_FILE);
    let secret = await readFileIfExists(secretPath);
    if (secret === undefined) {
      secret = randomBytes(SITE_SECRET_BYTES);
      await writeFileAtomic(secretPath, secret, { mode: PRIVATE_FILE_MODE });
    } else if (secret.length !== SITE_SECRET_BYTES) {
      throw corrupt(secretPath, `holds ${secret.length} bytes, a site secret is ${SITE_SECRET_BYTES}`);
    }
    const statePath = join(directory, SITE_STATE_FILE);
    const text = await readFileIfExists(statePath);
    const federations = text === undefined ? new Map<string, FederationRecord>() : parseState(Buffer.from(text).toString('utf8'), statePath);
    return new SiteStateStore(directory, new Uint8Array(secret), federations, options);
  }

  highestRoundCounter(federationId: string): bigint | undefined {
    return this.federations.get(federationId)?.highestRoundCounter;
  }

  /**
   * Accepts round `counter` of `federationId` only if it is above every counter accepted before, and
   * persists it before returning: the same or an older RoundStart is refused forever after.
   */
  async acceptRoundCounter(federationId: string, counter: bigint): Promise<void> {
    await this.update(() => {
      const record = this.record(federationId);
      if (counter <= record.highestRoundCounter) {
        throw new FedgateError('FAILED_PRECONDITION', `round counter ${counter} is not above ${record.highestRoundCounter}, the highest this site accepted: a replayed or stale round`, { reason: 'ROUND_NOT_FRESH' });
      }
      record.highestRoundCounter = counter;
      // A newer round: the coordinator is done with the one this site last unmasked in.
      if (record.unmasked !== undefined && roundCounter(record.unmasked.round.config.roundId) < counter) record.unmasked = undefined;
    });
  }

  /** True once this site's masked input entered an unmasked aggregate on `modelHash`. */
  hasContributed(federationId: string, modelHash: Uint8Array): boolean {
    return this.federations.get(federationId)?.contributedModels.has(toHex(modelHash)) ?? false;
  }

  /** Records (persisted before it resolves) that this site's input may be unmasked on `modelHash`. */
  async recordContribution(federationId: string, modelHash: Uint8Array): Promise<void> {
    await this.update(() => {
      this.record(federationId).contributedModels.add(toHex(modelHash));
    });
  }

  /** True once this site's evaluation of `modelHash` entered an unmasked aggregate. */
  hasEvaluated(federationId: string, modelHash: Uint8Array): boolean {
    return this.federations.get(federationId)?.evaluatedModels.has(toHex(modelHash)) ?? false;
  }

  /** Records (persisted before it resolves) that this site's evaluation of `modelHash` may be unmasked. */
  async recordEvaluation(federationId: string, modelHash: Uint8Array): Promise<void> {
    await this.update(() => {
      this.record(federationId).evaluatedModels.add(toHex(modelHash));
    });
  }

  chainHead(federationId: string): ChainHead | undefined {
    return this.federations.get(federationId)?.chainHead;
  }

  /** Moves the verified chain head; it never moves back to an older counter. */
  async setChainHead(federationId: string, head: ChainHead): Promise<void> {
    await this.update(() => {
      const record = this.record(federationId);
      if (record.chainHead !== undefined && head.counter < record.chainHead.counter) {
        throw new FedgateError('FAILED_PRECONDITION', `chain head cannot move back from round ${record.chainHead.counter} to ${head.counter}`, { reason: 'CHAIN_HEAD_BEHIND' });
      }
      record.chainHead = { counter: head.counter, modelHash: new Uint8Array(head.modelHash), optimizerStateHash: new Uint8Array(head.optimizerStateHash), recordHash: new Uint8Array(head.recordHash) };
      // That round's record (or a later one's) verified: its commit is settled, nothing left to sign.
      if (record.unmasked !== undefined && roundCounter(record.unmasked.round.config.roundId) <= head.counter) record.unmasked = undefined;
    });
  }

  /** The round this site last unmasked in, when `roundId` names it (in any federation). */
  unmaskedRound(roundId: Uint8Array): UnmaskedRoundRecord | undefined {
    for (const record of this.federations.values()) {
      if (record.unmasked !== undefined && bytesEqual(record.unmasked.round.config.roundId, roundId)) return record.unmasked;
    }
    return undefined;
  }

  /**
   * Keeps (persisted before it resolves) the public context of the round this site is about to reveal its
   * shares in, replacing the federation's previous one; kept as it is when it already names this round.
   */
  async keepUnmaskedRound(round: UnmaskedRound): Promise<void> {
    await this.update(() => {
      const record = this.record(round.config.federationId);
      if (record.unmasked !== undefined && bytesEqual(record.unmasked.round.config.roundId, round.config.roundId)) return;
      record.unmasked = { round: unmaskedRound(round.siteId, round.config, round.keyListHash, round.maskedSurvivors), signed: undefined };
    });
  }

  /**
   * Records (persisted before it resolves) the commit hashes this site signs for the round it last unmasked
   * in, before the signature leaves; a no-op for any other round. The signing code refuses a second,
   * different commit for the round (crypto/secagg/commit-resign.ts CONFLICTING_COMMIT) from this record.
   */
  async keepCommitSigned(roundId: Uint8Array, hashes: CommitHashes): Promise<void> {
    await this.update(() => {
      for (const record of this.federations.values()) {
        const kept = record.unmasked;
        if (kept === undefined || !bytesEqual(kept.round.config.roundId, roundId)) continue;
        record.unmasked = { round: kept.round, signed: commitHashes((field) => new Uint8Array(hashes[field])) };
      }
    });
  }

  /**
   * 32 bytes that seed this site's local randomness for one purpose of one round (shuffle, dropout,
   * sampling): HMAC-SHA256(site secret, label || purpose || round id). Unpredictable to the coordinator,
   * different in every round, reproducible by the site itself.
   */
  roundSeed(roundId: Uint8Array, purpose: string): Uint8Array {
    return hmacSha256(this.secret, SEED_LABEL, new TextEncoder().encode(`/${purpose}/`), roundId);
  }

  private record(federationId: string): FederationRecord {
    let record = this.federations.get(federationId);
    if (record === undefined) {
      record = { highestRoundCounter: -1n, contributedModels: new Set(), evaluatedModels: new Set(), chainHead: undefined, unmasked: undefined };
      this.federations.set(federationId, record);
    }
    return record;
  }

  /**
   * Applies `change` to a copy of the state, persists the copy, and only then makes it the live state:
   * a failed write leaves memory and disk as they were. Writes are serialised.
   */
  private update(change: () => void): Promise<void> {
    const run = async (): Promise<void> => {
      const before = cloneFederations(this.federations);
      try {
        change();
        await writeFileAtomic(join(this.directory, SITE_STATE_FILE), serializeState(this.federations), {
          mode: PRIVATE_FILE_MODE,
          ...(this.options.beforeRename === undefined ? {} : { beforeRename: this.options.beforeRename }),
        });
      } catch (error) {
        this.federations.clear();
        for (const [id, record] of before) this.federations.set(id, record);
        throw error;
      }
    };
    const result = this.writes.then(run);
    this.writes = result.catch(() => undefined);
    return result;
  }
}

function cloneFederations(federations: ReadonlyMap<string, FederationRecord>): Map<string, FederationRecord> {
  const copy = new Map<string, FederationRecord>();
  for (const [id, record] of federations) {
    copy.set(id, { highestRoundCounter: record.highestRoundCounter, contributedModels: new Set(record.contributedModels), evaluatedModels: new Set(record.evaluatedModels), chainHead: record.chainHead, unmasked: record.unmasked });
  }
  return copy;
}

function serializeState(federations: ReadonlyMap<string, FederationRecord>): string {
  const entries = [...federations].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `${JSON.stringify(
    {
      formatVersion: SITE_STATE_FORMAT_VERSION,
      federations: entries.map(([federationId, record]) => ({
        federationId,
        highestRoundCounter: record.highestRoundCounter.toString(),
        contributedModels: [...record.contributedModels].sort(),
        evaluatedModels: [...record.evaluatedModels].sort(),
        chainHead:
          record.chainHead === undefined
            ? null
            : {
                counter: record.chainHead.counter.toString(),
                modelHash: toHex(record.chainHead.modelHash),
                optimizerStateHash: toHex(record.chainHead.optimizerStateHash),
                recordHash: toHex(record.chainHead.recordHash),
              },
        // Absent rather than null when there is none, so files of sites that never unmasked stay as they were.
        ...(record.unmasked === undefined ? {} : { unmaskedRound: serializeUnmasked(record.unmasked) }),
      })),
    },
    null,
    1,
  )}\n`;
}

function parseState(text: string, path: string): Map<string, FederationRecord> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw corrupt(path, `is not JSON (${(error as Error).message})`);
  }
  const document = value as { formatVersion?: unknown; federations?: unknown };
  if (document === null || typeof document !== 'object') throw corrupt(path, 'is not a JSON object');
  if (document.formatVersion !== SITE_STATE_FORMAT_VERSION) {
    throw new FedgateError('FAILED_PRECONDITION', `${path} has format version ${JSON.stringify(document.formatVersion)}; this fedgate reads version ${SITE_STATE_FORMAT_VERSION}: run the fedgate release that wrote it, or upgrade`, { reason: 'SITE_STATE_VERSION' });
  }
  if (!Array.isArray(document.federations)) throw corrupt(path, 'has no federations list');
  const federations = new Map<string, FederationRecord>();
  document.federations.forEach((entry: unknown, index: number) => {
    const where = `federations[${index}]`;
    const item = entry as { federationId?: unknown; highestRoundCounter?: unknown; contributedModels?: unknown; evaluatedModels?: unknown; chainHead?: unknown; unmaskedRound?: unknown } | null;
    if (item === null || typeof item !== 'object' || typeof item.federationId !== 'string' || item.federationId === '') throw corrupt(path, `${where}.federationId is missing`);
    if (federations.has(item.federationId)) throw corrupt(path, `${where} repeats federation ${JSON.stringify(item.federationId)}`);
    const counter = parseCounter(item.highestRoundCounter, path, `${where}.highestRoundCounter`, true);
    if (!Array.isArray(item.contributedModels) || !item.contributedModels.every(isDigestHex)) throw corrupt(path, `${where}.contributedModels must be a list of 64-character hex digests`);
    // Files written before evaluation-only rounds existed have no list: nothing was evaluated apart from contributing.
    const evaluated = item.evaluatedModels ?? [];
    if (!Array.isArray(evaluated) || !evaluated.every(isDigestHex)) throw corrupt(path, `${where}.evaluatedModels must be a list of 64-character hex digests`);
    let chainHead: ChainHead | undefined;
    if (item.chainHead !== null && item.chainHead !== undefined) {
      const head = item.chainHead as { counter?: unknown; modelHash?: unknown; optimizerStateHash?: unknown; recordHash?: unknown };
      if (!isDigestHex(head.modelHash) || !isDigestHex(head.optimizerStateHash) || !(head.recordHash === '' || isDigestHex(head.recordHash))) {
        throw corrupt(path, `${where}.chainHead must hold hex digests modelHash, optimizerStateHash and recordHash`);
      }
      chainHead = { counter: parseCounter(head.counter, path, `${where}.chainHead.counter`, false), modelHash: fromHex(head.modelHash), optimizerStateHash: fromHex(head.optimizerStateHash), recordHash: fromHex(head.recordHash) };
    }
    const unmasked = item.unmaskedRound === undefined ? undefined : parseUnmasked(item.unmaskedRound, item.federationId, path, `${where}.unmaskedRound`);
    federations.set(item.federationId, { highestRoundCounter: counter, contributedModels: new Set(item.contributedModels), evaluatedModels: new Set(evaluated), chainHead, unmasked });
  });
  return federations;
}

function serializeUnmasked(kept: UnmaskedRoundRecord): Record<string, unknown> {
  const { round, signed } = kept;
  return {
    siteId: round.siteId,
    roundConfig: Buffer.from(encodeRoundConfig(round.config)).toString('base64'),
    keyListHash: toHex(round.keyListHash),
    maskedSurvivors: [...round.maskedSurvivors],
    signed: signed === undefined ? null : Object.fromEntries(COMMIT_HASH_FIELDS.map((field) => [field, toHex(signed[field])])),
  };
}

function parseUnmasked(value: unknown, federationId: string, path: string, where: string): UnmaskedRoundRecord {
  const item = value as { siteId?: unknown; roundConfig?: unknown; keyListHash?: unknown; maskedSurvivors?: unknown; signed?: unknown } | null;
  if (item === null || typeof item !== 'object' || typeof item.siteId !== 'string' || typeof item.roundConfig !== 'string') throw corrupt(path, `${where} must hold siteId and roundConfig`);
  let config;
  try {
    config = decodeRoundConfig(new Uint8Array(Buffer.from(item.roundConfig, 'base64')));
  } catch (error) {
    throw corrupt(path, `${where}.roundConfig does not decode (${(error as Error).message})`);
  }
  if (config.federationId !== federationId) throw corrupt(path, `${where}.roundConfig is of federation ${JSON.stringify(config.federationId)}`);
  if (!isDigestHex(item.keyListHash)) throw corrupt(path, `${where}.keyListHash must be a 64-character hex digest`);
  if (!Array.isArray(item.maskedSurvivors) || !item.maskedSurvivors.every((siteId) => typeof siteId === 'string')) throw corrupt(path, `${where}.maskedSurvivors must be a list of site ids`);
  let signed: CommitHashes | undefined;
  if (item.signed !== null && item.signed !== undefined) {
    const hashes = item.signed as Record<string, unknown>;
    if (!COMMIT_HASH_FIELDS.every((field) => isDigestHex(hashes[field]))) throw corrupt(path, `${where}.signed must hold the four commit hashes as hex digests`);
    signed = commitHashes((field) => fromHex(hashes[field] as string));
  }
  return { round: unmaskedRound(item.siteId, config, fromHex(item.keyListHash), item.maskedSurvivors as string[]), signed };
}

function commitHashes(read: (field: (typeof COMMIT_HASH_FIELDS)[number]) => Uint8Array): CommitHashes {
  return { previousModelHash: read('previousModelHash'), aggregateHash: read('aggregateHash'), newModelHash: read('newModelHash'), optimizerStateHash: read('optimizerStateHash') };
}

function parseCounter(value: unknown, path: string, field: string, allowNone: boolean): bigint {
  if (typeof value !== 'string' || !/^(0|[1-9][0-9]{0,19}|-1)$/.test(value) || (value === '-1' && !allowNone)) throw corrupt(path, `${field} must be a decimal round counter`);
  const counter = BigInt(value);
  if (counter >= 1n << 64n) throw corrupt(path, `${field} is above 2^64`);
  return counter;
}

function isDigestHex(value: unknown): value is string {
  return typeof value === 'string' && /^[0-9a-f]{64}$/.test(value);
}

function corrupt(path: string, what: string): FedgateError {
  return new FedgateError(
    'DATA_LOSS',
    `the site state file ${path} ${what}: restore it from a backup. Deleting it would let this site accept replayed rounds and contribute twice on one model; only do so for a new federation`,
    { reason: 'SITE_STATE_CORRUPT' },
  );
}
