/**
 * `fedgate verify` against forgeries that only one of its checks can catch. The ledger is a real one (two
 * committed rounds of an in-memory federation with real SecAgg+, training and signatures); each forgery
 * rewrites one round as a coordinator holding the sites' keys could - H(RoundConfig) and H(L) recomputed,
 * the commit re-signed, every record hash re-chained (test/support/ledger-forge.ts) - so the hash chain,
 * the digests and the signatures all check out, and the verifier must name the one thing that is wrong:
 *  - quorum: fewer valid signatures than more than half of U3 and at least t;
 *  - duplicate signer: a site's valid signature stored twice;
 *  - signer role: a valid CA-issued operator or coordinator certificate (CN = a survivor) signing;
 *  - U3 within U and L: a survivor outside the round's U, or outside its key list L;
 *  - model recomputation: a new model (or optimiser state) the aggregate does not produce;
 *  - previous-model link: round 2 starting from another model than round 1 produced, consistently
 *    recomputed and signed;
 *  - the chain from the task (crypto/secagg/commit-chain.ts, the link check sites use too): round 1 not
 *    starting from the task's pinned initial model, a round counter that does not increase, a task hash
 *    that changes, a server-optimiser state that is not the one the previous round produced.
 */
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromHex, toHex } from '../../crypto/bytes.js';
import { commitmentOf } from '../../crypto/secagg/transcript.js';
import { verifyLedger, type VerifyLedgerResult } from '../../coordinator/audit/verify-ledger.js';
import type { CommitBody } from '../../crypto/secagg/commit-record-codec.js';
import { encodeServerOptimizerState } from '../../model/server-optimizer.js';
import { subset } from '../../participant/data/dataset.js';
import { loadDigits } from '../../participant/data/digits.js';
import { normalize } from '../../participant/data/normalize.js';
import { partitionIid } from '../../participant/data/partition.js';
import { trainTestSplit } from '../../participant/data/split.js';
import { createInMemoryFederation, DIGITS_MLP_TASK, type InMemoryFederation } from '../support/in-memory-federation.js';
import {
  commitOf,
  forgeCommit,
  readCommitBodies,
  storeAlteredModel,
  storeBlob,
  storeNextModel,
  writeLedger,
  type LedgerSigner,
} from '../support/ledger-forge.js';

let harness: InMemoryFederation;
let work: string;
let bodies: CommitBody[];

beforeAll(async () => {
  const digits = normalize(await loadDigits(), DIGITS_MLP_TASK.normalization);
  const sites = partitionIid(digits, { clients: 3, seed: 11 }).map((indices) => trainTestSplit(subset(digits, indices), { testFraction: 0.2, seed: 1 }));
  harness = await createInMemoryFederation({ sites, rounds: 2, minParticipants: 3 });
  await harness.federation.run();
  work = await mkdtemp(join(tmpdir(), 'fedgate-forge-'));
  bodies = await readCommitBodies(harness.stateDirectory);
}, 180_000);

afterAll(async () => {
  await harness.close();
  await rm(work, { recursive: true, force: true });
});

let copies = 0;
async function copyState(): Promise<string> {
  const target = join(work, `state-${++copies}`);
  await cp(harness.stateDirectory, target, { recursive: true });
  return target;
}

/** The site's own key and participant certificate. */
function site(siteId: string): LedgerSigner {
  return harness.testFederation.site(siteId);
}

/** Every survivor of `body`, signing with its own participant key. */
function survivorsOf(body: CommitBody): LedgerSigner[] {
  return body.survivors.map(site);
}

function verify(state: string): Promise<VerifyLedgerResult> {
  return verifyLedger({ stateDirectory: state, caPem: harness.testFederation.caPem });
}

/** Writes `bodies` with round `round` (1-based) replaced, and verifies the result. */
async function verifyWith(state: string, round: number, forged: CommitBody): Promise<VerifyLedgerResult> {
  await writeLedger(state, bodies.map((body, index) => (index === round - 1 ? forged : body)));
  return verify(state);
}

function expectProblem(result: VerifyLedgerResult, round: number, problem: RegExp): void {
  expect(result).toMatchObject({ ok: false, round, roundsVerified: round - 1 });
  if (!result.ok) expect(result.problem).toMatch(problem);
}

describe('the forging tool', () => {
  it('re-signing and re-chaining an unchanged ledger keeps it valid', async () => {
    expect(bodies).toHaveLength(2);
    // Every survivor signed both rounds: the quorum forgery below has signatures to drop.
    for (const body of bodies) expect(body.signatures.map((entry) => entry.siteId)).toEqual(body.survivors);
    const state = await copyState();
    await writeLedger(state, bodies.map((body) => forgeCommit(body, (record) => record, survivorsOf(body))));
    expect(await verify(state)).toMatchObject({ ok: true, rounds: 2, signaturesChecked: 6 });
  });
});

