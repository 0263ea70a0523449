/**
 * The operator commands over the coordinator's Admin API (proto/fedgate/v1/admin.proto):
 *
 *   fedgate status [--delta D]             federation, progress, current model, open round, privacy spent
 *   fedgate participants                   connected sites with their certificate serials
 *   fedgate rounds [--last N]              committed rounds from the ledger
 *   fedgate watch [--count N] [--open]     round events as they happen, across restarts (Ctrl-C to stop)
 *   fedgate export [--round N] --out F     a committed round's model as ONNX, hash-checked
 *   fedgate export --state DIR --out F     the same offline from a state directory, checked against its ledger
 *   fedgate certs revoke SERIAL_OR_SITE    revoke now: CA-signed CRL, sessions closed, persisted
 *
 * Each takes the connection flags of admin-connection.ts (or an operator.yaml) and --json. Commands
 * only parse, call OperatorClient and print; errors propagate to cli/run.ts.
 */
import { mkdir } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import { writeFileAtomic } from '../../platform/index.js';
import { OperatorClient, type OperatorConnection } from '../../proto/admin-client.js';
import { createOutput, type Output } from '../output.js';
import { UsageError } from '../usage-error.js';
import { parseDurationMs } from '../config/units.js';
import { resolveConnection, withConnectionOptions, type ConnectionFlags } from './admin-connection.js';
import { exportFromStateDirectory } from './export-offline.js';
import { watchRounds } from './admin-watch.js';
import { eventText, jsonView, participantsText, revocationText, roundsText, statusText } from './admin-format.js';

interface JsonFlag {
  readonly json?: boolean;
}

/** A serial as `fedgate certs` prints it: 16+ hex digits (ours carry 128 random bits), colons allowed. */
const SERIAL_LIKE = /^(0x)?[0-9A-Fa-f:]{16,}$/;

/** Where the commands print and which environment they read; tests pass their own. */
export interface CommandIo {
  readonly stdout?: NodeJS.WritableStream;
  /** Notices of long-running commands (`watch` reconnecting). */
  readonly stderr?: NodeJS.WritableStream;
  readonly env?: NodeJS.ProcessEnv;
}

