/**
 * `fedgate verify` (coordinator/audit/verify-ledger.ts) on synthetic ledgers: honest rounds with real
 * aggregates, models and signatures, written without training (test/support/synthetic-ledger.ts). Each
 * test breaks one thing the verifier itself decides - where the chain starts, what it recomputes, which
 * options it honours, how it names a failure - so a verifier that skips or loosens that step fails here;
 * the link checks it shares with the sites are tested in test/unit/crypto/secagg/commit-chain.test.ts,
 * the forgeries of a trained ledger in test/integration/ledger-forgeries.test.ts.
 */
import { cp, mkdir, mkdtemp, readdir, rm, unlink } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromHex, toHex, utf8 } from '../../../../crypto/bytes.js';
import { sha256 } from '../../../../crypto/hash.js';
import type { CommitBody } from '../../../../crypto/secagg/commit-record-codec.js';
import type { CommitRecord } from '../../../../crypto/secagg/server-commit.js';
import { verifyLedger, type VerifyLedgerOptions, type VerifyLedgerResult } from '../../../../coordinator/audit/verify-ledger.js';
import { readLedgerDirectory } from '../../../../coordinator/state/ledger.js';
import { syntheticTask, writeSyntheticLedger, type SyntheticLedger } from '../../../support/synthetic-ledger.js';
import { COMMITTED_AT } from '../../../support/commit-records.js';
import { forgeCommit, storeAlteredModel, storeBlob, writeLedger } from '../../../support/ledger-forge.js';
import { cachedFederation, type TestFederation } from '../../../support/secagg-sim.js';

let federation: TestFederation;
let work: string;
let ledger: SyntheticLedger;

beforeAll(async () => {
  federation = cachedFederation(3, 'audit-');
  work = await mkdtemp(join(tmpdir(), 'fedgate-verify-unit-'));
  ledger = await writeSyntheticLedger(join(work, 'honest'), { federation, rounds: 3 });
}, 120_000);

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

let copies = 0;
async function copyState(): Promise<string> {
  const target = join(work, `copy-${++copies}`);
  await cp(ledger.stateDirectory, target, { recursive: true });
  return target;
}

function verify(stateDirectory: string, options: Partial<VerifyLedgerOptions> = {}): Promise<VerifyLedgerResult> {
  return verifyLedger({ stateDirectory, caPem: federation.caPem, ...options });
}

/** The honest ledger with round `round` (1-based) replaced by `forged`, verified. */
async function verifyWith(round: number, forged: CommitBody, options: Partial<VerifyLedgerOptions> = {}): Promise<VerifyLedgerResult> {
  const state = await copyState();
  await writeLedger(state, ledger.bodies.map((body, index) => (index === round - 1 ? forged : body)));
  return verify(state, options);
}

/** `body` edited and re-signed by all its survivors, digests recomputed: only the edit is wrong. */
function forge(round: number, edit: (record: CommitRecord) => CommitRecord): CommitBody {
  const body = ledger.bodies[round - 1] as CommitBody;
  return forgeCommit(body, edit, body.survivors.map((siteId) => federation.site(siteId)));
}

function expectProblem(result: VerifyLedgerResult, round: number, problem: string | RegExp): void {
  expect(result).toMatchObject({ ok: false, round, roundsVerified: round - 1 });
  if (!result.ok) expect(result.problem).toMatch(problem);
}

const short = (hash: Uint8Array | string): string => (typeof hash === 'string' ? hash : toHex(hash)).slice(0, 16);
const other = (label: string): Uint8Array => sha256(utf8(label));

