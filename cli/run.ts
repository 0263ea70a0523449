/**
 * The CLI's one place that turns a thrown error into a message and an exit code. Everything below it
 * throws typed errors; only cli/main.ts calls process.exit.
 */
import { Command, CommanderError } from 'commander';
import { registerAdminCommands } from './commands/admin.js';
import { registerCertsCommands } from './commands/certs.js';
import { registerDashboardCommand } from './commands/dashboard.js';
import { registerRunCommands } from './commands/run.js';
import { registerTaskCommands } from './commands/task.js';
import { registerVerifyCommand } from './commands/verify.js';
import { isErrnoException } from '../platform/index.js';
import { isKnownError } from '../proto/status.js';
import { terminalSafe } from './terminal-text.js';
import { UsageError } from './usage-error.js';
import { resolveUserPathsBeforeAction } from './user-paths.js';

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** The `fedgate` program; `env` is read by the commands that take settings from the environment. */
export function buildProgram(env: NodeJS.ProcessEnv = process.env): Command {
  const program = new Command('fedgate')
    .description('federated, privacy-preserving learning gateway: mTLS gRPC, SecAgg+ secure aggregation, ONNX Runtime training')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  registerCertsCommands(program);
  registerAdminCommands(program);
  registerRunCommands(program, env);
  registerTaskCommands(program);
  registerVerifyCommand(program);
  // `npm run fedgate` runs in the package root: paths on the command line are the user's (cli/user-paths.ts).
  resolveUserPathsBeforeAction(program, env);
  registerDashboardCommand(program);
  return program;
}

/** Runs the CLI with `argv` (without node and script) and resolves to the process exit code. */
export async function runCli(argv: readonly string[], stderr: NodeJS.WritableStream = process.stderr, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const program = buildProgram(env);
  program.configureOutput({ writeErr: (text) => stderr.write(text) });
  for (const command of program.commands) command.exitOverride();
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return EXIT_OK;
  } catch (error) {
    return reportError(error, stderr, env);
  }
}

export function reportError(error: unknown, stderr: NodeJS.WritableStream, env: NodeJS.ProcessEnv): number {
  if (error instanceof CommanderError) {
    // commander already printed its message (help, version, unknown option ...).
    return error.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
  }
  if (error instanceof UsageError) {
    stderr.write(`fedgate: ${error.message}\n`);
    return EXIT_USAGE;
  }
  // A message may quote what a peer sent (the coordinator's error details): no escape sequence gets through.
  const message = terminalSafe(error instanceof Error ? error.message : String(error), { keepNewlines: true });
  // fedgate's own errors and system errors (whose message names the path and the errno) explain themselves.
  const known = isKnownError(error) || isErrnoException(error);
  stderr.write(`fedgate: ${message}\n`);
  if (env['FEDGATE_DEBUG'] === '1' && error instanceof Error && error.stack !== undefined) stderr.write(`${error.stack}\n`);
  else if (!known) stderr.write('(unexpected error: set FEDGATE_DEBUG=1 for a stack trace, and please report it)\n');
  return EXIT_FAILURE;
}
