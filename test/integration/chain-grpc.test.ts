/**
 * The verified chain of commit records end to end, over real gRPC and mutual TLS with real daemons
 * (test/support/grpc-federation.ts):
 *  - a site that joins after three committed rounds fetches the ledger's records (GetCommitRecords),
 *    verifies them link by link from the task's pinned initial model, and then trains;
 *  - GetCommitRecords serves the ledger's canonical record bytes after a round counter, page by page, to
 *    participant certificates only;
 *  - a RoundCommitted whose record the coordinator forged is refused and the site's head does not move;
 *  - a round whose aggregate was unmasked but whose commit missed its quorum by the deadline is finished
 *    by re-collecting commit signatures for the same round, never abandoned - unless members refused to
 *    sign so that the quorum cannot be reached any more.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { fromHex, toHex } from '../../crypto/bytes.js';
import { decodeCommitRecord, encodeCommitRecord, type CommitBody } from '../../crypto/secagg/commit-record-codec.js';
import { fetchCommitRecords } from '../../proto/commit-records.js';
import { FedgateError } from '../../proto/errors.js';
import { SiteStateStore } from '../../participant/state/site-state.js';
import { verifyCommitRecord } from '../support/grpc-federation-checks.js';
import { FEDERATION_ID, GrpcFederation } from '../support/grpc-federation.js';
import { createTestPki, type TestPki } from '../support/pki.js';

let pki: TestPki;
let harness: GrpcFederation | undefined;
let work: string;

beforeAll(async () => {
  pki = await createTestPki('fedgate chain CA');
  work = await mkdtemp(join(tmpdir(), 'fedgate-chain-grpc-'));
});

afterEach(async () => {
  await harness?.close();
  harness = undefined;
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

async function siteState(name: string): Promise<SiteStateStore> {
  return SiteStateStore.open(join(work, name));
}

async function until(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('the chain of commit records over gRPC', () => {
  it('a site that joins after three committed rounds verifies the chain from the initial model and trains', async () => {
    harness = await GrpcFederation.start({ pki, sites: 4, rounds: 5, minParticipants: 3, startSites: false });
    const federation = harness;
    for (const siteId of federation.siteIds.slice(0, 3)) federation.startSite(siteId);
    await federation.waitForEvent((event) => event.type === 'round_committed' && event.sequence === 3, 120_000, 'three committed rounds');
    const late = federation.siteIds[3] as string;
    const state = await siteState('late');
    expect(state.chainHead(FEDERATION_ID)).toBeUndefined();
    federation.startSite(late, { state });
    await federation.waitUntilDone(180_000);

    // The late site verified at least the three records committed before it came, from round 1 on.
    const verified = federation.siteLog.filter((entry) => entry.site === late && entry.msg === 'verified the chain of commit records from the coordinator');
    expect(verified.length).toBeGreaterThanOrEqual(1);
    expect(Number(verified[0]?.['verified'])).toBeGreaterThanOrEqual(3);
    // ... then trained and took part in a committed round.
    const joined = federation.committed().filter((event) => event.survivors?.includes(late) === true);
    expect(joined.length).toBeGreaterThanOrEqual(1);
    expect(federation.localUpdates.get(late)?.length ?? 0).toBeGreaterThanOrEqual(1);
    expect(federation.siteLog.filter((entry) => entry.site === late && entry.msg === 'leaving the round')).toEqual([]);
    // Its persisted head is the federation's last committed round.
    const records = await federation.ledgerFiles();
    const last = records.at(-1)?.body as CommitBody;
    await until(() => state.chainHead(FEDERATION_ID)?.counter === BigInt(last.roundCounter), 10_000, 'the late site\'s head to reach the last round');
    expect(toHex(state.chainHead(FEDERATION_ID)?.modelHash ?? new Uint8Array(0))).toBe(last.newModelHash);
    for (const record of records) verifyCommitRecord(record, pki.ca.certificatePem);
  }, 300_000);

  it('serves the ledger\'s records (GetCommitRecords) to participant certificates, page by page, after a round counter', async () => {
    harness = await GrpcFederation.start({ pki, sites: 3, rounds: 3 });
    const federation = harness;
    await federation.waitUntilDone(120_000);
    const ledger = await federation.ledgerFiles();
    const client = federation.client(federation.certificate(federation.siteIds[0] as string));
    const all = await fetchCommitRecords(client, 0n, { maxRecordBytes: 1 << 20 });
    expect(all.map((entry) => entry.sequence)).toEqual([1, 2, 3]);
    // Each record is the ledger body's canonical bytes, exactly.
    all.forEach((entry, index) => expect(Buffer.from(entry.record).equals(Buffer.from(encodeCommitRecord(ledger[index]?.body as CommitBody)))).toBe(true));
    const firstCounter = decodeCommitRecord(all[0]?.record as Uint8Array).counter;
    const page = await fetchCommitRecords(client, firstCounter, { maxRecords: 1, maxRecordBytes: 1 << 20 });
    expect(page.map((entry) => entry.sequence)).toEqual([2]);
    expect(await fetchCommitRecords(client, decodeCommitRecord(all[2]?.record as Uint8Array).counter, { maxRecordBytes: 1 << 20 })).toEqual([]);
    const operator = await pki.operator('chain-ops');
    const refused = await fetchCommitRecords(federation.client(operator), 0n, { maxRecordBytes: 1 << 20 }).then(
      () => new Error('an operator certificate was served commit records'),
      (error: unknown) => error,
    );
    expect(refused).toBeInstanceOf(FedgateError);
    expect(refused).toMatchObject({ code: 'PERMISSION_DENIED' });
  }, 300_000);

  it('refuses a RoundCommitted whose record the coordinator forged, and its head does not move', async () => {
    const fooled = await siteState('fooled');
    const honest = await siteState('honest');
    harness = await GrpcFederation.start({
      pki,
      sites: 3,
      rounds: 1,
      siteOptions: (_siteId, index) => (index === 0 ? { state: fooled } : index === 1 ? { state: honest } : {}),
    });
    const federation = harness;
    const target = federation.siteIds[0] as string;
    let forged = 0;
    federation.rewriteToSite = (siteId, message) => {
      if (siteId !== target || message.kind !== 'committed') return message;
      // The same round, claimed with a count of signatures but carrying none: a commit nobody signed.
      const body = JSON.parse(Buffer.from(message.commitRecord).toString('utf8')) as CommitBody;
      forged += 1;
      return { ...message, commitRecord: encodeCommitRecord({ ...body, signatures: [] }) };
    };
    await federation.waitUntilDone(120_000);
    await until(
      () => federation.siteLog.some((entry) => entry.site === target && entry.reason === 'COMMIT_RECORD_INVALID'),
      10_000,
      'the site to refuse the forged commit record',
    );
    expect(forged).toBe(1);
    const refusal = federation.siteLog.find((entry) => entry.site === target && entry.reason === 'COMMIT_RECORD_INVALID');
    expect(refusal?.['check']).toBe('COMMIT_QUORUM_MISSING');
    // The fooled site's head never moved; the honest site's moved to the committed round.
    const [record] = await federation.ledgerFiles();
    await until(() => honest.chainHead(FEDERATION_ID) !== undefined, 10_000, 'the honest site\'s head to move');
    expect(fooled.chainHead(FEDERATION_ID)).toBeUndefined();
    expect(honest.chainHead(FEDERATION_ID)?.modelHash).toEqual(fromHex((record?.body as CommitBody).newModelHash));
  }, 300_000);

  it('finishes an unmasked round whose commit missed its quorum by re-collecting signatures, not by re-running it', async () => {
    harness = await GrpcFederation.start({ pki, sites: 3, rounds: 1, stageDeadlineMs: 8000 });
    const federation = harness;
    const slow = federation.siteIds[2] as string;
    let withheld = 0;
    // The first commit request to one site is lost: with t = 3 of 3 the quorum needs its signature.
    federation.rewriteToSite = (siteId, message) => {
      if (siteId === slow && message.kind === 'stage' && message.message.stage === 'commit_request' && withheld === 0) {
        withheld += 1;
        return undefined;
      }
      return message;
    };
    await federation.waitUntilDone(120_000);
    expect(withheld).toBe(1);
    expect(federation.events.filter((event) => event.type === 'round_aborted')).toEqual([]);
    const committed = federation.committed();
    expect(committed).toHaveLength(1);
    expect(federation.events.filter((event) => event.type === 'round_started')).toHaveLength(1);
    expect(federation.coordinatorLog.some((entry) => String(entry.msg).startsWith('commit deadline passed without a quorum'))).toBe(true);
    expect(federation.coordinatorLines('asking a survivor for its commit signature again').map((entry) => entry.site)).toContain(slow);
    const [record] = await federation.ledgerFiles();
    expect((record?.body as CommitBody).signatures.map((entry) => entry.siteId)).toContain(slow);
    if (record !== undefined) verifyCommitRecord(record, pki.ca.certificatePem);
  }, 300_000);

  it('aborts such a round only when members refused to sign so that its quorum cannot be reached; its model is then spent for the sites that revealed', async () => {
    harness = await GrpcFederation.start({ pki, sites: 3, rounds: 1 });
    const federation = harness;
    const liedTo = federation.siteIds[1] as string;
    let lies = 0;
    // One site is asked to sign a model it does not compute (COMMIT_MISMATCH); with t = 3 of 3 no quorum remains.
    federation.rewriteToSite = (siteId, message) => {
      if (siteId !== liedTo || lies > 0 || message.kind !== 'stage' || message.message.stage !== 'commit_request') return message;
      lies += 1;
      return { ...message, message: { ...message.message, newModelHash: new Uint8Array(32).fill(7) } };
    };
    const first = await federation.waitForEvent((event) => event.type === 'round_aborted', 120_000, 'the first abort');
    expect(first.reason).toBe('COMMIT_QUORUM_MISSING');
    expect(federation.coordinatorLines('round aborted').some((entry) => String(entry['detail']).includes(`${liedTo} refused to sign`))).toBe(true);
    // Every site revealed its shares for that aggregate, so none contributes on that model again: the next
    // round on it is refused (one contribution per model), and nothing more commits from it.
    await federation.waitForEvent((event) => event.type === 'round_aborted' && event.reason !== 'COMMIT_QUORUM_MISSING', 60_000, 'the next round refused');
    const refusals = federation.coordinatorLines('site refused or left the round').map((entry) => String(entry['reason']));
    expect(refusals).toContain('MODEL_ALREADY_CONTRIBUTED');
    expect(federation.committed()).toHaveLength(0);
  }, 300_000);
});
