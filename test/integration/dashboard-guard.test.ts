/**
 * The local dashboard holds the operator's key, so only its own page may use it. Against a real
 * `startDashboard` (its coordinator unreachable: nothing listens at the address it dials), every request
 * is tried with a foreign Host (DNS rebinding), a foreign Origin or a cross-site fetch, and without or
 * with a wrong token: each is refused, on the page, the assets, the JSON state and the event stream
 * alike. Binding anything but loopback is refused unless --allow-remote. The unreachable coordinator is
 * shown as such; with a real coordinator, a revoked operator certificate is shown as revoked and the feed
 * stops retrying.
 */
import { request } from 'node:http';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../cli/run.js';
import { dashboardAddress, startDashboard, type Dashboard } from '../../cli/dashboard/dashboard.js';
import { createAdminFederation, type AdminFederation } from '../support/admin-federation.js';
import { createTestPki, type TestPki } from '../support/pki.js';
import { freePort } from '../support/prometheus.js';

interface Answer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

/** A raw HTTP request with exactly these headers (fetch would not let a test set Host or Sec-Fetch-Site). */
function get(port: number, path: string, headers: Record<string, string>, method = 'GET'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const call = request({ host: '127.0.0.1', port, path, method, headers, setHost: false }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      const done = (): void => resolve({ status: response.statusCode ?? 0, headers: response.headers, body });
      response.on('data', (chunk: string) => {
        body += chunk;
        // An event stream stays open: its first event is enough.
        if (response.headers['content-type']?.startsWith('text/event-stream') === true && body.includes('\n\n')) {
          done();
          call.destroy();
        }
      });
      response.on('end', done);
    });
    call.on('error', reject);
    call.end();
  });
}

