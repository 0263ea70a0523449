/**
 * A site's view of the chain of commit records (DESIGN.md "What a site checks for itself": a site trains
 * only on the head of a chain of quorum-signed commit records that it has verified back to the task's
 * pinned initial model and server optimiser). The coordinator may lie: it may name trap weights in a
 * RoundConfig, swap the optimiser state, or announce a commit nobody signed. The follower keeps the head
 * (counter, model hash, optimiser-state hash, record hash) in the site's state store and:
 *  - on RoundStart, before any key is made: when the RoundConfig does not start from its head (or it has
 *    none), fetches the records it lacks (GetCommitRecords) and verifies them link by link from its head,
 *    or from the task's initial head, with the site's own policy (crypto/secagg/commit-chain.ts), moving
 *    the head as links verify; then requires the RoundConfig's model and optimiser-state hashes to be the
 *    head's. Refusals: CHAIN_UNVERIFIED, MODEL_NOT_CHAIN_HEAD, OPTIMIZER_STATE_NOT_CHAIN_HEAD.
 *  - on RoundCommitted: verifies the record as the link after its head and moves the head; a record that
 *    is not a valid link is COMMIT_RECORD_INVALID - logged, the head stays where it was.
 * Every operation runs after the previous one, so a RoundCommitted is applied before the next RoundStart.
 */
import type { Logger } from 'pino';
import { bytesEqual, toHex } from '../../crypto/bytes.js';
import type { TrustAnchor } from '../../crypto/certificate.js';
import { verifyCommitLink, type CommitChainHead } from '../../crypto/secagg/commit-chain.js';
import { decodeCommitRecord } from '../../crypto/secagg/commit-record-codec.js';
import type { RoundConfig } from '../../crypto/secagg/config.js';
import type { SitePolicy } from '../../crypto/secagg/policy.js';
import { SITE_DEFENCE_REASONS, type SiteDefenceReason } from '../../crypto/secagg/site-refusals.js';
import { FedgateError } from '../../platform/index.js';
import type { CommitRecordPageEntry } from '../../proto/commit-records.js';
import { isKnownError } from '../../proto/status.js';
import type { ChainHead } from '../state/site-state.js';

/** Where the head is kept: the site's SiteStateStore (persisted), or memory (MemoryChainHeads). */
export interface ChainHeadStore {
  chainHead(federationId: string): ChainHead | undefined;
  setChainHead(federationId: string, head: ChainHead): Promise<void>;
}

/** A head kept in memory only: a site without a state directory re-verifies the chain after each restart. */
export class MemoryChainHeads implements ChainHeadStore {
  private readonly heads = new Map<string, ChainHead>();

  chainHead(federationId: string): ChainHead | undefined {
    return this.heads.get(federationId);
  }

  async setChainHead(federationId: string, head: ChainHead): Promise<void> {
    const current = this.heads.get(federationId);
    if (current !== undefined && head.counter < current.counter) throw new Error(`chain head cannot move back from round ${current.counter} to ${head.counter}`);
    this.heads.set(federationId, head);
    return Promise.resolve();
  }
}

export interface ChainFollowerOptions {
  readonly store: ChainHeadStore;
  readonly policy: SitePolicy;
  /** The CA and the revoked serials (undated: a revoked signer is refused in every round). */
  readonly trust: () => TrustAnchor;
  /** The head of a task's chain before round 1: its pinned initial model and initial optimiser state. */
  readonly origin: (taskHash: Uint8Array) => Promise<CommitChainHead>;
  /** One page of the coordinator's commit records after a round counter (GetCommitRecords). */
  readonly fetchRecords: (afterRoundCounter: bigint, maxRecords: number) => Promise<readonly CommitRecordPageEntry[]>;
  /** Records asked for per page. @default 1000 */
  readonly pageSize?: number;
  readonly logger: Logger;
}

/** A refusal of the site's chain checks, with one of the site's defence reasons. */
export class ChainRefusal extends FedgateError {
  constructor(reason: SiteDefenceReason, message: string, options: { cause?: unknown } = {}) {
    super('FAILED_PRECONDITION', message, { reason, ...options });
    this.name = 'ChainRefusal';
  }
}

export class ChainFollower {
  private queue: Promise<unknown> = Promise.resolve();
  private readonly log: Logger;

  constructor(private readonly options: ChainFollowerOptions) {
    this.log = options.logger.child({ component: 'chain' });
  }

  /**
   * RoundStart: brings the head up to the coordinator's ledger when the round does not start from it, and
   * resolves only if `config` starts from the verified head; rejects with a ChainRefusal otherwise.
   */
  checkRoundStart(config: RoundConfig): Promise<void> {
    return this.serialized(async () => {
      let head = await this.head(config);
      if (!startsFrom(config, head)) head = await this.catchUp(config, head);
      if (!bytesEqual(config.modelHash, head.modelHash)) {
        throw new ChainRefusal(
          SITE_DEFENCE_REASONS.MODEL_NOT_CHAIN_HEAD,
          `RoundConfig.modelHash ${toHex(config.modelHash)} is not the model of the verified chain head (round ${head.counter}): the site trains only on the head of the chain of commit records`,
        );
      }
      if (!bytesEqual(config.optimizerStateHash, head.optimizerStateHash)) {
        throw new ChainRefusal(
          SITE_DEFENCE_REASONS.OPTIMIZER_STATE_NOT_CHAIN_HEAD,
          `RoundConfig.optimizerStateHash ${toHex(config.optimizerStateHash)} is not the server-optimiser state of the verified chain head (round ${head.counter})`,
        );
      }
    });
  }

