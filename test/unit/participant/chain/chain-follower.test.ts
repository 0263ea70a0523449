/**
 * A site's chain follower (participant/chain/chain-follower.ts) against a coordinator that may lie: the
 * records it serves and the RoundConfigs it sends are scripted here. The site keeps its head in a real
 * SiteStateStore (persisted), so the tests also see that the head moves only over verified links and
 * never over a forged one.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { toHex, utf8 } from '../../../../crypto/bytes.js';
import { sha256 } from '../../../../crypto/hash.js';
import type { CommitChainHead } from '../../../../crypto/secagg/commit-chain.js';
import { commitRecordHash } from '../../../../crypto/secagg/commit-record-codec.js';
import type { RoundConfig } from '../../../../crypto/secagg/config.js';
import type { SitePolicy } from '../../../../crypto/secagg/policy.js';
import type { CommitRecord } from '../../../../crypto/secagg/server-commit.js';
import { encodeServerOptimizerState } from '../../../../model/server-optimizer.js';
import { ChainFollower, ChainRefusal, MemoryChainHeads } from '../../../../participant/chain/chain-follower.js';
import { decodePinnedOptimizerState } from '../../../../participant/chain/pinned-optimizer.js';
import { SiteStateStore } from '../../../../participant/state/site-state.js';
import type { CommitRecordPageEntry } from '../../../../proto/commit-records.js';
import { headAfter, honestChain, honestRecord, recordBytes, signRecord, unsignedRecord, CHAIN_FEDERATION_ID } from '../../../support/commit-records.js';
import { TEST_MODEL_HASH, TEST_OPTIMIZER_HASH, cachedFederation, createTestFederation, testPolicy, type TestFederation } from '../../../support/secagg-sim.js';

const START: CommitChainHead = { counter: 0n, modelHash: TEST_MODEL_HASH, optimizerStateHash: TEST_OPTIMIZER_HASH };

let federation: TestFederation;
let directory: string;
let store: SiteStateStore;
/** What the scripted coordinator's ledger holds, and every GetCommitRecords call it answered. */
let ledger: Uint8Array[];
let calls: { after: bigint; max: number }[];
let fetchFails: boolean;

beforeAll(() => {
  federation = cachedFederation(4, 'chain-');
}, 300_000);

beforeEach(async () => {
  directory = await mkdtemp(join(tmpdir(), 'fedgate-chain-'));
  store = await SiteStateStore.open(directory);
  ledger = [];
  calls = [];
  fetchFails = false;
});

afterEach(async () => {
  await rm(directory, { recursive: true, force: true });
});

function participants(): string[] {
  return federation.sites.map((site) => site.siteId);
}

/** The coordinator's GetCommitRecords over `ledger`: the records whose counter is above `after`. */
async function fetchRecords(after: bigint, max: number): Promise<CommitRecordPageEntry[]> {
  calls.push({ after, max });
  if (fetchFails) throw new Error('UNAVAILABLE: the coordinator is gone');
  const counterOf = (bytes: Uint8Array): bigint => BigInt((JSON.parse(Buffer.from(bytes).toString('utf8')) as { roundCounter: string }).roundCounter);
  return ledger
    .map((record, index) => ({ sequence: index + 1, record }))
    .filter((entry) => counterOf(entry.record) > after)
    .slice(0, max);
}

function follower(policy: SitePolicy = testPolicy()): ChainFollower {
  return new ChainFollower({ store, policy, trust: () => federation.trust, origin: async () => START, fetchRecords, pageSize: 2, logger: pino({ level: 'silent' }) });
}

function publish(records: readonly CommitRecord[]): void {
  ledger.push(...records.map((record) => recordBytes(record)));
}

/** The RoundConfig of the next round on `head`, as an honest coordinator would send it. */
function nextRound(head: CommitChainHead): RoundConfig {
  return unsignedRecord({ previous: head, participants: participants() }).config;
}

async function refusalOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof ChainRefusal) return error.reason;
    throw error;
  }
  return 'ACCEPTED';
}

