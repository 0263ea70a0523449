/**
 * A site's side of one round, around the pure SecAgg+ client (crypto/secagg/client.ts): it reacts to the
 * coordinator's messages, fetches the round's model by hash, trains when the shares are in, uploads the
 * masked input, and at commit recomputes model r+1 itself from the broadcast aggregate before signing
 * (DESIGN.md step 7). Whatever the coordinator sends, the site's policy and the client's checks decide;
 * a refusal is sent back with its reason code (refusal.ts: a code and its fixed text, the details stay in
 * the site's log) and the site leaves the round without revealing anything.
 *
 * The site's own defences against a lying coordinator (DESIGN.md "What a site checks for itself") run
 * here, through the site's RoundGuard: one round at a time, fresh round counters only (persisted before
 * any key is made), one contribution per model (recorded before the Unmask answer leaves), and its own
 * stage deadlines (stage-deadline.ts), after which it ends the round and zeroises its secrets.
 *
 * Everything outside the protocol (network, training, storage) comes in through `SiteRoundEnvironment`,
 * so the whole flow runs in tests without gRPC.
 */
import type { Logger } from 'pino';
import { isKnownError } from '../../proto/status.js';
import { bytesEqual, toHex } from '../../crypto/bytes.js';
import { SecAggClient, type SecAggClientOptions } from '../../crypto/secagg/client.js';
import { unmaskedRound, type UnmaskedRound } from '../../crypto/secagg/commit-resign.js';
import { roundConfigHash } from '../../crypto/secagg/config-codec.js';
import type { RoundConfig } from '../../crypto/secagg/config.js';
import type { CommitHashes, CommitRequestMessage, MaskedInputMessage, ServerMessage } from '../../crypto/secagg/messages.js';
import { checkRoundConfigAgainstPolicy } from '../../crypto/secagg/policy.js';
import type { SiteSessionMessage } from '../../crypto/secagg/round-envelope.js';
import { keyListHash } from '../../crypto/secagg/transcript.js';
import { updateWeight, type LocalUpdate } from '../../crypto/secagg/update-vector.js';
import { refusalFor } from './refusal.js';
import { siteDefenceError, type RoundGuard } from './round-guard.js';
import { DEFAULT_DEADLINE_GRACE_MS, StageDeadline, type DeadlinePassed, type StageOpener } from './stage-deadline.js';

export interface LocalTrainingResult {
  /** Trained local model minus the global model, in parameter order. */
  readonly delta: Float32Array;
  readonly trainingExamples: number;
  /** Federated evaluation of the global model on the site's own test split. */
  readonly evalLossSum: number;
  readonly evalCorrect: number;
  readonly evalExamples: number;
  /** The task's extra metric sums in slot order (RoundConfig.metricSlots); absent: all 0. */
  readonly metricSums?: readonly number[];
  /**
   * Set when local training diverged (non-finite loss or parameters): the result is then a zero-weight
   * update (delta 0, no training examples) and this is the local detail, for the site's own log only.
   */
  readonly divergence?: string;
}

/** A site's federated evaluation of a model on its own test split (the metric slots of DESIGN.md step 4). */
export interface LocalEvaluation {
  readonly evalLossSum: number;
  readonly evalCorrect: number;
  readonly evalExamples: number;
  /**
   * The task's extra metric sums in slot order (RoundConfig.metricSlots, crypto/secagg/metric-slots.ts),
   * already bounded by the site; absent: all 0.
   */
  readonly metricSums?: readonly number[];
}

/** The metric-slot fields of a LocalUpdate from an evaluation. */
function metricSlotsOf(evaluation: LocalEvaluation): Pick<LocalUpdate, 'evalLossSum' | 'evalCorrect' | 'evalExamples' | 'metricSums'> {
  return {
    evalLossSum: evaluation.evalLossSum,
    evalCorrect: evaluation.evalCorrect,
    evalExamples: evaluation.evalExamples,
    ...(evaluation.metricSums === undefined ? {} : { metricSums: evaluation.metricSums }),
  };
}

/** The metric slots of a round that reports no evaluation (purpose 'train'; the extra slots stay 0 too). */
const NO_EVALUATION: LocalEvaluation = Object.freeze({ evalLossSum: 0, evalCorrect: 0, evalExamples: 0 });

export interface CommitComputation {
  readonly hashes: CommitHashes;
  /** Model r+1 and its optimiser state, kept by the site once the round commits. */
  readonly newModel: Uint8Array;
}