describe('fedgate verify catches, with its own message,', () => {
  it('too few signatures for the quorum', async () => {
    const body = bodies[0] as CommitBody;
    const { config } = commitOf(body);
    // One signature fewer than the quorum max(floor(3 / 2) + 1, t), every one of them valid.
    const quorum = Math.max(Math.floor(body.survivors.length / 2) + 1, config.reconstructionThreshold);
    const signers = body.survivors.slice(0, quorum - 1).map((id) => site(id));
    const forged = forgeCommit(body, (record) => record, signers);
    expectProblem(await verifyWith(await copyState(), 1, forged), 1, new RegExp(`^${quorum - 1} valid commit signatures, ${quorum} needed \\(more than half of 3 survivors and at least t = \\d\\)$`));
  });

  it('a signer that signed twice', async () => {
    const body = bodies[0] as CommitBody;
    const first = body.survivors[0] as string;
    const forged = forgeCommit(body, (record) => record, [...survivorsOf(body), site(first)]);
    expectProblem(await verifyWith(await copyState(), 1, forged), 1, new RegExp(`^${first} signed twice$`));
  });

  it.each(['operator', 'coordinator'] as const)('a valid %s certificate signing for a survivor', async (role) => {
    const body = bodies[1] as CommitBody;
    const last = body.survivors.at(-1) as string;
    // Issued by the federation CA with CN = the survivor's id: only the role says it is not that site.
    const impostor = harness.testFederation.issue(last, { role });
    const signers = survivorsOf(body).map((signer) => (signer.siteId === last ? impostor : signer));
    const forged = forgeCommit(body, (record) => record, signers);
    expectProblem(
      await verifyWith(await copyState(), 2, forged),
      2,
      new RegExp(`^the certificate of signer ${last} is not acceptable at commit time .*has role "${role}", expected "participant"`),
    );
  });

  describe('a survivor outside U or L', () => {
    const outsider = 'mem-outsider';
    const randomEntry = (siteId: string) => ({ siteId, advertDigest: commitmentOf(new Uint8Array(randomBytes(32))), nonceCommitment: commitmentOf(new Uint8Array(randomBytes(32))) });

    it.each([
      ['in neither U nor L', (record: ReturnType<typeof commitOf>) => ({ ...record, maskedSurvivors: [...record.maskedSurvivors, outsider] })],
      [
        'in L but not in U',
        (record: ReturnType<typeof commitOf>) => ({ ...record, keyList: [...record.keyList, randomEntry(outsider)], maskedSurvivors: [...record.maskedSurvivors, outsider] }),
      ],
    ])('%s', async (_name, edit) => {
      const body = bodies[0] as CommitBody;
      // Three genuine signatures: still a quorum of four survivors (3 > 4 / 2).
      const forged = forgeCommit(body, edit, survivorsOf(body));
      expectProblem(await verifyWith(await copyState(), 1, forged), 1, new RegExp(`^survivor ${outsider} is not a member of the round's U and L$`));
    });

    it('in U but not in L', async () => {
      const body = bodies[0] as CommitBody;
      const dropped = body.survivors.at(-1) as string;
      const forged = forgeCommit(body, (record) => ({ ...record, keyList: record.keyList.filter((entry) => entry.siteId !== dropped) }), survivorsOf(body));
      expectProblem(await verifyWith(await copyState(), 1, forged), 1, new RegExp(`^survivor ${dropped} is not a member of the round's U and L$`));
    });
  });

  it('a new model that model r and the aggregate do not produce', async () => {
    const state = await copyState();
    const body = bodies[1] as CommitBody;
    // One weight of the genuine model r+1 shifted: a model nobody trained, stored where sites fetch it.
    const altered = await storeAlteredModel(state, body.newModelHash, 0.25);
    const forged = forgeCommit(body, (record) => ({ ...record, hashes: { ...record.hashes, newModelHash: fromHex(altered) } }), survivorsOf(body));
    expectProblem(await verifyWith(state, 2, forged), 2, /^recomputing model r\+1 from model r, the aggregate and the optimiser state gives [0-9a-f]{16}\.\.\., the ledger records [0-9a-f]{16}\.\.\.$/);
  });

  it('an optimiser state that the server step does not produce', async () => {
    const state = await copyState();
    const body = bodies[1] as CommitBody;
    const other = await storeBlob(state, encodeServerOptimizerState({ kind: 'fedavg', learningRate: 3 }, { velocity: new Float32Array(0) }));
    expect(other).not.toBe(body.optimizerStateHash);
    const forged = forgeCommit(body, (record) => ({ ...record, hashes: { ...record.hashes, optimizerStateHash: fromHex(other) } }), survivorsOf(body));
    expectProblem(await verifyWith(state, 2, forged), 2, /^the recomputed server-optimiser state does not match the recorded hash$/);
  });

  it("a round that starts from another model than the previous round's new model", async () => {
    const state = await copyState();
    const [round1, round2] = bodies as [CommitBody, CommitBody];
    expect(round2.previousModelHash).toBe(round1.newModelHash);
    // Round 2 restarts from round 1's starting model (discarding round 1), consistently: RoundConfig,
    // previous model, new model and optimiser state all recomputed, and every survivor signs it.
    const start = round1.previousModelHash;
    const { config } = commitOf(round2);
    const restarted = { ...config, modelHash: fromHex(start) };
    const next = await storeNextModel(state, restarted, start, round2.aggregateHash);
    const forged = forgeCommit(
      round2,
      (record) => ({
        ...record,
        config: restarted,
        hashes: { ...record.hashes, previousModelHash: fromHex(start), newModelHash: fromHex(next.newModelHash), optimizerStateHash: fromHex(next.optimizerStateHash) },
      }),
      survivorsOf(round2),
    );
    expect(forged.newModelHash).not.toBe(round2.newModelHash);
    expect(toHex(commitOf(forged).config.modelHash)).toBe(start);
    expectProblem(await verifyWith(state, 2, forged), 2, new RegExp(`^round 2 starts from model ${start.slice(0, 16)}\\.\\.\\., but round 1 produced ${round1.newModelHash.slice(0, 16)}\\.\\.\\.$`));
  });
});