describe('a site that joins late', () => {
  it('verifies every record from the task\'s initial head, page by page, then trains on the head', async () => {
    const chain = honestChain(federation, START, 5, participants());
    publish(chain);
    const head = headAfter(chain[4] as CommitRecord);
    await follower().checkRoundStart(nextRound(head));
    expect(calls.map((call) => call.after)).toEqual([0n, 2n, 4n]);
    const stored = store.chainHead(CHAIN_FEDERATION_ID);
    expect(stored).toMatchObject({ counter: 5n, modelHash: head.modelHash, optimizerStateHash: head.optimizerStateHash });
    expect(stored?.recordHash).toEqual(commitRecordHash(ledger[4] as Uint8Array));
    // The head is persisted: a restarted site starts from it and fetches nothing for the next round.
    const reopened = await SiteStateStore.open(directory);
    expect(reopened.chainHead(CHAIN_FEDERATION_ID)?.counter).toBe(5n);
    calls = [];
    await follower().checkRoundStart(nextRound(head));
    expect(calls).toEqual([]);
  });

  it('refuses with CHAIN_UNVERIFIED at a forged record in the middle, keeping the verified prefix', async () => {
    const [first, second] = honestChain(federation, START, 2, participants()) as [CommitRecord, CommitRecord];
    // Round 3 signed by one site only: no quorum. Round 4 honestly follows it.
    const forged = signRecord(unsignedRecord({ previous: headAfter(second), participants: participants() }), [federation.sites[0] as TestFederation['sites'][number]]);
    const fourth = honestRecord(federation, { previous: headAfter(forged), participants: participants() });
    publish([first, second, forged, fourth]);
    expect(await refusalOf(follower().checkRoundStart(nextRound(headAfter(fourth))))).toBe('CHAIN_UNVERIFIED');
    expect(store.chainHead(CHAIN_FEDERATION_ID)?.counter).toBe(2n);
  });

  it('refuses with CHAIN_UNVERIFIED a chain whose rounds are below its own policy', async () => {
    const chain = honestChain(federation, START, 2, participants());
    publish(chain);
    // t = 3 in these rounds; this site requires t >= 4.
    expect(await refusalOf(follower(testPolicy({ minThreshold: 4 })).checkRoundStart(nextRound(headAfter(chain[1] as CommitRecord))))).toBe('CHAIN_UNVERIFIED');
    expect(store.chainHead(CHAIN_FEDERATION_ID)).toBeUndefined();
  });

  it('refuses with CHAIN_UNVERIFIED when the records cannot be fetched', async () => {
    fetchFails = true;
    expect(await refusalOf(follower().checkRoundStart(nextRound({ ...START, modelHash: sha256(utf8('somewhere')) })))).toBe('CHAIN_UNVERIFIED');
  });
});

describe('a RoundStart the chain does not lead to', () => {
  it('naming a model off the chain: MODEL_NOT_CHAIN_HEAD', async () => {
    const chain = honestChain(federation, START, 2, participants());
    publish(chain);
    const head = headAfter(chain[1] as CommitRecord);
    // Trap weights: the coordinator's own model, with the head's optimiser state.
    expect(await refusalOf(follower().checkRoundStart(nextRound({ ...head, modelHash: sha256(utf8('trap weights')) })))).toBe('MODEL_NOT_CHAIN_HEAD');
    // The chain itself verified: the head is at round 2.
    expect(store.chainHead(CHAIN_FEDERATION_ID)?.counter).toBe(2n);
  });

  it('naming another optimiser state: OPTIMIZER_STATE_NOT_CHAIN_HEAD', async () => {
    const chain = honestChain(federation, START, 1, participants());
    publish(chain);
    const head = headAfter(chain[0] as CommitRecord);
    expect(await refusalOf(follower().checkRoundStart(nextRound({ ...head, optimizerStateHash: sha256(utf8('chosen velocity')) })))).toBe('OPTIMIZER_STATE_NOT_CHAIN_HEAD');
  });

  it('round 1 on other weights than the task pins: MODEL_NOT_CHAIN_HEAD with an empty ledger', async () => {
    expect(await refusalOf(follower().checkRoundStart(nextRound({ ...START, modelHash: sha256(utf8('trap weights')) })))).toBe('MODEL_NOT_CHAIN_HEAD');
    expect(calls).toHaveLength(1);
  });

  it('starting from the head: accepted without fetching anything', async () => {
    await follower().checkRoundStart(nextRound(START));
    expect(calls).toEqual([]);
  });
});