export interface SiteRoundEnvironment {
  readonly logger: Logger;
  readonly clientOptions: () => SecAggClientOptions;
  /** The site's defences across rounds (one per site, shared by all its sessions). */
  readonly guard: RoundGuard;
  /** Extra time beyond each RoundConfig stage deadline (stage-deadline.ts). @default 10 s */
  readonly deadlineGraceMs?: number;
  /** Sends a stage message or refusal on the session stream (crypto/secagg/round-envelope.ts). */
  send(message: SiteSessionMessage): void;
  /** Uploads the masked input (chunked RPC); resolves once the coordinator acknowledged it. */
  upload(message: MaskedInputMessage): Promise<void>;
  /** Trains on the global model of `config` (fetched by its hash) and evaluates it (unless the round's purpose is 'train'). */
  train(config: RoundConfig, signal: AbortSignal): Promise<LocalTrainingResult>;
  /** Evaluates the global model of `config` on the local test split (evaluation-only rounds). */
  evaluate(config: RoundConfig, signal: AbortSignal): Promise<LocalEvaluation>;
  /** Recomputes model r+1 and the optimiser state from the commit request; never trusts the coordinator's hashes. */
  computeCommit(config: RoundConfig, request: CommitRequestMessage): Promise<CommitComputation>;
  /** The round committed: keep model r+1. */
  onCommitted?(config: RoundConfig, computation: CommitComputation): void;
  /**
   * The site's own checks of a RoundStart beyond its policy (participant/chain: the round must start from
   * the verified chain head); runs before any key is made, and a rejection is the site's refusal.
   */
  checkRound?(config: RoundConfig): Promise<void>;
  /**
   * The site is about to reveal its shares: keep what it needs to sign this round's commit later, even
   * after a restart (public values only). Awaited before the Unmask answer leaves.
   */
  onUnmasked?(round: UnmaskedRound): Promise<void> | void;
  /** The site signed this round's commit over `hashes`: keep that. Awaited before the signature leaves. */
  onCommitSigned?(roundId: Uint8Array, hashes: CommitHashes): Promise<void> | void;
  /** An evaluation-only round ended for this site: its Unmask answer (the last message of such a round) left. */
  onEvaluated?(config: RoundConfig): void;
}

export type RoundSessionState = 'running' | 'finished' | 'failed';

export class RoundSession {
  private readonly client: SecAggClient;
  private readonly abort = new AbortController();
  private readonly log: Logger;
  private config: RoundConfig | undefined;
  private stateValue: RoundSessionState = 'running';
  private commitComputation: CommitComputation | undefined;
  /** This session holds the guard's one running round (set by start()). */
  private claimed = false;
  private commitRequested = false;
  /** An evaluation-only round whose Unmask answer this site sent: nothing more is asked of it. */
  private evaluationDone = false;
  private deadline: StageDeadline | undefined;
  /** H(L) and U3 as this site accepted them, for onUnmasked. */
  private acceptedKeyListHash: Uint8Array | undefined;
  private acceptedSurvivors: readonly string[] | undefined;
  /** Serialises message handling: a stage never starts before the previous one finished. */
  private queue: Promise<void> = Promise.resolve();

  constructor(
    readonly roundId: Uint8Array,
    private readonly environment: SiteRoundEnvironment,
  ) {
    this.client = new SecAggClient(environment.clientOptions());
    this.log = environment.logger.child({ round: toHex(roundId) });
  }

  get state(): RoundSessionState {
    return this.stateValue;
  }

  /** True once this site answered Unmask in an evaluation-only round (its part of the round is done). */
  get evaluated(): boolean {
    return this.evaluationDone;
  }

  /**
   * Handles RoundStart with its RoundConfig, decoded once from the RoundStart bytes by whoever received
   * them (proto/session-codec.ts on a real site). In this order, before any key exists: one round at a
   * time (ROUND_CONCURRENT; a RoundStart repeating the running round's id is ignored, never replaces
   * it); the site's policy; a fresh round counter and a model not contributed to, then the counter
   * persisted (RoundGuard.admit); only then are keys made and advertised. The site's stage clock starts
   * now (stage-deadline.ts).
   */
  start(config: RoundConfig): void {
    const claim = this.environment.guard.claim(this.roundId);
    if (claim === 'same_round_running') {
      // Answering would read, to the coordinator, as this site leaving the round it is running.
      this.log.warn('a RoundStart repeats the id of the round this site is running; ignoring it');
      this.finish('failed');
      return;
    }
    if (claim === 'other_round_running') {
      this.refuse('round_start', siteDefenceError('ROUND_CONCURRENT', `round ${this.environment.guard.liveRound ?? '?'} of this site is still running`));
      return;
    }
    this.claimed = true;
    const deadline = new StageDeadline(config.deadlines, this.environment.deadlineGraceMs ?? DEFAULT_DEADLINE_GRACE_MS, (passed) => this.deadlinePassed(passed));
    this.deadline = deadline;
    deadline.opened('round_start');
    this.enqueue('round_start', async () => {
      if (!bytesEqual(config.roundId, this.roundId)) throw new Error('RoundStart carries a RoundConfig for another round id');
      const options = this.environment.clientOptions();
      // The policy first, so that only a round this site accepts moves its persisted counter.
      checkRoundConfigAgainstPolicy(config, options.siteId, options.policy);
      await this.environment.guard.admit(config);
      this.config = config;
      this.log.info({ participants: config.participants.length, threshold: config.reconstructionThreshold, degree: config.neighbourDegree, configHash: toHex(roundConfigHash(config)) }, 'round started');
      await this.environment.checkRound?.(config);
      this.send({ kind: 'stage', message: this.client.advertiseKeys(config) });
    });
  }

