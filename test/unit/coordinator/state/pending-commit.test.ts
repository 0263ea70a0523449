/**
 * The coordinator's pending commit (coordinator/state/pending-commit.ts): the commit of an unmasked round
 * kept on disk until its record is in the ledger, so a restart finishes that same round. It reads back
 * exactly what was written; a crash between writing and renaming leaves the previous version (and no
 * temporary file after the next open); and a damaged file is an error naming it, never a missing commit.
 */
import { copyFileSync, readdirSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { toHex, utf8 } from '../../../../crypto/bytes.js';
import { sha256 } from '../../../../crypto/hash.js';
import type { CommitRecord } from '../../../../crypto/secagg/server-commit.js';
import { PENDING_COMMIT_FILE, PendingCommitStore, parsePendingCommit, serializePendingCommit, type PendingCommit } from '../../../../coordinator/state/pending-commit.js';
import { signRecord, unsignedRecord } from '../../../support/commit-records.js';
import { TEST_MODEL_HASH, TEST_OPTIMIZER_HASH, cachedFederation, type TestFederation } from '../../../support/secagg-sim.js';

const START = { counter: 4n, modelHash: TEST_MODEL_HASH, optimizerStateHash: TEST_OPTIMIZER_HASH };
const METRICS = { participants: 3, survivors: 3, evalLossSum: 12.625, evalCorrect: 91, evalExamples: 120, weightSum: 0.7371 };

let federation: TestFederation;
let unsigned: CommitRecord;
let directory: string;

beforeAll(() => {
  federation = cachedFederation(3, 'pending-');
  unsigned = unsignedRecord({ previous: START, participants: federation.sites.map((site) => site.siteId) });
}, 300_000);

beforeEach(async () => {
  directory = await mkdtemp(join(tmpdir(), 'fedgate-pending-'));
});
afterEach(async () => {
  await rm(directory, { recursive: true, force: true });
});

/** The pending commit of `record` with every U3 member's certificate. */
function pendingOf(record: CommitRecord): PendingCommit {
  return {
    record,
    certificates: new Map(record.maskedSurvivors.map((siteId) => [siteId, federation.site(siteId).certificatePem])),
    metrics: METRICS,
    requestedAt: new Date('2030-01-02T03:04:05.678Z'),
  };
}

/** A signed pending commit of the first `signers` survivors. */
function signedBy(count: number): PendingCommit {
  return pendingOf(signRecord(unsigned, unsigned.maskedSurvivors.slice(0, count).map((siteId) => federation.site(siteId))));
}

describe('the pending commit store', () => {
  it('reads back what it wrote: record, signatures with their certificates, U3 certificates, metrics and time', async () => {
    const store = await PendingCommitStore.open(directory);
    expect(await store.read()).toBeUndefined();
    const pending = signedBy(2);
    await store.write(pending);
    const read = await (await PendingCommitStore.open(directory)).read();
    expect(read).toEqual(pending);
    // The text is the store's own serialisation, and it parses to the same commit.
    const text = await readFile(join(directory, PENDING_COMMIT_FILE), 'utf8');
    expect(text).toBe(serializePendingCommit(pending));
    expect(parsePendingCommit(text, 'x')).toEqual(pending);
  });

  it('replaces the file as signatures are stored, and clear() removes it (a no-op when there is none)', async () => {
    const store = await PendingCommitStore.open(directory);
    await store.write(signedBy(0));
    await store.write(signedBy(1));
    await store.write(signedBy(3));
    expect((await store.read())?.record.signatures.map((entry) => entry.siteId)).toEqual(unsigned.maskedSurvivors);
    await store.clear();
    expect(await store.read()).toBeUndefined();
    await store.clear();
    expect(await readdir(directory)).toEqual([]);
  });

  it('keeps the previous version when it crashes between writing and renaming, and no temporary file is left', async () => {
    await (await PendingCommitStore.open(directory)).write(signedBy(1));
    const crashing = await PendingCommitStore.open(directory, {
      faultPoint: (name) => {
        if (name === 'commit_pending_write') throw new Error('simulated crash before rename');
      },
    });
    await expect(crashing.write(signedBy(2))).rejects.toThrow('simulated crash before rename');
    expect(await readdir(directory)).toEqual([PENDING_COMMIT_FILE]);
    expect((await (await PendingCommitStore.open(directory)).read())?.record.signatures).toHaveLength(1);
  });

  it('a first write that crashed before its rename leaves no pending commit', async () => {
    const crashing = await PendingCommitStore.open(directory, {
      faultPoint: () => {
        throw new Error('simulated crash before rename');
      },
    });
    await expect(crashing.write(signedBy(0))).rejects.toThrow('simulated crash before rename');
    expect(await (await PendingCommitStore.open(directory)).read()).toBeUndefined();
  });

  it('removes the temporary file a writer killed before its rename left (SIGKILL keeps it), and reads the previous version', async () => {
    await (await PendingCommitStore.open(directory)).write(signedBy(1));
    const kept = join(directory, 'kept-temporary');
    let temporary = '';
    const killed = await PendingCommitStore.open(directory, {
      faultPoint: () => {
        temporary = readdirSync(directory).find((name) => name.includes('.tmp-')) ?? '';
        copyFileSync(join(directory, temporary), kept);
        throw new Error('killed');
      },
    });
    await expect(killed.write(signedBy(3))).rejects.toThrow('killed');
    await rename(kept, join(directory, temporary));
    expect((await readdir(directory)).sort()).toEqual([PENDING_COMMIT_FILE, temporary].sort());
    const reopened = await PendingCommitStore.open(directory);
    expect(await readdir(directory)).toEqual([PENDING_COMMIT_FILE]);
    expect((await reopened.read())?.record.signatures).toHaveLength(1);
  });

  it('leaves other files of the state directory, temporary or not, alone', async () => {
    await writeFile(join(directory, 'federation.json.tmp-1-abc'), 'x');
    await writeFile(join(directory, 'federation.json'), '{}');
    await PendingCommitStore.open(directory);
    expect((await readdir(directory)).sort()).toEqual(['federation.json', 'federation.json.tmp-1-abc']);
  });
});

describe('a damaged pending commit is an error naming the file, never "no pending commit"', () => {
  type Document = { formatVersion: number; kind: string; commit: Record<string, unknown>; certificates: { siteId: string; certificate: string }[] };
  const edit = (change: (document: Document) => void): string => {
    const document = JSON.parse(serializePendingCommit(signedBy(2))) as Document;
    change(document);
    return JSON.stringify(document);
  };
  const other = toHex(sha256(utf8('something else')));

  it.each([
    ['cut short', () => serializePendingCommit(signedBy(2)).slice(0, 300), /is not JSON/],
    ['of another kind', () => edit((document) => (document.kind = 'round_commit')), /is not a pending commit/],
    ['without a commit', () => edit((document) => delete (document as Partial<Document>).commit), /holds no readable commit/],
    ['with a RoundConfig that is not the one hashed', () => edit((document) => (document.commit['roundConfigHash'] = other)), /H\(RoundConfig\) that is not the hash of its RoundConfig/],
    ['with an L that is not the one hashed', () => edit((document) => (document.commit['keyListHash'] = other)), /H\(L\) that is not the hash of its key list/],
    ['with an unsorted U3', () => edit((document) => (document.commit['survivors'] = [...(document.commit['survivors'] as string[])].reverse())), /U3 that is empty, unsorted or repeats/],
    ['with a U3 member outside U', () => edit((document) => (document.commit['survivors'] = [...(document.commit['survivors'] as string[]), 'zz-outsider'])), /names "zz-outsider" in U3 but not in U and L/],
    ['with another previous model', () => edit((document) => (document.commit['previousModelHash'] = other)), /previous model other than its RoundConfig's/],
    ['missing a member\'s certificate', () => edit((document) => document.certificates.pop()), /exactly one certificate for every member of U3/],
    ['with a certificate that is not one', () => edit((document) => ((document.certificates[0] as { certificate: string }).certificate = 'not a certificate')), /is not a certificate/],
    [
      'with a signature made with another certificate',
      () => edit((document) => ((document.commit['signatures'] as { certificate: string }[])[0] = { ...(document.commit['signatures'] as { certificate: string }[])[0], certificate: federation.sites[2]?.certificatePem ?? '' } as never)),
      /with another certificate than the one that site presented/,
    ],
    [
      'with a signer signing twice',
      () => edit((document) => (document.commit['signatures'] as unknown[]).push((document.commit['signatures'] as unknown[])[0])),
      /not a member of U3 or signed twice/,
    ],
    ['without its metrics', () => edit((document) => (document.commit['metrics'] = {})), /no number for metrics\.participants/],
  ])('%s', async (_case, text, message) => {
    await writeFile(join(directory, PENDING_COMMIT_FILE), text());
    const store = await PendingCommitStore.open(directory);
    const error = await store.read().then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(error).toMatchObject({ name: 'StateError', reason: 'CORRUPT', code: 'DATA_LOSS' });
    expect((error as Error).message).toContain(join(directory, PENDING_COMMIT_FILE));
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message).toMatch(/restore the file from a backup/);
  });

  it('a file of a newer format is UNSUPPORTED_VERSION', async () => {
    await writeFile(join(directory, PENDING_COMMIT_FILE), edit((document) => (document.formatVersion = 2)));
    await expect((await PendingCommitStore.open(directory)).read()).rejects.toMatchObject({ reason: 'UNSUPPORTED_VERSION', message: expect.stringContaining('format version 2') as unknown });
  });
});
