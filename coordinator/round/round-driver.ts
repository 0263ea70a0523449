/**
 * Drives one SecAgg+ round (DESIGN.md "A round", steps 1-7) over an abstract transport: sends each
 * stage's messages, waits until every expected site has answered, dropped or refused, or the stage
 * deadline passes, closes the stage on the pure state machine (crypto/secagg/server.ts) and goes on.
 * The state machine decides everything about the protocol; this file decides only *when*.
 *
 * A round ends either committed (a quorum of commit signatures, DESIGN.md step 7) or aborted with a
 * typed reason; an aborted round is announced to every member and never produces an aggregate.
 *
 * One contribution per model: once the aggregate is unmasked the round is never abandoned for lack of
 * commit signatures (sites refuse to contribute twice on one model, and a re-run would show the
 * coordinator a second aggregate of the same inputs). When the commit deadline passes without a quorum
 * and the driver knows who is connected (`presence`), it re-collects signatures for the same round from
 * U3 (commit-recollection.ts) until the quorum is stored. Only when so many members refused to sign (a
 * RoundRefusal: their own recomputation disagrees) that the quorum cannot be reached any more does the
 * round abort, with COMMIT_QUORUM_MISSING. The caller keeps the commit on disk as it goes
 * (`onCommitRequested`, `onCommitSignature`); a round whose commit is kept there and that ends any other
 * way (the coordinator stops, an unexpected failure) ends 'pending', announced to nobody: the
 * coordinator finishes it from disk (resumed-commit.ts).
 *
 * Revocation takes effect atomically with respect to the commit: a member whose certificate is revoked
 * counts as refusing, its signature stops counting the moment the revocation is live, and the signers are
 * checked once more when the record is appended (`appendCommit`). When that last check finds the quorum
 * gone, the driver goes back to collecting signatures from the other members (or aborts when they are
 * too few), exactly as after a missed deadline.
 */
import type { Logger } from 'pino';
import { isFedgateReason, type FedgateReason } from '../../platform/index.js';
import { bytesEqual, toHex } from '../../crypto/bytes.js';
import { SecAggError } from '../../crypto/secagg/errors.js';
import type { CommitHashes, CommitRequestMessage } from '../../crypto/secagg/messages.js';
import type { SecAggServer } from '../../crypto/secagg/server.js';
import type { CommitRecord } from '../../crypto/secagg/server-commit.js';
import type { AggregateResult } from '../../crypto/secagg/server-unmask.js';
import type { SiteToCoordinator } from '../../crypto/secagg/round-envelope.js';
import { refusalText } from '../../crypto/secagg/site-refusals.js';
import type { ClientStage } from '../../crypto/secagg/stages.js';
import { CommitRecollection, type SitePresence } from './commit-recollection.js';
import type { RoundTransport } from './round-messages.js';
import { StageGate } from './stage-gate.js';

export type { SitePresence } from './commit-recollection.js';

/** The stages the driver times: those a site sends a message in (crypto/secagg/stages.ts). */
export type RoundStageName = ClientStage;

