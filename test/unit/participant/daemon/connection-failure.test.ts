/**
 * ConnectFailureDescriber (participant/daemon/connection-failure.ts): what a site that cannot reach its
 * coordinator logs. For a certificate problem it dials once more to say which certificate the server
 * presented and who issued it; that look is taken once per distinct failure, not at every retry (a site
 * retrying for hours must not handshake twice per attempt), and never for a failure that is not about
 * the server's certificate. The server here is a plain TLS listener on 127.0.0.1:0 holding a coordinator
 * certificate of another CA than the one the site trusts.
 */
import { createServer, type Server } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConnectFailureDescriber } from '../../../../participant/daemon/connection-failure.js';
import { diagnoseConnectionFailure } from '../../../../proto/connection-diagnosis.js';
import { createTestPki, type TestPki } from '../../../support/pki.js';

let ours: TestPki;
let site: { caPem: string; certPem: string; keyPem: string };
let server: Server;
let address: string;
/** TLS connections the coordinator's listener received: one per look at its certificate. */
let handshakes = 0;

beforeAll(async () => {
  ours = await createTestPki('site federation CA');
  const theirs = await createTestPki('other federation CA');
  const participant = await ours.participant('site-a');
  site = { caPem: ours.ca.certificatePem, certPem: participant.certificatePem, keyPem: participant.privateKeyPem };
  server = createServer({ cert: theirs.coordinator.certificatePem, key: theirs.coordinator.privateKeyPem, ALPNProtocols: ['h2'] }, (socket) => socket.end());
  // Counted when the TCP connection arrives: before the server's handshake answer, so before the look resolves.
  server.on('connection', () => handshakes++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

const UNTRUSTED = 'Connection dropped: self-signed certificate in certificate chain';
const WRONG_NAME = "Hostname/IP does not match certificate's altnames: IP: 10.0.0.9 is not in the cert's list";

describe('ConnectFailureDescriber', () => {
  it('says which certificate the coordinator presented and who issued it, looking once per distinct failure', async () => {
    const describer = new ConnectFailureDescriber(address, site);
    const before = handshakes;
    const first = await describer.describe(UNTRUSTED);
    expect(first.problem).toBe('server-certificate-untrusted');
    const advice = diagnoseConnectionFailure(UNTRUSTED, { address }).advice;
    expect(first.reason).toMatch(new RegExp(`^${escape(advice)}; the coordinator at ${escape(address)} presented .*CN=coordinator .*, issued by CN=other federation CA; this side trusts only CN=site federation CA \\(tls\\.ca\\) \\[${escape(UNTRUSTED)}\\]$`));
    // The same failure again (the next retry): the same report, no second handshake.
    expect(await describer.describe(UNTRUSTED)).toEqual(first);
    expect(handshakes - before).toBe(1);
    // Another certificate failure is looked at once more.
    const named = await describer.describe(WRONG_NAME);
    expect(named.problem).toBe('server-certificate-name');
    expect(named.reason).toMatch(/; the coordinator at .* presented .*CN=coordinator/);
    expect(handshakes - before).toBe(2);
  });

  it('takes no look for a failure that is not about the certificate, and says only the advice and the detail', async () => {
    const describer = new ConnectFailureDescriber(address, site);
    const before = handshakes;
    const refused = await describer.describe(`Last error: connect ECONNREFUSED ${address}. Resolution note: `);
    expect(refused.problem).toBe('refused');
    expect(refused.reason).toBe(`${diagnoseConnectionFailure('connect ECONNREFUSED', { address }).advice} [connect ECONNREFUSED ${address}]`);
    expect(handshakes).toBe(before);
  });

  it('passes the configured server name to the advice, and reports no certificate when the look reaches nobody', async () => {
    // A port nothing listens on: the look resolves without a description.
    const closed = createServer({});
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const nobody = `127.0.0.1:${(closed.address() as AddressInfo).port}`;
    await new Promise((resolve) => closed.close(resolve));
    const describer = new ConnectFailureDescriber(nobody, { ...site, serverName: 'coordinator.example' });
    const report = await describer.describe(WRONG_NAME);
    expect(report.problem).toBe('server-certificate-name');
    expect(report.reason).toBe(`${diagnoseConnectionFailure(WRONG_NAME, { address: nobody, serverName: 'coordinator.example' }).advice} [${WRONG_NAME}]`);
    expect(report.reason).toContain('"coordinator.example"');
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