describe('RoundCommitted', () => {
  it('moves the head over a valid record', async () => {
    const site = follower();
    const record = honestRecord(federation, { previous: START, participants: participants() });
    expect(await site.committed(recordBytes(record))).toBe(true);
    expect(store.chainHead(CHAIN_FEDERATION_ID)).toMatchObject({ counter: 1n, modelHash: record.hashes.newModelHash });
    // The same record again (e.g. also fetched): nothing changes.
    expect(await site.committed(recordBytes(record))).toBe(true);
  });

  it.each([
    ['signed by too few sites', (record: CommitRecord) => signRecord(record, federation.sites.slice(0, 1))],
    ['with a count but no signatures (the old RoundCommitted)', (record: CommitRecord) => ({ ...record, signatures: [] })],
    ['from another model than the head', (record: CommitRecord) => honestRecord(federation, { previous: { ...START, modelHash: sha256(utf8('elsewhere')) }, participants: record.config.participants })],
  ])('refuses a record %s and does not move the head', async (_what, forge) => {
    const site = follower();
    const honest = honestRecord(federation, { previous: START, participants: participants() });
    expect(await site.committed(recordBytes(forge(honest)))).toBe(false);
    expect(await site.committed(new Uint8Array(0))).toBe(false);
    expect(store.chainHead(CHAIN_FEDERATION_ID)).toBeUndefined();
    // The honest record still moves it afterwards.
    expect(await site.committed(recordBytes(honest))).toBe(true);
  });
});

describe('the optimiser state a site downloads', () => {
  const pinned = { kind: 'fedavgm', learningRate: 1, momentum: 0.9 } as const;
  const velocity = { velocity: new Float32Array([0.5, -0.5]) };

  it('is used when it is for the optimiser the task pins', () => {
    expect(decodePinnedOptimizerState(encodeServerOptimizerState(pinned, velocity), pinned).spec).toEqual(pinned);
  });

  it.each([
    ['another learning rate', { ...pinned, learningRate: 0.001 }],
    ['another momentum', { ...pinned, momentum: 0.99 }],
    ['another kind', { kind: 'fedavg', learningRate: 1 } as const],
  ])('is refused with %s: OPTIMIZER_STATE_NOT_CHAIN_HEAD', (_what, swapped) => {
    const bytes = encodeServerOptimizerState(swapped, swapped.kind === 'fedavg' ? { velocity: new Float32Array(0) } : velocity);
    expect(() => decodePinnedOptimizerState(bytes, pinned)).toThrow(ChainRefusal);
    expect(() => decodePinnedOptimizerState(bytes, pinned)).toThrow(expect.objectContaining({ reason: 'OPTIMIZER_STATE_NOT_CHAIN_HEAD' }));
  });
});

describe('the head a site keeps without a state directory (MemoryChainHeads)', () => {
  it('is per federation and moves forward (or stays), never back', async () => {
    const heads = new MemoryChainHeads();
    const head = (counter: bigint) => ({ counter, modelHash: sha256(utf8(`model ${counter}`)), optimizerStateHash: TEST_OPTIMIZER_HASH, recordHash: sha256(utf8(`record ${counter}`)) });
    expect(heads.chainHead('fed-a')).toBeUndefined();
    await heads.setChainHead('fed-a', head(3n));
    await heads.setChainHead('fed-b', head(1n));
    expect(heads.chainHead('fed-a')).toEqual(head(3n));
    expect(heads.chainHead('fed-b')).toEqual(head(1n));
    await heads.setChainHead('fed-a', head(3n));
    await heads.setChainHead('fed-a', head(4n));
    expect(heads.chainHead('fed-a')?.counter).toBe(4n);
    await expect(heads.setChainHead('fed-a', head(2n))).rejects.toThrow('chain head cannot move back from round 4 to 2');
    expect(heads.chainHead('fed-a')?.counter).toBe(4n);
  });
});

