/**
 * The commit of an unmasked round finished from the pending commit on disk (coordinator/round/
 * resumed-commit.ts), without the network: the kept signatures are verified again when it is restored (an
 * edited one stops the start), the CommitRequest goes to each member of U3 that has not signed as it
 * connects, new signatures are verified against the members' certificates like the live round's, and the
 * commit aborts only when refusals leave its quorum out of reach.
 */
import { EventEmitter, once } from 'node:events';
import pino from 'pino';
import { beforeAll, describe, expect, it } from 'vitest';
import { normalizeSerial } from '../../../../crypto/certificate.js';
import type { CommitRequestMessage } from '../../../../crypto/secagg/messages.js';
import { commitQuorum, type CommitRecord } from '../../../../crypto/secagg/server-commit.js';
import { commitTranscript, roundContext } from '../../../../crypto/secagg/transcript.js';
import { signMessage } from '../../../../crypto/signature.js';
import { ResumedCommit, type ResumedCommitOptions } from '../../../../coordinator/round/resumed-commit.js';
import type { CoordinatorToSite } from '../../../../coordinator/round/round-messages.js';
import type { PendingCommit } from '../../../../coordinator/state/pending-commit.js';
import { signRecord, unsignedRecord } from '../../../support/commit-records.js';
import { TEST_MODEL_HASH, TEST_OPTIMIZER_HASH, cachedFederation, type TestFederation } from '../../../support/secagg-sim.js';

const START = { counter: 7n, modelHash: TEST_MODEL_HASH, optimizerStateHash: TEST_OPTIMIZER_HASH };
const METRICS = { participants: 4, survivors: 4, evalLossSum: 1, evalCorrect: 1, evalExamples: 2, weightSum: 1 };

let federation: TestFederation;
let unsigned: CommitRecord;
let required: number;

beforeAll(() => {
  federation = cachedFederation(4, 'resume-');
  unsigned = unsignedRecord({ previous: START, participants: federation.sites.map((site) => site.siteId) });
  required = commitQuorum(unsigned.maskedSurvivors.length, unsigned.config.reconstructionThreshold);
}, 300_000);

/** Connected sites and what was sent to them: the coordinator's site directory, in memory. */
class Sites {
  readonly sent: { siteId: string; message: CoordinatorToSite }[] = [];
  private readonly connected = new Set<string>();
  private readonly events = new EventEmitter();

  connect(siteId: string): void {
    this.connected.add(siteId);
    this.events.emit('changed');
  }

  eligible(): { siteId: string }[] {
    return [...this.connected].map((siteId) => ({ siteId }));
  }

  async changed(timeoutMs: number, signal?: AbortSignal): Promise<void> {
    const timeout = AbortSignal.timeout(timeoutMs);
    await once(this.events, 'changed', { signal: signal === undefined ? timeout : AbortSignal.any([timeout, signal]) }).catch(() => undefined);
  }

  send(siteId: string, message: CoordinatorToSite): void {
    this.sent.push({ siteId, message });
  }

  requestsTo(siteId: string): number {
    return this.sent.filter((entry) => entry.siteId === siteId && entry.message.kind === 'stage' && entry.message.message.stage === 'commit_request').length;
  }
}

function pendingSignedBy(signers: readonly string[]): PendingCommit {
  const record = signRecord(unsigned, signers.map((siteId) => federation.site(siteId)));
  return { record, certificates: new Map(record.maskedSurvivors.map((siteId) => [siteId, federation.site(siteId).certificatePem])), metrics: METRICS, requestedAt: new Date() };
}

function resumed(pending: PendingCommit, sites: Sites, overrides: Partial<ResumedCommitOptions> = {}): ResumedCommit {
  return new ResumedCommit({ pending, trust: federation.trust, transport: sites, presence: sites, logger: pino({ level: 'silent' }), source: 'pending-commit.json', ...overrides });
}

function signature(siteId: string, record: CommitRecord = unsigned): { kind: 'stage'; message: { stage: 'commit'; roundId: Uint8Array } & CommitRecord['hashes'] & { signature: Uint8Array } } {
  const transcript = commitTranscript(roundContext(record.config), record.keyListHash, record.hashes, record.maskedSurvivors);
  return { kind: 'stage', message: { stage: 'commit', roundId: record.config.roundId, ...record.hashes, signature: signMessage(federation.site(siteId).privateKey, transcript) } };
}

