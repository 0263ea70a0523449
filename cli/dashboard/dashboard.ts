/**
 * `fedgate dashboard` as a library: the Admin API feed and the local web server, started together and
 * stopped together. The command (cli/commands/dashboard.ts) parses flags and prints the URL; tests start
 * it in-process.
 */
import { OperatorClient, type OperatorConnection } from '../../proto/admin-client.js';
import { DashboardFeed, type DashboardFeedOptions } from './dashboard-feed.js';
import { startDashboardServer, type RunningDashboard } from './dashboard-server.js';
import { isLoopbackHost, newDashboardToken } from './request-guard.js';
import { UsageError } from '../usage-error.js';

/** @see fedgate dashboard --listen */
export const DEFAULT_DASHBOARD_LISTEN = '127.0.0.1:7480';

export interface DashboardOptions {
  readonly connection: OperatorConnection;
  /** host:port to serve the page on; loopback only unless allowRemote. */
  readonly listen: string;
  readonly allowRemote?: boolean;
  /** @default a fresh random token */
  readonly token?: string;
  readonly feed?: Omit<DashboardFeedOptions, 'coordinator'>;
}

export interface Dashboard {
  readonly url: string;
  readonly port: number;
  readonly token: string;
  readonly feed: DashboardFeed;
  close(): Promise<void>;
}

/** Splits host:port and refuses a non-loopback host unless `allowRemote`. */
export function dashboardAddress(listen: string, allowRemote: boolean): { host: string; port: number } {
  const match = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(listen);
  const port = Number(match?.[2]);
  if (match === null || port > 65_535) throw new UsageError(`--listen must be host:port such as ${DEFAULT_DASHBOARD_LISTEN} (port 0 picks a free port); got ${JSON.stringify(listen)}`);
  const host = (match[1] as string).replace(/^\[(.*)\]$/, '$1');
  if (!allowRemote && !isLoopbackHost(host)) {
    throw new UsageError(
      `--listen ${listen} is not a loopback address: the dashboard acts with the operator's certificate, so it serves 127.0.0.1 (or localhost, ::1) only. ` +
        'Reach it from another machine through an SSH tunnel (ssh -L 7480:127.0.0.1:7480 HOST), or pass --allow-remote to bind this address anyway',
    );
  }
  return { host, port };
}

export async function startDashboard(options: DashboardOptions): Promise<Dashboard> {
  const { host, port } = dashboardAddress(options.listen, options.allowRemote ?? false);
  const token = options.token ?? newDashboardToken();
  const client = new OperatorClient(options.connection);
  const feed = new DashboardFeed(client, { ...options.feed, coordinator: options.connection.address });
  let server: RunningDashboard;
  try {
    server = await startDashboardServer({ host, port, token, feed, fileLabel: () => feed.state.snapshot().status?.federationId ?? 'fedgate' });
  } catch (error) {
    client.close();
    const code = (error as NodeJS.ErrnoException).code;
    throw new UsageError(`cannot serve the dashboard on ${options.listen}: ${code === 'EADDRINUSE' ? 'the port is in use (choose another with --listen)' : (error as Error).message}`);
  }
  feed.start();
  return {
    url: server.url,
    port: server.port,
    token,
    feed,
    async close() {
      await server.close();
      await feed.stop();
      client.close();
    },
  };
}