describe('a chain refusal', () => {
  it('is a FAILED_PRECONDITION ChainRefusal carrying its reason, and names what the RoundConfig got wrong', async () => {
    const config = nextRound({ ...START, modelHash: sha256(utf8('trap weights')) });
    const error = await follower().checkRoundStart(config).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ChainRefusal);
    expect(error).toMatchObject({ name: 'ChainRefusal', code: 'FAILED_PRECONDITION', reason: 'MODEL_NOT_CHAIN_HEAD' });
    expect((error as Error).message).toContain(`RoundConfig.modelHash ${toHex(config.modelHash)} is not the model of the verified chain head (round 0)`);
  });

  it("says how far the chain verified and why it stopped, with the link check's error as the cause", async () => {
    const [first, second] = honestChain(federation, START, 2, participants()) as [CommitRecord, CommitRecord];
    const forged = signRecord(unsignedRecord({ previous: headAfter(second), participants: participants() }), federation.sites.slice(0, 1));
    publish([first, second, forged]);
    const error = await follower().checkRoundStart(nextRound(headAfter(forged))).catch((caught: unknown) => caught);
    expect(error).toMatchObject({ reason: 'CHAIN_UNVERIFIED', cause: expect.objectContaining({ reason: 'COMMIT_QUORUM_MISSING' }) });
    expect((error as Error).message).toMatch(/^the chain of commit records could not be verified from round 2 on \(2 record\(s\) verified first\): 1 valid commit signatures, 3 needed/);
  });
});

describe('a site whose task origin cannot be computed', () => {
  const failingOrigin = (): ChainFollower =>
    new ChainFollower({
      store,
      policy: testPolicy(),
      trust: () => federation.trust,
      origin: () => Promise.reject(new Error('task 00ab is not a JSON task document')),
      fetchRecords,
      logger: pino({ level: 'silent' }),
    });

  it('refuses a RoundStart with CHAIN_UNVERIFIED, naming why', async () => {
    const error = await failingOrigin().checkRoundStart(nextRound(START)).catch((caught: unknown) => caught);
    expect(error).toMatchObject({ reason: 'CHAIN_UNVERIFIED', message: "the task's initial model and optimiser state are not available: task 00ab is not a JSON task document" });
    expect((error as Error).cause).toBeInstanceOf(Error);
  });

  it('does not take a RoundCommitted (it has no head to link it to)', async () => {
    const record = honestRecord(federation, { previous: START, participants: participants() });
    expect(await failingOrigin().committed(recordBytes(record))).toBe(false);
    expect(store.chainHead(CHAIN_FEDERATION_ID)).toBeUndefined();
  });
});

describe('RoundCommitted after the head moved', () => {
  it('refuses an older or a different record for a round at or below the head, and keeps the head', async () => {
    const site = follower();
    const [first, second] = honestChain(federation, START, 2, participants()) as [CommitRecord, CommitRecord];
    expect(await site.committed(recordBytes(first))).toBe(true);
    expect(await site.committed(recordBytes(second))).toBe(true);
    // Round 1's record again: not the head's record, and not a link after the head.
    expect(await site.committed(recordBytes(first))).toBe(false);
    // Another record for round 2 (the coordinator's own aggregate), signed by every site.
    const rival = honestRecord(federation, { previous: headAfter(first), participants: participants(), newModelHash: sha256(utf8('rival model')) });
    expect(await site.committed(recordBytes(rival))).toBe(false);
    expect(store.chainHead(CHAIN_FEDERATION_ID)).toMatchObject({ counter: 2n, modelHash: second.hashes.newModelHash });
  });

  it("refuses a record signed by a site the site's CRL revoked", async () => {
    const revoked = federation.sites[1] as TestFederation['sites'][number];
    const site = new ChainFollower({
      store,
      policy: testPolicy(),
      trust: () => ({ caCertificate: federation.trust.caCertificate, revokedSerials: new Set([revoked.serial]) }),
      origin: async () => START,
      fetchRecords,
      logger: pino({ level: 'silent' }),
    });
    const record = honestRecord(federation, { previous: START, participants: participants() });
    expect(await site.committed(recordBytes(record))).toBe(false);
    publish([record]);
    expect(await refusalOf(site.checkRoundStart(nextRound(headAfter(record))))).toBe('CHAIN_UNVERIFIED');
    expect(store.chainHead(CHAIN_FEDERATION_ID)).toBeUndefined();
  });
});