describe('fedgate verify follows the chain from the task, and catches', () => {
  it("a round 1 that does not start from the task's pinned initial model", async () => {
    const state = await copyState();
    const round1 = bodies[0] as CommitBody;
    // Trap weights of the coordinator's choosing: the initial model with one weight moved, consistently
    // recomputed and signed by every survivor.
    const trap = await storeAlteredModel(state, round1.previousModelHash, 0.5);
    const { config } = commitOf(round1);
    const trapped = { ...config, modelHash: fromHex(trap) };
    const next = await storeNextModel(state, trapped, trap, round1.aggregateHash);
    const forged = forgeCommit(
      round1,
      (record) => ({ ...record, config: trapped, hashes: { ...record.hashes, previousModelHash: fromHex(trap), newModelHash: fromHex(next.newModelHash), optimizerStateHash: fromHex(next.optimizerStateHash) } }),
      survivorsOf(round1),
    );
    expectProblem(await verifyWith(state, 1, forged), 1, new RegExp(`^round 1 starts from model ${trap.slice(0, 16)}\\.\\.\\., but the task pins initial model ${round1.previousModelHash.slice(0, 16)}\\.\\.\\.$`));
  });

  it('a round counter that does not increase', async () => {
    const [round1, round2] = bodies as [CommitBody, CommitBody];
    const { config } = commitOf(round2);
    // Round 2 under round 1's counter (a fresh nonce, so the round id itself is new).
    const roundId = new Uint8Array(config.roundId);
    roundId.set(commitOf(round1).config.roundId.subarray(0, 8), 0);
    roundId.set(randomBytes(16), 8);
    const forged = forgeCommit(round2, (record) => ({ ...record, config: { ...config, roundId } }), survivorsOf(round2));
    expectProblem(await verifyWith(await copyState(), 2, forged), 2, new RegExp(`^round counter ${round1.roundCounter} is not above ${round1.roundCounter}, the counter of the chain head$`));
  });

  it('a task hash that changes between rounds', async () => {
    const round2 = bodies[1] as CommitBody;
    const { config } = commitOf(round2);
    const otherTask = new Uint8Array(randomBytes(32));
    const forged = forgeCommit(round2, (record) => ({ ...record, config: { ...config, taskHash: otherTask } }), survivorsOf(round2));
    expectProblem(await verifyWith(await copyState(), 2, forged), 2, new RegExp(`^the round trains task ${toHex(otherTask)}, the chain's task is ${toHex(config.taskHash)}$`));
  });

  it("a round whose server-optimiser state is not the previous round's", async () => {
    const state = await copyState();
    const [round1, round2] = bodies as [CommitBody, CommitBody];
    // Another learning rate: a state nobody committed, and round 2 consistently recomputed from it.
    const swapped = await storeBlob(state, encodeServerOptimizerState({ kind: 'fedavg', learningRate: 0.001 }, { velocity: new Float32Array(0) }));
    const { config } = commitOf(round2);
    const restarted = { ...config, optimizerStateHash: fromHex(swapped) };
    const next = await storeNextModel(state, restarted, round2.previousModelHash, round2.aggregateHash);
    const forged = forgeCommit(
      round2,
      (record) => ({ ...record, config: restarted, hashes: { ...record.hashes, newModelHash: fromHex(next.newModelHash), optimizerStateHash: fromHex(next.optimizerStateHash) } }),
      survivorsOf(round2),
    );
    expectProblem(
      await verifyWith(state, 2, forged),
      2,
      new RegExp(`^round 2 starts from server-optimiser state ${swapped.slice(0, 16)}\\.\\.\\., but round 1 produced ${round1.optimizerStateHash.slice(0, 16)}\\.\\.\\.$`),
    );
  });
});