  /** Handles every later coordinator message of this round. */
  handle(message: ServerMessage): void {
    if (this.stateValue !== 'running') return;
    if (this.evaluationDone) {
      this.log.warn({ stage: message.stage }, 'a stage message after this site finished an evaluation-only round; ignoring it');
      return;
    }
    this.opened(message.stage);
    if (message.stage === 'commit_request') this.commitRequested = true;
    this.enqueue(message.stage, async () => {
      switch (message.stage) {
        case 'key_list':
          this.send({ kind: 'stage', message: this.client.revealNonce(message) });
          this.acceptedKeyListHash = keyListHash(message.entries);
          return;
        case 'graph':
          this.send({ kind: 'stage', message: this.client.shareKeys(message, new Date()) });
          return;
        case 'share_delivery': {
          this.client.acceptShares(message);
          const config = this.requireConfig();
          const update = await this.localUpdate(config);
          const masked = this.client.maskedInput(update);
          // A plaintext upload is this site's update in the clear: it counts as contributed on upload.
          if (config.plaintext) await this.environment.guard.recordContribution(config);
          if (!this.running) return;
          await this.environment.upload(masked);
          this.log.info({ purpose: config.purpose, weight: update.weight, uploadBytes: masked.maskedVector.byteLength }, 'masked input uploaded');
          return;
        }
        case 'consistency_request':
          this.send({ kind: 'stage', message: this.client.consistencyCheck(message) });
          this.acceptedSurvivors = [...message.survivors];
          return;
        case 'unmask_request': {
          const response = this.client.unmask(message);
          // From here on this site's input may enter an unmasked aggregate on the round's model (its
          // b-share helps remove its self-mask): record it before the answer leaves, never after.
          const config = this.requireConfig();
          await this.environment.guard.recordContribution(config);
          if (config.purpose === 'evaluate') {
            this.send({ kind: 'stage', message: response });
            // An evaluation-only round has no commit: the site's part is done once its shares left. It no
            // longer holds the one running-round slot; its secrets go when the coordinator ends the round
            // (RoundAbort EVALUATION_COMPLETE) or the commit-stage deadline passes, not while the answer
            // may still be on its way out.
            this.evaluationDone = true;
            this.releaseClaim();
            this.log.info('evaluation-only round done for this site (no commit follows)');
            this.environment.onEvaluated?.(config);
            return;
          }
          // Kept before the answer too: once it is out, the coordinator may ask for this round's commit
          // after either side restarted, and the site must still be able to sign it (one contribution per model).
          if (this.acceptedKeyListHash !== undefined && this.acceptedSurvivors !== undefined) {
            await this.environment.onUnmasked?.(unmaskedRound(this.client.siteId, config, this.acceptedKeyListHash, this.acceptedSurvivors));
          }
          this.send({ kind: 'stage', message: response });
          return;
        }
        case 'commit_request': {
          const config = this.requireConfig();
          if (config.purpose === 'evaluate') throw new Error('a commit request in an evaluation-only round: such a round never commits');
          const computed = await this.environment.computeCommit(config, message);
          // The client signs only if the request names the hashes this site computed ('commit_mismatch').
          const signature = this.client.commit(message, computed.hashes);
          this.commitComputation = computed;
          // On disk before the signature leaves: a restarted site never signs another commit for this round.
          await this.environment.onCommitSigned?.(signature.roundId, computed.hashes);
          this.send({ kind: 'stage', message: signature });
          return;
        }
      }
    });
  }

