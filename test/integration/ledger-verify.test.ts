/**
 * `fedgate verify` on a real ledger (3 committed rounds of an in-memory federation with real SecAgg+
 * and signatures), and on copies tampered with: one byte changed, a round removed, two rounds swapped,
 * and a signature from a non-participant. Where a forger could also recompute the record hashes, the
 * test re-chains them, so what must catch the forgery is the signature and model checks, not the chain.
 */
import { cp, mkdtemp, readFile, readdir, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyLedger } from '../../coordinator/audit/verify-ledger.js';
import { recordHash, GENESIS_HASH, type LedgerRecord } from '../../coordinator/state/ledger.js';
import type { JsonValue } from '../../coordinator/state/canonical-json.js';
import { subset } from '../../participant/data/dataset.js';
import { loadDigits } from '../../participant/data/digits.js';
import { normalize } from '../../participant/data/normalize.js';
import { partitionIid } from '../../participant/data/partition.js';
import { trainTestSplit } from '../../participant/data/split.js';
import { runCli } from '../../cli/run.js';
import { createInMemoryFederation, DIGITS_MLP_TASK, type InMemoryFederation } from '../support/in-memory-federation.js';

let harness: InMemoryFederation;
let work: string;

beforeAll(async () => {
  const digits = normalize(await loadDigits(), DIGITS_MLP_TASK.normalization);
  const sites = partitionIid(digits, { clients: 3, seed: 5 }).map((indices) => trainTestSplit(subset(digits, indices), { testFraction: 0.2, seed: 1 }));
  harness = await createInMemoryFederation({ sites, rounds: 3, minParticipants: 3 });
  await harness.federation.run();
  work = await mkdtemp(join(tmpdir(), 'fedgate-verify-'));
}, 120_000);

afterAll(async () => {
  await harness.close();
  await rm(work, { recursive: true, force: true });
});

async function copyState(name: string): Promise<string> {
  const target = join(work, name);
  await cp(harness.stateDirectory, target, { recursive: true });
  return target;
}

function caPem(): string {
  return harness.testFederation.caPem;
}

async function readRecords(state: string): Promise<LedgerRecord[]> {
  const directory = join(state, 'ledger');
  const names = (await readdir(directory)).filter((name) => name.endsWith('.json')).sort();
  return Promise.all(names.map(async (name) => JSON.parse(await readFile(join(directory, name), 'utf8')) as LedgerRecord));
}

/** Writes records back with sequence numbers and hashes recomputed, as a forger with write access could. */
async function writeRechained(state: string, bodies: JsonValue[]): Promise<void> {
  const directory = join(state, 'ledger');
  for (const name of await readdir(directory)) await unlink(join(directory, name));
  let previous = GENESIS_HASH;
  for (const [index, body] of bodies.entries()) {
    const sequence = index + 1;
    const hash = recordHash(sequence, previous, body);
    await writeFile(join(directory, `${String(sequence).padStart(8, '0')}.json`), JSON.stringify({ formatVersion: 1, sequence, previousRecordHash: previous, body, recordHash: hash }));
    previous = hash;
  }
}

