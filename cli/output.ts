/**
 * How commands talk to the person or program that ran them: a result is printed as text, or as one JSON
 * object on stdout with --json. Diagnostics go to stderr so stdout stays machine-readable. Callers escape
 * peer-supplied strings in text (terminal-text.ts); JSON is escaped here as a whole.
 */
import { jsonSafe } from './terminal-text.js';
export interface Output {
  readonly json: boolean;
  /** Prints a command's result. */
  result(text: string, value: Record<string, unknown>): void;
  /** Prints a human note to stderr (silent with --json). */
  note(text: string): void;
}

export function createOutput(json: boolean, stdout: NodeJS.WritableStream = process.stdout, stderr: NodeJS.WritableStream = process.stderr): Output {
  return {
    json,
    result(text, value) {
      stdout.write(json ? `${jsonSafe(JSON.stringify(value, jsonReplacer))}\n` : `${text}\n`);
    },
    note(text) {
      if (!json) stderr.write(`${text}\n`);
    },
  };
}

function jsonReplacer(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Date) return value.toISOString();
  return value;
}