describe('fedgate verify accepts', () => {
  it('an honest ledger, recomputing every model, and reports its head and the signatures it checked', async () => {
    const records = await readLedgerDirectory(join(ledger.stateDirectory, 'ledger'));
    expect(await verify(ledger.stateDirectory)).toEqual({ ok: true, rounds: 3, headHash: records.at(-1)?.recordHash, signaturesChecked: 9 });
  });

  it('an empty ledger, as zero rounds at the genesis hash', async () => {
    const state = join(work, 'empty');
    await mkdir(join(state, 'ledger'), { recursive: true });
    expect(await verify(state)).toEqual({ ok: true, rounds: 0, headHash: '0'.repeat(64), signaturesChecked: 0 });
  });

  it('the ledger alone when told not to recompute models and given the task, and writes nothing to the state directory', async () => {
    const state = await copyState();
    await rm(join(state, 'models'), { recursive: true });
    expect(await verify(state, { recomputeModels: false, task: { document: ledger.task } })).toMatchObject({ ok: true, rounds: 3, signaturesChecked: 9 });
    expect(existsSync(join(state, 'models'))).toBe(false);
  });

  it('without recomputing, a new model that the stored artefacts do not produce (the option skips exactly that check)', async () => {
    const state = await copyState();
    const body = ledger.bodies[2] as CommitBody;
    const altered = await storeAlteredModel(state, body.newModelHash, 0.25);
    const forged = forge(3, (record) => ({ ...record, hashes: { ...record.hashes, newModelHash: fromHex(altered) } }));
    await writeLedger(state, [...ledger.bodies.slice(0, 2), forged]);
    expect(await verify(state, { recomputeModels: false, task: { document: ledger.task } })).toMatchObject({ ok: true, rounds: 3 });
    expect(await verify(state, { recomputeModels: false })).toMatchObject({ ok: true, rounds: 3 });
    expect(await verify(state)).toMatchObject({ ok: false, round: 3 });
  });

  it("the task given on the command line when the state directory's models/ lacks the task document", async () => {
    const state = await copyState();
    await unlink(join(state, 'models', `${ledger.taskHash}.bin`));
    expect(await verify(state, { task: { document: ledger.task } })).toMatchObject({ ok: true, rounds: 3 });
  });

  it("without recomputing, when models/ holds the task but not its initial model (the task gives the parameter count)", async () => {
    const state = await copyState();
    await unlink(join(state, 'models', `${ledger.task.initialModel.sha256}.bin`));
    expect(await verify(state, { recomputeModels: false })).toMatchObject({ ok: true, rounds: 3 });
  });

  it('signatures of a site revoked only after the commit', async () => {
    const later = new Date(COMMITTED_AT.getTime() + 60_000);
    const revocations = [{ serial: federation.sites[0]?.serial as string, revokedAt: later }];
    expect(await verify(ledger.stateDirectory, { revocations })).toMatchObject({ ok: true, rounds: 3 });
  });
});