describe('what a site logs and says about a record it refuses', () => {
  type Line = Record<string, unknown>;
  function logged(): { lines: Line[]; site: ChainFollower; trusting: (revoked: string[]) => ChainFollower } {
    const lines: Line[] = [];
    const logger = pino({ level: 'debug' }, { write: (line: string) => lines.push(JSON.parse(line) as Line) });
    const make = (revoked: string[]): ChainFollower =>
      new ChainFollower({ store, policy: testPolicy(), trust: () => ({ caCertificate: federation.trust.caCertificate, revokedSerials: new Set(revoked) }), origin: async () => START, fetchRecords, pageSize: 2, logger });
    return { lines, site: make([]), trusting: make };
  }
  const refusing = 'refusing a RoundCommitted whose commit record is not a valid link of the chain; the chain head does not move';

  it('logs COMMIT_RECORD_INVALID with the failing check and its detail, for a forged record and for bytes that are not a record', async () => {
    const { lines, site } = logged();
    const record = signRecord(unsignedRecord({ previous: START, participants: participants() }), federation.sites.slice(0, 1));
    expect(await site.committed(recordBytes(record))).toBe(false);
    expect(await site.committed(utf8('not json'))).toBe(false);
    const warnings = lines.filter((line) => line['msg'] === refusing);
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toMatchObject({ component: 'chain', reason: 'COMMIT_RECORD_INVALID', check: 'COMMIT_QUORUM_MISSING' });
    expect(String(warnings[0]?.['detail'])).toMatch(/^1 valid commit signatures, 3 needed/);
    expect(warnings[1]).toMatchObject({ reason: 'COMMIT_RECORD_INVALID', check: 'COMMIT_RECORD_MALFORMED', detail: 'RoundCommitted.commitRecord is not JSON (8 bytes)' });
  });

  it('logs COMMIT_RECORD_INVALID when it has no head to link a RoundCommitted to', async () => {
    const lines: Line[] = [];
    const site = new ChainFollower({
      store,
      policy: testPolicy(),
      trust: () => federation.trust,
      origin: () => Promise.reject(new Error('task 00ab is not a JSON task document')),
      fetchRecords,
      logger: pino({ level: 'debug' }, { write: (line: string) => lines.push(JSON.parse(line) as Line) }),
    });
    expect(await site.committed(recordBytes(honestRecord(federation, { previous: START, participants: participants() })))).toBe(false);
    expect(lines.filter((line) => line['msg'] === refusing)).toMatchObject([{ reason: 'COMMIT_RECORD_INVALID', check: 'CHAIN_UNVERIFIED' }]);
  });

  it('names the record it could not read while catching up', async () => {
    const [first, second] = honestChain(federation, START, 2, participants()) as [CommitRecord, CommitRecord];
    publish([first, second]);
    ledger.push(utf8('{"kind":"not a record","roundCounter":"3"}'));
    const error = await follower().checkRoundStart(nextRound({ ...START, modelHash: sha256(utf8('further on')) })).catch((caught: unknown) => caught);
    expect((error as Error).message).toContain('(2 record(s) verified first): commit record 3: body.kind must be ');
  });

  it('names the optimiser state a RoundConfig got wrong', async () => {
    const config = nextRound({ ...START, optimizerStateHash: sha256(utf8('chosen velocity')) });
    await expect(follower().checkRoundStart(config)).rejects.toThrow(
      `RoundConfig.optimizerStateHash ${toHex(config.optimizerStateHash)} is not the server-optimiser state of the verified chain head (round 0)`,
    );
  });

  it('takes records signed by sites its CRL does not name, whatever else the CRL revokes', async () => {
    const { trusting } = logged();
    const stranger = createTestFederation(1, 'crl-').site('crl-00');
    const record = honestRecord(federation, { previous: START, participants: participants() });
    expect(await trusting([stranger.serial]).committed(recordBytes(record))).toBe(true);
  });

  it('refuses an optimiser state of another optimiser than the task pins, naming both', () => {
    const pinned = { kind: 'fedavgm', learningRate: 1, momentum: 0.9 } as const;
    const bytes = encodeServerOptimizerState({ kind: 'fedavg', learningRate: 1 }, { velocity: new Float32Array(0) });
    expect(() => decodePinnedOptimizerState(bytes, pinned)).toThrow(
      'the server-optimiser state is for {"kind":"fedavg","learningRate":1}, but the task pins {"kind":"fedavgm","learningRate":1,"momentum":0.9}: the site does not recompute model r+1 with an optimiser the task does not name',
    );
  });
});
