/**
 * The coordinator SIGKILLed at four points - during ShareKeys, during the masked-input uploads, in the
 * middle of a ledger write (fault injection: after the temporary record is durable, before its rename),
 * and after round 2's aggregate was unmasked, before its commit quorum (fault injection: the pending
 * commit is on disk, its CommitRequest not yet sent) - then restarted on the same state directory and
 * port. Participants (in this process) reconnect on their own. After each run: no committed round is
 * lost, the ledger verifies, round ids are never reused, and the federation reaches its configured number
 * of rounds; an unmasked round is finished under its own id, never re-run.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { initCertificateAuthority, issueBundle } from '../../certs/index.js';
import { verifyLedger } from '../../coordinator/audit/verify-ledger.js';
import { fromHex } from '../../crypto/bytes.js';
import { canonicalTaskBytes, taskHash } from '../../model/task.js';
import { startParticipant, type RunningParticipant } from '../../participant/daemon/participant-app.js';
import { SiteStateStore } from '../../participant/state/index.js';
import { spawnFedgate, stopAll, type FedgateProcess } from '../../cli/demo/processes.js';
import { DIGITS_MLP_TASK } from '../support/in-memory-federation.js';

const ROUNDS = 3;
const SITES = 3;

let cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const step of cleanup.reverse()) await step().catch(() => undefined);
  cleanup = [];
});

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address !== null ? address.port : 0));
    });
  });
}

interface Setup {
  readonly work: string;
  readonly configPath: string;
  readonly stateDir: string;
  readonly caPem: string;
}

async function setUp(): Promise<{ setup: Setup; participants: RunningParticipant[] }> {
  const work = await mkdtemp(join(tmpdir(), 'fedgate-crash-'));
  cleanup.push(() => rm(work, { recursive: true, force: true }));
  const caDir = join(work, 'ca');
  await initCertificateAuthority({ dir: caDir, commonName: 'crash test CA', validDays: 3 });
  const coordinator = await issueBundle({ dir: caDir, role: 'coordinator', name: 'coordinator', hosts: ['127.0.0.1'], validDays: 2 });
  const port = await freePort();
  const stateDir = join(work, 'state');
  await writeFile(join(work, 'task.json'), Buffer.from(canonicalTaskBytes(DIGITS_MLP_TASK)));
  const configPath = join(work, 'coordinator.yaml');
  await writeFile(
    configPath,
    [
      'federation_id: crash-test',
      `listen: "127.0.0.1:${port}"`,
      `tls: {ca: ${JSON.stringify(coordinator.caCertificatePath)}, cert: ${JSON.stringify(coordinator.certificatePath)}, key: ${JSON.stringify(coordinator.privateKeyPath)}}`,
      `state_dir: ${JSON.stringify(stateDir)}`,
      'task: task.json',
      `rounds: ${ROUNDS}`,
      `participants: {min: ${SITES}}`,
      'deadlines: {advertise_keys: 5s, share_keys: 5s, masked_input: 30s, consistency_check: 5s, unmask: 5s, commit: 5s}',
      '',
    ].join('\n'),
  );
  const caPem = await readFile(coordinator.caCertificatePath, 'utf8');
  const hash = taskHash(DIGITS_MLP_TASK);
  const participants: RunningParticipant[] = [];
  for (let index = 0; index < SITES; index++) {
    const bundle = await issueBundle({ dir: caDir, role: 'participant', name: `site-${index}`, validDays: 2 });
    const certPem = await readFile(bundle.certificatePath, 'utf8');
    const keyPem = await readFile(bundle.privateKeyPath, 'utf8');
    const state = await SiteStateStore.open(join(work, `site-${index}`));
    const participant = startParticipant({
      coordinator: `127.0.0.1:${port}`,
      tls: { caPem, certPem, keyPem },
      siteId: `site-${index}`,
      signingKey: createPrivateKey(keyPem),
      trust: { caCertificate: new X509Certificate(caPem), revokedSerials: new Set() },
      policy: { pinnedTaskHashes: [fromHex(hash)], minParticipants: SITES, minThreshold: 2 },
      data: { format: 'digits', test_fraction: 0.2, split_seed: 1, partition: { kind: 'iid', count: SITES, index, seed: 3 } },
      device: 'cpu',
      intraOpThreads: 1,
      maxModelBytes: 64 * 1024 * 1024,
      reconnect: { initialMs: 100, maxMs: 1000 },
      state,
      logger: pino({ level: 'silent' }),
    });
    participants.push(participant);
    cleanup.push(() => participant.stop());
  }
  return { setup: { work, configPath, stateDir, caPem }, participants };
}

interface CoordinatorRun {
  readonly process: FedgateProcess;
  readonly events: Record<string, unknown>[];
}

function runCoordinator(setup: Setup, env: Record<string, string>, onLog: (entry: Record<string, unknown>, run: CoordinatorRun) => void): CoordinatorRun {
  const events: Record<string, unknown>[] = [];
  const saved = { ...process.env };
  Object.assign(process.env, { FEDGATE_LOG_LEVEL: 'debug', ...env });
  const run: CoordinatorRun = {
    events,
    process: spawnFedgate('coordinator', ['coordinator', '--config', setup.configPath, '--exit-when-done'], (entry) => {
      events.push(entry);
      onLog(entry, run);
    }),
  };
  process.env = saved;
  cleanup.push(() => stopAll([run.process]));
  return run;
}

async function ledgerHashes(stateDir: string): Promise<string[]> {
  const directory = join(stateDir, 'ledger');
  const names = (await readdir(directory).catch(() => [] as string[])).filter((name) => /^\d{8}\.json$/.test(name)).sort();
  return Promise.all(names.map(async (name) => (JSON.parse(await readFile(join(directory, name), 'utf8')) as { recordHash: string }).recordHash));
}

function roundCounters(run: CoordinatorRun): bigint[] {
  return run.events.filter((entry) => entry['msg'] === 'round started').map((entry) => BigInt(String(entry['counter'])));
}

async function crashAndRecover(kill: { env?: Record<string, string>; when?: (entry: Record<string, unknown>, committed: number) => boolean; pendingCommit?: boolean }): Promise<void> {
  const { setup } = await setUp();
  let committed = 0;
  const first = runCoordinator(setup, kill.env ?? {}, (entry, run) => {
    if ((entry['event'] as { type?: string } | undefined)?.type === 'round_committed') committed += 1;
    if (kill.when?.(entry, committed) === true && run.process.child.exitCode === null) run.process.child.kill('SIGKILL');
  });
  const firstExit = await first.process.exited;
  expect(firstExit).not.toBe(0);
  expect(first.process.child.signalCode).toBe('SIGKILL');
  const beforeRestart = await ledgerHashes(setup.stateDir);
  const countersBefore = roundCounters(first);
  expect(countersBefore.length).toBeGreaterThan(0);
  const pending = kill.pendingCommit === true ? (JSON.parse(await readFile(join(setup.stateDir, 'pending-commit.json'), 'utf8')) as { commit: { roundCounter: string; aggregateHash: string } }).commit : undefined;

  const second = runCoordinator(setup, {}, () => undefined);
  const secondExit = await Promise.race([second.process.exited, new Promise((resolve) => setTimeout(() => resolve('timeout'), 90_000))]);
  expect(secondExit, second.process.tail()).toBe(0);

  const after = await ledgerHashes(setup.stateDir);
  expect(after.slice(0, beforeRestart.length)).toEqual(beforeRestart);
  expect(after).toHaveLength(ROUNDS);
  const result = await verifyLedger({ stateDirectory: setup.stateDir, caPem: setup.caPem });
  expect(result).toMatchObject({ ok: true, rounds: ROUNDS });
  // Round ids are never reused: every counter after the restart is above every counter before it.
  const countersAfter = roundCounters(second);
  expect(countersAfter.length).toBeGreaterThan(0);
  expect(countersAfter.every((counter) => countersBefore.every((old) => counter > old))).toBe(true);
  expect((await readdir(join(setup.stateDir, 'ledger'))).filter((name) => name.includes('.tmp-'))).toEqual([]);
  if (pending !== undefined) {
    // The round that was pending is the next ledger record: its own counter (the last one before the
    // crash) and the aggregate unmasked before it; no pending commit is left.
    expect(BigInt(pending.roundCounter)).toBe(countersBefore.at(-1));
    const record = JSON.parse(await readFile(join(setup.stateDir, 'ledger', `${String(beforeRestart.length + 1).padStart(8, '0')}.json`), 'utf8')) as { body: { roundCounter: string; aggregateHash: string } };
    expect(record.body).toMatchObject({ roundCounter: pending.roundCounter, aggregateHash: pending.aggregateHash });
    expect((await readdir(setup.stateDir)).filter((name) => name.startsWith('pending-commit.json'))).toEqual([]);
  }
}

describe('coordinator crash recovery (SIGKILL, restart on the same state directory)', () => {
  it('killed during ShareKeys of round 2', async () => {
    await crashAndRecover({ when: (entry, committed) => committed >= 1 && entry['msg'] === 'stage open' && entry['stage'] === 'share_keys' });
  }, 180_000);

  it('killed during the masked-input uploads of round 2', async () => {
    await crashAndRecover({ when: (entry, committed) => committed >= 1 && entry['msg'] === 'masked input received' });
  }, 180_000);

  it('killed in the middle of writing ledger record 2', async () => {
    await crashAndRecover({ env: { FEDGATE_FAULT_INJECTION: 'ledger_write:2' } });
  }, 180_000);

  it('killed after round 2 was unmasked, before its commit quorum: the same round commits after the restart', async () => {
    await crashAndRecover({ env: { FEDGATE_FAULT_INJECTION: 'commit_pending:2' }, pendingCommit: true });
  }, 180_000);
});
