/**
 * One contribution per model, coordinator side: the commit of a round whose aggregate was unmasked is
 * finished, never abandoned for lack of signatures (sites refuse to contribute twice on one model, and a
 * re-run would show the coordinator a second aggregate of the same inputs). This asks U3 for their commit
 * signatures again until the quorum is stored: each member that (re)connects gets the CommitRequest on its
 * new session, and every member that has not signed gets it again every commit deadline. It gives up only
 * when so many members refused to sign (a RoundRefusal: their own recomputation disagrees) that the
 * quorum cannot be reached any more.
 *
 * Used by the round driver after the commit deadline (round-driver.ts) and by a coordinator that restarted
 * with a pending commit on disk (resumed-commit.ts); the caller owns the collector of signatures and the
 * refusals, and notifies `gate` when either changes.
 */
import type { Logger } from 'pino';
import type { CommitRequestMessage } from '../../crypto/secagg/messages.js';
import type { CommitStatus } from '../../crypto/secagg/server-commit.js';
import type { RoundTransport } from './round-messages.js';
import type { StageGate } from './stage-gate.js';

/** The part of the coordinator's site directory re-collection needs: who is connected, and a wait for that to change. */
export interface SitePresence {
  eligible(): readonly { readonly siteId: string }[];
  changed(timeoutMs: number, signal?: AbortSignal): Promise<void>;
}

export interface CommitRecollectionOptions {
  readonly request: CommitRequestMessage;
  /** U3 in id order. */
  readonly survivors: readonly string[];
  /** The signatures stored so far. */
  readonly status: () => CommitStatus;
  /** Members of U3 that refused the round, with their reason. */
  readonly refused: ReadonlyMap<string, string>;
  readonly presence: SitePresence;
  readonly transport: RoundTransport;
  /** Notified by the caller on every stored signature and refusal. */
  readonly gate: StageGate;
  /** How often an unsigned, connected member is asked again: the round's commit deadline. */
  readonly intervalMs: number;
  readonly logger: Logger;
  readonly signal?: AbortSignal;
}

export type RecollectionEnd =
  | { readonly status: 'committed' }
  | { readonly status: 'unreachable'; readonly refusedBy: readonly string[] }
  | { readonly status: 'cancelled' };

export class CommitRecollection {
  /** Members of U3 that have the request on their current session. */
  private readonly sentTo: Set<string>;

  constructor(
    private readonly options: CommitRecollectionOptions,
    alreadySentTo: Iterable<string> = [],
  ) {
    this.sentTo = new Set(alreadySentTo);
  }

  /** A member that comes back has a new session: it must be sent the request again. */
  siteDisconnected(siteId: string): void {
    this.sentTo.delete(siteId);
  }

  /** Asks until the quorum is stored ('committed'), the refusals leave it out of reach, or `signal` fires. */
  async run(): Promise<RecollectionEnd> {
    const { request, survivors, refused, presence, transport, gate, intervalMs, signal } = this.options;
    let resentAt = performance.now();
    for (;;) {
      const status = this.options.status();
      if (status.committed) return { status: 'committed' };
      if (signal?.aborted === true) return { status: 'cancelled' };
      // A revoked member counts as refusing: its session is closed and its certificate refused for good.
      const refusing = survivors.filter((siteId) => (refused.has(siteId) || status.revoked.includes(siteId)) && !status.signers.includes(siteId));
      if (survivors.length - refusing.length < status.required) return { status: 'unreachable', refusedBy: refusing };
      const connected = new Set(presence.eligible().map((site) => site.siteId));
      const due = performance.now() - resentAt >= intervalMs;
      if (due) resentAt = performance.now();
      for (const siteId of survivors) {
        if (status.signers.includes(siteId) || refused.has(siteId) || status.revoked.includes(siteId)) continue;
        if (!connected.has(siteId)) {
          this.sentTo.delete(siteId);
          continue;
        }
        if (this.sentTo.has(siteId) && !due) continue;
        this.options.logger.info({ site: siteId }, 'asking a survivor for its commit signature again');
        transport.send(siteId, { kind: 'stage', message: request });
        this.sentTo.add(siteId);
      }
      // Wake on the quorum or a new refusal (gate), or a change of who is connected, whichever comes first.
      const wait = new AbortController();
      const waitSignal = signal === undefined ? wait.signal : AbortSignal.any([wait.signal, signal]);
      const refusals = refused.size;
      await Promise.race([presence.changed(intervalMs, waitSignal), gate.wait(intervalMs, () => this.options.status().committed || refused.size !== refusals, waitSignal)]);
      wait.abort();
    }
  }
}
