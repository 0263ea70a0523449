/**
 * The federation core end to end over real gRPC and mutual TLS on 127.0.0.1: the real coordinator and
 * real participant daemons in one process (test/support/grpc-federation.ts). Secure rounds must give
 * plaintext FedAvg of the sites' updates within the fixed-point bound, every ledger record must carry a
 * quorum of commit signatures that verify offline, and rounds must survive dropouts (or abort cleanly
 * and restart under a new id when they cannot).
 */
import { rm } from 'node:fs/promises';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { buildTrainingPlan } from '../../model/plan.js';
import { sha256 } from '../../proto/chunking.js';
import { compareWithFedAvg, ledgerChainProblems, verifyCommitRecord } from '../support/grpc-federation-checks.js';
import { GrpcFederation } from '../support/grpc-federation.js';
import { DIGITS_MLP_TASK } from '../support/in-memory-federation.js';
import { createTestPki, type TestPki } from '../support/pki.js';

const plan = buildTrainingPlan(DIGITS_MLP_TASK);
const CLIP = 1;
const MAX_WEIGHT = 2000;

let pki: TestPki;
let harness: GrpcFederation | undefined;

beforeAll(async () => {
  pki = await createTestPki('fedgate grpc federation CA');
});

afterEach(async () => {
  await harness?.close();
  harness = undefined;
});

/** Ledger record `sequence` holds plaintext FedAvg of the updates its survivors trained, within the quantisation bound. */
async function expectFedAvg(federation: GrpcFederation, sequence: number, participants: number): Promise<void> {
  const record = (await federation.ledgerFiles())[sequence - 1];
  if (record === undefined) throw new Error(`no ledger record ${sequence}`);
  const comparison = await compareWithFedAvg(federation, record, plan, { participants, maxWeight: MAX_WEIGHT, clipBound: CLIP });
  // Nothing was clipped, so the protocol's aggregate is exactly FedAvg up to quantisation.
  expect(comparison.largestWeightedDelta).toBeLessThan(CLIP);
  expect(comparison.largestWeightedDelta).toBeGreaterThan(0);
  expect(comparison.outside).toEqual([]);
  // The bound is tight: a model that left out one survivor's update would be far outside it.
  expect(comparison.outsideWithoutFirst).toBeGreaterThan(comparison.parameters / 2);
}

function expectQuorum(verification: ReturnType<typeof verifyCommitRecord>, signers: readonly string[]): void {
  expect(verification.invalid).toEqual([]);
  expect([...verification.validSigners].sort()).toEqual([...signers].sort());
  expect(verification.validSigners.length).toBeGreaterThan(verification.survivors.length / 2);
  expect(verification.validSigners.length).toBeGreaterThanOrEqual(verification.config.reconstructionThreshold);
  expect(verification.quorum).toBe(true);
}

