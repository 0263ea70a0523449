/**
 * Human units in config files: durations ("30s", "5m", "250ms", "1h" or a number of seconds) and sizes
 * ("64MiB", "1GiB", "512KB" or a number of bytes). Parsing is strict: anything else is rejected with the
 * accepted forms in the message.
 */
import { z } from 'zod';

const DURATION = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)$/;
const DURATION_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Parses a duration to milliseconds, or returns undefined when the text is not a duration. */
export function parseDurationMs(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value * 1000 : undefined;
  const match = DURATION.exec(value.trim());
  if (match === null) return undefined;
  return Number(match[1]) * (DURATION_MS[match[2] ?? 's'] ?? 1000);
}

const SIZE = /^(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|KiB|MiB|GiB)?$/;
const SIZE_BYTES: Record<string, number> = { B: 1, KB: 1e3, MB: 1e6, GB: 1e9, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 };

export function parseSizeBytes(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
  const match = SIZE.exec(value.trim());
  if (match === null) return undefined;
  const bytes = Math.floor(Number(match[1]) * (SIZE_BYTES[match[2] ?? 'B'] ?? 1));
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

/** zod schema: a duration in config, compiled to milliseconds. */
export const duration = z.union([z.string(), z.number()]).transform((value, context) => {
  const ms = parseDurationMs(value);
  if (ms === undefined || ms <= 0) {
    context.addIssue({ code: 'custom', message: `expected a positive duration such as "30s", "5m", "250ms" or a number of seconds, got ${JSON.stringify(value)}` });
    return z.NEVER;
  }
  return ms;
});

/** zod schema: a size in config, compiled to bytes. */
export const size = z.union([z.string(), z.number()]).transform((value, context) => {
  const bytes = parseSizeBytes(value);
  if (bytes === undefined || bytes <= 0) {
    context.addIssue({ code: 'custom', message: `expected a positive size such as "64MiB", "1GiB" or a number of bytes, got ${JSON.stringify(value)}` });
    return z.NEVER;
  }
  return bytes;
});
