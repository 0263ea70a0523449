/**
 * The `fedgate` executable as an operator runs it, set up as docs/operations.md documents (a coordinator
 * certificate for 127.0.0.1 and localhost, an operator.yaml dialling the IP with `server_name: localhost`,
 * a two-site federation): operator commands print no Node warning (DEP0123), `fedgate watch` reconnects
 * when the coordinator restarts or exits non-zero with the reason, a stopped coordinator says it stopped,
 * and coordinator and site warn about two-site rounds. Real processes, real mutual TLS on 127.0.0.1.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initCertificateAuthority, issueBundle, type IssuedBundle } from '../../certs/index.js';
import { spawnFedgate, stopAll, type FedgateProcess } from '../../cli/demo/processes.js';
import { canonicalTaskBytes, taskHash } from '../../model/task.js';
import { LOGREG_DIGITS_TASK } from '../support/admin-federation.js';
import { createTempDirectory, type TempDirectory } from '../support/pki.js';

const MAIN = fileURLToPath(new URL('../../cli/main.ts', import.meta.url));

interface CliProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  stdout(): string;
  stderr(): string;
}

function startCli(args: readonly string[]): CliProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  started.push(child);
  return { child, exited, stdout: () => stdout, stderr: () => stderr };
}

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

let work: TempDirectory;
let port: number;
let operatorYaml: string;
let coordinatorYaml: string;
let siteBundle: IssuedBundle;
const started: ChildProcess[] = [];
const coordinators: FedgateProcess[] = [];
const coordinatorLog: Record<string, unknown>[] = [];

/** Starts `fedgate coordinator` and waits until it listens. */
async function startCoordinator(): Promise<FedgateProcess> {
  const listening = coordinatorLog.filter((entry) => entry['msg'] === 'coordinator listening').length;
  const coordinator = spawnFedgate('coordinator', ['coordinator', '--config', coordinatorYaml], (entry) => coordinatorLog.push(entry));
  coordinators.push(coordinator);
  const deadline = Date.now() + 60_000;
  while (coordinatorLog.filter((entry) => entry['msg'] === 'coordinator listening').length === listening) {
    if (Date.now() > deadline || coordinator.child.exitCode !== null) throw new Error(`the coordinator did not start:\n${coordinator.tail()}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return coordinator;
}

beforeAll(async () => {
  work = await createTempDirectory('fedgate-operator-cli-');
  const caDir = join(work.path, 'ca');
  await initCertificateAuthority({ dir: caDir, commonName: 'operator cli test CA', validDays: 3 });
  const coordinator = await issueBundle({ dir: caDir, role: 'coordinator', name: 'coordinator', hosts: ['127.0.0.1', 'localhost'], validDays: 2 });
  const ops = await issueBundle({ dir: caDir, role: 'operator', name: 'ops', validDays: 2 });
  siteBundle = await issueBundle({ dir: caDir, role: 'participant', name: 'site-1', validDays: 2 });
  port = await freePort();
  await writeFile(join(work.path, 'task.json'), Buffer.from(canonicalTaskBytes(LOGREG_DIGITS_TASK)));
  coordinatorYaml = join(work.path, 'coordinator.yaml');
  await writeFile(
    coordinatorYaml,
    [
      'federation_id: operator-cli-test',
      `listen: "127.0.0.1:${port}"`,
      `tls: {ca: ${JSON.stringify(coordinator.caCertificatePath)}, cert: ${JSON.stringify(coordinator.certificatePath)}, key: ${JSON.stringify(coordinator.privateKeyPath)}, ca_dir: ca}`,
      'state_dir: state',
      'task: task.json',
      'rounds: 1',
      'participants: {min: 2}',
      '',
    ].join('\n'),
  );
  // The documented operator.yaml: the coordinator by IP, its certificate's DNS name as server_name.
  operatorYaml = join(work.path, 'operator.yaml');
  await writeFile(
    operatorYaml,
    [`coordinator: "127.0.0.1:${port}"`, 'server_name: localhost', `ca: ${JSON.stringify(ops.caCertificatePath)}`, `cert: ${JSON.stringify(ops.certificatePath)}`, `key: ${JSON.stringify(ops.privateKeyPath)}`, ''].join('\n'),
  );
  await startCoordinator();
}, 120_000);

afterAll(async () => {
  await stopAll(coordinators);
  for (const child of started) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await work?.remove();
});

describe('fedgate as an operator runs it', () => {
  it('the documented operator.yaml (an IP with server_name: localhost) prints no DEP0123 warning', async () => {
    const status = startCli(['status', '--config', operatorYaml]);
    expect(await status.exited).toBe(0);
    expect(status.stdout()).toMatch(/^federation {4}operator-cli-test /m);
    expect(status.stderr()).not.toMatch(/DEP0123|ServerName|Warning/);
    expect(status.stderr()).toBe('');
  });

  it('a coordinator of a two-site federation warns at start', () => {
    const warning = coordinatorLog.find((entry) => String(entry['msg']).includes('participants.min is 2'));
    expect(warning?.['level']).toBe(40);
    expect(String(warning?.['msg'])).toContain("each site learns the other's update exactly");
  });

  it('a site started without its coordinator warns about two-site rounds and says it cannot connect, not that it lost the connection', async () => {
    const elsewhere = await freePort();
    const siteYaml = join(work.path, 'site.yaml');
    await writeFile(
      siteYaml,
      [
        `coordinator: "127.0.0.1:${elsewhere}"`,
        `tls: {ca: ${JSON.stringify(siteBundle.caCertificatePath)}, cert: ${JSON.stringify(siteBundle.certificatePath)}, key: ${JSON.stringify(siteBundle.privateKeyPath)}}`,
        'data: {format: digits}',
        `accepted_tasks: [${taskHash(LOGREG_DIGITS_TASK)}]`,
        'policy: {min_participants: 2}',
        'reconnect: {initial: 100ms, max: 200ms}',
        `state_dir: ${JSON.stringify(join(work.path, 'site-state'))}`,
        '',
      ].join('\n'),
    );
    const log: Record<string, unknown>[] = [];
    const site = spawnFedgate('site', ['participant', '--config', siteYaml], (entry) => log.push(entry));
    try {
      await expect.poll(() => log.filter((entry) => entry['msg'] === 'cannot connect to the coordinator; retrying').length, { timeout: 60_000, interval: 200 }).toBeGreaterThanOrEqual(2);
      expect(log.find((entry) => String(entry['msg']).includes('policy.min_participants is 2'))?.['level']).toBe(40);
      const report = log.find((entry) => entry['msg'] === 'cannot connect to the coordinator; retrying');
      expect(report).toMatchObject({ coordinator: `127.0.0.1:${elsewhere}`, problem: 'refused' });
      expect(String(report?.['reason'])).toContain(`nothing accepts connections at 127.0.0.1:${elsewhere}`);
      expect(log.filter((entry) => entry['msg'] === 'connection to the coordinator lost; reconnecting')).toEqual([]);
    } finally {
      await stopAll([site]);
    }
  });

  it('watch reconnects when the coordinator restarts, or exits 1 with the reason; the coordinator says it stopped', async () => {
    const patient = startCli(['watch', '--config', operatorYaml, '--retry-for', '2m']);
    const impatient = startCli(['watch', '--config', operatorYaml, '--json', '--retry-for', '0']);
    await expect.poll(() => patient.stderr() + impatient.stderr(), { timeout: 60_000, interval: 200 }).toMatch(/watching federation operator-cli-test[\s\S]*watching federation operator-cli-test/);
    expect(patient.stderr()).toContain(`fedgate watch: watching federation operator-cli-test at 127.0.0.1:${port} (0 of 1 rounds committed); Ctrl-C stops`);

    const first = coordinators.at(-1) as FedgateProcess;
    first.child.kill('SIGTERM');
    expect(await first.exited).toBe(0);
    expect(coordinatorLog.some((entry) => entry['msg'] === 'stopped after 0 committed rounds (of 1)')).toBe(true);
    expect(coordinatorLog.some((entry) => entry['msg'] === 'federation finished its rounds')).toBe(false);

    // --retry-for 0: exits at once, non-zero, saying why.
    expect(await impatient.exited).toBe(1);
    // Which it sees first depends on timing: the stream closing, or (a busy machine) its next dial refused.
    expect(impatient.stderr()).toMatch(new RegExp(`fedgate: the watch lost the coordinator at 127\\.0\\.0\\.1:${port}: (the coordinator closed the stream \\(it stopped or is restarting\\)|WatchRounds failed with UNAVAILABLE)`));
    expect(impatient.stdout()).toBe('');

    // The default: says so and reconnects once the coordinator is back.
    await expect.poll(() => patient.stderr(), { timeout: 30_000, interval: 200 }).toMatch(/fedgate watch: the coordinator closed the stream \(it stopped or is restarting\); reconnecting in \d+\.\d s \(attempt 1, giving up 120 s from now\)/);
    expect(patient.child.exitCode).toBeNull();
    await startCoordinator();
    await expect.poll(() => patient.stderr(), { timeout: 60_000, interval: 200 }).toContain(`fedgate watch: reconnected to the coordinator at 127.0.0.1:${port} (0 of 1 rounds committed;`);
    patient.child.kill('SIGINT');
    expect(await patient.exited).toBe(0);
  });
});
