/**
 * The daemon's chain duties in one place, so participant-app.ts only forwards to them:
 *  - RoundStart: the site's policy (as the SecAgg+ client checks it, so its refusals keep their reasons),
 *    then the chain follower: the round must start from the verified chain head (chain-follower.ts);
 *  - RoundCommitted: the record moves the head only if it is a valid link;
 *  - a CommitRequest for the round this site last unmasked in, when the connection (and with it the
 *    round's session) was lost in between, or either side restarted: the coordinator finishes an
 *    unmasked round rather than re-run it (one contribution per model), so the site signs that round's
 *    commit from the public context it kept (crypto/secagg/commit-resign.ts), after recomputing model r+1
 *    itself. The context and the hashes it signed are kept in the site's state store (persisted, before
 *    the Unmask answer and each commit signature leave), so a restarted site still signs that round's
 *    commit - and never a different one. Nothing secret is kept.
 */
import type { KeyObject } from 'node:crypto';
import type { Logger } from 'pino';
import { bytesEqual, toHex } from '../../crypto/bytes.js';
import { signUnmaskedRoundCommit, type UnmaskedRound } from '../../crypto/secagg/commit-resign.js';
import type { RoundConfig } from '../../crypto/secagg/config.js';
import type { CommitHashes, CommitRequestMessage, CommitSignatureMessage } from '../../crypto/secagg/messages.js';
import { checkRoundConfigAgainstPolicy, type SitePolicy } from '../../crypto/secagg/policy.js';
import type { CommitComputation } from '../round/round-session.js';
import type { UnmaskedRoundRecord } from '../state/site-state.js';
import { ChainFollower, type ChainFollowerOptions } from './chain-follower.js';

/** Where the round this site last unmasked in is kept: its SiteStateStore (persisted), or memory (MemoryUnmaskedRounds). */
export interface UnmaskedRoundStore {
  unmaskedRound(roundId: Uint8Array): UnmaskedRoundRecord | undefined;
  keepUnmaskedRound(round: UnmaskedRound): Promise<void>;
  keepCommitSigned(roundId: Uint8Array, hashes: CommitHashes): Promise<void>;
}

/** The last unmasked round kept in memory only: a site without a state directory forgets it on restart. */
export class MemoryUnmaskedRounds implements UnmaskedRoundStore {
  private kept: UnmaskedRoundRecord | undefined;

  unmaskedRound(roundId: Uint8Array): UnmaskedRoundRecord | undefined {
    return this.kept !== undefined && bytesEqual(this.kept.round.config.roundId, roundId) ? this.kept : undefined;
  }

  async keepUnmaskedRound(round: UnmaskedRound): Promise<void> {
    if (this.unmaskedRound(round.config.roundId) === undefined) this.kept = { round, signed: undefined };
    return Promise.resolve();
  }

  async keepCommitSigned(roundId: Uint8Array, hashes: CommitHashes): Promise<void> {
    const kept = this.unmaskedRound(roundId);
    if (kept !== undefined) this.kept = { round: kept.round, signed: hashes };
    return Promise.resolve();
  }
}

export interface SiteChainOptions extends Omit<ChainFollowerOptions, 'policy'> {
  readonly siteId: string;
  readonly signingKey: KeyObject;
  readonly policy: SitePolicy;
  /** Recomputes model r+1 for a commit request (participant/daemon/site-training.ts). */
  readonly computeCommit: (config: RoundConfig, request: CommitRequestMessage) => Promise<CommitComputation>;
  /** Where the round this site last unmasked in is kept (the daemon's SiteStateStore). @default memory */
  readonly unmaskedRounds?: UnmaskedRoundStore;
}

export class SiteChain {
  private readonly follower: ChainFollower;
  private readonly rounds: UnmaskedRoundStore;
  /** Model r+1 this site computed when it last signed a commit outside a live session (memory only). */
  private late: { readonly roundId: Uint8Array; readonly computation: CommitComputation } | undefined;
  /** Commit signing and its record run one at a time: two requests never both pass the one-commit check. */
  private queue: Promise<unknown> = Promise.resolve();
  private readonly log: Logger;

  constructor(private readonly options: SiteChainOptions) {
    this.follower = new ChainFollower(options);
    this.rounds = options.unmaskedRounds ?? new MemoryUnmaskedRounds();
    this.log = options.logger.child({ component: 'chain' });
  }

  /** RoundStart, before any key: policy first, then the chain head. Rejects with the refusal's reason. */
  async checkRound(config: RoundConfig): Promise<void> {
    checkRoundConfigAgainstPolicy(config, this.options.siteId, this.options.policy);
    await this.follower.checkRoundStart(config);
  }

  /** RoundCommitted: resolves true when the record was a valid link and the head moved (or was there). */
  committed(commitRecord: Uint8Array): Promise<boolean> {
    return this.follower.committed(commitRecord);
  }

  /** Keeps (persisted before it resolves) the public context of the round this site is about to reveal in. */
  unmasked(round: UnmaskedRound): Promise<void> {
    return this.serialized(() => this.rounds.keepUnmaskedRound(round));
  }

  /** Records (persisted before it resolves) the hashes the live session signs for `roundId`, before the signature leaves. */
  commitSigned(roundId: Uint8Array, hashes: CommitHashes): Promise<void> {
    return this.serialized(() => this.rounds.keepCommitSigned(roundId, hashes));
  }

  /** Model r+1 this site computed when it signed `roundId`'s commit outside a live session, if it did. */
  lateComputation(roundId: Uint8Array): CommitComputation | undefined {
    return this.late !== undefined && bytesEqual(this.late.roundId, roundId) ? this.late.computation : undefined;
  }

  /**
   * A CommitRequest no live round session takes: signs it if it is for the round this site last unmasked
   * in and names the hashes this site recomputes (and no other commit was signed for it); undefined when
   * the request is for any other round. What it signs is on disk before the signature is returned.
   */
  lateCommit(request: CommitRequestMessage): Promise<CommitSignatureMessage | undefined> {
    return this.serialized(async () => {
      const kept = this.rounds.unmaskedRound(request.roundId);
      if (kept === undefined) return undefined;
      const computation = await this.options.computeCommit(kept.round.config, request);
      const signature = signUnmaskedRoundCommit(kept.round, request, computation.hashes, this.options.signingKey, kept.signed);
      await this.rounds.keepCommitSigned(request.roundId, computation.hashes);
      this.late = { roundId: new Uint8Array(request.roundId), computation };
      this.log.info({ round: toHex(request.roundId) }, 'signed the commit of the round this site unmasked in, outside that round\'s session (the connection dropped or a side restarted)');
      return signature;
    });
  }

  private serialized<T>(step: () => Promise<T>): Promise<T> {
    const result = this.queue.then(step);
    this.queue = result.catch(() => undefined);
    return result;
  }
}