async function until(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('ResumedCommit', () => {
  it('keeps the verified signatures, asks only the members that have not signed as they connect, and commits the same round', async () => {
    const [first, second, third, fourth] = unsigned.maskedSurvivors as [string, string, string, string];
    expect(required).toBe(3);
    const sites = new Sites();
    const progress: CommitRecord[] = [];
    const commit = resumed(pendingSignedBy([first, second]), sites, { onCommitSignature: (record) => progress.push(record) });
    expect(commit.progress().signatures.map((entry) => entry.siteId)).toEqual([first, second]);
    const done = commit.run();
    for (const siteId of unsigned.maskedSurvivors) sites.connect(siteId);
    await until(() => sites.requestsTo(third) === 1 && sites.requestsTo(fourth) === 1);
    expect(sites.requestsTo(first) + sites.requestsTo(second)).toBe(0);
    const request = sites.sent.find((entry) => entry.siteId === third)?.message as { message: CommitRequestMessage };
    expect(request.message).toEqual({ stage: 'commit_request', roundId: unsigned.config.roundId, ...unsigned.hashes });
    commit.receive(third, signature(third));
    const outcome = await done;
    expect(outcome.status).toBe('committed');
    const record = (outcome as { record: CommitRecord }).record;
    expect(record.signatures.map((entry) => entry.siteId)).toEqual([first, second, third]);
    expect(record.signatures.every((entry) => entry.certificate === federation.site(entry.siteId).certificatePem)).toBe(true);
    expect({ ...record, signatures: [] }).toEqual({ ...unsigned, signatures: [] });
    expect(progress.at(-1)?.signatures).toHaveLength(3);
  });

  it('refuses signatures it cannot record: another round, another stage, a non-member, a forged one, a repeat', () => {
    const [first, second] = unsigned.maskedSurvivors as [string, string];
    const commit = resumed(pendingSignedBy([first]), new Sites());
    const otherRound = unsignedRecord({ previous: START, participants: unsigned.config.participants });
    expect(() => commit.receive(second, signature(second, otherRound))).toThrow(expect.objectContaining({ reason: 'WRONG_ROUND' }));
    expect(() => commit.receive(second, { kind: 'stage', message: { stage: 'consistency_check', roundId: unsigned.config.roundId, signature: new Uint8Array(256) } })).toThrow(
      expect.objectContaining({ reason: 'STAGE_CLOSED' }),
    );
    expect(() => commit.receive('resume-outsider', signature(second))).toThrow(expect.objectContaining({ reason: 'UNEXPECTED_SENDER' }));
    const forged = signature(second);
    forged.message.signature[0] = (forged.message.signature[0] as number) ^ 1;
    expect(() => commit.receive(second, forged)).toThrow(expect.objectContaining({ reason: 'BAD_SIGNATURE' }));
    expect(() => commit.receive(first, signature(first))).toThrow(expect.objectContaining({ reason: 'DUPLICATE_MESSAGE' }));
    expect(commit.progress().signatures.map((entry) => entry.siteId)).toEqual([first]);
  });

  it('an edited kept signature stops the restore with CORRUPT, naming the file and the signer', () => {
    const pending = pendingSignedBy(unsigned.maskedSurvivors.slice(0, 2));
    const tampered = pending.record.signatures.map((entry, index) => (index === 1 ? { ...entry, signature: new Uint8Array(entry.signature).fill(9, 0, 4) } : entry));
    const error = (() => {
      try {
        resumed({ ...pending, record: { ...pending.record, signatures: tampered } }, new Sites());
        return undefined;
      } catch (caught) {
        return caught;
      }
    })();
    expect(error).toMatchObject({ name: 'StateError', reason: 'CORRUPT' });
    expect((error as Error).message).toMatch(new RegExp(`pending-commit\\.json: the kept commit signature of ${unsigned.maskedSurvivors[1] ?? ''} does not verify`));
  });

  it('leaves out a kept signature whose signer was revoked since, and never asks that member again (a revoked certificate never signs)', async () => {
    const [first, second, third] = unsigned.maskedSurvivors as [string, string, string];
    const revoked = { ...federation.trust, revokedSerials: new Set([normalizeSerial(federation.site(first).serial)]) };
    const sites = new Sites();
    const commit = resumed(pendingSignedBy([first, second]), sites, { trust: revoked });
    expect(commit.progress().signatures.map((entry) => entry.siteId)).toEqual([second]);
    expect(commit.committedRecord()).toBeUndefined();
    const controller = new AbortController();
    const done = commit.run(controller.signal);
    sites.connect(first);
    sites.connect(third);
    await until(() => sites.requestsTo(third) === 1);
    expect(sites.requestsTo(first)).toBe(0);
    controller.abort();
    expect(await done).toMatchObject({ status: 'pending', reason: 'COORDINATOR_STOPPING' });
  });

  it('aborts (announced to U) only when refusals leave the quorum out of reach', async () => {
    const [first, second, third] = unsigned.maskedSurvivors as [string, string, string];
    const sites = new Sites();
    const commit = resumed(pendingSignedBy([first]), sites);
    const done = commit.run();
    commit.receive(second, { kind: 'refusal', roundId: unsigned.config.roundId, reason: 'COMMIT_MISMATCH', message: 'x' });
    // One refusal: 3 of 4 can still sign.
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(sites.sent.filter((entry) => entry.message.kind === 'abort')).toEqual([]);
    commit.receive(third, { kind: 'refusal', roundId: unsigned.config.roundId, reason: 'COMMIT_MISMATCH', message: 'x' });
    const outcome = await done;
    expect(outcome).toMatchObject({ status: 'aborted', reason: 'COMMIT_QUORUM_MISSING' });
    expect((outcome as { message: string }).message).toContain(`${second}, ${third} refused to sign`);
    expect(sites.sent.filter((entry) => entry.message.kind === 'abort').map((entry) => entry.siteId)).toEqual(unsigned.config.participants);
  });

  it('commits at once when the kept signatures already make the quorum (a crash before the ledger append)', async () => {
    const sites = new Sites();
    const outcome = await resumed(pendingSignedBy(unsigned.maskedSurvivors.slice(0, required)), sites).run();
    expect(outcome.status).toBe('committed');
    expect(sites.sent).toEqual([]);
  });
});