describe('fedgate verify', () => {
  it('passes on the ledger the federation wrote, recomputing every model', async () => {
    const result = await verifyLedger({ stateDirectory: harness.stateDirectory, caPem: caPem() });
    expect(result).toMatchObject({ ok: true, rounds: 3 });
    if (result.ok) expect(result.signaturesChecked).toBeGreaterThanOrEqual(3 * 2);
  });

  it('fails on one changed byte and names the round', async () => {
    const state = await copyState('byte');
    const path = join(state, 'ledger', '00000002.json');
    const text = await readFile(path, 'utf8');
    const at = text.indexOf('"newModelHash": "') + '"newModelHash": "'.length;
    await writeFile(path, text.slice(0, at) + (text[at] === 'a' ? 'b' : 'a') + text.slice(at + 1));
    expect(await verifyLedger({ stateDirectory: state, caPem: caPem() })).toMatchObject({ ok: false, round: 2 });
  });

  it('fails on a removed round, naming where the gap is', async () => {
    const state = await copyState('removed');
    await unlink(join(state, 'ledger', '00000002.json'));
    expect(await verifyLedger({ stateDirectory: state, caPem: caPem() })).toMatchObject({ ok: false, round: 2 });
    // Re-chained without round 2: the model chain breaks at the round after the gap.
    const records = await readRecords(state);
    await writeRechained(state, records.map((record) => record.body));
    const result = await verifyLedger({ stateDirectory: state, caPem: caPem() });
    expect(result).toMatchObject({ ok: false, round: 2 });
    if (!result.ok) expect(result.problem).toMatch(/starts from model/);
  });

  it('fails on two swapped rounds', async () => {
    const state = await copyState('swapped');
    const records = await readRecords(state);
    const bodies = records.map((record) => record.body);
    await writeRechained(state, [bodies[0] as JsonValue, bodies[2] as JsonValue, bodies[1] as JsonValue]);
    const result = await verifyLedger({ stateDirectory: state, caPem: caPem() });
    expect(result).toMatchObject({ ok: false, round: 2 });
  });

  it('fails on a signature from a non-participant, even with the chain recomputed', async () => {
    const state = await copyState('intruder');
    const records = await readRecords(state);
    const bodies = records.map((record) => structuredClone(record.body) as { signatures: { siteId: string; signature: string; certificate: string }[] });
    const outsider = harness.testFederation.issue('mem-outsider');
    const first = bodies[0]?.signatures[0];
    bodies[0]?.signatures.push({ siteId: outsider.siteId, signature: first?.signature ?? '', certificate: outsider.certificatePem });
    await writeRechained(state, bodies as unknown as JsonValue[]);
    const result = await verifyLedger({ stateDirectory: state, caPem: caPem() });
    expect(result).toMatchObject({ ok: false, round: 1 });
    if (!result.ok) expect(result.problem).toMatch(/mem-outsider, which is not a survivor/);
  });

  it('fails when a signature is replaced by another of the same signer, or a signer was revoked before the commit', async () => {
    const state = await copyState('forged');
    const records = await readRecords(state);
    const bodies = records.map((record) => structuredClone(record.body) as { signatures: { siteId: string; signature: string; certificate: string }[]; committedAt: string });
    const round3 = bodies[2] as (typeof bodies)[number];
    const round1 = bodies[0] as (typeof bodies)[number];
    const signer = round3.signatures[0]?.siteId;
    const older = round1.signatures.find((entry) => entry.siteId === signer);
    if (round3.signatures[0] !== undefined && older !== undefined) round3.signatures[0].signature = older.signature;
    await writeRechained(state, bodies as unknown as JsonValue[]);
    const forged = await verifyLedger({ stateDirectory: state, caPem: caPem() });
    expect(forged).toMatchObject({ ok: false, round: 3 });
    if (!forged.ok) expect(forged.problem).toMatch(/does not verify/);

    const revokedSerial = harness.testFederation.site(signer as string).serial;
    const revokedAt = new Date(new Date(round1.committedAt).getTime() - 1000);
    const revoked = await verifyLedger({ stateDirectory: harness.stateDirectory, caPem: caPem(), revocations: [{ serial: revokedSerial, revokedAt }] });
    expect(revoked).toMatchObject({ ok: false, round: 1 });
    if (!revoked.ok) expect(revoked.problem).toMatch(/revoked/);
  });

  it('the CLI exits 0 on a good ledger and 1 naming the round on a bad one', async () => {
    const caPath = join(work, 'ca.pem');
    await writeFile(caPath, caPem());
    const errors: string[] = [];
    const stderr = { write: (text: string) => errors.push(text) } as unknown as NodeJS.WritableStream;
    expect(await runCli(['verify', '--state', harness.stateDirectory, '--ca', caPath, '--json'], stderr)).toBe(0);
    const state = await copyState('cli-bad');
    await unlink(join(state, 'ledger', '00000003.json'));
    await unlink(join(state, 'ledger', '00000001.json'));
    expect(await runCli(['verify', '--state', state, '--ca', caPath], stderr)).toBe(1);
    expect(errors.join('')).toMatch(/ledger verification failed at round 1/);
  });
});
