/**
 * Participant-level DP over real gRPC and mutual TLS (test/support/grpc-federation.ts): real participant
 * daemons read the task's privacy.participantLevel from the task document, check every RoundConfig's
 * distributedDp against it before any key, encode with the distributed discrete Gaussian, and recompute
 * the model from the decoded aggregate before signing; the ledger's RoundConfig carries the DP fields.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { TaskDocument } from '../../model/task.js';
import { verifyCommitRecord } from '../support/grpc-federation-checks.js';
import { GrpcFederation } from '../support/grpc-federation.js';
import { DIGITS_MLP_TASK } from '../support/in-memory-federation.js';
import { createTestPki, type TestPki } from '../support/pki.js';

const participantLevel = { mechanism: 'discrete_gaussian' as const, clipNorm: 1, noiseMultiplier: 0.3, toleratedColluders: 1, ringBits: 24 };
const task: TaskDocument = { ...DIGITS_MLP_TASK, privacy: { participantLevel } };

let pki: TestPki;
let harness: GrpcFederation | undefined;

beforeAll(async () => {
  pki = await createTestPki('fedgate distributed dp CA');
});

afterEach(async () => {
  await harness?.close();
  harness = undefined;
});

describe('participant-level distributed DP over mutual TLS', () => {
  it('commits a round whose RoundConfig carries the task DP, signed by every site', async () => {
    harness = await GrpcFederation.start({ pki, sites: 4, rounds: 1, task });
    await harness.waitUntilDone(90_000);
    expect(harness.committed()).toHaveLength(1);
    expect(harness.events.filter((event) => event.type === 'round_aborted')).toEqual([]);
    const started = harness.events.find((event) => event.type === 'round_started');
    expect(started?.distributedDp).toMatchObject({ ringBits: 24, noiseStd: 0.3 });
    const [record] = await harness.ledgerFiles();
    const verification = verifyCommitRecord(record!, pki.ca.certificatePem);
    expect(verification.config.distributedDp).toMatchObject({ mechanism: 'discrete_gaussian', clipNorm: 1, noiseMultiplier: 0.3, toleratedColluders: 1, ringBits: 24 });
    expect([...verification.validSigners].sort()).toEqual([...harness.siteIds].sort());
  }, 120_000);
});