export interface RoundDriverOptions {
  readonly server: SecAggServer;
  /** The canonical RoundConfig bytes sent to every site (their SHA-256 is H(RoundConfig)). */
  readonly roundConfigBytes: Uint8Array;
  readonly transport: RoundTransport;
  readonly logger: Logger;
  /**
   * Called with the unmasked aggregate: computes model r+1 and the new optimiser state, stores them and
   * the aggregate where sites can download them by hash, and returns the hashes sites will sign.
   */
  readonly finalize: (result: AggregateResult) => Promise<CommitHashes>;
  readonly signal?: AbortSignal;
  /**
   * Who is connected now, and a wait for that to change: lets the driver re-collect commit signatures
   * after the commit deadline. Without it a commit short of its quorum aborts the round (tests of the
   * state machine alone).
   */
  readonly presence?: SitePresence;
  /**
   * Appends the record of the committed round to the ledger, alone with respect to revocations
   * (coordinator/federation/revocation-fence.ts): `build` returns the record from the signatures that
   * count at that moment, or undefined when revoked signers took the quorum away; then nothing is
   * appended and this resolves undefined, and the driver collects signatures again (or aborts). Without
   * it the driver returns the record unappended (tests of the state machine alone).
   */
  readonly appendCommit?: (build: () => CommitRecord | undefined) => Promise<CommitRecord | undefined>;
  /** Called once per re-collection, when the commit quorum is missing and re-collection starts. */
  readonly onCommitPending?: (status: { readonly signers: readonly string[]; readonly required: number }) => void;
  /**
   * Called with the commit record as it stands (no signature yet) before the CommitRequest goes out: the
   * caller keeps it durably, so that a restart finishes this round. A rejection fails the round before
   * any site was asked to sign.
   */
  readonly onCommitRequested?: (progress: CommitRecord) => Promise<void>;
  /** Called with the commit record as it stands after each valid commit signature is stored. */
  readonly onCommitSignature?: (progress: CommitRecord) => void;
}

/**
 * Members of U that let the round down, with why: the reason code of their refusal, DISCONNECTED (their
 * session ended during the round) or NO_ANSWER (silent past a stage deadline). Whoever selects sites
 * uses it to stop picking a site that fails round after round (federation/site-backoff.ts).
 */
export type SiteFailures = ReadonlyMap<string, string>;

export type RoundOutcome =
  | {
      readonly status: 'committed';
      readonly record: CommitRecord;
      readonly result: AggregateResult;
      readonly hashes: CommitHashes;
      readonly stageSeconds: Readonly<Partial<Record<RoundStageName, number>>>;
      readonly computeSeconds: Readonly<ComputeSeconds>;
      readonly failures: SiteFailures;
    }
  | {
      /** An evaluation-only round (RoundConfig.purpose 'evaluate') whose metric sums were unmasked; it never commits. */
      readonly status: 'evaluated';
      readonly result: AggregateResult;
      readonly stageSeconds: Readonly<Partial<Record<RoundStageName, number>>>;
      readonly computeSeconds: Readonly<ComputeSeconds>;
      readonly failures: SiteFailures;
    }
  | {
      readonly status: 'aborted';
      readonly reason: FedgateReason;
      readonly message: string;
      readonly stage: RoundStageName;
      readonly stageSeconds: Readonly<Partial<Record<RoundStageName, number>>>;
      readonly computeSeconds: Readonly<ComputeSeconds>;
      readonly failures: SiteFailures;
    }
  | {
      /** Neither committed nor aborted: the commit kept by onCommitRequested is to be finished from there. */
      readonly status: 'pending';
      readonly reason: FedgateReason;
      readonly message: string;
      readonly stage: 'commit';
      readonly stageSeconds: Readonly<Partial<Record<RoundStageName, number>>>;
      readonly computeSeconds: Readonly<ComputeSeconds>;
      readonly failures: SiteFailures;
    };

/**
 * The coordinator's own work inside a round, apart from waiting for sites (which stageSeconds times):
 * removing the masks from the sum (unmask) and computing model r+1 from it (aggregation).
 */
export interface ComputeSeconds {
  unmask?: number;
  aggregation?: number;
}

/** The reason a RoundAbort carries to the members of an evaluation-only round once its sums are unmasked. */
export const EVALUATION_COMPLETE = 'EVALUATION_COMPLETE';

export class RoundDriver {
  private readonly gate = new StageGate();
  private readonly gone = new Set<string>();
  /** While commit signatures are re-collected. */
  private recollection: CommitRecollection | undefined;
  /** onCommitRequested kept the commit: from now on the round is committed or stays pending, never silently lost. */
  private commitKept = false;
  private readonly refused = new Map<string, string>();
  /** Members that stayed silent past a stage deadline (neither answered, refused nor disconnected). */
  private readonly silent = new Set<string>();
  private readonly stageSeconds: Partial<Record<RoundStageName, number>> = {};
  private readonly computeSeconds: ComputeSeconds = {};
  private readonly roundId: Uint8Array;
  private readonly roundLabel: string;
  private readonly log: Logger;

