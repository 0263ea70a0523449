/**
 * `fedgate ARGS` run in this process (cli/run.ts's runCli), with what it writes to stdout (results) and
 * to stderr or its error stream (errors, notes) captured and process.stdout/stderr restored afterwards.
 */
import { PassThrough } from 'node:stream';
import { runCli } from '../../cli/run.js';

export interface CliRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export async function runFedgateInProcess(args: readonly string[]): Promise<CliRun> {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const errors = new PassThrough();
  errors.on('data', (chunk: Buffer) => stderr.push(chunk.toString()));
  const write = process.stdout.write.bind(process.stdout);
  const writeErr = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((chunk: string | Uint8Array) => {
    stdout.push(String(chunk));
    return true;
  }) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string | Uint8Array) => {
    stderr.push(String(chunk));
    return true;
  }) as typeof process.stderr.write;
  let code: number;
  try {
    code = await runCli(args, errors, {});
  } finally {
    process.stdout.write = write;
    process.stderr.write = writeErr;
  }
  return { code, stdout: stdout.join(''), stderr: stderr.join('') };
}
