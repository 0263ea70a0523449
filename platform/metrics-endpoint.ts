/**
 * The HTTP(S) listener that Prometheus scrapes: `GET /metrics` answers with the text a metrics registry
 * renders (coordinator/metrics/, participant/metrics/), on a port of its own so that scraping never shares
 * the gRPC port's mutual-TLS policy. With `tls` it speaks HTTPS only (a plain HTTP request fails the TLS
 * handshake and gets no answer); with `tls.clientCaPem` as well it also requires a client certificate
 * issued by that CA (Prometheus's `tls_config: {cert_file, key_file}`).
 *
 * Nothing here knows what the metrics are: the registry is handed in as a render function.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';

export interface MetricsTls {
  readonly certPem: string;
  readonly keyPem: string;
  /** When set, a scraper must present a client certificate issued by this CA (PEM). */
  readonly clientCaPem?: string;
}

export interface MetricsListenOptions {
  /** host:port; port 0 picks a free port (see MetricsEndpoint.port). */
  readonly listen: string;
  /** Serve HTTPS (and, with clientCaPem, require client certificates); plain HTTP when absent. */
  readonly tls?: MetricsTls;
}

/** What the endpoint serves: a prom-client Registry fits (`metrics()` and `contentType`). */
export interface MetricsSource {
  metrics(): Promise<string>;
  readonly contentType: string;
}

export interface MetricsEndpoint {
  readonly port: number;
  /** e.g. https://127.0.0.1:9464/metrics */
  readonly url: string;
  close(): Promise<void>;
}

export const METRICS_PATH = '/metrics';

const HOST_PORT = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;

/** Binds the listener; rejects (EADDRINUSE, EACCES ...) with a message naming the address. */
export async function startMetricsEndpoint(options: MetricsListenOptions, source: MetricsSource): Promise<MetricsEndpoint> {
  const match = HOST_PORT.exec(options.listen);
  if (match === null) throw new Error(`metrics.listen must be host:port such as "127.0.0.1:9464", got ${JSON.stringify(options.listen)}`);
  const host = (match[1] as string).replace(/^\[(.*)\]$/, '$1');
  const port = Number(match[2]);
  const handler = (request: IncomingMessage, response: ServerResponse): void => void serve(request, response, source);
  const { tls } = options;
  const server: Server =
    tls === undefined
      ? createHttpServer(handler)
      : createHttpsServer(
          {
            cert: tls.certPem,
            key: tls.keyPem,
            minVersion: 'TLSv1.2',
            ...(tls.clientCaPem === undefined ? {} : { ca: tls.clientCaPem, requestCert: true, rejectUnauthorized: true }),
          },
          handler,
        );
  // A scraper that opens a connection and goes quiet must not hold a socket for ever.
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  // A failed handshake (plain HTTP on the HTTPS port, a missing or foreign client certificate) only ends that connection.
  server.on('tlsClientError', () => undefined);
  server.on('clientError', (_error, socket: Socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException): void => {
      reject(new Error(`cannot listen for metrics on ${options.listen}: ${error.code === 'EADDRINUSE' ? 'the address is in use (choose another metrics.listen port)' : error.message}`, { cause: error }));
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const bound = (server.address() as AddressInfo).port;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  return {
    port: bound,
    url: `${tls === undefined ? 'http' : 'https'}://${urlHost}:${bound}${METRICS_PATH}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      }),
  };
}

async function serve(request: IncomingMessage, response: ServerResponse, source: MetricsSource): Promise<void> {
  const path = (request.url ?? '/').split('?')[0];
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    response.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end('only GET and HEAD are served\n');
    return;
  }
  if (path !== METRICS_PATH) {
    response.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end(`fedgate serves Prometheus metrics at ${METRICS_PATH}\n`);
    return;
  }
  try {
    const body = await source.metrics();
    response.writeHead(200, { 'content-type': source.contentType, 'cache-control': 'no-store' });
    response.end(request.method === 'HEAD' ? undefined : body);
  } catch (error) {
    response.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end(`collecting metrics failed: ${error instanceof Error ? error.message : String(error)}\n`);
  }
}
