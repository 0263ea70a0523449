/**
 * One contribution per model across a coordinator crash, over real gRPC and mutual TLS with real daemons
 * (test/support/grpc-federation.ts): the coordinator crashes (its fault-injection option) after a round's
 * aggregate was unmasked and before the commit quorum is in the ledger, and is restarted on the same state
 * directory and port. The pending commit it kept (state/pending-commit.ts) makes the restarted coordinator
 * finish that same round - same round id, same aggregate - before any new round; the sites, which
 * refuse any other round on that model, sign it from the context they kept; the federation goes on and
 * `fedgate verify` accepts the ledger. Also with every site restarted from its state_dir, with the
 * signatures stored before the crash kept, and with a damaged pending commit (a clear start-up error).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { verifyLedger } from '../../coordinator/audit/verify-ledger.js';
import { PENDING_COMMIT_FILE } from '../../coordinator/state/pending-commit.js';
import { fromHex, toHex, utf8 } from '../../crypto/bytes.js';
import { sha256 } from '../../crypto/hash.js';
import { parseCommitBody, type CommitBody } from '../../crypto/secagg/commit-record-codec.js';
import { exists } from '../../platform/index.js';
import { SiteStateStore } from '../../participant/state/index.js';
import { verifyCommitRecord } from '../support/grpc-federation-checks.js';
import { GrpcFederation, type LogEntry } from '../support/grpc-federation.js';
import { createTestPki, type TestPki } from '../support/pki.js';

let pki: TestPki;
let harness: GrpcFederation | undefined;

beforeAll(async () => {
  pki = await createTestPki('fedgate commit restart CA');
});

afterEach(async () => {
  await harness?.close();
  harness = undefined;
});

const RESUMING = 'finishing the commit of a round whose aggregate was unmasked: re-collecting commit signatures for the same round from U3 before any new round starts';
const LATE_SIGNATURE = 'signed the commit of the round this site unmasked in, outside that round\'s session (the connection dropped or a side restarted)';

interface PendingOnDisk {
  readonly text: string;
  readonly commit: CommitBody;
}

async function pendingOnDisk(federation: GrpcFederation): Promise<PendingOnDisk> {
  const text = await readFile(join(federation.stateDirectory, PENDING_COMMIT_FILE), 'utf8');
  return { text, commit: (JSON.parse(text) as { commit: CommitBody }).commit };
}

/** Round id (hex) of a ledger body. */
function roundIdOf(body: CommitBody): string {
  return toHex(parseCommitBody(body, 'ledger').record.config.roundId);
}

async function until(condition: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * The checks every restart ends with: the round that was pending is the ledger's first record (same round
 * id, same aggregate), a later round committed after it, nothing was aborted or refused as a second
 * contribution, the pending file is gone and `fedgate verify` accepts the ledger.
 */
async function expectSameRoundCommittedThenMore(federation: GrpcFederation, crashed: { roundId: string; pending: PendingOnDisk }, rounds: number): Promise<void> {
  const ledger = await federation.ledgerFiles();
  expect(ledger).toHaveLength(rounds);
  const first = ledger[0]?.body as CommitBody;
  expect(roundIdOf(first)).toBe(crashed.roundId);
  expect(first.aggregateHash).toBe(crashed.pending.commit.aggregateHash);
  expect(first.newModelHash).toBe(crashed.pending.commit.newModelHash);
  expect(first.survivors).toEqual(crashed.pending.commit.survivors);
  // Round 2 starts from that round's model r+1 under a new, higher counter.
  const second = ledger[1]?.body as CommitBody;
  expect(second.previousModelHash).toBe(first.newModelHash);
  expect(BigInt(second.roundCounter)).toBeGreaterThan(BigInt(first.roundCounter));
  // The pending round never started again, and no round was aborted or refused as a second contribution.
  expect(federation.events.filter((event) => event.type === 'round_started' && event.roundId === crashed.roundId)).toHaveLength(1);
  expect(federation.events.filter((event) => event.type === 'round_aborted')).toEqual([]);
  expect(federation.coordinatorLines('site refused or left the round').map((entry) => entry['reason'])).not.toContain('MODEL_ALREADY_CONTRIBUTED');
  expect(await exists(join(federation.stateDirectory, PENDING_COMMIT_FILE))).toBe(false);
  for (const record of ledger) verifyCommitRecord(record, pki.ca.certificatePem);
  expect(await verifyLedger({ stateDirectory: federation.stateDirectory, caPem: pki.ca.certificatePem })).toMatchObject({ ok: true, rounds });
}

