import { describe, expect, it } from 'vitest';
import { isLoopbackHost, newDashboardToken, RequestGuard } from '../../../../cli/dashboard/request-guard.js';

const token = newDashboardToken();
const facts = (extra: Partial<Parameters<RequestGuard['check']>[0]> = {}): Parameters<RequestGuard['check']>[0] => ({
  host: '127.0.0.1:7480',
  origin: undefined,
  fetchSite: undefined,
  url: `/api/state?token=${token}`,
  tokenHeader: undefined,
  ...extra,
});

describe('RequestGuard', () => {
  it('makes a fresh URL-safe token each run', () => {
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(newDashboardToken()).not.toBe(token);
  });

  it('knows loopback addresses', () => {
    for (const host of ['127.0.0.1', '127.1.2.3', 'localhost', 'LOCALHOST', '::1', '[::1]']) expect([host, isLoopbackHost(host)]).toEqual([host, true]);
    for (const host of ['0.0.0.0', '::', '10.0.0.1', '128.0.0.1', 'localhost.example.org', '127.0.0.1.nip.io']) expect([host, isLoopbackHost(host)]).toEqual([host, false]);
  });

  it('accepts its own page: loopback names with its port, same-origin or no fetch metadata, token in the query or the header', () => {
    const guard = new RequestGuard(token, 7480, '127.0.0.1');
    expect(guard.check(facts())).toMatchObject({ ok: true, path: '/api/state' });
    expect(guard.check(facts({ host: 'localhost:7480', origin: 'http://localhost:7480', fetchSite: 'same-origin' }))).toMatchObject({ ok: true });
    expect(guard.check(facts({ host: '[::1]:7480', fetchSite: 'none' }))).toMatchObject({ ok: true });
    expect(guard.check(facts({ url: '/api/state', tokenHeader: token }))).toMatchObject({ ok: true });
  });

  it.each([
    ['another port', { host: '127.0.0.1:7481' }, 403],
    ['a rebinding domain', { host: 'attacker.example:7480' }, 403],
    ['a bind address not in use', { host: '10.0.0.1:7480' }, 403],
    ['an https Origin of the same host', { origin: 'https://127.0.0.1:7480' }, 403],
    ['a foreign Origin', { origin: 'http://attacker.example' }, 403],
    ['a cross-site fetch', { fetchSite: 'cross-site' }, 403],
    ['no token', { url: '/api/state' }, 401],
    ['a token prefix', { url: `/api/state?token=${token.slice(0, 20)}` }, 401],
    ['a wrong header token, even with the right query token', { tokenHeader: 'x' }, 401],
  ])('refuses %s', (_name, extra, status) => {
    const guard = new RequestGuard(token, 7480, '127.0.0.1');
    expect(guard.check(facts(extra))).toMatchObject({ ok: false, status });
  });

  it('allows the explicit bind address as a Host (--allow-remote), but not the wildcard', () => {
    expect(new RequestGuard(token, 7480, '10.0.0.1').check(facts({ host: '10.0.0.1:7480', origin: 'http://10.0.0.1:7480' }))).toMatchObject({ ok: true });
    expect(new RequestGuard(token, 7480, '0.0.0.0').check(facts({ host: '0.0.0.0:7480' }))).toMatchObject({ ok: false, status: 403 });
    expect(new RequestGuard(token, 7480, 'fd00::1').check(facts({ host: '[fd00::1]:7480' }))).toMatchObject({ ok: true });
  });
});
