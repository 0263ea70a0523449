/**
 * The coordinator's log of refused TLS handshakes (proto/handshake-failures.ts), rate-limited: a site
 * with a wrong bundle retries every few seconds, and a scanner may try far more often, so each
 * (client address, problem) gets at most one line per window; the next line counts what was left out.
 */
import type { Logger } from 'pino';
import type { HandshakeFailure } from '../../proto/handshake-failures.js';

/** @default one line per client address and problem per minute */
export const HANDSHAKE_LOG_WINDOW_MS = 60_000;
/** Distinct (address, problem) pairs remembered; the oldest is forgotten past this. */
const MAX_TRACKED = 1024;

export class HandshakeFailureLog {
  private readonly recent = new Map<string, { at: number; suppressed: number }>();

  constructor(
    private readonly logger: Logger,
    private readonly windowMs: number = HANDSHAKE_LOG_WINDOW_MS,
    private readonly now: () => number = Date.now,
  ) {}

  report(failure: HandshakeFailure): void {
    const key = `${failure.peerHost} ${failure.problem}`;
    const now = this.now();
    const last = this.recent.get(key);
    if (last !== undefined && now - last.at < this.windowMs) {
      last.suppressed += 1;
      return;
    }
    this.recent.delete(key);
    this.recent.set(key, { at: now, suppressed: 0 });
    if (this.recent.size > MAX_TRACKED) this.recent.delete(this.recent.keys().next().value as string);
    this.logger.warn(
      {
        peer: failure.peer,
        problem: failure.problem,
        detail: failure.detail,
        ...(failure.certificate === undefined ? {} : { certificate: failure.certificate }),
        ...(last !== undefined && last.suppressed > 0 ? { similarNotLogged: last.suppressed } : {}),
      },
      'TLS handshake refused',
    );
  }
}