export function registerAdminCommands(program: Command, io: CommandIo = {}): void {
  const output = (flags: JsonFlag): Output => createOutput(flags.json === true, io.stdout ?? process.stdout);
  const withClient = (flags: ConnectionFlags, work: (client: OperatorClient) => Promise<void>): Promise<void> => connectAndRun(flags, io.env ?? process.env, work);
  adminCommand(program, 'status', 'show the federation: rounds committed, current model, connected sites, open round, privacy spent')
    .option('--delta <delta>', "delta of the task's record-level DP epsilon (default 1e-5; each site enforces its own)")
    .action(async (flags: ConnectionFlags & JsonFlag & { delta?: string }) => {
      const privacyDelta = flags.delta === undefined ? undefined : parseDelta(flags.delta);
      await withClient(flags, async (client) => {
        const status = await client.status(privacyDelta === undefined ? {} : { privacyDelta });
        output(flags).result(statusText(status), jsonView(status) as Record<string, unknown>);
      });
    });

  adminCommand(program, 'participants', 'list the connected participant sites').action(async (flags: ConnectionFlags & JsonFlag) =>
    withClient(flags, async (client) => {
      const participants = await client.participants();
      output(flags).result(participantsText(participants), { participants: jsonView(participants) });
    }),
  );

  adminCommand(program, 'rounds', 'list committed rounds from the ledger (metrics, model hashes)')
    .option('--last <n>', 'only the newest N rounds')
    .action(async (flags: ConnectionFlags & JsonFlag & { last?: string }) =>
      withClient(flags, async (client) => {
        const last = flags.last === undefined ? undefined : parseCount(flags.last, '--last');
        const rounds = last === undefined ? await client.rounds() : (await client.rounds({ newestFirst: true, limit: last })).reverse();
        output(flags).result(roundsText(rounds), { rounds: jsonView(rounds) });
      }),
    );

  adminCommand(program, 'watch', 'print round events (started, committed, aborted) as they happen, reconnecting when the coordinator restarts; Ctrl-C stops')
    .option('--count <n>', 'exit after N events')
    .option('--open', 'start with the round open now, if any')
    .option('--retry-for <duration>', 'how long to keep reconnecting after losing the coordinator before exiting with status 1 (0: exit at once)', '5m')
    .action(async (flags: ConnectionFlags & JsonFlag & { count?: string; open?: boolean; retryFor: string }) => {
      const count = flags.count === undefined ? undefined : parseCount(flags.count, '--count');
      const retryForMs = flags.retryFor === '0' ? 0 : parseDurationMs(flags.retryFor);
      if (retryForMs === undefined || retryForMs < 0) throw new UsageError(`--retry-for must be a duration such as 30s or 5m, or 0; got ${JSON.stringify(flags.retryFor)}`);
      const connection = await resolveConnection(flags, io.env ?? process.env);
      const printer = output(flags);
      const stderr = io.stderr ?? process.stderr;
      const stop = new AbortController();
      const onSignal = (): void => stop.abort();
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      try {
        await watchRounds(
          {
            connect: () => new OperatorClient(connection),
            event: (event) => printer.result(eventText(event), jsonView(event) as Record<string, unknown>),
            notice: (line) => stderr.write(`${line}\n`),
          },
          { address: connection.address, includeOpenRound: flags.open === true, retryForMs, ...(count === undefined ? {} : { count }) },
          stop.signal,
        );
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    });

  adminCommand(program, 'export', "download a committed round's global model as ONNX (length and SHA-256 checked), or with --state read it from a state directory offline")
    .option('--round <n>', 'round number (0 = the initial model); default the latest committed round')
    .requiredOption('--out <file>', 'where to write model.onnx')
    .option('--state <dir>', "export offline from a coordinator's state directory (or a copy), checked against its ledger; no coordinator or operator certificate needed")
    // With --state, the connection flag --ca names the CA that the ledger's signatures are verified against.
    .option('--crl <pem>', 'with --state and --ca: the CA-signed CRL for verifying the ledger before the export')
    .action(async (flags: ConnectionFlags & JsonFlag & { round?: string; out: string; state?: string; crl?: string }) => {
      if (flags.state !== undefined) {
        const round = flags.round === undefined ? undefined : parseCount(flags.round, '--round', 0);
        await exportFromStateDirectory(
          { state: flags.state, out: flags.out, ...(round === undefined ? {} : { round }), ...(flags.ca === undefined ? {} : { ca: flags.ca }), ...(flags.crl === undefined ? {} : { crl: flags.crl }) },
          output(flags),
        );
        return;
      }
      if (flags.crl !== undefined) throw new UsageError('--crl goes with --state (an offline export); a live export is checked by the coordinator');
      await withClient(flags, async (client) => {
        const round = flags.round === undefined ? undefined : parseCount(flags.round, '--round', 0);
        const model = await client.model(round === undefined ? {} : { round });
        const path = resolve(flags.out);
        await mkdir(dirname(path), { recursive: true });
        await writeFileAtomic(path, model.bytes);
        const sha256 = model.sha256.toString('hex');
        output(flags).result(
          `round ${model.round ?? '?'} model (${model.bytes.length} bytes of ONNX, sha256 ${sha256}) written to ${path}`,
          { round: model.round ?? null, path, bytes: model.bytes.length, sha256, modelHash: model.modelHash ?? null },
        );
      });
    });

  const certs = program.commands.find((command) => command.name() === 'certs') ?? program.command('certs');
  withConnectionOptions(
    certs
      .command('revoke <serial-or-site>')
      .description(
        'revoke a certificate (by serial) or every certificate of a site (by site id) on the running coordinator: the CA in its tls.ca_dir signs a new CRL, ' +
          'the site is disconnected and refused from now on, and the revocation survives restarts. A 16+ digit hex argument is a serial unless --site is given',
      )
      .option('--site', 'treat the argument as a site id')
      .option('--serial', 'treat the argument as a certificate serial'),
  )
    .option('--json', 'print one JSON object')
    .action(async (target: string, flags: ConnectionFlags & JsonFlag & { site?: boolean; serial?: boolean }) =>
      withClient(flags, async (client) => {
        if (flags.site === true && flags.serial === true) throw new UsageError('give --site or --serial, not both');
        const bySerial = flags.serial === true || (flags.site !== true && SERIAL_LIKE.test(target));
        const response = await client.revoke(bySerial ? { serial: target } : { siteId: target });
        output(flags).result(revocationText(response), jsonView(response) as Record<string, unknown>);
      }),
    );
}

function adminCommand(program: Command, name: string, description: string): Command {
  return withConnectionOptions(program.command(name).description(description)).option('--json', 'print JSON instead of text');
}

async function connectAndRun(flags: ConnectionFlags, env: NodeJS.ProcessEnv, work: (client: OperatorClient) => Promise<void>): Promise<void> {
  const connection: OperatorConnection = await resolveConnection(flags, env);
  const client = new OperatorClient(connection);
  try {
    await work(client);
  } finally {
    client.close();
  }
}

function parseDelta(text: string): number {
  const value = Number(text);
  if (text.trim() === '' || !(value > 0 && value < 1)) throw new UsageError(`--delta must be a number strictly between 0 and 1, such as 1e-5; got ${JSON.stringify(text)}`);
  return value;
}

function parseCount(text: string, flag: string, minimum = 1): number {
  const value = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(value) || value < minimum) {
    throw new UsageError(`${flag} must be a whole number of at least ${minimum}; got ${JSON.stringify(text)}`);
  }
  return value;
}