  /**
   * RoundCommitted: verifies `recordBytes` as the link after the head and moves the head. Resolves false
   * (and logs COMMIT_RECORD_INVALID) for a record that is not a valid link; the head does not move.
   */
  committed(recordBytes: Uint8Array): Promise<boolean> {
    return this.serialized(async () => {
      let parsed;
      try {
        parsed = decodeCommitRecord(recordBytes, 'RoundCommitted.commitRecord');
      } catch (error) {
        this.invalidRecord(error);
        return false;
      }
      const config = parsed.record.config;
      const head = await this.head(config).catch((error: unknown) => {
        this.invalidRecord(error);
        return undefined;
      });
      if (head === undefined) return false;
      if (parsed.counter <= head.counter && bytesEqual(parsed.recordHash, head.recordHash)) return true;
      try {
        const link = verifyCommitLink(parsed, this.linkOptions(config, head));
        await this.options.store.setChainHead(config.federationId, { ...link.head, recordHash: parsed.recordHash });
        this.log.info({ counter: link.head.counter.toString(), model: toHex(link.head.modelHash) }, 'chain head moved to the committed round');
        return true;
      } catch (error) {
        this.invalidRecord(error);
        return false;
      }
    });
  }

  /** The stored head of the round's federation, or the task's initial head when the site has none. */
  private async head(config: RoundConfig): Promise<ChainHead> {
    const stored = this.options.store.chainHead(config.federationId);
    if (stored !== undefined) return stored;
    try {
      return { ...(await this.options.origin(config.taskHash)), recordHash: new Uint8Array(0) };
    } catch (error) {
      throw new ChainRefusal(SITE_DEFENCE_REASONS.CHAIN_UNVERIFIED, `the task's initial model and optimiser state are not available: ${messageOf(error)}`, { cause: error });
    }
  }

  /**
   * Fetches the records after `head` and verifies them link by link, persisting the head after every page
   * (a valid prefix is kept even when a later link fails). CHAIN_UNVERIFIED when a record is not a valid
   * link or the records cannot be fetched.
   */
  private async catchUp(config: RoundConfig, start: ChainHead): Promise<ChainHead> {
    const pageSize = this.options.pageSize ?? 1000;
    let head = start;
    let verified = 0;
    try {
      for (;;) {
        const page = await this.options.fetchRecords(head.counter, pageSize);
        let moved = false;
        try {
          for (const entry of page) {
            const parsed = decodeCommitRecord(entry.record, `commit record ${entry.sequence}`);
            const link = verifyCommitLink(parsed, this.linkOptions(config, head));
            head = { ...link.head, recordHash: parsed.recordHash };
            verified += 1;
            moved = true;
          }
        } finally {
          if (moved) await this.options.store.setChainHead(config.federationId, head);
        }
        if (page.length < pageSize) break;
      }
    } catch (error) {
      throw new ChainRefusal(
        SITE_DEFENCE_REASONS.CHAIN_UNVERIFIED,
        `the chain of commit records could not be verified from round ${head.counter} on (${verified} record(s) verified first): ${messageOf(error)}`,
        { cause: error },
      );
    }
    this.log.info({ verified, counter: head.counter.toString(), model: toHex(head.modelHash) }, 'verified the chain of commit records from the coordinator');
    return head;
  }

  private linkOptions(config: RoundConfig, head: CommitChainHead): Parameters<typeof verifyCommitLink>[1] {
    const trust = this.options.trust();
    return {
      caCertificate: trust.caCertificate,
      revocations: [...trust.revokedSerials].map((serial) => ({ serial })),
      policy: this.options.policy,
      previousHead: head,
      taskHash: config.taskHash,
      federationId: config.federationId,
    };
  }

  private invalidRecord(error: unknown): void {
    const check = isKnownError(error) ? error.reason : 'SITE_ERROR';
    this.log.warn({ reason: SITE_DEFENCE_REASONS.COMMIT_RECORD_INVALID, check, detail: messageOf(error) }, 'refusing a RoundCommitted whose commit record is not a valid link of the chain; the chain head does not move');
  }

  private serialized<T>(step: () => Promise<T>): Promise<T> {
    const result = this.queue.then(step);
    this.queue = result.catch(() => undefined);
    return result;
  }
}

function startsFrom(config: RoundConfig, head: CommitChainHead): boolean {
  return bytesEqual(config.modelHash, head.modelHash) && bytesEqual(config.optimizerStateHash, head.optimizerStateHash);
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
