/**
 * The body of a ledger record: a committed round's CommitRecord (crypto/secagg/server-commit.ts) as JSON
 * with every byte string hex or base64, plus unsigned metrics for the operator. The RoundConfig is stored
 * as its canonical bytes so a verifier recomputes H(RoundConfig) from exactly what the sites signed.
 */
import { X509Certificate } from 'node:crypto';
import { fromHex, toHex } from '../../crypto/bytes.js';
import { decodeRoundConfig, encodeRoundConfig, roundConfigHash } from '../../crypto/secagg/config-codec.js';
import type { CommitRecord } from '../../crypto/secagg/server-commit.js';
import { StateError } from '../state/state-error.js';
import type { JsonValue } from '../state/canonical-json.js';

export const COMMIT_BODY_KIND = 'round_commit';

export interface RoundMetrics {
  readonly participants: number;
  readonly survivors: number;
  readonly evalLossSum: number;
  readonly evalCorrect: number;
  readonly evalExamples: number;
  readonly weightSum: number;
}

// A type alias (not an interface) so it is assignable to JsonValue's index signature.
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

export function commitBody(record: CommitRecord, committedAt: Date, metrics: RoundMetrics): CommitBody {
  return {
    kind: COMMIT_BODY_KIND,
    roundCounter: Buffer.from(record.config.roundId.subarray(0, 8)).readBigUInt64BE().toString(),
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

/** Parses a stored body back into a CommitRecord (throws StateError naming the field). */
export function parseCommitBody(value: JsonValue, where: string): { record: CommitRecord; committedAt: Date; body: CommitBody } {
  const body = value as unknown as Partial<CommitBody>;
  const fail = (field: string, expected: string): never => {
    throw new StateError('CORRUPT', `${where}: body.${field} must be ${expected}`);
  };
  if (body === null || typeof body !== 'object' || body.kind !== COMMIT_BODY_KIND) fail('kind', `"${COMMIT_BODY_KIND}"`);
  const hex = (field: keyof CommitBody): Uint8Array => {
    const text = body[field];
    if (typeof text !== 'string' || !/^[0-9a-f]{64}$/.test(text)) return fail(String(field), '64 lower-case hex characters');
    return fromHex(text);
  };
  if (typeof body.roundConfig !== 'string') return fail('roundConfig', 'base64 text');
  let config;
  try {
    config = decodeRoundConfig(new Uint8Array(Buffer.from(body.roundConfig, 'base64')));
  } catch (error) {
    throw new StateError('CORRUPT', `${where}: body.roundConfig does not decode: ${(error as Error).message}`, { cause: error });
  }
  if (!Array.isArray(body.keyList)) return fail('keyList', 'an array');
  if (!Array.isArray(body.survivors) || !body.survivors.every((id) => typeof id === 'string')) return fail('survivors', 'an array of site ids');
  if (!Array.isArray(body.signatures)) return fail('signatures', 'an array');
  const committedAt = new Date(String(body.committedAt));
  if (Number.isNaN(committedAt.getTime())) fail('committedAt', 'an ISO date');
  const record: CommitRecord = {
    config,
    roundConfigHash: roundConfigHash(config),
    keyList: body.keyList.map((entry, index) => {
      if (typeof entry?.siteId !== 'string' || !/^[0-9a-f]{64}$/.test(String(entry.advertDigest)) || !/^[0-9a-f]{64}$/.test(String(entry.nonceCommitment))) {
        return fail(`keyList[${index}]`, 'an entry with siteId, advertDigest and nonceCommitment');
      }
      return { siteId: entry.siteId, advertDigest: fromHex(entry.advertDigest), nonceCommitment: fromHex(entry.nonceCommitment) };
    }),
    keyListHash: hex('keyListHash'),
    maskedSurvivors: body.survivors,
    hashes: {
      previousModelHash: hex('previousModelHash'),
      aggregateHash: hex('aggregateHash'),
      newModelHash: hex('newModelHash'),
      optimizerStateHash: hex('optimizerStateHash'),
    },
    signatures: body.signatures.map((entry, index) => {
      if (typeof entry?.siteId !== 'string' || typeof entry.signature !== 'string' || typeof entry.certificate !== 'string') {
        return fail(`signatures[${index}]`, 'an entry with siteId, signature and certificate');
      }
      return { siteId: entry.siteId, signature: new Uint8Array(Buffer.from(entry.signature, 'base64')), certificate: entry.certificate };
    }),
  };
  return { record, committedAt, body: body as CommitBody };
}
