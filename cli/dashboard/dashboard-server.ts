/**
 * The local web server of `fedgate dashboard` (like `kubectl proxy`): the browser talks to it over plain
 * HTTP on 127.0.0.1, and it talks to the coordinator's Admin API over mutual TLS (dashboard-feed.ts), so
 * no browser ever holds a client certificate. Every request passes the RequestGuard (Host, Origin,
 * per-run token) first. Routes, all GET:
 *
 *   /                   the page (static/index.html, the token written into its asset URLs)
 *   /static/*           the page's script and style, and Chart.js from node_modules (no CDN)
 *   /api/state          the current snapshot as JSON
 *   /api/events         server-sent events: `snapshot` once, then `update` for every change
 *   /api/export?round=N the committed round's ONNX model, as a download
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { isKnownError } from '../../proto/status.js';
import type { DashboardFeed } from './dashboard-feed.js';
import type { DashboardUpdate } from './dashboard-state.js';
import { RequestGuard, TOKEN_HEADER, TOKEN_PARAMETER } from './request-guard.js';
import { staticAssets, type StaticAsset } from './static-assets.js';

export interface DashboardServerOptions {
  /** Host to bind (already checked by the command: loopback unless explicitly allowed). */
  readonly host: string;
  /** 0 picks a free port. */
  readonly port: number;
  readonly token: string;
  readonly feed: DashboardFeed;
  /** Names the downloaded model files. */
  readonly fileLabel?: () => string;
}

export interface RunningDashboard {
  readonly port: number;
  /** The URL to open, token included. */
  readonly url: string;
  close(): Promise<void>;
}

/** Every response: nothing is cached, nothing is framed, nothing loads from elsewhere, no Referer leaks the token. */
const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-resource-policy': 'same-origin',
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
};

/** An idle event stream gets a comment this often, so proxies and the browser keep it open. */
const KEEPALIVE_MS = 15_000;

export async function startDashboardServer(options: DashboardServerOptions): Promise<RunningDashboard> {
  const assets = await staticAssets();
  const streams = new Set<ServerResponse>();
  const sockets = new Set<Socket>();
  let guard: RequestGuard | undefined;
  const server: Server = createServer((request, response) => {
    if (guard === undefined) {
      response.writeHead(503).end();
      return;
    }
    handle(request, response, guard, options, assets, streams).catch((error: unknown) => {
      if (!response.headersSent) send(response, 500, 'text/plain; charset=utf-8', `internal error: ${error instanceof Error ? error.message : String(error)}\n`);
      else response.destroy();
    });
  });
  server.headersTimeout = 10_000;
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  guard = new RequestGuard(options.token, port, options.host);
  const onUpdate = (update: DashboardUpdate): void => {
    const frame = `event: update\ndata: ${JSON.stringify(update)}\n\n`;
    for (const stream of streams) stream.write(frame);
  };
  options.feed.on('update', onUpdate);
  const keepalive = setInterval(() => {
    for (const stream of streams) stream.write(': keepalive\n\n');
  }, KEEPALIVE_MS);
  keepalive.unref();
  const urlHost = options.host.includes(':') ? `[${options.host}]` : options.host === '0.0.0.0' ? '127.0.0.1' : options.host;
  return {
    port,
    url: `http://${urlHost}:${port}/?${TOKEN_PARAMETER}=${options.token}`,
    close: () =>
      new Promise<void>((resolve) => {
        options.feed.off('update', onUpdate);
        clearInterval(keepalive);
        for (const stream of streams) stream.end();
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      }),
  };
}

async function handle(request: IncomingMessage, response: ServerResponse, guard: RequestGuard, options: DashboardServerOptions, assets: ReadonlyMap<string, StaticAsset>, streams: Set<ServerResponse>): Promise<void> {
  const header = (name: string): string | undefined => {
    const value = request.headers[name];
    return Array.isArray(value) ? value[0] : value;
  };
  const verdict = guard.check({ host: header('host'), origin: header('origin'), fetchSite: header('sec-fetch-site'), url: request.url ?? '/', tokenHeader: header(TOKEN_HEADER) });
  if (!verdict.ok) {
    send(response, verdict.status, 'text/plain; charset=utf-8', `${verdict.message}\n`);
    return;
  }
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    response.setHeader('allow', 'GET, HEAD');
    send(response, 405, 'text/plain; charset=utf-8', 'the dashboard only reads: GET and HEAD\n');
    return;
  }
  const { path, query } = verdict;
  if (path === '/' || path === '/index.html') {
    const page = assets.get('/index.html') as StaticAsset;
    send(response, 200, page.contentType, page.text.replaceAll('__FEDGATE_TOKEN__', options.token));
    return;
  }
  const asset = assets.get(path);
  if (asset !== undefined && path.startsWith('/static/')) {
    send(response, 200, asset.contentType, asset.body ?? asset.text);
    return;
  }
  switch (path) {
    case '/api/state':
      send(response, 200, 'application/json', JSON.stringify(options.feed.state.snapshot()));
      return;
    case '/api/events':
      openEventStream(response, options.feed, streams);
      return;
    case '/api/export':
      await exportModel(response, options, query.get('round'));
      return;
    default:
      send(response, 404, 'text/plain; charset=utf-8', `no such page: ${path}\n`);
  }
}

function openEventStream(response: ServerResponse, feed: DashboardFeed, streams: Set<ServerResponse>): void {
  response.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'text/event-stream; charset=utf-8', connection: 'keep-alive' });
  // The snapshot and every later update go through the same stream, in order.
  response.write(`retry: 2000\nevent: snapshot\ndata: ${JSON.stringify(feed.state.snapshot())}\n\n`);
  streams.add(response);
  response.on('close', () => streams.delete(response));
}

async function exportModel(response: ServerResponse, options: DashboardServerOptions, roundText: string | null): Promise<void> {
  const round = Number(roundText);
  if (roundText === null || !/^\d{1,15}$/.test(roundText) || !Number.isSafeInteger(round)) {
    send(response, 400, 'text/plain; charset=utf-8', `round must be a whole number (0 = the initial model), got ${JSON.stringify(roundText ?? '')}\n`);
    return;
  }
  try {
    const model = await options.feed.exportModel(round);
    const label = (options.fileLabel?.() ?? 'fedgate').replace(/[^A-Za-z0-9._-]/g, '_');
    response.writeHead(200, {
      ...SECURITY_HEADERS,
      'content-type': 'application/octet-stream',
      'content-length': String(model.bytes.length),
      'content-disposition': `attachment; filename="${label}-round-${round}.onnx"`,
      'x-fedgate-onnx-sha256': model.sha256.toString('hex'),
    });
    response.end(model.bytes);
  } catch (error) {
    const known = isKnownError(error);
    const status = known && error.code === 'NOT_FOUND' ? 404 : 502;
    send(response, status, 'text/plain; charset=utf-8', `export of round ${round} failed: ${error instanceof Error ? error.message : String(error)}\n`);
  }
}

function send(response: ServerResponse, status: number, contentType: string, body: string | Buffer): void {
  response.writeHead(status, { ...SECURITY_HEADERS, 'content-type': contentType });
  response.end(response.req.method === 'HEAD' ? undefined : body);
}