describe('fedgate verify refuses', () => {
  it('a state directory with no ledger, naming the directory', async () => {
    const missing = join(work, 'no-such-state');
    await expect(verify(missing)).rejects.toThrow(`cannot read the ledger in ${missing}: `);
  });

  it('a broken hash chain, naming the first bad record and the rounds verified before it (two-digit sequence numbers)', async () => {
    // The hash chain is checked before any record is read as a commit: twelve copies of one body will do.
    const state = await copyState();
    await writeLedger(state, Array.from({ length: 12 }, () => ledger.bodies[0] as CommitBody));
    await unlink(join(state, 'ledger', '00000011.json'));
    expectProblem(await verify(state), 11, /^record 11: found sequence 12 /);
  });

  it('a record whose body is not a commit, even with the hash chain recomputed', async () => {
    expectProblem(await verifyWith(2, { kind: 'not a commit' } as unknown as CommitBody), 2, /^record 2: body\.kind must be /);
  });

  it("a ledger whose task document is neither in models/ nor given, saying where to find it", async () => {
    const state = await copyState();
    await unlink(join(state, 'models', `${ledger.taskHash}.bin`));
    expectProblem(await verify(state), 1, `the task document ${ledger.taskHash} of round 1 is not in the state directory's models/: copy models/ or pass the task (--task)`);
    await rm(join(state, 'models'), { recursive: true });
    expectProblem(await verify(state, { recomputeModels: false }), 1, /^the task document [0-9a-f]{64} of round 1 is not in the state directory's models\//);
  });

  it('a ledger that does not start from the initial model of the task given on the command line', async () => {
    const pinned = syntheticTask({ kind: 'fedavgm', learningRate: 1, momentum: 0.5 }, 2);
    expect(pinned.initialModel.sha256).not.toBe(ledger.task.initialModel.sha256);
    expectProblem(await verify(ledger.stateDirectory, { task: { document: pinned } }), 1, `round 1 starts from model ${short(ledger.task.initialModel.sha256)}..., but the task pins initial model ${short(pinned.initialModel.sha256)}...`);
  });

  it("a round 1 that starts from another model than the task's, naming both", async () => {
    const start = other('a model nobody pinned');
    const forged = forge(1, (record) => ({ ...record, config: { ...record.config, modelHash: start }, hashes: { ...record.hashes, previousModelHash: start } }));
    expectProblem(await verifyWith(1, forged), 1, `round 1 starts from model ${short(start)}..., but the task pins initial model ${short(ledger.task.initialModel.sha256)}...`);
  });

  it("a round n that starts from another model than round n-1's, naming both", async () => {
    const start = other('a model round 1 did not produce');
    const forged = forge(2, (record) => ({ ...record, config: { ...record.config, modelHash: start }, hashes: { ...record.hashes, previousModelHash: start } }));
    const produced = (ledger.bodies[0] as CommitBody).newModelHash;
    expectProblem(await verifyWith(2, forged), 2, `round 2 starts from model ${short(start)}..., but round 1 produced ${short(produced)}...`);
  });

  it("a round 1 that starts from another server-optimiser state than the task's, naming both", async () => {
    const state = other('a velocity the coordinator chose');
    const pinned = (ledger.records[0] as CommitRecord).config.optimizerStateHash;
    const forged = forge(1, (record) => ({ ...record, config: { ...record.config, optimizerStateHash: state } }));
    expectProblem(await verifyWith(1, forged), 1, `round 1 starts from server-optimiser state ${short(state)}..., but the task pins initial state ${short(pinned)}...`);
  });

  it("a round n that starts from another server-optimiser state than round n-1's, naming both", async () => {
    const state = other('a velocity round 2 did not produce');
    const forged = forge(3, (record) => ({ ...record, config: { ...record.config, optimizerStateHash: state } }));
    const produced = (ledger.bodies[1] as CommitBody).optimizerStateHash;
    expectProblem(await verifyWith(3, forged), 3, `round 3 starts from server-optimiser state ${short(state)}..., but round 2 produced ${short(produced)}...`);
  });

  it("any other broken link with the link check's own words", async () => {
    const body = ledger.bodies[1] as CommitBody;
    const forged = forgeCommit(body, (record) => record, [federation.site(body.survivors[0] as string)]);
    expectProblem(await verifyWith(2, forged), 2, /^1 valid commit signatures, 3 needed \(more than half of 3 survivors and at least t = 3\)$/);
  });

  it('a new model that model r, the aggregate and the optimiser state do not produce, naming both hashes', async () => {
    const state = await copyState();
    const body = ledger.bodies[2] as CommitBody;
    const altered = await storeAlteredModel(state, body.newModelHash, 0.25);
    await writeLedger(state, [...ledger.bodies.slice(0, 2), forge(3, (record) => ({ ...record, hashes: { ...record.hashes, newModelHash: fromHex(altered) } }))]);
    expectProblem(await verify(state), 3, `recomputing model r+1 from model r, the aggregate and the optimiser state gives ${short(body.newModelHash)}..., the ledger records ${short(altered)}...`);
    // Giving the task on the command line does not turn recomputation off.
    expectProblem(await verify(state, { task: { document: ledger.task } }), 3, /^recomputing model r\+1 /);
  });

  it('a new optimiser state that the server step does not produce', async () => {
    const state = await copyState();
    const stored = await storeBlob(state, utf8('a stored blob that is not the optimiser state'));
    await writeLedger(state, [...ledger.bodies.slice(0, 2), forge(3, (record) => ({ ...record, hashes: { ...record.hashes, optimizerStateHash: fromHex(stored) } }))]);
    expectProblem(await verify(state), 3, /^the recomputed server-optimiser state does not match the recorded hash$/);
  });

  it("a round whose stored aggregate is missing", async () => {
    const state = await copyState();
    const aggregate = (ledger.bodies[1] as CommitBody).aggregateHash;
    await unlink(join(state, 'models', `${aggregate}.bin`));
    expectProblem(await verify(state), 2, new RegExp(`^a stored artefact of this round is missing or damaged: no model ${aggregate} in `));
  });

  it('a round below the policy it is given, which the structural default accepts', async () => {
    const policy = { minParticipants: 4, minThreshold: 1, allowPlaintext: true, minToleratedColluders: 0, minNeighbourDegree: 0, completeGraphUpTo: 0, requireTwoThirdsThreshold: false };
    expect(await verify(ledger.stateDirectory, { policy })).toMatchObject({ ok: false, round: 1, roundsVerified: 0 });
    expect(await verify(ledger.stateDirectory, { policy: { ...policy, minParticipants: 3 } })).toMatchObject({ ok: true, rounds: 3 });
  });

  it('signatures of a site revoked before the commit', async () => {
    const earlier = new Date(COMMITTED_AT.getTime() - 60_000);
    const site = federation.sites[0];
    const result = await verify(ledger.stateDirectory, { revocations: [{ serial: site?.serial as string, revokedAt: earlier }] });
    expectProblem(result, 1, new RegExp(`^the certificate of signer ${site?.siteId} is not acceptable at commit time`));
  });
});

describe('the synthetic ledger', () => {
  it('has one file per round and stores every artefact the verifier reads', async () => {
    expect((await readdir(join(ledger.stateDirectory, 'ledger'))).sort()).toEqual(['00000001.json', '00000002.json', '00000003.json']);
    for (const body of ledger.bodies) {
      for (const hash of [body.previousModelHash, body.aggregateHash, body.newModelHash, body.optimizerStateHash]) {
        expect(existsSync(join(ledger.stateDirectory, 'models', `${hash}.bin`))).toBe(true);
      }
    }
  });
});
