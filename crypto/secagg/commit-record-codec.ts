/**
 * The commit record of a committed round (DESIGN.md step 7) as one JSON document: what the ledger stores
 * as a record's body, what RoundCommitted and GetCommitRecords carry to sites, and what `fedgate verify`
 * reads. Byte strings are hex (digests) or base64 (RoundConfig, signatures); certificates are PEM. The
 * RoundConfig is kept as its canonical bytes, so a verifier recomputes H(RoundConfig) from exactly what
 * the sites signed. Committed time and metrics are unsigned and informative (the time is the instant a
 * verifier checks each signer's certificate at).
 *
 * Coordinator, site and verifier read records only through `parseCommitBody` / `decodeCommitRecord`;
 * parsing checks shape only (every digest 32 bytes, every field present). Whether a record is a valid
 * link of the chain is commit-chain.ts `verifyCommitLink`.
 */
import { X509Certificate } from 'node:crypto';
import { fromHex, toHex, utf8 } from '../bytes.js';
import { sha256 } from '../hash.js';
import { decodeRoundConfig, encodeRoundConfig } from './config-codec.js';
import { secaggInvalid } from './errors.js';
import type { CommitRecord } from './server-commit.js';

export const COMMIT_BODY_KIND = 'round_commit';

/** Reason of every shape error of a stored or received commit record. */
export const COMMIT_RECORD_MALFORMED = 'COMMIT_RECORD_MALFORMED';

export interface RoundMetrics {
  readonly participants: number;
  readonly survivors: number;
  readonly evalLossSum: number;
  readonly evalCorrect: number;
  readonly evalExamples: number;
  readonly weightSum: number;
  /**
   * Only for tasks with extra metric slots (RoundConfig.metricSlots; metric-figures.ts): T, then the
   * summed label counts (multi-label) or error and target sums (regression). Absent otherwise, so the
   * records of class-index tasks keep their bytes.
   */
  readonly evalOutputs?: number;
  readonly evalTruePositives?: number;
  readonly evalFalsePositives?: number;
  readonly evalFalseNegatives?: number;
  readonly evalSquaredErrorSum?: number;
  readonly evalAbsoluteErrorSum?: number;
  readonly evalTargetSum?: number;
  readonly evalTargetSquareSum?: number;
}

// A type alias (not an interface) so it is assignable to the ledger's JSON value type.
export type CommitBody = {
  readonly kind: typeof COMMIT_BODY_KIND;
  readonly roundCounter: string;
  readonly roundConfig: string;
  readonly roundConfigHash: string;
  readonly keyList: readonly { readonly siteId: string; readonly advertDigest: string; readonly nonceCommitment: string }[];
  readonly keyListHash: string;
  readonly survivors: readonly string[];
  readonly previousModelHash: string;
  readonly aggregateHash: string;
  readonly newModelHash: string;
  readonly optimizerStateHash: string;
  readonly signatures: readonly { readonly siteId: string; readonly signature: string; readonly certificate: string }[];
  readonly committedAt: string;
  /** Unsigned, informative: floats are decimal strings (canonical JSON holds integers only). */
  readonly metrics: { readonly [key: string]: string };
};

/** A parsed commit record: the CommitRecord with the digests as recorded (not recomputed), and its context. */
export interface ParsedCommit {
  readonly record: CommitRecord;
  readonly committedAt: Date;
  /** The round counter: the first 8 bytes of the RoundConfig's round id, big-endian. */
  readonly counter: bigint;
  readonly body: CommitBody;
}

export function commitBody(record: CommitRecord, committedAt: Date, metrics: RoundMetrics): CommitBody {
  return {
    kind: COMMIT_BODY_KIND,
    roundCounter: roundCounterOf(record.config.roundId).toString(),
    roundConfig: Buffer.from(encodeRoundConfig(record.config)).toString('base64'),
    roundConfigHash: toHex(record.roundConfigHash),
    keyList: record.keyList.map((entry) => ({ siteId: entry.siteId, advertDigest: toHex(entry.advertDigest), nonceCommitment: toHex(entry.nonceCommitment) })),
    keyListHash: toHex(record.keyListHash),
    survivors: [...record.maskedSurvivors],
    previousModelHash: toHex(record.hashes.previousModelHash),
    aggregateHash: toHex(record.hashes.aggregateHash),
    newModelHash: toHex(record.hashes.newModelHash),
    optimizerStateHash: toHex(record.hashes.optimizerStateHash),
    signatures: record.signatures.map((entry) => ({
      siteId: entry.siteId,
      signature: Buffer.from(entry.signature).toString('base64'),
      certificate: typeof entry.certificate === 'string' ? entry.certificate : new X509Certificate(entry.certificate).toString(),
    })),
    committedAt: committedAt.toISOString(),
    metrics: Object.fromEntries(Object.entries(metrics).map(([key, value]) => [key, String(value)])),
  };
}

/** The counter half of a round id (DESIGN.md "The round id"). */
export function roundCounterOf(roundId: Uint8Array): bigint {
  return Buffer.from(roundId.subarray(0, 8)).readBigUInt64BE();
}

const DIGEST_HEX = /^[0-9a-f]{64}$/;