/** Starts a federation that crashes at `faultInjection` in round 1 and waits for the crash. */
async function crashInRoundOne(faultInjection: string, rounds = 2): Promise<{ federation: GrpcFederation; roundId: string; pending: PendingOnDisk }> {
  harness = await GrpcFederation.start({ pki, sites: 3, rounds, faultInjection });
  const federation = harness;
  await federation.crashed(120_000);
  const started = federation.events.filter((event) => event.type === 'round_started');
  expect(started).toHaveLength(1);
  expect(federation.committed()).toEqual([]);
  return { federation, roundId: started[0]?.roundId as string, pending: await pendingOnDisk(federation) };
}

describe('a coordinator that crashes after unmasking finishes the same round after a restart', () => {
  it('the same round commits (same id, same aggregate) once the sites sign it, then the federation goes on', async () => {
    const { federation, roundId, pending } = await crashInRoundOne('commit_pending:1');
    // The commit was kept before any site was asked to sign it.
    expect(roundIdOf(pending.commit)).toBe(roundId);
    expect(pending.commit.signatures).toEqual([]);
    const crashLog = federation.coordinatorLog.length;
    await federation.restartCoordinator();
    await federation.waitUntilDone(180_000);
    await expectSameRoundCommittedThenMore(federation, { roundId, pending }, 2);
    const afterRestart: LogEntry[] = federation.coordinatorLog.slice(crashLog);
    expect(afterRestart.some((entry) => entry.msg === RESUMING)).toBe(true);
    // Every site lost its round session with the connection and signed from the context it kept.
    const lateSigners = federation.siteLog.filter((entry) => entry.msg === LATE_SIGNATURE && entry['round'] === roundId).map((entry) => entry['site']);
    expect([...new Set(lateSigners)].sort()).toEqual([...federation.siteIds]);
  }, 300_000);

  it('also when every site restarts from its state_dir while the coordinator is down', async () => {
    const { federation, roundId, pending } = await crashInRoundOne('commit_pending:1');
    await Promise.all(federation.siteIds.map((siteId) => federation.stopSite(siteId)));
    // Each site kept the public context of the round it revealed in (and nothing it signed yet).
    for (const siteId of federation.siteIds) {
      const kept = (await SiteStateStore.open(federation.siteStateDirectory(siteId))).unmaskedRound(fromHex(roundId));
      expect(kept?.round.maskedSurvivors).toEqual(pending.commit.survivors);
      expect(kept?.signed).toBeUndefined();
    }
    await federation.restartCoordinator();
    const stores = new Map<string, SiteStateStore>();
    for (const siteId of federation.siteIds) {
      const store = await SiteStateStore.open(federation.siteStateDirectory(siteId));
      stores.set(siteId, store);
      federation.startSite(siteId, { state: store });
    }
    await federation.waitUntilDone(180_000);
    await expectSameRoundCommittedThenMore(federation, { roundId, pending }, 2);
    // Once the round's record verified, the sites dropped what they kept of it.
    await until(() => [...stores.values()].every((store) => store.unmaskedRound(fromHex(roundId)) === undefined), 10_000, 'the sites to drop the finished round');
  }, 300_000);

  it('keeps the signatures stored before the crash: after the restart only the member that had not signed is asked', async () => {
    let crashed = false;
    const requestsAfterRestart = new Map<string, number>();
    harness = await GrpcFederation.start({ pki, sites: 3, rounds: 1, faultInjection: 'commit_signature:2' });
    const federation = harness;
    const withheld = federation.siteIds[2] as string;
    // Before the crash one member never gets the CommitRequest: with t = 3 of 3 the quorum needs it.
    federation.rewriteToSite = (siteId, message) => {
      if (message.kind !== 'stage' || message.message.stage !== 'commit_request') return message;
      if (!crashed) return siteId === withheld ? undefined : message;
      requestsAfterRestart.set(siteId, (requestsAfterRestart.get(siteId) ?? 0) + 1);
      return message;
    };
    await federation.crashed(120_000);
    crashed = true;
    const roundId = federation.events.find((event) => event.type === 'round_started')?.roundId as string;
    const pending = await pendingOnDisk(federation);
    const keptSigners = pending.commit.signatures.map((entry) => entry.siteId);
    expect(keptSigners.sort()).toEqual(federation.siteIds.filter((siteId) => siteId !== withheld).sort());
    await federation.restartCoordinator();
    await federation.waitUntilDone(180_000);
    expect([...requestsAfterRestart.keys()]).toEqual([withheld]);
    const [record] = await federation.ledgerFiles();
    const body = record?.body as CommitBody;
    expect(roundIdOf(body)).toBe(roundId);
    expect(body.aggregateHash).toBe(pending.commit.aggregateHash);
    expect(body.signatures.map((entry) => entry.siteId).sort()).toEqual([...federation.siteIds].sort());
    // The kept signatures are recorded as they were made before the crash.
    for (const kept of pending.commit.signatures) expect(body.signatures.find((entry) => entry.siteId === kept.siteId)?.signature).toBe(kept.signature);
    expect(await verifyLedger({ stateDirectory: federation.stateDirectory, caPem: pki.ca.certificatePem })).toMatchObject({ ok: true, rounds: 1 });
  }, 300_000);

  it('a damaged pending commit stops the restart with an error naming the file; restored, the round commits; left after the ledger append, it is only removed', async () => {
    const { federation, roundId, pending } = await crashInRoundOne('commit_pending:1', 1);
    const path = join(federation.stateDirectory, PENDING_COMMIT_FILE);
    await writeFile(path, pending.text.slice(0, Math.floor(pending.text.length / 2)));
    await expect(federation.restartCoordinator()).rejects.toMatchObject({ name: 'StateError', reason: 'CORRUPT', message: expect.stringContaining(`${path} is not JSON`) as unknown });
    const otherAggregate = toHex(sha256(utf8('an aggregate the coordinator never stored')));
    await writeFile(path, pending.text.replace(pending.commit.aggregateHash, otherAggregate));
    await expect(federation.restartCoordinator()).rejects.toMatchObject({ reason: 'CORRUPT', message: expect.stringMatching(new RegExp(`its aggregate ${otherAggregate} is not in the model store`)) as unknown });
    // Nothing was dropped by the failed starts: with the file restored the same round commits.
    await writeFile(path, pending.text);
    await federation.restartCoordinator();
    await federation.waitUntilDone(180_000);
    const [record] = await federation.ledgerFiles();
    expect(roundIdOf(record?.body as CommitBody)).toBe(roundId);
    expect((record?.body as CommitBody).aggregateHash).toBe(pending.commit.aggregateHash);
    // A coordinator stopped after the ledger append and before it removed the file: the next start only removes it.
    await writeFile(path, pending.text);
    await federation.restartCoordinator();
    await federation.waitUntilDone(60_000);
    expect(await exists(path)).toBe(false);
    expect((await federation.ledgerFiles()).map((entry) => entry.recordHash)).toEqual([record?.recordHash]);
    expect(await verifyLedger({ stateDirectory: federation.stateDirectory, caPem: pki.ca.certificatePem })).toMatchObject({ ok: true, rounds: 1 });
  }, 300_000);
});
