/**
 * `fedgate watch`: round events as they happen, across coordinator restarts. When the coordinator goes
 * away (it stopped, restarted, or the connection dropped) the watch says so on stderr and reconnects with
 * bounded backoff, saying so again once it is back; after `retryForMs` without the coordinator it exits
 * non-zero with the reason. It never ends silently: only Ctrl-C and --count end it with status 0.
 */
import { FedgateError } from '../../platform/index.js';
import type { RoundEventMessage } from '../../proto/admin-messages.js';
import type { OperatorClient } from '../../proto/admin-client.js';

/** Errors after which reconnecting can help: the coordinator is (for now) not there. */
const RETRYABLE_CODES: ReadonlySet<string> = new Set(['UNAVAILABLE', 'CANCELLED', 'DEADLINE_EXCEEDED']);

export interface WatchSettings {
  /** host:port, for messages. */
  readonly address: string;
  /** Stop after this many events. */
  readonly count?: number;
  readonly includeOpenRound: boolean;
  /** How long to keep trying after losing the coordinator; 0 exits at once. */
  readonly retryForMs: number;
  /** Delays between reconnection attempts: doubling from initialMs up to maxMs. @default 500 ms .. 10 s */
  readonly backoff?: { readonly initialMs: number; readonly maxMs: number };
}

export interface WatchIo {
  /** A fresh client for each connection. */
  connect(): OperatorClient;
  event(event: RoundEventMessage): void;
  /** A line for the person watching (stderr), also with --json. */
  notice(line: string): void;
}

/** Resolves when `signal` aborts or `count` events were printed; rejects when the coordinator is gone for good. */
export async function watchRounds(io: WatchIo, settings: WatchSettings, signal: AbortSignal): Promise<void> {
  const { initialMs, maxMs } = settings.backoff ?? { initialMs: 500, maxMs: 10_000 };
  const stopAfterCount = new AbortController();
  const stopped = AbortSignal.any([signal, stopAfterCount.signal]);
  let seen = 0;
  let connected = false;
  let lostSince: number | undefined;
  let attempt = 0;
  let includeOpenRound = settings.includeOpenRound;
  for (;;) {
    const client = io.connect();
    let reason: string;
    try {
      // A unary call first: it fails at once when nobody answers, and says what is being watched.
      const status = await client.status();
      const progress = `${status.committedRounds} of ${status.roundsConfigured} rounds committed`;
      io.notice(
        connected
          ? `fedgate watch: reconnected to the coordinator at ${settings.address} (${progress}; events while disconnected are not shown: \`fedgate rounds\` lists the committed ones)`
          : `fedgate watch: watching federation ${status.federationId} at ${settings.address} (${progress}); Ctrl-C stops`,
      );
      connected = true;
      lostSince = undefined;
      attempt = 0;
      await client.watch(
        (event) => {
          io.event(event);
          seen += 1;
          if (settings.count !== undefined && seen >= settings.count) stopAfterCount.abort();
        },
        { includeOpenRound, signal: stopped },
      );
      // watch() resolves when we cancel it, or when the coordinator ends the stream.
      if (stopped.aborted) return;
      reason = 'the coordinator closed the stream (it stopped or is restarting)';
    } catch (error) {
      if (stopped.aborted) return;
      // Unreachable when the watch starts, or refused (revoked, wrong role): say so now, as every other command does.
      if (!connected || !(error instanceof FedgateError) || !RETRYABLE_CODES.has(error.code)) throw error;
      reason = error.message;
    } finally {
      client.close();
    }
    lostSince ??= Date.now();
    const waited = Date.now() - lostSince;
    if (waited >= settings.retryForMs) {
      throw new FedgateError(
        'UNAVAILABLE',
        settings.retryForMs === 0
          ? `the watch lost the coordinator at ${settings.address}: ${reason}`
          : `the watch gave up after ${formatSeconds(waited)} without the coordinator at ${settings.address}: ${reason}; run the watch again once it is back (--retry-for sets how long to wait)`,
        { reason: 'COORDINATOR_LOST' },
      );
    }
    const delay = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 20), settings.retryForMs - waited);
    attempt += 1;
    io.notice(`fedgate watch: ${reason}; reconnecting in ${formatSeconds(delay)} (attempt ${attempt}, giving up ${formatSeconds(settings.retryForMs - waited)} from now)`);
    if (!(await sleep(delay, stopped))) return;
    // The round open after the reconnect may have started while we were away.
    includeOpenRound = true;
  }
}

function formatSeconds(ms: number): string {
  return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;
}

/** Waits `ms`; false when `signal` aborted first. */
function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve(false);
      return;
    }
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve(false);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