  constructor(private readonly options: RoundDriverOptions) {
    this.roundId = options.server.roundConfig.roundId;
    this.roundLabel = toHex(this.roundId);
    this.log = options.logger.child({ round: this.roundLabel });
  }

  /** Members of U. */
  get participants(): readonly string[] {
    return this.options.server.roundConfig.participants;
  }

  /**
   * A message from an authenticated site. Throws the state machine's typed error when the message is
   * refused (the state is unchanged); the caller reports it to the sender and logs it.
   */
  receive(siteId: string, message: SiteToCoordinator): void {
    if (message.kind === 'refusal') {
      if (!bytesEqual(message.roundId, this.roundId) || !this.participants.includes(siteId)) return;
      // Only the code goes in the log, with its fixed text: whatever else a site sent (an older or buggy
      // site might send a local path or a value from its data) never reaches the coordinator's records.
      const reason = publicRefusalReason(message.reason);
      this.refused.set(siteId, reason);
      this.log.warn({ site: siteId, reason, detail: refusalText(reason) }, 'site refused or left the round');
      this.gate.notify();
      return;
    }
    this.options.server.receive(siteId, message.message);
    if (message.message.stage === 'commit') this.options.onCommitSignature?.(this.options.server.commitProgress());
    this.gate.notify();
  }

  /** The site's session ended: it will not answer any more stage of this round. */
  siteDisconnected(siteId: string): void {
    if (!this.participants.includes(siteId)) return;
    this.gone.add(siteId);
    // A member that comes back has a new session: it must be sent the commit request again.
    this.recollection?.siteDisconnected(siteId);
    this.gate.notify();
  }

