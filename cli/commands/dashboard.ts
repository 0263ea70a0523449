/**
 * `fedgate dashboard`: a live web view of the federation on 127.0.0.1, served by this command and fed
 * by the coordinator's Admin API over mutual TLS with the operator certificate (cli/dashboard/). Takes
 * the connection flags of the other operator commands (admin-connection.ts). Prints the URL, with its
 * per-run token, and runs until Ctrl-C.
 */
import type { Command } from 'commander';
import { DEFAULT_DASHBOARD_LISTEN, dashboardAddress, startDashboard } from '../dashboard/dashboard.js';
import type { ConnectionView } from '../dashboard/dashboard-state.js';
import { resolveConnection, withConnectionOptions, type ConnectionFlags } from './admin-connection.js';
import type { CommandIo } from './admin.js';

interface DashboardFlags extends ConnectionFlags {
  readonly listen: string;
  readonly allowRemote?: boolean;
}

export function registerDashboardCommand(program: Command, io: CommandIo & { readonly stderr?: NodeJS.WritableStream } = {}): void {
  withConnectionOptions(
    program
      .command('dashboard')
      .description("serve a live web view of the federation on 127.0.0.1 (rounds, charts, participants, ledger, model export), using the operator certificate")
      .option('--listen <host:port>', 'where to serve the page (port 0 picks a free one)', DEFAULT_DASHBOARD_LISTEN)
      .option('--allow-remote', 'allow a --listen address other than loopback (anyone who reaches it and has the token acts as the operator)'),
  ).action(async (flags: DashboardFlags) => {
    const stdout = io.stdout ?? process.stdout;
    const stderr = io.stderr ?? process.stderr;
    // Checked before anything is read or dialled.
    dashboardAddress(flags.listen, flags.allowRemote === true);
    const connection = await resolveConnection(flags, io.env ?? process.env);
    const dashboard = await startDashboard({ connection, listen: flags.listen, allowRemote: flags.allowRemote === true });
    // The terminal hears of each change of state once; the page shows every retry.
    let shown: string | undefined;
    dashboard.feed.on('update', (update) => {
      if (update.connection === undefined || update.connection.state === shown) return;
      shown = update.connection.state;
      stderr.write(`fedgate dashboard: ${terminalText(update.connection)}\n`);
    });
    stdout.write(`fedgate dashboard for the coordinator at ${connection.address}\n  open ${dashboard.url}\n  (the token in the URL is this run's password; Ctrl-C stops)\n`);
    await waitForSignal();
    await dashboard.close();
  });
}

/** The coordinator's messages are shown as they came, without terminal control characters. */
function terminalText(connection: ConnectionView): string {
  return `${connection.state}: ${connection.message}`.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
}

function waitForSignal(): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      process.off('SIGINT', done);
      process.off('SIGTERM', done);
      resolve();
    };
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
  });
}
