/**
 * The commit of an unmasked round finished from the coordinator's pending commit on disk
 * (state/pending-commit.ts) rather than from the round's live state: after a coordinator restart, or
 * after the round driver stopped with its commit pending. One contribution per model: the same round
 * commits (same round id, same aggregate), it is never re-run.
 *
 * Signatures are verified exactly as in the live round (crypto/secagg/server-commit.ts CommitCollector,
 * against the certificate each member of U3 presented when the round started); the signatures kept on
 * disk are verified again when the pending commit is restored, so a damaged or edited file is an error
 * at start, not a record that fails `fedgate verify` later. Re-collection itself is the driver's
 * (commit-recollection.ts): the CommitRequest goes to each member of U3 as it connects and again every
 * commit deadline; the commit aborts only when refusals leave the quorum out of reach.
 */
import type { Logger } from 'pino';
import type { FedgateReason } from '../../platform/index.js';
import { bytesEqual, toHex } from '../../crypto/bytes.js';
import type { TrustAnchor } from '../../crypto/certificate.js';
import { SecAggError, secaggDenied, secaggInvalid, secaggPrecondition } from '../../crypto/secagg/errors.js';
import type { CommitRequestMessage } from '../../crypto/secagg/messages.js';
import { SiteKeys } from '../../crypto/secagg/server-identity.js';
import { CommitCollector, type CommitRecord } from '../../crypto/secagg/server-commit.js';
import { commitFieldsOf } from '../../crypto/secagg/server-intake.js';
import { roundContext } from '../../crypto/secagg/transcript.js';
import type { PendingCommit } from '../state/pending-commit.js';
import { StateError } from '../state/state-error.js';
import { CommitRecollection, type SitePresence } from './commit-recollection.js';
import type { RoundTransport, SiteToCoordinator } from './round-messages.js';
import { StageGate } from './stage-gate.js';

export interface ResumedCommitOptions {
  readonly pending: PendingCommit;
  /** The federation CA and CRL now: a stored signer whose certificate no longer verifies is asked again. */
  readonly trust: TrustAnchor;
  readonly transport: RoundTransport;
  readonly presence: SitePresence;
  readonly logger: Logger;
  /** Called with the commit record as it stands after each valid signature is stored (to keep it on disk). */
  readonly onCommitSignature?: (progress: CommitRecord) => void;
  /** Where the pending commit was read from, for error messages. */
  readonly source: string;
}

export type ResumedCommitOutcome =
  | { readonly status: 'committed'; readonly record: CommitRecord }
  | { readonly status: 'aborted'; readonly reason: FedgateReason; readonly message: string }
  | { readonly status: 'pending'; readonly reason: FedgateReason; readonly message: string };

export class ResumedCommit {
  private readonly collector: CommitCollector;
  private readonly keys: SiteKeys;
  private readonly gate = new StageGate();
  private readonly refused = new Map<string, string>();
  private readonly record: CommitRecord;
  private readonly log: Logger;
  private recollection: CommitRecollection | undefined;

  /**
   * Restores the collector from `options.pending`, verifying every stored signature. Throws StateError
   * CORRUPT when one does not verify against its signer's certificate.
   */
  constructor(private readonly options: ResumedCommitOptions) {
    const { record, certificates } = options.pending;
    this.record = record;
    this.log = options.logger.child({ round: toHex(record.config.roundId) });
    this.keys = new SiteKeys(certificates, options.trust, new Date());
    // A signer revoked since counts for nothing, and one revoked while the commit is finished stops counting.
    this.collector = new CommitCollector(roundContext(record.config), record.keyListHash, record.hashes, record.maskedSurvivors, record.config.reconstructionThreshold, (siteId) =>
      this.keys.isRevoked(siteId),
    );
    for (const stored of record.signatures) {
      let publicKey;
      try {
        publicKey = this.keys.publicKeyOf(stored.siteId, 'commit');
      } catch (error) {
        // Revoked or expired since it signed: its signature no longer counts; it is asked again like any other.
        this.log.warn({ site: stored.siteId, reason: error instanceof SecAggError ? error.reason : undefined }, 'a kept commit signature\'s certificate no longer verifies; leaving that signature out');
        continue;
      }
      try {
        this.collector.add(stored.siteId, { stage: 'commit', roundId: record.config.roundId, ...record.hashes, signature: stored.signature }, publicKey);
      } catch (error) {
        throw new StateError('CORRUPT', `${options.source}: the kept commit signature of ${stored.siteId} does not verify (${(error as Error).message}); restore the file from a backup of the state directory`, { cause: error });
      }
    }
  }