  async run(): Promise<RoundOutcome> {
    const { server, transport } = this.options;
    const config = server.roundConfig;
    const deadlines = config.deadlines;
    let stage: RoundStageName = 'advertise_keys';
    try {
      for (const siteId of config.participants) {
        transport.send(siteId, { kind: 'round_start', roundId: this.roundId, roundConfig: this.options.roundConfigBytes });
      }
      await this.waitStage(stage, deadlines.advertiseKeysMs);
      const keyList = server.closeAdvertiseKeys();
      for (const entry of keyList.entries) transport.send(entry.siteId, { kind: 'stage', message: keyList });

      stage = 'nonce_reveal';
      await this.waitStage(stage, deadlines.advertiseKeysMs);
      for (const [siteId, graph] of server.closeNonceReveal()) transport.send(siteId, { kind: 'stage', message: graph });

      stage = 'share_keys';
      await this.waitStage(stage, deadlines.shareKeysMs);
      for (const [siteId, delivery] of server.closeShareKeys()) transport.send(siteId, { kind: 'stage', message: delivery });

      stage = 'masked_input';
      await this.waitStage(stage, deadlines.maskedInputMs);
      const consistency = server.closeMaskedInput();
      for (const siteId of consistency.survivors) transport.send(siteId, { kind: 'stage', message: consistency });

      stage = 'consistency_check';
      await this.waitStage(stage, deadlines.consistencyCheckMs);
      const unmaskRequest = server.closeConsistencyCheck();
      for (const siteId of consistency.survivors) transport.send(siteId, { kind: 'stage', message: unmaskRequest });

      stage = 'unmask';
      await this.waitStage(stage, deadlines.unmaskMs);
      const unmaskStarted = performance.now();
      const result = server.closeUnmask();
      this.computeSeconds.unmask = (performance.now() - unmaskStarted) / 1000;
      if (result.inconsistentShares.length > 0) {
        this.log.warn({ inconsistentShares: result.inconsistentShares }, 'inconsistent Shamir shares were revealed and set aside');
      }
      if (config.purpose === 'evaluate') {
        // The members of U3 ended the round themselves after their Unmask answer; the others hear it here.
        for (const siteId of config.participants) {
          if (!this.gone.has(siteId)) transport.send(siteId, { kind: 'abort', roundId: this.roundId, reason: EVALUATION_COMPLETE, message: 'the evaluation-only round is complete; it has no commit' });
        }
        return { status: 'evaluated', result, stageSeconds: { ...this.stageSeconds }, computeSeconds: { ...this.computeSeconds }, failures: this.failures() };
      }

      stage = 'commit';
      const started = performance.now();
      const hashes = await this.options.finalize(result);
      this.computeSeconds.aggregation = (performance.now() - started) / 1000;
      const commitRequest = server.beginCommit(hashes);
      if (this.options.onCommitRequested !== undefined) {
        await this.options.onCommitRequested(server.commitProgress());
        this.commitKept = true;
      }
      for (const siteId of result.maskedSurvivors) transport.send(siteId, { kind: 'stage', message: commitRequest });
      await this.waitStage(stage, deadlines.commitMs, started);
      let why = 'commit deadline passed without a quorum';
      for (;;) {
        const failed = await this.collectQuorum(commitRequest, result, why);
        if (failed !== undefined) return failed;
        const record = await this.appendRecord();
        if (record !== undefined) return { status: 'committed', record, result, hashes, stageSeconds: { ...this.stageSeconds }, computeSeconds: { ...this.computeSeconds }, failures: this.failures() };
        // A revocation became live between the last signature and the append: those signatures no longer count.
        why = `certificates of ${server.commitStatus().revoked.join(', ')} were revoked before the record was appended, so their signatures no longer count`;
      }
    } catch (error) {
      // The ledger could not be written: not a round's failure but the coordinator's; the caller stops.
      if (error instanceof LedgerAppendFailed) throw error.cause;
      if (error instanceof SecAggError && error.code === 'ABORTED') return this.aborted(stage, error.reason, error.message);
      const stopping = error instanceof RoundCancelled;
      if (!stopping) this.log.error({ err: error, stage }, 'round failed unexpectedly');
      const reason: FedgateReason = stopping ? 'COORDINATOR_STOPPING' : 'INTERNAL_ERROR';
      const message = stopping ? 'the coordinator is shutting down' : error instanceof Error ? error.message : String(error);
      if (this.commitKept) {
        this.log.warn({ reason, detail: message }, 'the round stops with its commit pending: the aggregate is unmasked, so it is finished from the kept commit, never re-run');
        return { status: 'pending', reason, message, stage: 'commit', stageSeconds: { ...this.stageSeconds }, computeSeconds: { ...this.computeSeconds }, failures: this.failures() };
      }
      return this.aborted(stage, reason, message);
    }
  }

  /**
   * Resolves undefined once the commit quorum is stored; otherwise re-collects signatures (when the
   * driver knows who is connected) until it is, or returns the aborted outcome when it cannot be reached.
   */
  private async collectQuorum(commitRequest: CommitRequestMessage, result: AggregateResult, why: string): Promise<RoundOutcome | undefined> {
    const { server } = this.options;
    const config = server.roundConfig;
    const status = server.commitStatus();
    if (status.committed) return undefined;
    for (const rejected of status.rejected) this.log.warn({ site: rejected.siteId, reason: rejected.reason }, 'commit signature rejected');
    const shortfall = `${status.signers.length} valid commit signatures, ${status.required} needed (more than half of ${result.maskedSurvivors.length} survivors and at least t = ${config.reconstructionThreshold})`;
    if (this.options.presence === undefined) return this.aborted('commit', 'COMMIT_QUORUM_MISSING', shortfall);
    this.log.warn(
      { signers: status.signers, required: status.required, survivors: result.maskedSurvivors, revoked: status.revoked },
      `${why} (${shortfall}); the aggregate is unmasked, so this round is not abandoned: re-collecting commit signatures for the same round from U3, and no new round starts on this model until it commits`,
    );
    this.options.onCommitPending?.({ signers: status.signers, required: status.required });
    const end = await this.recollectCommit(commitRequest, result.maskedSurvivors, this.options.presence);
    if (end.status === 'cancelled') throw new RoundCancelled();
    if (end.status === 'unreachable') {
      return this.aborted('commit', 'COMMIT_QUORUM_MISSING', `${shortfall}; ${end.refusedBy.join(', ')} refused to sign or had their certificates revoked, so the quorum cannot be reached`);
    }
    this.log.info({ signers: server.commitStatus().signers }, 'commit quorum reached after re-collecting signatures');
    return undefined;
  }

