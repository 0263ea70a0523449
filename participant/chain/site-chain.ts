/**
 * The daemon's chain duties in one place, so participant-app.ts only forwards to them:
 *  - RoundStart: the site's policy (as the SecAgg+ client checks it, so its refusals keep their reasons),
 *    then the chain follower: the round must start from the verified chain head (chain-follower.ts);
 *  - RoundCommitted: the record moves the head only if it is a valid link;
 *  - a CommitRequest for the round this site last unmasked in, when the connection (and with it the
 *    round's session) was lost in between: the coordinator finishes an unmasked round rather than re-run
 *    it (one contribution per model), so the site signs that round's commit from the public context it
 *    kept (crypto/secagg/commit-resign.ts), after recomputing model r+1 itself. Nothing secret is kept.
 */
import type { KeyObject } from 'node:crypto';
import type { Logger } from 'pino';
import { bytesEqual, toHex } from '../../crypto/bytes.js';
import { signUnmaskedRoundCommit, type UnmaskedRound } from '../../crypto/secagg/commit-resign.js';
import type { RoundConfig } from '../../crypto/secagg/config.js';
import type { CommitHashes, CommitRequestMessage, CommitSignatureMessage } from '../../crypto/secagg/messages.js';
import { checkRoundConfigAgainstPolicy, type SitePolicy } from '../../crypto/secagg/policy.js';
import type { CommitComputation } from '../round/round-session.js';
import { ChainFollower, type ChainFollowerOptions } from './chain-follower.js';

export interface SiteChainOptions extends Omit<ChainFollowerOptions, 'policy'> {
  readonly siteId: string;
  readonly signingKey: KeyObject;
  readonly policy: SitePolicy;
  /** Recomputes model r+1 for a commit request (participant/daemon/site-training.ts). */
  readonly computeCommit: (config: RoundConfig, request: CommitRequestMessage) => Promise<CommitComputation>;
}

/** The round this site last unmasked in, and what it signed for it. */
interface LastUnmasked {
  readonly round: UnmaskedRound;
  signed?: CommitHashes;
  computation?: CommitComputation;
}

export class SiteChain {
  private readonly follower: ChainFollower;
  private last: LastUnmasked | undefined;
  private readonly log: Logger;

  constructor(private readonly options: SiteChainOptions) {
    this.follower = new ChainFollower(options);
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

  unmasked(round: UnmaskedRound): void {
    this.last = { round };
  }

  commitSigned(roundId: Uint8Array, hashes: CommitHashes): void {
    if (this.last !== undefined && bytesEqual(this.last.round.config.roundId, roundId)) this.last.signed = hashes;
  }

  /** Model r+1 this site computed when it signed `roundId`'s commit outside a live session, if it did. */
  lateComputation(roundId: Uint8Array): CommitComputation | undefined {
    return this.last !== undefined && bytesEqual(this.last.round.config.roundId, roundId) ? this.last.computation : undefined;
  }

  /**
   * A CommitRequest no live round session takes: signs it if it is for the round this site last unmasked
   * in and names the hashes this site recomputes; undefined when the request is for any other round.
   */
  async lateCommit(request: CommitRequestMessage): Promise<CommitSignatureMessage | undefined> {
    const last = this.last;
    if (last === undefined || !bytesEqual(last.round.config.roundId, request.roundId)) return undefined;
    const computation = await this.options.computeCommit(last.round.config, request);
    const signature = signUnmaskedRoundCommit(last.round, request, computation.hashes, this.options.signingKey, last.signed);
    last.signed = computation.hashes;
    last.computation = computation;
    this.log.info({ round: toHex(request.roundId) }, 'signed the commit of the round this site unmasked in before its connection dropped');
    return signature;
  }
}
