/**
 * Connection failures over real mutual TLS on 127.0.0.1, from both ends: a site started before its
 * coordinator says it cannot connect (not that it lost a connection), a site or operator with another
 * federation's CA bundle is told which certificate the coordinator presented, who issued it and which CA
 * it trusts instead, and the coordinator logs the refused handshakes, rate-limited.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { createServer } from 'node:net';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startCoordinator, type RunningCoordinator } from '../../coordinator/service/coordinator-app.js';
import { fromHex } from '../../crypto/bytes.js';
import { taskHash } from '../../model/task.js';
import { startParticipant, type RunningParticipant } from '../../participant/daemon/participant-app.js';
import { SiteStateStore } from '../../participant/state/index.js';
import { OperatorClient } from '../../proto/admin-client.js';
import type { IssuedCertificate } from '../../certs/index.js';
import { LOGREG_DIGITS_TASK } from '../support/admin-federation.js';
import { createTempDirectory, createTestPki, type TempDirectory, type TestPki } from '../support/pki.js';
import { NO_COLLUSION_MARGIN } from '../support/protocol-margin.js';

type LogEntry = Record<string, unknown> & { msg: string };

let pki: TestPki;
let other: TestPki;
let work: TempDirectory;
let cleanup: (() => Promise<void>)[] = [];

beforeAll(async () => {
  pki = await createTestPki('fedgate connection test CA');
  other = await createTestPki('another federation CA');
  work = await createTempDirectory('fedgate-connection-');
  return () => work.remove();
});

afterEach(async () => {
  for (const step of cleanup.reverse()) await step().catch(() => undefined);
  cleanup = [];
});

function capturingLogger(into: LogEntry[]): pino.Logger {
  return pino({ level: 'info' }, { write: (line: string) => into.push(JSON.parse(line) as LogEntry) });
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

async function coordinatorOn(port: number, log: LogEntry[]): Promise<RunningCoordinator> {
  const coordinator = await startCoordinator({
    federationId: 'connection-test',
    listen: `127.0.0.1:${port}`,
    tls: { caPem: pki.ca.certificatePem, certPem: pki.coordinator.certificatePem, keyPem: pki.coordinator.privateKeyPem },
    revokedSerials: [],
    admin: { enabled: true },
    stateDirectory: join(work.path, `state-${port}`),
    task: LOGREG_DIGITS_TASK,
    rounds: 1,
    participants: { minimum: 2, sampleFraction: 1, waitTimeoutMs: 60_000 },
    secureAggregation: true,
    secagg: { clipBound: 1, maxWeight: 1000, maxEvalExamples: 1000, maxLossPerExample: 50 },
    deadlines: { advertiseKeysMs: 20_000, shareKeysMs: 20_000, maskedInputMs: 60_000, consistencyCheckMs: 20_000, unmaskMs: 20_000, commitMs: 20_000 },
    logger: capturingLogger(log),
    heartbeatIntervalMs: 60_000,
  });
  cleanup.push(() => coordinator.stop());
  return coordinator;
}

async function siteDialling(address: string, certificate: IssuedCertificate, caPem: string, log: LogEntry[], serverName?: string): Promise<RunningParticipant> {
  const state = await SiteStateStore.open(join(work.path, `site-${certificate.serial}`));
  const participant = startParticipant({
    coordinator: address,
    ...(serverName === undefined ? {} : { serverName }),
    tls: { caPem, certPem: certificate.certificatePem, keyPem: certificate.privateKeyPem },
    siteId: 'site-1',
    signingKey: createPrivateKey(certificate.privateKeyPem),
    trust: { caCertificate: new X509Certificate(caPem), revokedSerials: new Set() },
    policy: { pinnedTaskHashes: [fromHex(taskHash(LOGREG_DIGITS_TASK))], minParticipants: 2, minThreshold: 2, ...NO_COLLUSION_MARGIN },
    data: { format: 'digits', test_fraction: 0.2, split_seed: 1 },
    device: 'cpu',
    intraOpThreads: 1,
    maxModelBytes: 1 << 30,
    reconnect: { initialMs: 50, maxMs: 200 },
    state,
    logger: capturingLogger(log),
  });
  cleanup.push(() => participant.stop());
  return participant;
}

const lines = (log: readonly LogEntry[], msg: string): LogEntry[] => log.filter((entry) => entry.msg === msg);

describe('a site that cannot reach its coordinator', () => {
  it('started before the coordinator: says nothing accepts connections there, then connects once it is up', async () => {
    const port = await freePort();
    const siteLog: LogEntry[] = [];
    await siteDialling(`127.0.0.1:${port}`, await pki.participant('site-1'), pki.ca.certificatePem, siteLog);
    await expect.poll(() => lines(siteLog, 'cannot connect to the coordinator; retrying').length, { timeout: 20_000 }).toBeGreaterThanOrEqual(2);
    const first = lines(siteLog, 'cannot connect to the coordinator; retrying')[0];
    expect(first).toMatchObject({ coordinator: `127.0.0.1:${port}`, problem: 'refused' });
    expect(String(first?.['reason'])).toContain(`connection refused: nothing accepts connections at 127.0.0.1:${port}; check that the coordinator is running`);
    expect(String(first?.['reason'])).not.toMatch(/Resolution note/);
    // It never had a connection, so it never lost one.
    expect(lines(siteLog, 'connection to the coordinator lost; reconnecting')).toEqual([]);

    await coordinatorOn(port, []);
    await expect.poll(() => lines(siteLog, 'connected to the coordinator').length, { timeout: 20_000 }).toBe(1);
  });

  it("with another federation's bundle: names the coordinator's certificate, its issuer and the CA the site trusts; the coordinator logs the refusal once", async () => {
    const port = await freePort();
    const coordinatorLog: LogEntry[] = [];
    await coordinatorOn(port, coordinatorLog);
    const siteLog: LogEntry[] = [];
    await siteDialling(`127.0.0.1:${port}`, await other.participant('site-1'), other.ca.certificatePem, siteLog);
    await expect.poll(() => lines(siteLog, 'cannot connect to the coordinator; retrying').length, { timeout: 20_000 }).toBeGreaterThanOrEqual(4);
    const reports = lines(siteLog, 'cannot connect to the coordinator; retrying');
    expect(reports.every((entry) => entry['problem'] === 'server-certificate-untrusted')).toBe(true);
    const reason = String(reports[0]?.['reason']);
    expect(reason).toContain('could not verify the server certificate: it was not issued by the CA this side trusts (tls.ca)');
    expect(reason).toContain(`the coordinator at 127.0.0.1:${port} presented OU=coordinator, CN=coordinator (serial `);
    expect(reason).toContain('issued by CN=fedgate connection test CA; this side trusts only CN=another federation CA (tls.ca)');
    expect(reason).toContain('[self-signed certificate in certificate chain]');
    expect(reason).not.toMatch(/Resolution note/);
    expect(lines(siteLog, 'connected to the coordinator')).toEqual([]);

    // The coordinator: the failed handshakes and the site's certificate (shown by the site's one look), each once however often the site retried.
    const refused = (): LogEntry[] => lines(coordinatorLog, 'TLS handshake refused');
    await expect.poll(() => refused().map((entry) => entry['problem']).sort(), { timeout: 20_000 }).toEqual(['client-certificate-untrusted', 'client-closed']);
    const untrusted = refused().find((entry) => entry['problem'] === 'client-certificate-untrusted');
    expect(untrusted?.['certificate']).toMatchObject({ subject: 'OU=participant, CN=site-1', issuer: 'CN=another federation CA' });
    expect(String(untrusted?.['detail'])).toContain("was issued by CN=another federation CA, not by the federation CA");
    expect(String(refused().find((entry) => entry['problem'] === 'client-closed')?.['detail'])).toContain("the client closed the connection during the TLS handshake");
    expect(String(refused()[0]?.['peer'])).toMatch(/^127\.0\.0\.1:\d+$/);
    await expect.poll(() => lines(siteLog, 'cannot connect to the coordinator; retrying').length, { timeout: 20_000 }).toBeGreaterThanOrEqual(8);
    expect(refused()).toHaveLength(2);
  });

  it('dialling a name the coordinator certificate lacks: says so, with what to set', async () => {
    const port = await freePort();
    await coordinatorOn(port, []);
    const siteLog: LogEntry[] = [];
    await siteDialling(`127.0.0.1:${port}`, await pki.participant('site-1'), pki.ca.certificatePem, siteLog, 'fl.example.org');
    await expect.poll(() => lines(siteLog, 'cannot connect to the coordinator; retrying').length, { timeout: 20_000 }).toBeGreaterThanOrEqual(1);
    const report = lines(siteLog, 'cannot connect to the coordinator; retrying')[0];
    expect(report?.['problem']).toBe('server-certificate-name');
    expect(String(report?.['reason'])).toContain('it does not name "fl.example.org"; set server_name to a name the certificate carries');
    expect(String(report?.['reason'])).toContain('DNS:localhost, IP Address:127.0.0.1');
  });
});

describe('an operator that cannot reach the coordinator', () => {
  it("with another federation's CA: the error says what failed, without an empty resolution note", async () => {
    const port = await freePort();
    await coordinatorOn(port, []);
    const operator = await other.operator('ops');
    const client = new OperatorClient({ address: `127.0.0.1:${port}`, caPem: other.ca.certificatePem, certPem: operator.certificatePem, keyPem: operator.privateKeyPem });
    cleanup.push(async () => client.close());
    const error = await client.status().then(() => undefined, (caught: unknown) => caught as Error);
    expect(error?.message).toMatch(/^GetStatus failed with UNAVAILABLE: No connection established\. Last error: Error: self-signed certificate in certificate chain \(TLS: this side could not verify the server certificate: it was not issued by the CA this side trusts/);
    expect(error?.message).not.toMatch(/Resolution note/);

    const refusedPort = await freePort();
    const ops = await pki.operator('ops');
    const nobody = new OperatorClient({ address: `127.0.0.1:${refusedPort}`, caPem: pki.ca.certificatePem, certPem: ops.certificatePem, keyPem: ops.privateKeyPem });
    cleanup.push(async () => nobody.close());
    const refused = await nobody.status().then(() => undefined, (caught: unknown) => caught as Error);
    expect(refused?.message).toContain(`(connection refused: nothing accepts connections at 127.0.0.1:${refusedPort}; check that the coordinator is running`);
    expect(refused?.message).not.toMatch(/Resolution note/);
  });
});