  /** Members of U of the round whose commit is pending. */
  get participants(): readonly string[] {
    return this.record.config.participants;
  }

  get roundId(): Uint8Array {
    return this.record.config.roundId;
  }

  /** The commit record as it stands: the valid signatures stored so far. */
  progress(): CommitRecord {
    const signers = this.collector.status().signers;
    return {
      ...this.record,
      signatures: signers.map((siteId) => ({ siteId, signature: this.collector.signatureOf(siteId) as Uint8Array, certificate: this.options.pending.certificates.get(siteId) as string })),
    };
  }

  /** The record to append now: undefined when revocations took the quorum away since it was reached. */
  committedRecord(): CommitRecord | undefined {
    return this.collector.status().committed ? this.progress() : undefined;
  }

  /**
   * A message from an authenticated site: a commit signature of this round from a member of U3, or its
   * refusal. Throws a SecAggError for anything else (nothing changes).
   */
  receive(siteId: string, message: SiteToCoordinator): void {
    const { config, maskedSurvivors } = this.record;
    if (message.kind === 'refusal') {
      if (!bytesEqual(message.roundId, config.roundId) || !maskedSurvivors.includes(siteId)) return;
      this.refused.set(siteId, message.reason);
      this.log.warn({ site: siteId, reason: message.reason, detail: message.message }, 'site refused or left the round');
      this.gate.notify();
      return;
    }
    const stageMessage = message.message;
    const where = { stage: stageMessage.stage, site: siteId };
    if (!(stageMessage.roundId instanceof Uint8Array) || !bytesEqual(stageMessage.roundId, config.roundId)) {
      throw secaggInvalid('WRONG_ROUND', 'the message is for another round than the one whose commit is pending', where);
    }
    if (stageMessage.stage !== 'commit') throw secaggPrecondition('STAGE_CLOSED', `a ${stageMessage.stage} message arrived while the round accepts commit signatures only`, where);
    if (!maskedSurvivors.includes(siteId)) throw secaggDenied('UNEXPECTED_SENDER', `site ${JSON.stringify(siteId)} is not a member of U3 of this round`, where);
    commitFieldsOf(stageMessage, siteId);
    this.collector.add(siteId, stageMessage, this.keys.publicKeyOf(siteId, 'commit'));
    this.options.onCommitSignature?.(this.progress());
    this.gate.notify();
  }

  siteDisconnected(siteId: string): void {
    this.recollection?.siteDisconnected(siteId);
  }

  /**
   * Re-collects until the quorum is stored ('committed', with the record to append), refusals leave it out
   * of reach ('aborted', announced to U), or `signal` fires ('pending': the commit stays on disk).
   */
  async run(signal?: AbortSignal): Promise<ResumedCommitOutcome> {
    const { config, maskedSurvivors, hashes } = this.record;
    const status = this.collector.status();
    this.log.warn(
      { signers: status.signers, required: status.required, survivors: maskedSurvivors },
      'finishing the commit of a round whose aggregate was unmasked: re-collecting commit signatures for the same round from U3 before any new round starts',
    );
    const request: CommitRequestMessage = { stage: 'commit_request', roundId: config.roundId, ...hashes };
    this.recollection = new CommitRecollection({
      request,
      survivors: maskedSurvivors,
      status: () => this.collector.status(),
      refused: this.refused,
      presence: this.options.presence,
      transport: this.options.transport,
      gate: this.gate,
      intervalMs: config.deadlines.commitMs,
      logger: this.log,
      ...(signal === undefined ? {} : { signal }),
    });
    let end;
    try {
      end = await this.recollection.run();
    } finally {
      this.recollection = undefined;
    }
    if (end.status === 'cancelled') return { status: 'pending', reason: 'COORDINATOR_STOPPING', message: 'the coordinator is shutting down' };
    if (end.status === 'committed') {
      this.log.info({ signers: this.collector.status().signers }, 'commit quorum reached after re-collecting signatures');
      return { status: 'committed', record: this.progress() };
    }
    const message = `${status.required} valid commit signatures needed; ${end.refusedBy.join(', ')} refused to sign, so the quorum cannot be reached`;
    this.log.warn({ reason: 'COMMIT_QUORUM_MISSING', detail: message }, 'round aborted');
    for (const siteId of config.participants) this.options.transport.send(siteId, { kind: 'abort', roundId: config.roundId, reason: 'COMMIT_QUORUM_MISSING', message });
    return { status: 'aborted', reason: 'COMMIT_QUORUM_MISSING', message };
  }
}