describe('secure rounds over mutual TLS', () => {
  it('runs 3 rounds with 5 sites: each model is FedAvg of the local updates, each ledger record has a verifying quorum', async () => {
    harness = await GrpcFederation.start({ pki, sites: 5, rounds: 3, clipBound: CLIP, maxWeight: MAX_WEIGHT });
    await harness.waitUntilDone(90_000);
    const committed = harness.committed();
    expect(committed).toHaveLength(3);
    expect(harness.events.filter((event) => event.type === 'round_aborted')).toEqual([]);
    const counters = committed.map((event) => BigInt(event.roundCounter));
    expect(counters).toEqual([...counters].sort((a, b) => (a < b ? -1 : 1)));
    expect(new Set(committed.map((event) => event.roundId)).size).toBe(3);

    const records = await harness.ledgerFiles();
    expect(records).toHaveLength(3);
    expect(ledgerChainProblems(records)).toEqual([]);
    for (const [index, record] of records.entries()) {
      const verification = verifyCommitRecord(record, pki.ca.certificatePem);
      expect(Buffer.from(verification.config.roundId).toString('hex')).toBe(committed[index]?.roundId);
      expect(verification.survivors).toEqual(harness.siteIds);
      expectQuorum(verification, harness.siteIds);
      // Complete graph over 5 sites: default t = ceil(2 * 5 / 3) = 4, so the quorum is max(3, 4).
      expect(verification.config.reconstructionThreshold).toBe(4);
      expect(verification.required).toBe(4);
      await expectFedAvg(harness, index + 1, 5);
    }

    // Every site recomputed the last model itself (DESIGN.md step 7) and kept the same bytes.
    const finalHash = records[2]?.body.newModelHash as string;
    await vi.waitFor(
      () => {
        for (const siteId of harness?.siteIds ?? []) expect(sha256(harness?.daemon(siteId)?.latestModel() ?? new Uint8Array()).toString('hex')).toBe(finalHash);
      },
      { timeout: 10_000, interval: 50 },
    );
  });

  it('commits FedAvg of U3 when one site dies after ShareKeys and another after MaskedInput (5 sites, complete graph, t = 3)', async () => {
    harness = await GrpcFederation.start({ pki, sites: 5, rounds: 1, reconstructionThreshold: 3, clipBound: CLIP, maxWeight: MAX_WEIGHT });
    const federation = harness;
    const kills: Promise<void>[] = [];
    // "Killed" = the daemon stopped the moment the coordinator accepted that stage from it.
    federation.onSiteMessage((record) => {
      if (!record.accepted) return;
      if ((record.siteId === 'site-2' && record.what === 'share_keys') || (record.siteId === 'site-4' && record.what === 'masked_input')) {
        kills.push(federation.stopSite(record.siteId));
      }
    });
    await federation.waitUntilDone(60_000);
    await Promise.all(kills);
    const [event] = federation.committed();
    expect(event?.participants).toEqual(federation.siteIds);
    expect(event?.survivors).toEqual(['site-1', 'site-3', 'site-4', 'site-5']);
    // site-2 sent nothing after ShareKeys, site-4 nothing after its masked input.
    const after = (siteId: string): string[] => federation.received.filter((record) => record.siteId === siteId).map((record) => record.what);
    expect(after('site-2')).toEqual(['advertise_keys', 'nonce_reveal', 'share_keys']);
    expect(after('site-4')).toEqual(['advertise_keys', 'nonce_reveal', 'share_keys', 'masked_input']);

    const [record] = await federation.ledgerFiles();
    if (record === undefined) throw new Error('no ledger record');
    const verification = verifyCommitRecord(record, pki.ca.certificatePem);
    expect(verification.survivors).toEqual(['site-1', 'site-3', 'site-4', 'site-5']);
    expect(verification.required).toBe(3);
    expectQuorum(verification, ['site-1', 'site-3', 'site-5']);
    await expectFedAvg(federation, 1, 5);
  });

  it('aborts a round left with too few sites (typed reason) and commits the next one under a higher counter', async () => {
    harness = await GrpcFederation.start({ pki, sites: 3, rounds: 1, clipBound: CLIP, maxWeight: MAX_WEIGHT });
    const federation = harness;
    const stopped: Promise<void>[] = [];
    let killing = true;
    federation.onSiteMessage((record) => {
      if (killing && record.accepted && record.what === 'share_keys' && record.siteId !== 'site-1') stopped.push(federation.stopSite(record.siteId));
    });
    const aborted = await federation.waitForEvent((event) => event.type === 'round_aborted', 30_000, 'the first round to abort');
    killing = false;
    expect(aborted.reason).toBe('TOO_FEW_SURVIVORS');
    expect(aborted.participants).toEqual(federation.siteIds);
    await Promise.all(stopped);
    // The two sites come back; the federation needs all three again.
    federation.startSite('site-2');
    federation.startSite('site-3');
    await federation.waitUntilDone(60_000);

    const [committed] = federation.committed();
    expect(committed?.roundId).not.toBe(aborted.roundId);
    expect(BigInt(committed?.roundCounter ?? 0)).toBeGreaterThan(BigInt(aborted.roundCounter));
    expect(committed?.survivors).toEqual(federation.siteIds);
    // The surviving site was told why its round ended; the aborted round left nothing in the ledger.
    expect(federation.siteLog.some((entry) => entry.site === 'site-1' && entry.msg === 'round ended for this site' && entry['reason'] === 'TOO_FEW_SURVIVORS')).toBe(true);
    const records = await federation.ledgerFiles();
    expect(records).toHaveLength(1);
    expect(verifyCommitRecord(records[0] as (typeof records)[0], pki.ca.certificatePem).quorum).toBe(true);
    await expectFedAvg(federation, 1, 3);
  });

  it('raises a configured threshold that is too low for the round to the smallest valid one instead of stopping the federation', async () => {
    // threshold 2 suits a round of 3 sites (k = 2), but a round of 4 has k = 3 and needs t > (k+1)/2 = 2.
    harness = await GrpcFederation.start({ pki, sites: 4, rounds: 1, reconstructionThreshold: 2, clipBound: CLIP, maxWeight: MAX_WEIGHT });
    await harness.waitUntilDone(60_000);
    const [record] = await harness.ledgerFiles();
    if (record === undefined) throw new Error('no ledger record');
    const verification = verifyCommitRecord(record, pki.ca.certificatePem);
    expect(verification.config.participants).toHaveLength(4);
    expect(verification.config.reconstructionThreshold).toBe(3);
    expectQuorum(verification, harness.siteIds);
    expect(harness.coordinatorLines('configured reconstruction threshold is invalid for this round; using the smallest valid one')).toHaveLength(1);
  });

  it('says in its log why no further round will start when the federation loop fails', async () => {
    harness = await GrpcFederation.start({ pki, sites: 2, rounds: 1, startSites: false });
    // The next round id cannot be persisted: its counter file has no directory any more.
    await rm(harness.stateDirectory, { recursive: true, force: true });
    harness.startSite('site-1');
    harness.startSite('site-2');
    await expect(harness.waitUntilDone(30_000)).rejects.toThrow(/round-counter\.json/);
    const [line] = harness.coordinatorLines('the federation loop failed; no further rounds will start');
    expect(String((line?.['err'] as { message?: unknown } | undefined)?.message)).toMatch(/round-counter\.json/);
    expect(harness.events).toEqual([]);
  });
});