/**
 * Reads a commit body (parsed JSON) back into a CommitRecord; throws SecAggError INVALID_ARGUMENT
 * 'COMMIT_RECORD_MALFORMED' naming the field. H(RoundConfig) and H(L) are returned as recorded.
 */
export function parseCommitBody(value: unknown, where: string): ParsedCommit {
  const body = value as Partial<CommitBody> | null;
  const fail = (field: string, expected: string): never => {
    throw secaggInvalid(COMMIT_RECORD_MALFORMED, `${where}: body.${field} must be ${expected}`);
  };
  if (body === null || typeof body !== 'object' || body.kind !== COMMIT_BODY_KIND) return fail('kind', `"${COMMIT_BODY_KIND}"`);
  const hex = (field: keyof CommitBody): Uint8Array => {
    const text = body[field];
    if (typeof text !== 'string' || !DIGEST_HEX.test(text)) return fail(String(field), '64 lower-case hex characters');
    return fromHex(text);
  };
  if (typeof body.roundConfig !== 'string') return fail('roundConfig', 'base64 text');
  let config;
  try {
    config = decodeRoundConfig(new Uint8Array(Buffer.from(body.roundConfig, 'base64')));
  } catch (error) {
    throw secaggInvalid(COMMIT_RECORD_MALFORMED, `${where}: body.roundConfig does not decode: ${(error as Error).message}`, { cause: error });
  }
  if (!Array.isArray(body.keyList)) return fail('keyList', 'an array');
  if (!Array.isArray(body.survivors) || !body.survivors.every((id) => typeof id === 'string')) return fail('survivors', 'an array of site ids');
  if (!Array.isArray(body.signatures)) return fail('signatures', 'an array');
  const committedAt = new Date(String(body.committedAt));
  if (Number.isNaN(committedAt.getTime())) fail('committedAt', 'an ISO date');
  const record: CommitRecord = {
    config,
    roundConfigHash: hex('roundConfigHash'),
    keyList: body.keyList.map((entry: unknown, index: number) => {
      const item = entry as { siteId?: unknown; advertDigest?: unknown; nonceCommitment?: unknown } | null;
      // typeof first: String() would pass a one-element array ["<hex>"] as its hex, a second spelling of the record.
      const { siteId, advertDigest, nonceCommitment } = item ?? {};
      if (typeof siteId !== 'string' || typeof advertDigest !== 'string' || !DIGEST_HEX.test(advertDigest) || typeof nonceCommitment !== 'string' || !DIGEST_HEX.test(nonceCommitment)) {
        return fail(`keyList[${index}]`, 'an entry with siteId, advertDigest and nonceCommitment');
      }
      return { siteId, advertDigest: fromHex(advertDigest), nonceCommitment: fromHex(nonceCommitment) };
    }),
    keyListHash: hex('keyListHash'),
    maskedSurvivors: body.survivors,
    hashes: {
      previousModelHash: hex('previousModelHash'),
      aggregateHash: hex('aggregateHash'),
      newModelHash: hex('newModelHash'),
      optimizerStateHash: hex('optimizerStateHash'),
    },
    signatures: body.signatures.map((entry: unknown, index: number) => {
      const item = entry as { siteId?: unknown; signature?: unknown; certificate?: unknown } | null;
      if (typeof item?.siteId !== 'string' || typeof item.signature !== 'string' || typeof item.certificate !== 'string') {
        return fail(`signatures[${index}]`, 'an entry with siteId, signature and certificate');
      }
      return { siteId: item.siteId, signature: new Uint8Array(Buffer.from(item.signature, 'base64')), certificate: item.certificate };
    }),
  };
  return { record, committedAt, counter: roundCounterOf(config.roundId), body: body as CommitBody };
}

/**
 * The canonical bytes of a commit body: UTF-8 JSON, keys sorted, no whitespace. What RoundCommitted and
 * GetCommitRecords carry; their SHA-256 (commitRecordHash) names the record in a site's chain head.
 */
export function encodeCommitRecord(body: CommitBody): Uint8Array {
  return utf8(sortedJson(body));
}

/** A received commit record: parsed, and refused unless the bytes are canonical (one record, one hash). */
export function decodeCommitRecord(bytes: Uint8Array, where = 'commit record'): ParsedCommit & { readonly recordHash: Uint8Array } {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch (error) {
    throw secaggInvalid(COMMIT_RECORD_MALFORMED, `${where} is not JSON (${bytes.byteLength} bytes)`, { cause: error });
  }
  const parsed = parseCommitBody(value, where);
  if (!Buffer.from(encodeCommitRecord(parsed.body)).equals(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength))) {
    throw secaggInvalid(COMMIT_RECORD_MALFORMED, `${where} is not in canonical form (sorted keys, no whitespace)`);
  }
  return { ...parsed, recordHash: commitRecordHash(bytes) };
}

/** SHA-256 of a record's canonical bytes. */
export function commitRecordHash(bytes: Uint8Array): Uint8Array {
  return sha256(bytes);
}

/** JSON with object keys sorted by UTF-16 code units and no whitespace (RFC 8785 for strings, arrays, objects). */
function sortedJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(sortedJson).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, item]) => item !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${sortedJson(item)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}
