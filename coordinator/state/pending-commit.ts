/**
 * The commit of an unmasked round that has not reached its quorum yet, kept on disk
 * (`<state_dir>/pending-commit.json`) so that a coordinator restarted in between finishes the same round
 * instead of losing it (DESIGN.md step 7; one contribution per model: every site that revealed refuses
 * another round on the same model, so a lost round would stop the federation for good).
 *
 * The file holds what it takes to verify and record the signatures still to come and to send the
 * CommitRequest again: the round's commit record as it stands (canonical RoundConfig bytes, L, U3, the
 * four commit hashes the request names, the valid signatures stored so far) in the ledger's own body
 * format (crypto/secagg/commit-record-codec.ts), the certificate each member of U3 presented when the
 * round started (signatures are verified against it and the record carries it), and the round's unsigned
 * metrics. Nothing secret: everything in it ends up in the ledger anyway.
 *
 * Written atomically and fsync'd (platform/atomic-file.ts) when the CommitRequest is first sent and again
 * whenever a signature is stored; removed once the round's record is in the ledger or the round aborted
 * for good. A file that does not read back whole and self-consistent is an error naming it, never
 * dropped: dropping it would lose the round.
 */
import { X509Certificate } from 'node:crypto';
import { unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { bytesEqual } from '../../crypto/bytes.js';
import { sortSiteIds } from '../../crypto/graph.js';
import { SecAggError } from '../../crypto/secagg/errors.js';
import { commitBody, parseCommitBody, type RoundMetrics } from '../../crypto/secagg/commit-record-codec.js';
import { OPTIONAL_METRIC_KEYS } from '../../crypto/secagg/metric-figures.js';
import { roundConfigHash } from '../../crypto/secagg/config-codec.js';
import type { CommitRecord } from '../../crypto/secagg/server-commit.js';
import { keyListHash } from '../../crypto/secagg/transcript.js';
import { prepareDirectory, readFileIfExists, syncDirectory, writeFileAtomic } from '../../platform/index.js';
import type { FaultPoint } from './fault-injection.js';
import { StateError } from './state-error.js';

export const PENDING_COMMIT_FILE = 'pending-commit.json';
export const PENDING_COMMIT_FORMAT_VERSION = 1;
const PENDING_COMMIT_KIND = 'pending_commit';

export interface PendingCommit {
  /** The round's commit record with the valid signatures stored so far (each with its signer's certificate). */
  readonly record: CommitRecord;
  /** PEM of the certificate every member of U3 presented when the round started, by site id. */
  readonly certificates: ReadonlyMap<string, string>;
  readonly metrics: RoundMetrics;
  /** When the CommitRequest was first sent. */
  readonly requestedAt: Date;
}

export interface PendingCommitStoreOptions {
  /** Crash injection (fault-injection.ts): "commit_pending_write" before each rename. @default none */
  readonly faultPoint?: FaultPoint;
}

export class PendingCommitStore {
  private writes: Promise<void> = Promise.resolve();

  private constructor(
    readonly path: string,
    private readonly options: PendingCommitStoreOptions,
  ) {}

  /** Opens the store in `stateDirectory`, removing temporary files a writer killed before its rename left. */
  static async open(stateDirectory: string, options: PendingCommitStoreOptions = {}): Promise<PendingCommitStore> {
    const ours = `${PENDING_COMMIT_FILE}.tmp-`;
    await prepareDirectory(stateDirectory, { keep: (name) => !name.startsWith(ours) });
    return new PendingCommitStore(join(stateDirectory, PENDING_COMMIT_FILE), options);
  }

  /** The pending commit on disk, or undefined when there is none; StateError CORRUPT when it is damaged. */
  async read(): Promise<PendingCommit | undefined> {
    const bytes = await readFileIfExists(this.path);
    return bytes === undefined ? undefined : parsePendingCommit(bytes.toString('utf8'), this.path);
  }

  /** Replaces the pending commit on disk (atomically, durably); writes and clears run in call order. */
  write(pending: PendingCommit): Promise<void> {
    const text = serializePendingCommit(pending);
    const { faultPoint } = this.options;
    return this.serialized(() => writeFileAtomic(this.path, text, faultPoint === undefined ? {} : { beforeRename: () => faultPoint('commit_pending_write') }));
  }

  /** Removes the pending commit (durably); a no-op when there is none. */
  clear(): Promise<void> {
    return this.serialized(async () => {
      try {
        await unlink(this.path);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw new StateError('IO_FAILED', `could not remove ${this.path}: ${(error as Error).message}`, { cause: error });
      }
      await syncDirectory(dirname(this.path));
    });
  }

  private serialized(step: () => Promise<void>): Promise<void> {
    const result = this.writes.then(step);
    this.writes = result.catch(() => undefined);
    return result;
  }
}

/** The file's text: format version, the record as a ledger body (signatures so far), U3's certificates. */
export function serializePendingCommit(pending: PendingCommit): string {
  const certificates = sortSiteIds(pending.certificates.keys()).map((siteId) => ({ siteId, certificate: pending.certificates.get(siteId) as string }));
  const document = {
    formatVersion: PENDING_COMMIT_FORMAT_VERSION,
    kind: PENDING_COMMIT_KIND,
    commit: commitBody(pending.record, pending.requestedAt, pending.metrics),
    certificates,
  };
  return `${JSON.stringify(document, null, 1)}\n`;
}

/**
 * Reads the file's text back and checks that it is one round's commit, consistent with itself: the
 * recorded H(RoundConfig) and H(L) are those of the RoundConfig and L it holds, U3 is sorted, within U
 * and L, the previous model is the RoundConfig's, every member of U3 has a certificate and every stored
 * signature is a member's, once, with that certificate. (Whether the signatures verify needs the CA:
 * the resumed round checks them.) Throws StateError CORRUPT or UNSUPPORTED_VERSION naming `path`.
 */
export function parsePendingCommit(text: string, path: string): PendingCommit {
  const corrupt = (what: string, cause?: unknown): StateError =>
    new StateError(
      'CORRUPT',
      `${path} ${what}. It records the commit of a round whose aggregate was unmasked; without it that round cannot be finished and the sites that revealed in it refuse every new round on its model: restore the file from a backup of the state directory`,
      cause === undefined ? {} : { cause },
    );
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw corrupt(`is not JSON (${(error as Error).message})`, error);
  }
  const document = value as { formatVersion?: unknown; kind?: unknown; commit?: unknown; certificates?: unknown } | null;
  if (document === null || typeof document !== 'object') throw corrupt('is not a JSON object');
  if (typeof document.formatVersion === 'number' && document.formatVersion !== PENDING_COMMIT_FORMAT_VERSION) {
    throw new StateError('UNSUPPORTED_VERSION', `${path} has format version ${document.formatVersion}, this fedgate reads version ${PENDING_COMMIT_FORMAT_VERSION}: run the fedgate release that wrote it`);
  }
  if (document.formatVersion !== PENDING_COMMIT_FORMAT_VERSION || document.kind !== PENDING_COMMIT_KIND) throw corrupt(`is not a pending commit (formatVersion ${PENDING_COMMIT_FORMAT_VERSION}, kind "${PENDING_COMMIT_KIND}")`);
  let parsed;
  try {
    parsed = parseCommitBody(document.commit, 'commit');
  } catch (error) {
    if (error instanceof SecAggError) throw corrupt(`holds no readable commit: ${error.message}`, error);
    throw error;
  }
  const { record } = parsed;
  if (!bytesEqual(roundConfigHash(record.config), record.roundConfigHash)) throw corrupt('records an H(RoundConfig) that is not the hash of its RoundConfig');
  if (!bytesEqual(keyListHash(record.keyList), record.keyListHash)) throw corrupt('records an H(L) that is not the hash of its key list L');
  const survivors = record.maskedSurvivors;
  const listed = new Set(record.keyList.map((entry) => entry.siteId));
  if (survivors.length === 0 || sortSiteIds(new Set(survivors)).join('\n') !== survivors.join('\n')) throw corrupt('has a survivor set U3 that is empty, unsorted or repeats a site');
  const outsider = survivors.find((siteId) => !listed.has(siteId) || !record.config.participants.includes(siteId));
  if (outsider !== undefined) throw corrupt(`names ${JSON.stringify(outsider)} in U3 but not in U and L`);
  if (!bytesEqual(record.hashes.previousModelHash, record.config.modelHash)) throw corrupt('names a previous model other than its RoundConfig\'s');
  if (!Array.isArray(document.certificates)) throw corrupt('has no certificates list');
  const certificates = new Map<string, string>();
  for (const [index, entry] of (document.certificates as unknown[]).entries()) {
    const item = entry as { siteId?: unknown; certificate?: unknown } | null;
    if (typeof item?.siteId !== 'string' || typeof item.certificate !== 'string') throw corrupt(`certificates[${index}] must hold a siteId and a PEM certificate`);
    try {
      new X509Certificate(item.certificate);
    } catch (error) {
      throw corrupt(`certificates[${index}] (${item.siteId}) is not a certificate`, error);
    }
    if (certificates.has(item.siteId)) throw corrupt(`repeats the certificate of ${item.siteId}`);
    certificates.set(item.siteId, item.certificate);
  }
  if (sortSiteIds(certificates.keys()).join('\n') !== survivors.join('\n')) throw corrupt('must hold exactly one certificate for every member of U3');
  const signers = new Set<string>();
  for (const signature of record.signatures) {
    if (!survivors.includes(signature.siteId) || signers.has(signature.siteId)) throw corrupt(`has a signature of ${JSON.stringify(signature.siteId)}, which is not a member of U3 or signed twice`);
    if (signature.certificate !== certificates.get(signature.siteId)) throw corrupt(`has a signature of ${signature.siteId} with another certificate than the one that site presented`);
    signers.add(signature.siteId);
  }
  const metric = (key: keyof RoundMetrics): number => {
    const text = parsed.body.metrics[key];
    const number = Number(text);
    if (typeof text !== 'string' || !Number.isFinite(number)) throw corrupt(`has no number for metrics.${key}`);
    return number;
  };
  const metrics: RoundMetrics = {
    participants: metric('participants'),
    survivors: metric('survivors'),
    evalLossSum: metric('evalLossSum'),
    evalCorrect: metric('evalCorrect'),
    evalExamples: metric('evalExamples'),
    weightSum: metric('weightSum'),
    // The extra metric slots' sums, when the round's task has them (metric-figures.ts).
    ...Object.fromEntries(OPTIONAL_METRIC_KEYS.filter((key) => parsed.body.metrics[key] !== undefined).map((key) => [key, metric(key)])),
  };
  return { record, certificates, metrics: metrics as unknown as RoundMetrics, requestedAt: parsed.committedAt };
}