async function waitUntil<T>(read: () => T | Promise<T>, accept: (value: T) => boolean, timeoutMs = 20_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  let value = await read();
  while (!accept(value)) {
    if (Date.now() > end) throw new Error(`condition not met within ${timeoutMs} ms; last value ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
    value = await read();
  }
  return value;
}

describe('fedgate dashboard refuses every request that is not its own page', () => {
  let pki: TestPki;
  let dashboard: Dashboard;
  let deadAddress: string;
  let own: Record<string, string>;

  beforeAll(async () => {
    pki = await createTestPki();
    const operator = await pki.operator('ops');
    deadAddress = `127.0.0.1:${await freePort()}`;
    dashboard = await startDashboard({
      connection: { address: deadAddress, caPem: pki.ca.certificatePem, certPem: operator.certificatePem, keyPem: operator.privateKeyPem },
      listen: '127.0.0.1:0',
      feed: { retry: { initialMs: 200, maxMs: 1000 } },
    });
    own = { host: `127.0.0.1:${dashboard.port}` };
  });

  afterAll(async () => {
    await dashboard?.close();
  });

  it('serves its own page, assets, state and event stream to requests with the token', async () => {
    expect(dashboard.url).toBe(`http://127.0.0.1:${dashboard.port}/?token=${dashboard.token}`);
    const page = await get(dashboard.port, `/?token=${dashboard.token}`, own);
    expect(page.status).toBe(200);
    expect(page.body).toContain(`<meta name="fedgate-token" content="${dashboard.token}">`);
    expect(page.body).toContain(`/static/chart.umd.js?token=${dashboard.token}`);
    expect(page.headers['content-security-policy']).toContain("default-src 'none'");
    expect(page.headers['x-frame-options']).toBe('DENY');
    expect(page.headers['access-control-allow-origin']).toBeUndefined();
    const chart = await get(dashboard.port, `/static/chart.umd.js?token=${dashboard.token}`, { ...own, 'sec-fetch-site': 'same-origin' });
    expect(chart.status).toBe(200);
    expect(chart.body).toContain('Chart.js v4');
    const script = await get(dashboard.port, '/static/dashboard.js', { host: `localhost:${dashboard.port}`, 'x-fedgate-token': dashboard.token });
    expect(script.status).toBe(200);
    const state = await get(dashboard.port, `/api/state?token=${dashboard.token}`, { ...own, origin: `http://127.0.0.1:${dashboard.port}` });
    expect(state.status).toBe(200);
    expect(JSON.parse(state.body)).toMatchObject({ rounds: [], participants: [], connection: { coordinator: deadAddress } });
    const events = await get(dashboard.port, `/api/events?token=${dashboard.token}`, own);
    expect(events.status).toBe(200);
    expect(events.body).toMatch(/^retry: 2000\nevent: snapshot\ndata: \{/);
  });

  it.each([
    ['a foreign Host (DNS rebinding)', { host: 'attacker.example:80' }, 403, /Host "attacker\.example:\d+" is not this dashboard's address/],
    ['a foreign Host on the right port', { host: 'attacker.example:PORT' }, 403, /is not this dashboard's address/],
    // Node's HTTP server itself answers 400 to an HTTP/1.1 request without Host, before the guard runs.
    ['no Host at all', {}, 400, /^$/],
    ['a foreign Origin', { host: '127.0.0.1:PORT', origin: 'http://attacker.example' }, 403, /origin "http:\/\/attacker\.example" may not use this dashboard/],
    ['the Origin of another local port', { host: '127.0.0.1:PORT', origin: 'http://127.0.0.1:1' }, 403, /may not use this dashboard/],
    ['an opaque Origin (sandboxed frame, file://)', { host: '127.0.0.1:PORT', origin: 'null' }, 403, /origin "null" may not use this dashboard/],
    ['a cross-site fetch', { host: '127.0.0.1:PORT', 'sec-fetch-site': 'cross-site' }, 403, /a cross-site request may not use this dashboard/],
    ['a same-site fetch from another port', { host: '127.0.0.1:PORT', 'sec-fetch-site': 'same-site' }, 403, /a same-site request/],
  ])('refuses %s even with the right token, on every route', async (_name, headers, status, message) => {
    const withPort = Object.fromEntries(Object.entries(headers).map(([key, value]) => [key, value.replace('PORT', String(dashboard.port))]));
    for (const path of ['/', '/static/chart.umd.js', '/api/state', '/api/events', '/api/export?round=1']) {
      const answer = await get(dashboard.port, `${path}${path.includes('?') ? '&' : '?'}token=${dashboard.token}`, withPort);
      expect([path, answer.status]).toEqual([path, status]);
      expect(answer.body).toMatch(message);
      expect(answer.body).not.toContain(dashboard.token);
    }
  });

  it('refuses a missing or wrong token on every route, the event stream included', async () => {
    const wrong = `${dashboard.token.slice(0, -1)}${dashboard.token.endsWith('A') ? 'B' : 'A'}`;
    for (const path of ['/', '/index.html', '/static/dashboard.js', '/static/chart.umd.js', '/api/state', '/api/events', '/api/export?round=1', '/no-such-page']) {
      const missing = await get(dashboard.port, path, own);
      expect([path, missing.status]).toEqual([path, 401]);
      expect(missing.body).toContain('missing or wrong token');
      const bad = await get(dashboard.port, `${path}${path.includes('?') ? '&' : '?'}token=${wrong}`, own);
      expect([path, bad.status]).toEqual([path, 401]);
      const badHeader = await get(dashboard.port, path, { ...own, 'x-fedgate-token': `${dashboard.token}x` });
      expect([path, badHeader.status]).toEqual([path, 401]);
    }
  });

  it('only reads: other methods are refused', async () => {
    const answer = await get(dashboard.port, `/api/state?token=${dashboard.token}`, own, 'POST');
    expect(answer.status).toBe(405);
    expect(answer.headers['allow']).toBe('GET, HEAD');
  });

  it('says the coordinator is unreachable, naming its address, and keeps retrying', async () => {
    const state = await waitUntil(
      () => dashboard.feed.state.snapshot().connection,
      (connection) => connection.state === 'unreachable',
    );
    expect(state.message).toContain(`cannot reach the coordinator at ${deadAddress}`);
    expect(state.message).toMatch(/retrying in \d+(\.\d+)? s/);
    const export1 = await get(dashboard.port, `/api/export?round=1&token=${dashboard.token}`, own);
    expect(export1.status).toBe(502);
    expect(export1.body).toContain('export of round 1 failed: GetModel(round 1) failed with UNAVAILABLE');
  });

  it('binds loopback only, unless --allow-remote', async () => {
    for (const listen of ['127.0.0.1:0', 'localhost:7480', '[::1]:0', '127.0.0.2:80']) expect(dashboardAddress(listen, false).port).toBe(Number(listen.split(':').at(-1)));
    for (const listen of ['0.0.0.0:7480', '192.168.1.20:7480', '[::]:7480', 'dashboard.example.org:80']) {
      expect(() => dashboardAddress(listen, false)).toThrow(/is not a loopback address: the dashboard acts with the operator's certificate.*--allow-remote/);
      expect(dashboardAddress(listen, true).port).toBe(Number(listen.split(':').at(-1)));
    }
    expect(() => dashboardAddress('7480', false)).toThrow(/--listen must be host:port/);
    const stderr = new PassThrough();
    let text = '';
    stderr.on('data', (chunk: Buffer) => (text += chunk.toString()));
    const code = await runCli(['dashboard', '--listen', '0.0.0.0:7480', '--coordinator', deadAddress, '--ca', '/nonexistent', '--cert', '/nonexistent', '--key', '/nonexistent'], stderr, {});
    expect(code).toBe(2);
    expect(text).toContain('fedgate: --listen 0.0.0.0:7480 is not a loopback address');
  });
});

describe('fedgate dashboard with a revoked operator certificate', () => {
  let h: AdminFederation;
  let dashboard: Dashboard;

  beforeAll(async () => {
    h = await createAdminFederation(0);
    await h.startCoordinator({ rounds: 1, minParticipants: 2 });
  });

  afterAll(async () => {
    await dashboard?.close();
    await h?.close();
  });

  it('shows the revocation and stops retrying', async () => {
    const dashboardOperator = await h.issue('operator', 'wall-screen');
    dashboard = await startDashboard({
      connection: { address: h.address(), caPem: h.caPem, certPem: dashboardOperator.certPem, keyPem: dashboardOperator.keyPem },
      listen: '127.0.0.1:0',
      feed: { retry: { initialMs: 200, maxMs: 1000 } },
    });
    const live = await waitUntil(() => dashboard.feed.state.snapshot(), (snapshot) => snapshot.connection.state === 'live');
    expect(live.status).toMatchObject({ federationId: 'admin-test', committedRounds: 0, roundsConfigured: 1, minParticipants: 2 });
    await h.operatorClient().revoke({ serial: dashboardOperator.serial });
    const revoked = await waitUntil(() => dashboard.feed.state.snapshot().connection, (connection) => connection.state === 'revoked');
    expect(revoked.message).toContain("the coordinator refused the dashboard's operator certificate: it has been revoked");
    expect(revoked.message).toContain(`certificate serial ${dashboardOperator.serial}`);
    expect(revoked.message).toContain('fedgate certs issue operator NAME');
    // Final: the state stays as it is.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(dashboard.feed.state.snapshot().connection).toEqual(revoked);
  });
});