  /** The record, appended through `appendCommit` when there is one; undefined when revocations took the quorum away first. */
  private async appendRecord(): Promise<CommitRecord | undefined> {
    const { server, appendCommit } = this.options;
    if (appendCommit === undefined) return server.commitRecord();
    try {
      return await appendCommit(() => (server.commitStatus().committed ? server.commitRecord() : undefined));
    } catch (error) {
      throw new LedgerAppendFailed(error);
    }
  }

  /** Re-collects commit signatures from U3 (commit-recollection.ts) until the quorum, out of reach, or a stop. */
  private async recollectCommit(request: CommitRequestMessage, survivors: readonly string[], presence: SitePresence): ReturnType<CommitRecollection['run']> {
    const { server, transport } = this.options;
    this.recollection = new CommitRecollection(
      {
        request,
        survivors,
        status: () => server.commitStatus(),
        refused: this.refused,
        presence,
        transport,
        gate: this.gate,
        intervalMs: server.roundConfig.deadlines.commitMs,
        logger: this.log,
        ...(this.options.signal === undefined ? {} : { signal: this.options.signal }),
      },
      survivors.filter((siteId) => !this.gone.has(siteId)),
    );
    try {
      return await this.recollection.run();
    } finally {
      this.recollection = undefined;
    }
  }

  private async waitStage(stage: RoundStageName, deadlineMs: number, startedAt = performance.now()): Promise<void> {
    this.log.debug({ stage }, 'stage open');
    const result = await this.gate.wait(deadlineMs - (performance.now() - startedAt), () => this.stageSettled(), this.options.signal);
    this.stageSeconds[stage] = (performance.now() - startedAt) / 1000;
    if (result === 'cancelled') throw new RoundCancelled();
    const pending = this.options.server.pending();
    if (result === 'deadline' && pending.length > 0) {
      this.log.warn({ stage, missing: pending }, 'stage deadline passed; treating silent sites as dropped');
      for (const siteId of pending) if (!this.gone.has(siteId) && !this.refused.has(siteId)) this.silent.add(siteId);
    }
  }

  /** Who let this round down so far (see SiteFailures); a refusal's reason wins over how the site left. */
  private failures(): SiteFailures {
    const failures = new Map<string, string>();
    for (const siteId of this.silent) failures.set(siteId, 'NO_ANSWER');
    for (const siteId of this.gone) failures.set(siteId, 'DISCONNECTED');
    for (const [siteId, reason] of this.refused) failures.set(siteId, reason);
    return failures;
  }

  private stageSettled(): boolean {
    return this.options.server.pending().every((siteId) => this.gone.has(siteId) || this.refused.has(siteId));
  }

  private aborted(stage: RoundStageName, reason: FedgateReason, message: string): RoundOutcome {
    this.log.warn({ stage, reason, detail: message }, 'round aborted');
    for (const siteId of this.participants) {
      if (!this.gone.has(siteId)) this.options.transport.send(siteId, { kind: 'abort', roundId: this.roundId, reason, message });
    }
    return { status: 'aborted', reason, message, stage, stageSeconds: { ...this.stageSeconds }, computeSeconds: { ...this.computeSeconds }, failures: this.failures() };
  }
}

class RoundCancelled extends Error {}

/** A refusal's reason as the coordinator records it: an UPPER_SNAKE_CASE code, or UNREADABLE_REASON for anything else. */
export function publicRefusalReason(reason: string): string {
  return isFedgateReason(reason) ? reason : 'UNREADABLE_REASON';
}

class LedgerAppendFailed extends Error {
  constructor(cause: unknown) {
    super('appending the commit record failed', { cause });
  }
}
