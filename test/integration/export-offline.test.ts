/**
 * `fedgate export --state DIR` (issue 11, item 7): a committed model as ONNX from a coordinator's state
 * directory, with no coordinator to ask. The bytes are exactly what the live Admin export gives for the
 * same round; the model is checked against the directory's ledger (hash chain, the chain of models from
 * the task's pinned initial model, the model bytes' SHA-256) and, with --ca, the whole ledger is verified
 * as `fedgate verify` does. Nothing in the directory is written, so it works beside a running coordinator.
 */
import { createHash } from 'node:crypto';
import { cp, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerAdminCommands } from '../../cli/commands/admin.js';
import { StateError } from '../../coordinator/state/state-error.js';
import { createAdminFederation, type AdminFederation } from '../support/admin-federation.js';
import { forgeCommit, readCommitBodies, storeAlteredModel, writeLedger } from '../support/ledger-forge.js';
import { createTempDirectory, type TempDirectory } from '../support/pki.js';
import { fromHex } from '../../crypto/bytes.js';

let h: AdminFederation;
let scratch: TempDirectory;
/** sha256 of the live Admin export of rounds 0, 1, 2. */
const live = new Map<number, string>();

async function fedgate(args: readonly string[]): Promise<string> {
  let text = '';
  const stdout = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      text += chunk.toString();
      callback();
    },
  });
  const program = new Command('fedgate').exitOverride().configureOutput({ writeErr: () => undefined });
  registerAdminCommands(program, { stdout, env: {} });
  await program.parseAsync([...args], { from: 'user' });
  return text;
}

const bundle = (file: string): string => join(h.caDir, 'bundles', 'operator', 'ops', file);
const flags = (): string[] => ['--coordinator', h.address(), '--ca', bundle('ca.pem'), '--cert', bundle('ops.pem'), '--key', bundle('ops.key.pem')];
const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

interface OfflineResult {
  readonly round: number;
  readonly path: string;
  readonly sha256: string;
  readonly modelHash: string;
  readonly ledgerRounds: number;
  readonly verification: string;
}

async function exportOffline(state: string, name: string, extra: readonly string[] = []): Promise<OfflineResult> {
  return JSON.parse(await fedgate(['export', '--state', state, '--out', join(scratch.path, name), '--json', ...extra])) as OfflineResult;
}

/** A copy of the state directory to tamper with. */
async function copyOfState(name: string): Promise<string> {
  const copy = join(scratch.path, name);
  await cp(h.stateDirectory, copy, { recursive: true });
  return copy;
}

async function listing(directory: string): Promise<string[]> {
  const entries: string[] = [];
  for (const sub of ['', 'ledger', 'models']) {
    for (const name of await readdir(join(directory, sub))) {
      const info = await stat(join(directory, sub, name));
      entries.push(`${sub}/${name}:${info.size}:${info.mtimeMs}`);
    }
  }
  return entries.sort();
}

beforeAll(async () => {
  h = await createAdminFederation(2);
  scratch = await createTempDirectory('fedgate-export-offline-');
  const coordinator = await h.startCoordinator({ rounds: 2, minParticipants: 2 });
  h.startSite(0);
  h.startSite(1);
  await coordinator.done;
  for (const round of [0, 1, 2]) {
    const result = JSON.parse(await fedgate(['export', '--round', String(round), '--out', join(scratch.path, `live-${round}.onnx`), '--json', ...flags()])) as { sha256: string };
    live.set(round, result.sha256);
  }
}, 180_000);

afterAll(async () => {
  await h?.close();
  await scratch?.remove();
});

