/**
 * Structured logs: one JSON object a line on stdout (pino), so operators ship them as they are. Progress
 * of long work goes to stderr as a bar when stderr is a terminal, and is left out otherwise.
 */
import pino, { type Logger } from 'pino';

export function createLogger(name: string, level: string = process.env['FEDGATE_LOG_LEVEL'] ?? 'info'): Logger {
  return pino({ name, level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime });
}
