/**
 * The wire form of a commit record (crypto/secagg/commit-record-codec.ts): what RoundCommitted and
 * GetCommitRecords carry to a site and what `fedgate verify` reads. A lying coordinator controls these
 * bytes, so the parser is a guard against hostile input: every field of the wrong type or shape is
 * refused with COMMIT_RECORD_MALFORMED naming that field (never read as something else), and only the
 * canonical bytes of a record are accepted (one record, one hash in a site's chain head). Whether a
 * well-formed record is a valid link is commit-chain.test.ts.
 */
import { X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { utf8 } from '../../../../crypto/bytes.js';
import { sha256 } from '../../../../crypto/hash.js';
import {
  COMMIT_RECORD_MALFORMED,
  commitBody,
  commitRecordHash,
  decodeCommitRecord,
  encodeCommitRecord,
  parseCommitBody,
  roundCounterOf,
  type CommitBody,
} from '../../../../crypto/secagg/commit-record-codec.js';
import { SecAggError } from '../../../../crypto/secagg/errors.js';
import type { CommitRecord } from '../../../../crypto/secagg/server-commit.js';
import { COMMITTED_AT, bodyOf, recordBytes, unsignedRecord } from '../../../support/commit-records.js';
import { TEST_MODEL_HASH, TEST_OPTIMIZER_HASH, cachedFederation } from '../../../support/secagg-sim.js';
import { secaggRefusal as refusal } from '../../../support/secagg-refusal.js';

const SITES = ['codec-00', 'codec-01', 'codec-02', 'codec-03'];
const START = { counter: 6n, modelHash: TEST_MODEL_HASH, optimizerStateHash: TEST_OPTIMIZER_HASH };

/** A record of round 7 with two (unverified) signatures: the codec checks shape, not signatures. */
function record(): CommitRecord {
  const unsigned = unsignedRecord({ previous: START, participants: SITES, survivors: SITES.slice(0, 3) });
  return {
    ...unsigned,
    signatures: SITES.slice(0, 2).map((siteId) => ({ siteId, signature: sha256(utf8(`signature ${siteId}`)), certificate: `certificate-of-${siteId}` })),
  };
}

/** The honest body as parsed JSON, edited. */
function edited(edit: (body: Record<string, unknown>) => void): unknown {
  const body = JSON.parse(JSON.stringify(bodyOf(record()))) as Record<string, unknown>;
  edit(body);
  return body;
}

/** The message of the refusal of `body` ('where' = "record 9"), after checking its code and reason. */
function malformed(body: unknown): string {
  const error = refusal(() => parseCommitBody(body, 'record 9'));
  expect(error.code).toBe('INVALID_ARGUMENT');
  expect(error.reason).toBe(COMMIT_RECORD_MALFORMED);
  return error.message;
}

const DIGEST_FIELDS = ['roundConfigHash', 'keyListHash', 'previousModelHash', 'aggregateHash', 'newModelHash', 'optimizerStateHash'] as const;

describe('commit record codec: an honest record', () => {
  it('survives the round trip: every field, the counter, the commit time and the hash of the exact bytes', () => {
    const original = record();
    const bytes = recordBytes(original);
    const parsed = decodeCommitRecord(bytes);
    expect(parsed.record).toEqual(original);
    expect(parsed.counter).toBe(7n);
    expect(parsed.committedAt.toISOString()).toBe(COMMITTED_AT.toISOString());
    expect(parsed.recordHash).toEqual(sha256(bytes));
    expect(commitRecordHash(bytes)).toEqual(sha256(bytes));
    expect(parsed.body).toEqual(bodyOf(original));
    expect(parsed.body.roundCounter).toBe('7');
  });

  it('writes a DER certificate as PEM, every signature in base64 and every metric as a decimal string', () => {
    const site = cachedFederation(2, 'codec-').site('codec-00');
    const der = new X509Certificate(site.certificatePem).raw;
    const original = record();
    const withDer: CommitRecord = { ...original, signatures: [{ siteId: 'codec-00', signature: Uint8Array.of(1, 2, 3), certificate: new Uint8Array(der) }] };
    const body = commitBody(withDer, COMMITTED_AT, { participants: 4, survivors: 3, evalLossSum: 1.5, evalCorrect: 7, evalExamples: 9, weightSum: 0.25 });
    expect(body.signatures).toEqual([{ siteId: 'codec-00', signature: 'AQID', certificate: new X509Certificate(der).toString() }]);
    expect(body.signatures[0]?.certificate).toMatch(/^-----BEGIN CERTIFICATE-----\n/);
    expect(body.metrics).toEqual({ participants: '4', survivors: '3', evalLossSum: '1.5', evalCorrect: '7', evalExamples: '9', weightSum: '0.25' });
    expect(commitBody(original, COMMITTED_AT, { participants: 4, survivors: 3, evalLossSum: 0, evalCorrect: 0, evalExamples: 0, weightSum: 1 }).signatures[0]?.certificate).toBe('certificate-of-codec-00');
  }, 300_000);

  it('reads a record at any offset of a larger buffer (a field of a protobuf message)', () => {
    const bytes = recordBytes(record());
    const framed = new Uint8Array(bytes.length + 7);
    framed.set(bytes, 3);
    const parsed = decodeCommitRecord(framed.subarray(3, 3 + bytes.length));
    expect(parsed.recordHash).toEqual(sha256(bytes));
  });

  it('is canonical JSON: keys sorted by code unit at every level, no whitespace, undefined members left out', () => {
    const body = { b: 1, a: [{ d: 'x', c: undefined, B: true }], A: null } as unknown as CommitBody;
    expect(Buffer.from(encodeCommitRecord(body)).toString('utf8')).toBe('{"A":null,"a":[{"B":true,"d":"x"}],"b":1}');
    const text = Buffer.from(recordBytes(record())).toString('utf8');
    expect(text).not.toMatch(/\s/);
    const keys = Object.keys(JSON.parse(text) as object);
    expect(keys).toEqual([...keys].sort());
  });

  it('takes the round counter from the first 8 bytes of the round id, big-endian', () => {
    const roundId = new Uint8Array(24).fill(0xff);
    roundId.set([0, 0, 0, 0, 0, 0, 1, 2]);
    expect(roundCounterOf(roundId)).toBe(258n);
  });
});

describe('commit record codec refuses, naming the field,', () => {
  it.each<[string, unknown, string]>([
    ['null', null, 'record 9: body.kind must be "round_commit"'],
    ['a string', 'round_commit', 'record 9: body.kind must be "round_commit"'],
    ['another kind', edited((body) => (body['kind'] = 'round_abort')), 'record 9: body.kind must be "round_commit"'],
    ['no RoundConfig', edited((body) => delete body['roundConfig']), 'record 9: body.roundConfig must be base64 text'],
    ['a keyList that is not an array', edited((body) => (body['keyList'] = { 0: 'codec-00' })), 'record 9: body.keyList must be an array'],
    ['survivors that are not an array', edited((body) => (body['survivors'] = 'codec-00')), 'record 9: body.survivors must be an array of site ids'],
    ['a survivor that is not a site id', edited((body) => (body['survivors'] = ['codec-00', 7])), 'record 9: body.survivors must be an array of site ids'],
    ['signatures that are not an array', edited((body) => (body['signatures'] = 'none')), 'record 9: body.signatures must be an array'],
    ['no commit time', edited((body) => delete body['committedAt']), 'record 9: body.committedAt must be an ISO date'],
    ['a commit time that is no date', edited((body) => (body['committedAt'] = 'yesterday')), 'record 9: body.committedAt must be an ISO date'],
  ])('a body that is %s', (_what, body, message) => {
    expect(malformed(body)).toBe(message);
  });

  it('a RoundConfig that does not decode, with the decoder\'s reason and the error as cause', () => {
    const error = refusal(() => parseCommitBody(edited((body) => (body['roundConfig'] = Buffer.from('not a config').toString('base64'))), 'record 9'));
    expect(error.reason).toBe(COMMIT_RECORD_MALFORMED);
    expect(error.message).toMatch(/^record 9: body\.roundConfig does not decode: RoundConfig/);
    expect(error.cause).toBeInstanceOf(SecAggError);
  });

  it.each(DIGEST_FIELDS)('a %s that is not 64 lower-case hex characters', (field) => {
    const honest = (bodyOf(record()) as unknown as Record<string, string>)[field] as string;
    for (const bad of [undefined, 7, [honest], honest.toUpperCase(), honest.slice(1), `${honest}0`, `x${honest}`, `${honest.slice(0, 63)}g`]) {
      expect(malformed(edited((body) => (body[field] = bad)))).toBe(`record 9: body.${field} must be 64 lower-case hex characters`);
    }
  });

  it('a key list entry without a site id or with a digest that is not hex', () => {
    const entry = (change: (entry: Record<string, unknown>) => void): unknown =>
      edited((body) => {
        const list = body['keyList'] as Record<string, unknown>[];
        change(list[2] as Record<string, unknown>);
      });
    const expected = 'record 9: body.keyList[2] must be an entry with siteId, advertDigest and nonceCommitment';
    expect(malformed(entry((item) => delete item['siteId']))).toBe(expected);
    expect(malformed(entry((item) => (item['siteId'] = 3)))).toBe(expected);
    expect(malformed(entry((item) => (item['advertDigest'] = 'ab')))).toBe(expected);
    expect(malformed(entry((item) => (item['nonceCommitment'] = String(item['nonceCommitment']).toUpperCase())))).toBe(expected);
    // A one-element array reads as its element under String(): a second spelling of the same record.
    expect(malformed(entry((item) => (item['advertDigest'] = [item['advertDigest']])))).toBe(expected);
    expect(malformed(entry((item) => (item['nonceCommitment'] = [item['nonceCommitment']])))).toBe(expected);
    expect(malformed(edited((body) => ((body['keyList'] as unknown[])[2] = null)))).toBe(expected);
  });

  it('a signature entry without a site id, a signature or a certificate', () => {
    const expected = 'record 9: body.signatures[1] must be an entry with siteId, signature and certificate';
    for (const field of ['siteId', 'signature', 'certificate']) {
      expect(malformed(edited((body) => delete ((body['signatures'] as Record<string, unknown>[])[1] as Record<string, unknown>)[field]))).toBe(expected);
      expect(malformed(edited((body) => (((body['signatures'] as Record<string, unknown>[])[1] as Record<string, unknown>)[field] = 1)))).toBe(expected);
    }
    expect(malformed(edited((body) => ((body['signatures'] as unknown[])[1] = null)))).toBe(expected);
  });

  it('bytes that are not JSON, naming their length, with the parse error as cause', () => {
    const error = refusal(() => decodeCommitRecord(utf8('{"kind":'), 'RoundCommitted'));
    expect(error.reason).toBe(COMMIT_RECORD_MALFORMED);
    expect(error.message).toBe('RoundCommitted is not JSON (8 bytes)');
    expect(error.cause).toBeInstanceOf(SyntaxError);
    expect(refusal(() => decodeCommitRecord(utf8('[]'))).message).toBe('commit record: body.kind must be "round_commit"');
  });

  it('a record in any but its canonical form: whitespace, another key order, an escaped character', () => {
    const bytes = recordBytes(record());
    const text = Buffer.from(bytes).toString('utf8');
    const body = JSON.parse(text) as Record<string, unknown>;
    const reordered = JSON.stringify(Object.fromEntries(Object.entries(body).reverse()));
    const escaped = text.replace('"kind":"round_commit"', '"kind":"round\\u005fcommit"');
    for (const variant of [`${text}\n`, JSON.stringify(body, null, 1), reordered, escaped]) {
      expect(variant).not.toBe(text);
      const error = refusal(() => decodeCommitRecord(utf8(variant), 'RoundCommitted'));
      expect(error.reason).toBe(COMMIT_RECORD_MALFORMED);
      expect(error.message).toBe('RoundCommitted is not in canonical form (sorted keys, no whitespace)');
    }
  });
});