describe('fedgate export --state (offline)', () => {
  it('writes the same ONNX bytes as the live export for every round, without writing to the state directory, beside a running coordinator', async () => {
    const before = await listing(h.stateDirectory);
    const latest = await exportOffline(h.stateDirectory, 'offline-latest.onnx');
    expect([latest.round, latest.ledgerRounds, latest.verification, latest.modelHash]).toEqual([2, 2, 'hashes', h.coordinator.federation.currentModelHash]);
    expect(latest.sha256).toBe(live.get(2));
    expect(sha256(await readFile(latest.path))).toBe(latest.sha256);
    for (const round of [0, 1]) expect((await exportOffline(h.stateDirectory, `offline-${round}.onnx`, ['--round', String(round)])).sha256).toBe(live.get(round));
    // The coordinator still holds its lock: the export only read.
    expect(await listing(h.stateDirectory)).toEqual(before);
    expect(await fedgate(['export', '--state', h.stateDirectory, '--out', join(scratch.path, 'text.onnx')])).toMatch(
      /^round 2 model \(\d+ bytes of ONNX, sha256 [0-9a-f]{64}\) written to .*text\.onnx; checked against the ledger's hash chain \(2 rounds; add --ca to verify its signatures too\)\n$/,
    );
  });

  it('with --ca (and --crl) verifies the whole ledger before exporting', async () => {
    await h.coordinator.stop();
    const verified = await exportOffline(h.stateDirectory, 'verified.onnx', ['--ca', join(h.caDir, 'ca.pem'), '--crl', join(h.caDir, 'crl.pem')]);
    expect([verified.verification, verified.sha256]).toEqual(['signatures', live.get(2)]);
  });

  it('refuses a round that did not commit, naming the rounds there are', async () => {
    await expect(exportOffline(h.stateDirectory, 'none.onnx', ['--round', '3'])).rejects.toThrow(/round 3 is not committed in .*: its ledger holds rounds 1\.\.2 \(0 is the initial model\)/);
  });

  it('refuses model bytes that are not the ones the ledger commits to', async () => {
    const state = await copyOfState('swapped');
    const [, second] = await readCommitBodies(state);
    const round1 = await readFile(join(state, 'models', `${(await readCommitBodies(state))[0]?.newModelHash}.bin`));
    await writeFile(join(state, 'models', `${second?.newModelHash}.bin`), round1);
    await expect(exportOffline(state, 'swapped.onnx')).rejects.toThrow(/models\/[0-9a-f]{64}\.bin is damaged: its SHA-256 is/);
    // Round 1 is still fine.
    expect((await exportOffline(state, 'swapped-1.onnx', ['--round', '1'])).sha256).toBe(live.get(1));
  });

  it('refuses an edited ledger record, and a re-chained ledger whose models do not follow one another', async () => {
    const edited = await copyOfState('edited');
    const path = join(edited, 'ledger', '00000002.json');
    const record = JSON.parse(await readFile(path, 'utf8')) as { body: { committedAt: string } };
    record.body.committedAt = '2030-01-01T00:00:00.000Z';
    await writeFile(path, JSON.stringify(record));
    const refusal = exportOffline(edited, 'edited.onnx');
    await expect(refusal).rejects.toThrow(StateError);
    await expect(refusal).rejects.toThrow(/record 2: content does not match its recordHash/);

    // A forger who re-chains the record hashes but starts round 2 from a model round 1 did not produce.
    const forged = await copyOfState('forged');
    const bodies = await readCommitBodies(forged);
    const other = await storeAlteredModel(forged, bodies[0]?.newModelHash as string, 0.5);
    const rewired = forgeCommit(bodies[1] as (typeof bodies)[number], (commit) => ({ ...commit, hashes: { ...commit.hashes, previousModelHash: fromHex(other) } }), []);
    await writeLedger(forged, [bodies[0] as (typeof bodies)[number], rewired]);
    await expect(exportOffline(forged, 'forged.onnx')).rejects.toThrow(/ledger record 2 starts from model [0-9a-f]{64}, but record 1 produced [0-9a-f]{64}/);
  });

  it('a re-chained ledger naming another model passes the hash checks only: --ca refuses it', async () => {
    const forged = await copyOfState('forged-model');
    const bodies = await readCommitBodies(forged);
    const altered = await storeAlteredModel(forged, bodies[1]?.newModelHash as string, 0.25);
    const rewired = forgeCommit(bodies[1] as (typeof bodies)[number], (commit) => ({ ...commit, hashes: { ...commit.hashes, newModelHash: fromHex(altered) } }), []);
    await writeLedger(forged, [bodies[0] as (typeof bodies)[number], rewired]);
    const unchecked = await exportOffline(forged, 'forged-model.onnx');
    expect([unchecked.verification, unchecked.modelHash]).toEqual(['hashes', altered]);
    await expect(exportOffline(forged, 'forged-model-ca.onnx', ['--ca', join(h.caDir, 'ca.pem')])).rejects.toThrow(/ledger INVALID at round 2/);
  });
});
