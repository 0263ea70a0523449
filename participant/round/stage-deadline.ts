/**
 * A site's own clock on a round (DESIGN.md "What a site checks for itself": it enforces RoundConfig's
 * deadlines itself and zeroises keys and shares when they pass). The coordinator waits at most the
 * stage's deadline for the sites' answers before it sends the message that opens the next stage; so a
 * site that received the message opening stage S expects the one opening the stage after S within S's
 * deadline plus a grace for the coordinator's own work between stages (closing the stage, unmasking,
 * computing the next model) and the network. If it does not come, the site ends the round.
 *
 * The rule, per message that opens a stage (docs/protocol.md "Site checks"):
 *   RoundStart     -> KeyList         within advertiseKeysMs + grace
 *   KeyList        -> Graph           within advertiseKeysMs + grace (the coordinator's nonce-reveal wait)
 *   Graph          -> ShareDelivery   within shareKeysMs + grace
 *   ShareDelivery  -> ConsistencyRequest within maskedInputMs + grace (local training included)
 *   ConsistencyRequest -> UnmaskRequest  within consistencyCheckMs + grace
 *   UnmaskRequest  -> CommitRequest   within unmaskMs + grace
 *   CommitRequest  -> RoundCommitted  within commitMs + grace
 * The clock only moves forward: a message for the current or an earlier stage (a repeated request the
 * site answers again, or junk) does not restart it, so a coordinator cannot keep a round open by
 * resending messages.
 */
import type { StageDeadlines } from '../../crypto/secagg/config.js';
import type { ServerMessage } from '../../crypto/secagg/messages.js';

/** Extra time the site gives the coordinator beyond each RoundConfig deadline. @default 10 s */
export const DEFAULT_DEADLINE_GRACE_MS = 10_000;

export type StageOpener = 'round_start' | ServerMessage['stage'];

/** The RoundConfig deadline covering the wait that starts when each opener arrives, in stage order. */
const DEADLINE_AFTER: readonly (readonly [StageOpener, keyof StageDeadlines])[] = [
  ['round_start', 'advertiseKeysMs'],
  ['key_list', 'advertiseKeysMs'],
  ['graph', 'shareKeysMs'],
  ['share_delivery', 'maskedInputMs'],
  ['consistency_request', 'consistencyCheckMs'],
  ['unmask_request', 'unmaskMs'],
  ['commit_request', 'commitMs'],
];

export interface DeadlinePassed {
  /** The message that opened the stage whose deadline passed. */
  readonly openedBy: StageOpener;
  /** The time the site waited: the RoundConfig deadline plus the grace. */
  readonly waitedMs: number;
}

export class StageDeadline {
  private timer: NodeJS.Timeout | undefined;
  private position = -1;

  constructor(
    private readonly deadlines: StageDeadlines,
    private readonly graceMs: number,
    private readonly onPassed: (passed: DeadlinePassed) => void,
  ) {}

  /** `opener` arrived: start its stage's clock, unless the round is already at or past that stage. */
  opened(opener: StageOpener): void {
    const position = DEADLINE_AFTER.findIndex(([name]) => name === opener);
    if (position <= this.position) return;
    this.position = position;
    this.clear();
    const waitedMs = this.deadlines[(DEADLINE_AFTER[position] as readonly [StageOpener, keyof StageDeadlines])[1]] + this.graceMs;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.onPassed({ openedBy: opener, waitedMs });
    }, waitedMs);
    // The clock must never be what keeps a stopping daemon's process alive.
    this.timer.unref();
  }

  /** The round ended: no more deadlines. */
  clear(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