  /**
   * What this site puts in its masked input, by the round's purpose: its trained update with (or, for
   * 'train', without) the evaluation of the round's model, or for 'evaluate' that evaluation alone.
   */
  private async localUpdate(config: RoundConfig): Promise<LocalUpdate> {
    if (config.purpose === 'evaluate') {
      const evaluation = await this.environment.evaluate(config, this.abort.signal);
      return { delta: new Float32Array(0), weight: 0, ...metricSlotsOf(evaluation) };
    }
    const trained = await this.environment.train(config, this.abort.signal);
    if (trained.divergence !== undefined) {
      this.log.warn({ detail: trained.divergence }, 'local training diverged: uploading a zero-weight update instead of leaving the round');
    }
    const evaluation = config.purpose === 'train' ? NO_EVALUATION : trained;
    return {
      delta: trained.delta,
      weight: updateWeight(trained.trainingExamples, config.maxWeight),
      ...metricSlotsOf(evaluation),
    };
  }

  /**
   * The coordinator announced the commit: keep model r+1 (it must be the one this site computed). The
   * round stops being this site's running round at once, so the next RoundStart is not refused as
   * concurrent; a round announced committed before this site even got the commit request ends now.
   */
  committed(newModelHash: Uint8Array): void {
    this.releaseClaim();
    if (!this.commitRequested) {
      this.stop('the coordinator announced a commit before asking this site to sign one');
      return;
    }
    this.enqueue('committed', async () => {
      const computation = this.commitComputation;
      if (computation === undefined || !bytesEqual(computation.hashes.newModelHash, newModelHash)) {
        if (computation !== undefined) this.log.warn('coordinator announced a commit this site did not sign; not keeping that model');
        this.finish('finished');
        return;
      }
      this.environment.onCommitted?.(this.requireConfig(), computation);
      this.finish('finished');
    });
  }

  /**
   * The coordinator announced the end of the round (RoundCommitted), whose record the site is still
   * verifying: the round no longer holds the site's one running-round slot, so the next RoundStart is not
   * refused as concurrent, and a replay of this one meets the persisted counter (ROUND_NOT_FRESH).
   */
  endAnnounced(): void {
    this.releaseClaim();
  }

  /** The round is over without a commit, or the session ended. */
  stop(reason: string): void {
    if (this.stateValue !== 'running') return;
    this.log.info({ reason }, 'round ended for this site');
    this.abort.abort();
    this.finish('finished');
  }

  /** Resolves when every queued message has been handled. */
  async settled(): Promise<void> {
    await this.queue;
  }

  /**
   * For tests and audits: the buffers of secret material the round's SecAgg client holds (keys, nonce,
   * seeds, shares). Every byte is zero once the round has ended for this site.
   */
  heldSecrets(): Uint8Array[] {
    return this.client.heldSecrets();
  }

  private get running(): boolean {
    return this.stateValue === 'running';
  }

  private opened(stage: StageOpener): void {
    this.deadline?.opened(stage);
  }

  private deadlinePassed(passed: DeadlinePassed): void {
    if (!this.running) return;
    if (this.evaluationDone) {
      // Nothing was pending: the evaluation-only round ended for this site with its Unmask answer.
      this.stop('the evaluation-only round is over');
      return;
    }
    this.log.warn({ openedBy: passed.openedBy, waitedMs: passed.waitedMs }, 'the coordinator did not open the next stage within the RoundConfig deadline: ending the round and zeroising its secrets');
    this.refuse(passed.openedBy, siteDefenceError('STAGE_DEADLINE_PASSED', `no next stage within ${passed.waitedMs} ms of ${passed.openedBy}`));
  }

  /** Sends on the session stream while the round runs; a round that ended says nothing more. */
  private send(message: SiteSessionMessage): void {
    if (message.kind === 'stage' && !this.running) return;
    this.environment.send(message);
  }

  private enqueue(stage: string, step: () => Promise<void>): void {
    this.queue = this.queue.then(async () => {
      if (!this.running) return;
      try {
        await step();
      } catch (error) {
        this.refuse(stage, error);
      }
    });
  }

  private refuse(stage: string, error: unknown): void {
    if (this.abort.signal.aborted || !this.running) return;
    // The coordinator gets a reason code and its fixed text; what went wrong in detail stays here.
    const refusal = refusalFor(error);
    const reason = isKnownError(error) ? error.reason : refusal.reason;
    this.log.warn({ stage, reason, refusal: refusal.reason, detail: error instanceof Error ? error.message : String(error) }, 'leaving the round');
    this.send({ kind: 'refusal', roundId: this.roundId, reason: refusal.reason, message: refusal.message });
    this.abort.abort();
    this.finish('failed');
  }

  private finish(state: RoundSessionState): void {
    this.stateValue = state;
    this.deadline?.clear();
    this.releaseClaim();
    this.client.dispose();
  }

  private releaseClaim(): void {
    if (!this.claimed) return;
    this.claimed = false;
    this.environment.guard.release(this.roundId);
  }

  private requireConfig(): RoundConfig {
    if (this.config === undefined) throw new Error('no RoundConfig received for this round');
    return this.config;
  }
}
