/**
 * Warm start (issue 11, item 8), with real daemons over mutual TLS: federation B, whose task differs from
 * federation A's (another local learning rate, so another task hash and a new state directory), starts
 * from A's final model exported as ONNX. B's task names that model by its hash (initialModel { sha256,
 * warmStart: true }), so the hash each site pins covers it; the coordinator refuses a file of any other
 * hash, and every site downloads the model by hash and checks it before round 1. Round 1's evaluation -
 * of the model it starts from - shows the sites really started from A's model.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { exportCommittedModel, verifyLedger } from '../../coordinator/index.js';
import { warmStartWeights } from '../../model/initial-weights.js';
import { buildTrainingPlan } from '../../model/plan.js';
import { parseTaskDocument, taskHash, type PinnedTaskDocument } from '../../model/task.js';
import { pinWarmStart } from '../../model/task-pin.js';
import { modelHash } from '../../model/weight-codec.js';
import { readCommitBodies } from '../support/ledger-forge.js';
import { GrpcFederation } from '../support/grpc-federation.js';
import { DIGITS_MLP_TASK } from '../support/in-memory-federation.js';
import { createTestPki, type TestPki } from '../support/pki.js';

let pki: TestPki;
let harness: GrpcFederation | undefined;
/** Federation A's final model: its ONNX export, its model hash and an earlier model's export. */
let finalOnnx: Uint8Array;
let finalModelHash: string;
let roundOneOnnx: Uint8Array;
/** A's round 1 metrics: the sites' evaluation of a freshly initialised MLP. */
let coldAccuracy: number;
let taskB: PinnedTaskDocument;

beforeAll(async () => {
  pki = await createTestPki('fedgate warm start CA');
  const a = await GrpcFederation.start({ pki, sites: 3, rounds: 3 });
  try {
    await a.waitUntilDone(180_000);
    const exported = await exportCommittedModel(a.stateDirectory);
    finalOnnx = exported.onnx;
    finalModelHash = exported.modelHash;
    roundOneOnnx = (await exportCommittedModel(a.stateDirectory, { round: 1 })).onnx;
    const first = a.committed()[0];
    coldAccuracy = (first?.metrics?.evalCorrect ?? 0) / (first?.metrics?.evalExamples ?? 1);
  } finally {
    await a.close();
  }
  // B changes the task (a lower local learning rate) and starts from A's exported final model.
  const draft = parseTaskDocument({ ...DIGITS_MLP_TASK, optimizer: { kind: 'sgd', learningRate: 0.05 }, initialModel: undefined });
  const plan = buildTrainingPlan(draft);
  taskB = pinWarmStart(draft, modelHash(plan, warmStartWeights(finalOnnx, plan)));
}, 240_000);

afterEach(async () => {
  await harness?.close();
  harness = undefined;
});

describe('a federation that warm-starts from another federation\'s exported model', () => {
  it('names the model by its hash in the task: the ONNX export carries A\'s final model hash exactly', () => {
    expect(taskB.initialModel).toEqual({ sha256: finalModelHash, warmStart: true });
    expect(taskHash(taskB)).not.toBe(taskHash(DIGITS_MLP_TASK));
  });

  it('starts round 1 from that model at every site, and its ledger verifies from it', async () => {
    harness = await GrpcFederation.start({ pki, sites: 3, rounds: 1, task: taskB, initialModelFile: finalOnnx });
    await harness.waitUntilDone(120_000);
    const [round1] = harness.committed();
    // Round 1's metrics are the sites' evaluation of the model it starts from: A's final model, not a fresh MLP.
    const accuracy = (round1?.metrics?.evalCorrect ?? 0) / (round1?.metrics?.evalExamples ?? 1);
    expect(coldAccuracy).toBeLessThan(0.3);
    expect(accuracy).toBeGreaterThan(Math.max(0.5, coldAccuracy + 0.3));
    expect(round1?.survivors).toEqual(['site-1', 'site-2', 'site-3']);
    const [body] = await readCommitBodies(harness.stateDirectory);
    expect(body?.previousModelHash).toBe(finalModelHash);
    for (const siteId of harness.siteIds) {
      expect(harness.siteLog.some((entry) => entry.msg === 'task ready' && entry['site'] === siteId && entry['task'] === harness?.taskHash)).toBe(true);
    }
    const verified = await verifyLedger({ stateDirectory: harness.stateDirectory, caPem: pki.ca.certificatePem });
    expect(verified).toMatchObject({ ok: true, rounds: 1 });
  });

  it('refuses to start on a file of another hash, on no file, and on a file the task does not name, saying what to do', async () => {
    await expect(GrpcFederation.start({ pki, sites: 3, rounds: 1, task: taskB, initialModelFile: roundOneOnnx, startSites: false })).rejects.toThrow(
      new RegExp(`the initial model file holds weights whose model hash is [0-9a-f]{64}, but the task pins initialModel.sha256 ${finalModelHash}: give the file of the model the task names`),
    );
    await expect(GrpcFederation.start({ pki, sites: 3, rounds: 1, task: taskB, startSites: false })).rejects.toThrow(
      `the task starts from model ${finalModelHash} (initialModel.warmStart): set initial_model to that model's file`,
    );
    await expect(GrpcFederation.start({ pki, sites: 3, rounds: 1, initialModelFile: finalOnnx, startSites: false })).rejects.toThrow(
      /an initial model file was given, but the task builds its own initial weights .*`fedgate task hash TASK --initial-model FILE`/,
    );
  });
});
