/**
 * Who may use the local dashboard. `fedgate dashboard` holds the operator's key, and any web page open
 * in the same browser can send requests to 127.0.0.1, so every request must prove it comes from the
 * dashboard's own page:
 *
 * - Host must name the dashboard's own address (127.0.0.1, localhost or [::1] with its port, or the
 *   explicitly allowed bind address): a page on an attacker's domain that re-resolves to 127.0.0.1 (DNS
 *   rebinding) still sends its own domain as Host, and is refused.
 * - Origin, when the browser sends one, must be the dashboard's own origin, and Sec-Fetch-Site, when
 *   sent, must say same-origin or none (typed in / bookmarked): cross-site requests are refused even
 *   before the token is looked at.
 * - The per-run token (printed with the URL, as notebook servers do) must be in the query string
 *   (`?token=`) or the `X-Fedgate-Token` header, on every request and event stream, the page included.
 *   A foreign page cannot read it: the dashboard sends no CORS headers and the page is not framable.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';

export const TOKEN_HEADER = 'x-fedgate-token';
export const TOKEN_PARAMETER = 'token';

export interface RequestFacts {
  readonly host: string | undefined;
  readonly origin: string | undefined;
  readonly fetchSite: string | undefined;
  /** The request target as received (path and query). */
  readonly url: string;
  readonly tokenHeader: string | undefined;
}

export type GuardVerdict = { readonly ok: true; readonly path: string; readonly query: URLSearchParams } | { readonly ok: false; readonly status: 400 | 401 | 403; readonly message: string };

/** 32 random bytes, URL-safe: safe to paste into a URL and into HTML attributes as is. */
export function newDashboardToken(): string {
  return randomBytes(32).toString('base64url');
}

/** True for 127.0.0.0/8, ::1 and localhost: addresses only this machine can reach. */
export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  if (bare === 'localhost') return true;
  if (isIP(bare) === 4) return bare.startsWith('127.');
  return bare === '::1' || bare === '0:0:0:0:0:0:0:1';
}

export class RequestGuard {
  private readonly hosts: ReadonlySet<string>;
  private readonly origins: ReadonlySet<string>;
  private readonly token: Buffer;

  /**
   * @param port the port the dashboard listens on
   * @param bindHost the host it listens on; allowed as a Host besides the loopback names
   */
  constructor(token: string, port: number, bindHost: string) {
    this.token = Buffer.from(token);
    const names = new Set(['127.0.0.1', 'localhost', '[::1]']);
    if (bindHost !== '0.0.0.0' && bindHost !== '::' && bindHost !== '[::]') names.add(isIP(bindHost) === 6 ? `[${bindHost}]` : bindHost.toLowerCase());
    this.hosts = new Set([...names].map((name) => `${name}:${port}`));
    this.origins = new Set([...this.hosts].map((host) => `http://${host}`));
  }

  check(request: RequestFacts): GuardVerdict {
    const host = request.host?.toLowerCase();
    if (host === undefined || !this.hosts.has(host)) {
      return { ok: false, status: 403, message: `refused: Host ${JSON.stringify(request.host ?? '')} is not this dashboard's address (open the URL fedgate dashboard printed)` };
    }
    if (request.origin !== undefined && !this.origins.has(request.origin.toLowerCase())) {
      return { ok: false, status: 403, message: `refused: a page from origin ${JSON.stringify(request.origin)} may not use this dashboard` };
    }
    if (request.fetchSite !== undefined && request.fetchSite !== 'same-origin' && request.fetchSite !== 'none') {
      return { ok: false, status: 403, message: `refused: a ${request.fetchSite} request may not use this dashboard` };
    }
    let url: URL;
    try {
      url = new URL(request.url, 'http://dashboard.invalid');
    } catch {
      return { ok: false, status: 400, message: 'refused: malformed request target' };
    }
    const given = request.tokenHeader ?? url.searchParams.get(TOKEN_PARAMETER) ?? '';
    const candidate = Buffer.from(given);
    if (candidate.length !== this.token.length || !timingSafeEqual(candidate, this.token)) {
      return { ok: false, status: 401, message: 'refused: missing or wrong token: open the URL with ?token=... that fedgate dashboard printed' };
    }
    return { ok: true, path: url.pathname, query: url.searchParams };
  }
}
