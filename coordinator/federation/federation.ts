/**
 * The coordinator's federation loop: waits for enough eligible sites, opens a round under a fresh id
 * (counter fsynced first), drives it with RoundDriver, and on commit appends the signed record to the
 * ledger and moves the global model forward. An aborted round is followed by a new round with a new id.
 * On start-up it resumes from the last committed round (the ledger wins over federation.json).
 *
 * One contribution per model: from the moment a round's CommitRequest goes out until its record is in
 * the ledger (or refusals abort it), the commit is kept on disk (state/pending-commit.ts). A coordinator
 * that starts with a pending commit, or whose round stopped with its commit pending, finishes that same
 * round (round/resumed-commit.ts) before it starts any new one.
 * Sites that refuse or fail round after round are left out of selection for a while (site-backoff.ts),
 * so the others keep committing. Once the configured rounds have committed, one evaluation-only round
 * (RoundConfig purpose 'evaluate') measures the final model, whose accuracy no training round reports:
 * the metrics of round r are of the model round r started from.
 */
import { X509Certificate } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { FedgateError } from '../../platform/index.js';
import { bytesEqual, fromHex, toHex } from '../../crypto/bytes.js';
import type { TrustAnchor } from '../../crypto/certificate.js';
import { createRoundConfig, type HyperParameterValue, type RoundConfig, type RoundPurpose } from '../../crypto/secagg/config.js';
import { encodeRoundConfig } from '../../crypto/secagg/config-codec.js';
import { SecAggServer } from '../../crypto/secagg/server.js';
import { distributedDpReport, roundDistributedDp, type DistributedDpReport } from '../../crypto/secagg/distributed-dp-round.js';
import type { DistributedDpRequirement } from '../../crypto/secagg/dp-fields.js';
import { evaluationFigures, extraRoundMetrics, type EvaluationFigures } from '../../crypto/secagg/metric-figures.js';
import type { RoundMetricSlots } from '../../crypto/secagg/metric-slots.js';
import { requireMetricSlotsFit } from './metric-slots-fit.js';
import { evaluationShapeOf, parseTaskDocument, participantLevelOf } from '../../model/task.js';
import { decodeServerOptimizerState, encodeServerOptimizerState, initialServerOptimizerState, type ServerOptimizerState } from '../../model/server-optimizer.js';
import { decodeWeights, encodeWeights } from '../../model/weight-codec.js';
import type { ParameterLayout } from '../../model/weights.js';
import type { CommitRecord } from '../../crypto/secagg/server-commit.js';
import type { AggregateResult } from '../../crypto/secagg/server-unmask.js';
import { RoundDriver, type RoundOutcome } from '../round/round-driver.js';
import { SITE_DEFENCE_REASONS } from '../../crypto/secagg/site-refusals.js';
import type { CoordinatorToSite, SiteToCoordinator } from '../round/round-messages.js';
import { ResumedCommit, type ResumedCommitOutcome } from '../round/resumed-commit.js';
import type { FaultPoint, PausePoint } from '../state/fault-injection.js';
import { Ledger, type LedgerRecord } from '../state/ledger.js';
import { ModelStore } from '../state/model-store.js';
import { PendingCommitStore, type PendingCommit } from '../state/pending-commit.js';
import { RoundCounter } from '../state/round-counter.js';
import { StateError } from '../state/state-error.js';
import { commitBody, encodeCommitRecord, roundCounterOf, type CommitBody, type RoundMetrics } from '../../crypto/secagg/commit-record-codec.js';
import { parseLedgerCommit } from './ledger-commit.js';
import type { FederationSettings, SecAggSettings } from './federation-settings.js';
import { newSamplingSeed, readFederationState, writeFederationState, type FederationState } from './federation-state.js';
import { checkPinnedStart } from './pinned-start.js';
import { RevocationFence } from './revocation-fence.js';
import { finalizeRound } from './round-finalizer.js';
import { roundShape, type RoundShape } from './round-shape.js';
import { selectParticipants } from './selection.js';
import { SiteBackoff } from './site-backoff.js';
import { ModelEvaluations, type ModelEvaluation } from './model-evaluations.js';

export interface EligibleSite {
  readonly siteId: string;
  /** The certificate (DER or PEM) the site's TLS session presented. */
  readonly certificate: Uint8Array | string;
}

/** How the federation reaches connected sites (implemented by the gRPC session registry). */
export interface SiteDirectory {
  /** Connected sites whose Hello accepted this federation's task. */
  eligible(): readonly EligibleSite[];
  send(siteId: string, message: CoordinatorToSite): void;
  /** Resolves when the set of connected sites changes, or after `timeoutMs`. */
  changed(timeoutMs: number, signal?: AbortSignal): Promise<void>;
}

export interface FederationOptions {
  /** The compiled settings (coordinator-options.ts), kept as they are given. */
  readonly settings: FederationSettings;
  /** Canonical task document bytes; their SHA-256 is the task hash sites pin. */
  readonly taskBytes: Uint8Array;
  readonly taskHash: string;
  /** Extra blobs sites may download by hash (e.g. the forward ONNX model of the task). */
  readonly taskBlobs?: readonly Uint8Array[];
  readonly initialModel: Float32Array;
  /** Names and shapes of the task's parameters: how models are encoded, stored and decoded. */
  readonly layout: ParameterLayout;
  /** Local training hyper-parameters announced in every RoundConfig. */
  readonly hyperParameters: Readonly<Record<string, HyperParameterValue>>;
  readonly trust: () => TrustAnchor;
  readonly sites: SiteDirectory;
  readonly logger: Logger;
  /** Crash-injection hook for recovery tests, handed to the ledger and the pending commit (state/fault-injection.ts). @default none */
  readonly faultPoint?: FaultPoint;
  /** The clock of site backoff (tests). @default Date.now */
  readonly now?: () => number;
  /** Test hook awaited at named points of a round (state/fault-injection.ts). @default none */
  readonly pausePoint?: PausePoint;
}

/** What a site message reaches: the open round, or the pending commit being finished. */
interface OpenRound {
  /** Members of U. */
  readonly participants: readonly string[];
  receive(siteId: string, message: SiteToCoordinator): void;
  siteDisconnected(siteId: string): void;
}

/** A commit record as appended to the ledger, with the body and metrics it was written with. */
interface AppendedCommit {
  readonly record: CommitRecord;
  readonly body: CommitBody;
  readonly metrics: RoundMetrics;
  readonly ledgerRecord: LedgerRecord;
}

/** How a round ended for the loop: a pending commit is finished before anything else. */
type RoundEnd = 'committed' | 'aborted' | 'pending' | 'evaluated';

/** Evaluation-only rounds tried on the final model before the coordinator gives up on its evaluation. */
const FINAL_EVALUATION_ATTEMPTS = 3;

export interface RoundEvent {
  /** round_evaluated: an evaluation-only round unmasked its metric sums (it has no commit). */
  readonly type: 'round_started' | 'round_committed' | 'round_evaluated' | 'round_aborted';
  readonly roundId: string;
  readonly roundCounter: string;
  readonly participants: readonly string[];
  readonly survivors?: readonly string[];
  readonly sequence?: number;
  readonly modelHash?: string;
  readonly reason?: string;
  readonly metrics?: RoundMetrics;
  readonly stageSeconds?: Readonly<Record<string, number>>;
  /** The coordinator's own unmask and aggregation time (round-driver.ts ComputeSeconds). */
  readonly computeSeconds?: Readonly<Record<string, number>>;
  readonly seconds?: number;
  /** What the round asks of its sites, when it is not the default 'train_and_evaluate'. */
  readonly purpose?: RoundPurpose;
  /** round_started of a round with participant-level DP: bits per coordinate, wrap bound, noise. */
  readonly distributedDp?: DistributedDpReport;
  readonly at: string;
}

export class Federation extends EventEmitter<{ round: [RoundEvent] }> {
  private driver: OpenRound | undefined;
  /** The commit of an unmasked round not yet in the ledger, as kept on disk (pending-commit.ts). */
  private pending: PendingCommit | undefined;
  /** The pending commit found at start-up, restored (its kept signatures verified) by open(). */
  private restored: ResumedCommit | undefined;
  /** Round shapes (n/k/t) already warned about, so a long federation logs each once. */
  private readonly shapesWarned = new Set<string>();
  private model: Float32Array;
  private optimizerState: ServerOptimizerState;
  private readonly settings: FederationSettings;
  private readonly backoff: SiteBackoff;
  /**
   * Models whose evaluation the sites have reported already (an evaluation-only round on them completed,
   * or sites refused a round that asked for it): a round on them trains without evaluation.
   */
  private readonly metricsSpent = new Set<string>();
  /** Orders ledger appends against live revocations (revocation-fence.ts). */
  readonly revocationFence: RevocationFence;
  /** The task's privacy.participantLevel: every training round carries it (RoundConfig.distributedDp). */
  private readonly participantLevel: DistributedDpRequirement | undefined;
  /** The task's extra metric slots (RoundConfig.metricSlots): every round of the task carries them. */
  readonly metricSlots: RoundMetricSlots | undefined;

  private constructor(
    private readonly options: FederationOptions,
    private readonly store: ModelStore,
    private readonly ledger: Ledger,
    private readonly counter: RoundCounter,
    private readonly pendingCommits: PendingCommitStore,
    private state: FederationState,
    private readonly evaluations: ModelEvaluations,
    lastCommittedAt: Date | undefined,
  ) {
    super();
    this.settings = options.settings;
    this.backoff = new SiteBackoff(options.settings.participants.siteBackoff, options.now);
    for (const evaluation of evaluations.all) this.metricsSpent.add(evaluation.modelHash);
    this.revocationFence = new RevocationFence(lastCommittedAt);
    this.model = options.initialModel;
    this.optimizerState = initialServerOptimizerState(options.settings.serverOptimizer, options.initialModel.length);
    const task = parseTaskDocument(JSON.parse(new TextDecoder().decode(options.taskBytes)));
    this.participantLevel = participantLevelOf(task);
    this.metricSlots = metricSlotsOf(evaluationShapeOf(task), options.settings.secagg);
    requireMetricSlotsFit(this.metricSlots, options.settings.secagg.maxEvalExamples, options.settings.participants.minimum);
    if (this.participantLevel !== undefined && !options.settings.secureAggregation) {
      // Each site's vector carries only its share of the noise: without masks the coordinator would see it nearly in the clear.
      throw new FedgateError('FAILED_PRECONDITION', "the task asks for participant-level DP (privacy.participantLevel), which needs secure aggregation; turn secure aggregation on or remove privacy.participantLevel from the task", {
        reason: 'DISTRIBUTED_DP_NEEDS_SECURE_AGGREGATION',
      });
    }
  }

  static async open(options: FederationOptions): Promise<Federation> {
    const { federationId, stateDirectory, serverOptimizer } = options.settings;
    const store = await ModelStore.open(stateDirectory);
    const ledger = await Ledger.open(stateDirectory, options.faultPoint === undefined ? {} : { faultPoint: options.faultPoint });
    const counter = await RoundCounter.open(stateDirectory);
    const taskBlobHash = await store.put(options.taskBytes);
    if (taskBlobHash !== options.taskHash) {
      throw new StateError('CORRUPT', `task hash mismatch: the task document hashes to ${taskBlobHash}, expected ${options.taskHash}`);
    }
    // Sites verify the chain of models back to what the task pins: start from exactly that.
    checkPinnedStart(options.taskBytes, options.layout, options.initialModel, serverOptimizer);
    for (const blob of options.taskBlobs ?? []) await store.put(blob);
    const initialModelHash = await store.put(encodeWeights(options.layout, options.initialModel));
    const initialStateHash = await store.put(encodeServerOptimizerState(serverOptimizer, initialServerOptimizerState(serverOptimizer, options.initialModel.length)));
    let state = await readFederationState(stateDirectory);
    if (state !== undefined && (state.federationId !== federationId || state.taskHash !== options.taskHash)) {
      throw new StateError(
        'CORRUPT',
        `state directory ${stateDirectory} belongs to federation ${state.federationId} with task ${state.taskHash}; ` +
          `this configuration is federation ${federationId} with task ${options.taskHash}: use another state_dir`,
      );
    }
    state ??= {
      formatVersion: 1,
      federationId,
      taskHash: options.taskHash,
      committedRounds: 0,
      modelHash: initialModelHash,
      optimizerStateHash: initialStateHash,
      samplingSeed: newSamplingSeed(),
    };
    // The ledger is the truth: a crash between the ledger append and federation.json leaves the ledger ahead.
    const head = ledger.head;
    const headCommit = head === undefined ? undefined : parseLedgerCommit(head.body, `ledger record ${head.sequence}`);
    if (headCommit !== undefined && ledger.length !== state.committedRounds) {
      const { body } = headCommit;
      state = { ...state, committedRounds: ledger.length, modelHash: body.newModelHash, optimizerStateHash: body.optimizerStateHash };
    }
    await writeFederationState(stateDirectory, state);
    const pendingCommits = await PendingCommitStore.open(stateDirectory, options.faultPoint === undefined ? {} : { faultPoint: options.faultPoint });
    const federation = new Federation(options, store, ledger, counter, pendingCommits, state, await ModelEvaluations.open(stateDirectory), headCommit?.committedAt);
    federation.model = decodeWeights(options.layout, await store.get(state.modelHash));
    federation.optimizerState = decodeServerOptimizerState(await store.get(state.optimizerStateHash)).state;
    await federation.restorePendingCommit();
    return federation;
  }

  /**
   * Reads the pending commit a previous run left (if any) and checks that it is the next round of this
   * ledger: a crash after its record was appended and before the file was removed is finished here (the
   * file is removed); anything else that does not fit - another federation, task or model, blobs missing
   * from the model store, a kept signature that does not verify - stops the start with StateError CORRUPT.
   */
  private async restorePendingCommit(): Promise<void> {
    const pending = await this.pendingCommits.read();
    if (pending === undefined) return;
    const path = this.pendingCommits.path;
    const { record } = pending;
    const head = this.ledger.head;
    const headCommit = head === undefined ? undefined : parseLedgerCommit(head.body, `ledger record ${head.sequence}`);
    if (headCommit !== undefined && bytesEqual(headCommit.record.roundConfigHash, record.roundConfigHash)) {
      this.options.logger.info({ round: toHex(record.config.roundId), sequence: head?.sequence }, 'the pending commit is already the ledger\'s newest record (the coordinator stopped before removing it); removing it');
      await this.pendingCommits.clear();
      return;
    }
    const mismatch = (what: string): StateError =>
      new StateError('CORRUPT', `${path} records the commit of round ${toHex(record.config.roundId)}, but ${what}: the file does not belong to this state directory; restore the state directory (with the file) from one backup`);
    if (record.config.federationId !== this.settings.federationId) throw mismatch(`that round is of federation ${record.config.federationId}, not ${this.settings.federationId}`);
    if (toHex(record.config.taskHash) !== this.options.taskHash) throw mismatch(`its task ${toHex(record.config.taskHash)} is not this federation's task ${this.options.taskHash}`);
    if (toHex(record.config.modelHash) !== this.state.modelHash || toHex(record.config.optimizerStateHash) !== this.state.optimizerStateHash) {
      throw mismatch(`it starts from model ${toHex(record.config.modelHash)}, and the ledger's newest model is ${this.state.modelHash}`);
    }
    if (headCommit !== undefined && roundCounterOf(record.config.roundId) <= headCommit.counter) {
      throw mismatch(`its round counter is not above the ledger's newest round (${headCommit.counter})`);
    }
    for (const [name, hash] of [['aggregate', record.hashes.aggregateHash], ['model r+1', record.hashes.newModelHash], ['optimiser state', record.hashes.optimizerStateHash]] as const) {
      if (!(await this.store.has(toHex(hash)))) throw mismatch(`its ${name} ${toHex(hash)} is not in the model store`);
    }
    this.restored = this.resumedCommit(pending);
    this.pending = pending;
    this.options.logger.warn(
      { round: toHex(record.config.roundId), signers: record.signatures.map((entry) => entry.siteId), survivors: record.maskedSurvivors },
      `${path}: the commit of a round whose aggregate was unmasked is pending; it is finished before any new round starts`,
    );
  }

  get committedRounds(): number {
    return this.state.committedRounds;
  }

  get currentModelHash(): string {
    return this.state.modelHash;
  }

  get currentModel(): Float32Array {
    return this.model;
  }

  get ledgerRecords(): Ledger {
    return this.ledger;
  }

  get blobs(): ModelStore {
    return this.store;
  }

  /** The evaluation-only round's metrics of the current model, once it has run. */
  get finalEvaluation(): ModelEvaluation | undefined {
    return this.evaluations.of(this.state.modelHash);
  }

  /** Every completed evaluation-only round, oldest first. */
  get modelEvaluations(): readonly ModelEvaluation[] {
    return this.evaluations.all;
  }

  /** Routes a site's message to the open round; throws the state machine's typed error on refusal. */
  receive(siteId: string, message: SiteToCoordinator): void {
    const driver = this.driver;
    if (driver === undefined) throw new NoOpenRoundError();
    driver.receive(siteId, message);
  }

  siteDisconnected(siteId: string): void {
    this.driver?.siteDisconnected(siteId);
  }

  /** Whether `siteId` is a member (U) of the round open now. */
  inOpenRound(siteId: string): boolean {
    return this.driver?.participants.includes(siteId) ?? false;
  }

  /** Runs rounds until the configured number have committed or `signal` fires; a pending commit is finished first. */
  async run(signal?: AbortSignal): Promise<void> {
    const log = this.options.logger;
    let consecutiveAborts = 0;
    try {
      while ((this.pending !== undefined || this.state.committedRounds < this.settings.rounds) && signal?.aborted !== true) {
        let end: RoundEnd;
        if (this.pending !== undefined) {
          end = await this.finishPendingCommit(signal);
        } else {
          const participants = await this.waitForParticipants(signal);
          if (participants === undefined) continue;
          end = await this.runRound(participants, this.trainingPurpose(), signal);
        }
        if (stopped(signal)) break;
        // After a round that did not commit wait before the next one (pauseAfterAborts), so a site that
        // refuses every round cannot spin the coordinator through hundreds of rounds.
        consecutiveAborts = end === 'committed' ? 0 : consecutiveAborts + 1;
        if (consecutiveAborts > 0) await this.pauseAfterAborts(consecutiveAborts, signal);
      }
      if (this.settings.finalEvaluation && signal?.aborted !== true) await this.evaluateFinalModel(signal);
    } catch (error) {
      // Callers may only hold on to the promise (the gRPC app does): say here that no more rounds will run.
      log.error({ err: error, committedRounds: this.state.committedRounds }, 'the federation loop failed; no further rounds will start');
      throw error;
    }
    // Stopped (a signal, `stop()`) before the configured rounds is not finishing them.
    if (this.state.committedRounds < this.settings.rounds) {
      log.info({ committedRounds: this.state.committedRounds, rounds: this.settings.rounds }, `stopped after ${this.state.committedRounds} committed rounds (of ${this.settings.rounds})`);
    } else {
      log.info({ committedRounds: this.state.committedRounds }, 'federation finished its rounds');
    }
  }

  /**
   * After an aborted round wait before the next one, doubling up to 30 s, so a site that refuses every
   * round (policy, broken data) cannot spin the coordinator through hundreds of rounds before it is left out.
   */
  private async pauseAfterAborts(consecutiveAborts: number, signal?: AbortSignal): Promise<void> {
    const pause = Math.min(30_000, 250 * 2 ** Math.min(consecutiveAborts - 1, 7));
    this.options.logger.info({ consecutiveAborts, pauseMs: pause }, 'pausing before the next round');
    await this.options.sites.changed(pause, signal);
  }

  /** A training round on a model whose evaluation the sites already reported asks for none (round-guard.ts). */
  private trainingPurpose(): RoundPurpose {
    return this.metricsSpent.has(this.state.modelHash) ? 'train' : 'train_and_evaluate';
  }

  /**
   * One evaluation-only round on the final committed model, retried a few times if it aborts. Skipped
   * when no round committed, when the model was evaluated already (a restart), or when fewer than
   * participants.min sites are there for participants.wait_timeout: the federation then ends without it.
   */
  private async evaluateFinalModel(signal?: AbortSignal): Promise<void> {
    const log = this.options.logger;
    if (this.state.committedRounds === 0 || this.evaluations.of(this.state.modelHash) !== undefined) return;
    if (this.metricsSpent.has(this.state.modelHash)) {
      log.warn({ model: this.state.modelHash }, 'the sites already reported their evaluation of the final model; no evaluation-only round is run');
      return;
    }
    const stopped = (): boolean => signal?.aborted === true;
    for (let attempt = 1; attempt <= FINAL_EVALUATION_ATTEMPTS && !stopped(); attempt++) {
      const participants = await this.waitForParticipants(signal, this.settings.participants.waitTimeoutMs);
      if (participants === undefined) {
        if (!stopped()) log.warn({ needed: this.settings.participants.minimum }, 'not enough participants for the evaluation of the final model; the federation ends without it');
        return;
      }
      const end = await this.runRound(participants, 'evaluate', signal);
      if (end === 'evaluated') return;
      if (this.metricsSpent.has(this.state.modelHash)) {
        log.warn({ model: this.state.modelHash }, 'sites refused the evaluation of the final model: they reported its metrics already (MODEL_ALREADY_EVALUATED); the federation ends without a new evaluation');
        return;
      }
      if (attempt < FINAL_EVALUATION_ATTEMPTS) await this.pauseAfterAborts(attempt, signal);
    }
    if (!stopped()) log.warn({ attempts: FINAL_EVALUATION_ATTEMPTS }, 'the evaluation-only rounds of the final model aborted; the federation ends without its evaluation');
  }

  /**
   * The sites of the next round: the eligible ones that are not left out (site-backoff.ts), sampled.
   * Waits until enough are there; with `giveUpAfterMs`, resolves undefined once that has passed.
   */
  private async waitForParticipants(signal?: AbortSignal, giveUpAfterMs?: number): Promise<EligibleSite[] | undefined> {
    const { participants } = this.settings;
    const started = Date.now();
    const deadline = started + participants.waitTimeoutMs;
    let warned = false;
    for (;;) {
      if (signal?.aborted === true) return undefined;
      const eligible = this.options.sites.eligible();
      const selectable = this.backoff.selectable(eligible.map((site) => site.siteId));
      const selected = selectParticipants({
        eligible: selectable,
        fraction: participants.sampleFraction,
        minimum: participants.minimum,
        samplingSeed: fromHex(this.state.samplingSeed),
        roundCounter: this.counter.peek(),
      });
      if (selected !== undefined) return eligible.filter((site) => selected.includes(site.siteId));
      if (giveUpAfterMs !== undefined && Date.now() - started >= giveUpAfterMs) return undefined;
      if (!warned && Date.now() > deadline) {
        const leftOut = eligible.map((site) => site.siteId).filter((siteId) => this.backoff.isExcluded(siteId));
        this.options.logger.warn({ connected: eligible.length, leftOut, needed: participants.minimum }, 'still waiting for enough participants');
        warned = true;
      }
      // Wake when someone connects or leaves, or when a left-out site's pause ends.
      const retryAt = this.backoff.nextRetry(eligible.map((site) => site.siteId));
      await this.options.sites.changed(retryAt === undefined ? 1000 : Math.max(10, Math.min(1000, retryAt - Date.now())), signal);
    }
  }

  /** Counts the round for and against each member (site-backoff.ts) and logs who is left out or back. */
  private recordSiteOutcomes(participants: readonly string[], outcome: RoundOutcome): void {
    // A coordinator that stops aborts its round: nobody failed.
    if (outcome.status === 'aborted' && outcome.reason === 'COORDINATOR_STOPPING') return;
    const survivors = outcome.status === 'aborted' || outcome.status === 'pending' ? undefined : new Set(outcome.result.maskedSurvivors);
    const failures = new Map([...outcome.failures].filter(([siteId]) => survivors === undefined || !survivors.has(siteId)));
    // Sites that refuse a round asking for a model's metrics they reported already: later rounds on it ask for none.
    if ([...failures.values()].includes(SITE_DEFENCE_REASONS.MODEL_ALREADY_EVALUATED)) this.metricsSpent.add(this.state.modelHash);
    const log = this.options.logger;
    for (const change of this.backoff.recordRound(participants, failures)) {
      if (change.kind === 'excluded') {
        log.warn(
          { site: change.siteId, failures: change.failures, reasons: change.reasons, pauseMs: change.pauseMs, retryAt: new Date(change.retryAt).toISOString() },
          `site ${change.siteId} refused or failed ${change.failures} round(s) in a row; leaving it out of selection for ${Math.round(change.pauseMs / 1000)} s before trying it again`,
        );
      } else {
        log.info({ site: change.siteId, failures: change.failures }, `site ${change.siteId} took part in a round again after being left out; selecting it as usual`);
      }
    }
  }

  private async runRound(sites: readonly EligibleSite[], purpose: RoundPurpose, signal?: AbortSignal): Promise<RoundEnd> {
    const participants = sites.map((site) => site.siteId);
    const certificates = new Map(sites.map((site) => [site.siteId, site.certificate]));
    const started = performance.now();
    const roundId = await this.counter.allocate();
    const config = this.roundConfig(roundId.bytes, participants, purpose);
    const roundLabel = toHex(roundId.bytes);
    const server = new SecAggServer({ config, certificates, trust: this.options.trust(), now: new Date() });
    let finalized: Awaited<ReturnType<typeof finalizeRound>> | undefined;
    let unmasked: AggregateResult | undefined;
    let appended: AppendedCommit | undefined;
    const driver = new RoundDriver({
      server,
      roundConfigBytes: encodeRoundConfig(config),
      transport: { send: (siteId, message) => this.options.sites.send(siteId, message) },
      logger: this.options.logger,
      ...(signal === undefined ? {} : { signal }),
      // One contribution per model: an unmasked round short of commit signatures is finished, not re-run.
      presence: this.options.sites,
      finalize: async (result) => {
        unmasked = result;
        finalized = await finalizeRound({
          config,
          result,
          layout: this.options.layout,
          model: this.model,
          modelHash: this.state.modelHash,
          optimizer: this.settings.serverOptimizer,
          optimizerState: this.optimizerState,
          store: this.store,
        });
        return finalized.hashes;
      },
      // ... and kept on disk until it is in the ledger, so that a restart finishes it too.
      onCommitRequested: async (progress) => {
        const pending: PendingCommit = {
          record: progress,
          certificates: new Map(progress.maskedSurvivors.map((siteId) => [siteId, certificatePem(certificates.get(siteId))])),
          metrics: roundMetrics(participants.length, unmasked as AggregateResult, this.metricSlots),
          requestedAt: new Date(),
        };
        await this.pendingCommits.write(pending);
        this.pending = pending;
        this.options.faultPoint?.('commit_pending');
      },
      onCommitSignature: (progress) => this.keepCommitProgress(progress),
      appendCommit: async (build) => {
        // The signers are re-checked against the live revocation set inside the fence, where no revocation
        // can become live between that check and the record being durable.
        appended = await this.appendInFence(build, this.pending?.metrics ?? roundMetrics(participants.length, unmasked as AggregateResult, this.metricSlots));
        return appended?.record;
      },
    });
    const base = { roundId: roundLabel, roundCounter: roundId.counter.toString(), participants, ...(purpose === 'train_and_evaluate' ? {} : { purpose }) };
    const distributedDp = config.distributedDp === undefined ? {} : { distributedDp: distributedDpReport(config) };
    this.emit('round', { ...base, ...distributedDp, type: 'round_started', at: new Date().toISOString() });
    this.options.logger.info({ round: roundLabel, counter: roundId.counter.toString(), participants, purpose, ...distributedDp }, purpose === 'evaluate' ? 'evaluation-only round started on the final model' : 'round started');
    this.driver = driver;
    const outcome: RoundOutcome = await driver.run();
    this.driver = undefined;
    this.recordSiteOutcomes(participants, outcome);
    const seconds = (performance.now() - started) / 1000;
    if (outcome.status === 'evaluated') {
      await this.recordEvaluation(base, outcome.result, outcome.stageSeconds, seconds);
      return 'evaluated';
    }
    if (outcome.status !== 'committed' || finalized === undefined || appended === undefined) {
      const reason = outcome.status === 'committed' ? 'NOT_FINALIZED' : outcome.reason;
      // A commit kept on disk is finished from there (next turn of the loop, or after a restart) unless
      // refusals made its quorum unreachable: then the round is over for good.
      if (this.pending !== undefined && reason !== 'COMMIT_QUORUM_MISSING') return 'pending';
      await this.dropPendingCommit();
      this.emit('round', { ...base, type: 'round_aborted', reason, stageSeconds: outcome.stageSeconds, computeSeconds: outcome.computeSeconds, seconds, at: new Date().toISOString() });
      return 'aborted';
    }
    await this.afterCommit(appended, {
      model: finalized.model,
      optimizerState: finalized.optimizerState,
      event: { ...base, stageSeconds: outcome.stageSeconds, computeSeconds: outcome.computeSeconds, seconds },
    });
    return 'committed';
  }

  /** Finishes the pending commit (resumed-commit.ts): the same round commits, or aborts for good, or stays pending. */
  private async finishPendingCommit(signal?: AbortSignal): Promise<RoundEnd> {
    const pending = this.pending as PendingCommit;
    const started = performance.now();
    const resumed = this.restored ?? this.resumedCommit(pending);
    this.restored = undefined;
    this.driver = resumed;
    let outcome: ResumedCommitOutcome;
    try {
      outcome = await resumed.run(signal);
    } catch (error) {
      this.options.logger.error({ err: error }, 'finishing the pending commit failed unexpectedly; it stays pending');
      outcome = { status: 'pending', reason: 'INTERNAL_ERROR', message: error instanceof Error ? error.message : String(error) };
    } finally {
      this.driver = undefined;
    }
    const { config } = pending.record;
    const base = { roundId: toHex(config.roundId), roundCounter: roundCounterOf(config.roundId).toString(), participants: [...config.participants] };
    const seconds = (performance.now() - started) / 1000;
    if (outcome.status === 'pending') return 'pending';
    if (outcome.status === 'aborted') {
      await this.dropPendingCommit();
      this.emit('round', { ...base, type: 'round_aborted', reason: outcome.reason, seconds, at: new Date().toISOString() });
      return 'aborted';
    }
    const appended = await this.appendInFence(() => resumed.committedRecord(), pending.metrics);
    if (appended === undefined) {
      this.options.logger.warn({ round: base.roundId }, 'certificates of signers were revoked before the record was appended, so their signatures no longer count; re-collecting');
      return 'pending';
    }
    const { hashes } = appended.record;
    await this.afterCommit(appended, {
      model: decodeWeights(this.options.layout, await this.store.get(toHex(hashes.newModelHash))),
      optimizerState: decodeServerOptimizerState(await this.store.get(toHex(hashes.optimizerStateHash))).state,
      event: { ...base, stageSeconds: {}, seconds },
    });
    return 'committed';
  }

  /**
   * Appends a round's record to the ledger inside the revocation fence (revocation-fence.ts): `build` gives
   * the record with the signers whose certificates are still not revoked, or undefined when revocations
   * took the quorum away; then nothing is appended.
   */
  private async appendInFence(build: () => CommitRecord | undefined, metrics: RoundMetrics): Promise<AppendedCommit | undefined> {
    await this.options.pausePoint?.('before_commit_append');
    return this.revocationFence.commit(async (committedAt) => {
      const record = build();
      if (record === undefined) return undefined;
      const body = commitBody(record, committedAt, metrics);
      return { record, body, metrics, ledgerRecord: await this.ledger.append(body) };
    });
  }

  /**
   * A round's record is in the ledger: removes the pending commit, moves the model forward, tells every
   * member of U (with the signed record) and reports the round.
   */
  private async afterCommit(
    appended: AppendedCommit,
    next: {
      readonly model: Float32Array;
      readonly optimizerState: ServerOptimizerState;
      readonly event: Pick<RoundEvent, 'roundId' | 'roundCounter' | 'participants' | 'stageSeconds' | 'computeSeconds' | 'seconds'>;
    },
  ): Promise<void> {
    const { record, body, metrics, ledgerRecord } = appended;
    // After the append: a crash in between leaves the pending commit naming the ledger's head, removed at start.
    await this.dropPendingCommit();
    const commitRecord = encodeCommitRecord(body);
    const modelHash = toHex(record.hashes.newModelHash);
    this.model = next.model;
    this.optimizerState = next.optimizerState;
    this.state = { ...this.state, committedRounds: this.ledger.length, modelHash, optimizerStateHash: toHex(record.hashes.optimizerStateHash) };
    await writeFederationState(this.settings.stateDirectory, this.state);
    // Every member of U hears how the round ended, so sites that dropped or refused release its state too.
    for (const siteId of record.config.participants) {
      this.options.sites.send(siteId, {
        kind: 'committed',
        roundId: record.config.roundId,
        sequence: ledgerRecord.sequence,
        newModelHash: record.hashes.newModelHash,
        signatures: record.signatures.length,
        commitRecord,
      });
    }
    this.emit('round', {
      ...next.event,
      type: 'round_committed',
      survivors: record.maskedSurvivors,
      sequence: ledgerRecord.sequence,
      modelHash,
      metrics,
      at: new Date().toISOString(),
    });
  }

  /** Keeps the commit signatures stored so far on disk; a failed write only costs asking those sites again. */
  private keepCommitProgress(progress: CommitRecord): void {
    const pending = this.pending;
    if (pending === undefined) return;
    const next = { ...pending, record: progress };
    this.pending = next;
    void (async () => {
      try {
        await this.pendingCommits.write(next);
        this.options.faultPoint?.('commit_signature');
      } catch (error) {
        this.options.logger.error({ err: error }, 'could not keep a commit signature on disk; after a restart that site is asked to sign again');
      }
    })();
  }

  private async dropPendingCommit(): Promise<void> {
    if (this.pending === undefined) return;
    this.pending = undefined;
    await this.pendingCommits.clear();
  }

  private resumedCommit(pending: PendingCommit): ResumedCommit {
    return new ResumedCommit({
      pending,
      trust: this.options.trust(),
      transport: { send: (siteId, message) => this.options.sites.send(siteId, message) },
      presence: this.options.sites,
      logger: this.options.logger,
      source: this.pendingCommits.path,
      onCommitSignature: (progress) => this.keepCommitProgress(progress),
    });
  }

  /** Stores the metric sums of an evaluation-only round, announces them and logs the final model's accuracy. */
  private async recordEvaluation(base: Pick<RoundEvent, 'roundId' | 'roundCounter' | 'participants' | 'purpose'>, result: AggregateResult, stageSeconds: RoundEvent['stageSeconds'], seconds: number): Promise<void> {
    const metrics = roundMetrics(base.participants.length, result, this.metricSlots);
    const evaluation: ModelEvaluation = {
      modelHash: this.state.modelHash,
      sequence: this.state.committedRounds,
      roundId: base.roundId,
      roundCounter: base.roundCounter,
      participants: base.participants,
      survivors: result.maskedSurvivors,
      metrics,
      evaluatedAt: new Date().toISOString(),
    };
    await this.evaluations.add(evaluation);
    this.metricsSpent.add(this.state.modelHash);
    this.options.logger.info(
      {
        model: evaluation.modelHash,
        sequence: evaluation.sequence,
        survivors: result.maskedSurvivors,
        ...reportedFigures(evaluationFigures(metrics)),
      },
      'final model evaluated',
    );
    this.emit('round', {
      ...base,
      type: 'round_evaluated',
      survivors: result.maskedSurvivors,
      sequence: evaluation.sequence,
      modelHash: evaluation.modelHash,
      metrics,
      ...(stageSeconds === undefined ? {} : { stageSeconds }),
      seconds,
      at: evaluation.evaluatedAt,
    });
  }

  /**
   * Says once per round size what an operator should know about the (k, t) roundShape chose: a
   * configured t moved up to the smallest valid one, or a round that sites with the default policy
   * refuse (its reason code, e.g. too_few_tolerated_colluders for two sites).
   */
  private warnAboutShape(participants: number, shape: RoundShape, configured: number | undefined): void {
    const key = `${participants}/${shape.neighbourDegree}/${shape.reconstructionThreshold}`;
    if (this.shapesWarned.has(key)) return;
    this.shapesWarned.add(key);
    const log = this.options.logger;
    if (shape.thresholdAdjusted) {
      log.warn({ configured, used: shape.reconstructionThreshold, neighbourDegree: shape.neighbourDegree }, 'configured reconstruction threshold is invalid for this round; using the smallest valid one');
    }
    if (shape.belowDefaultPolicy !== undefined) {
      log.warn(
        { participants, neighbourDegree: shape.neighbourDegree, threshold: shape.reconstructionThreshold, reason: shape.belowDefaultPolicy.reason, detail: shape.belowDefaultPolicy.message },
        'this round is below the default site policy: sites that keep the default collusion margin will refuse it; raise secagg.threshold or the number of participants, or leave secagg.degree unset',
      );
    }
  }

  private roundConfig(roundId: Uint8Array, participants: string[], purpose: RoundPurpose): RoundConfig {
    const { secagg } = this.settings;
    const shape = roundShape({
      participants: participants.length,
      plaintext: !this.settings.secureAggregation,
      ...(secagg.neighbourDegree === undefined ? {} : { configuredDegree: secagg.neighbourDegree }),
      ...(secagg.reconstructionThreshold === undefined ? {} : { configuredThreshold: secagg.reconstructionThreshold }),
    });
    this.warnAboutShape(participants.length, shape, secagg.reconstructionThreshold);
    return createRoundConfig({
      federationId: this.settings.federationId,
      roundId,
      participants,
      taskHash: fromHex(this.options.taskHash),
      modelHash: fromHex(this.state.modelHash),
      optimizerStateHash: fromHex(this.state.optimizerStateHash),
      hyperParameters: { ...this.options.hyperParameters, round: this.state.committedRounds + 1 },
      reconstructionThreshold: shape.reconstructionThreshold,
      neighbourDegree: shape.neighbourDegree,
      layout: {
        // An evaluation-only round uploads the metric slots alone.
        parameterSegments: purpose === 'evaluate' ? [] : [{ length: this.model.length, bound: secagg.clipBound }],
        maxLossPerExample: secagg.maxLossPerExample,
        maxEvalExamples: secagg.maxEvalExamples,
      },
      maxWeight: secagg.maxWeight,
      deadlines: this.settings.deadlines,
      plaintext: !this.settings.secureAggregation,
      purpose,
      // Every round of a task with extra metric slots carries them ('train' rounds send them as 0).
      ...(this.metricSlots === undefined ? {} : { metricSlots: this.metricSlots }),
      // An evaluation-only round uploads no update, so it has nothing to noise.
      ...(this.participantLevel === undefined || purpose === 'evaluate'
        ? {}
        : {
            distributedDp: roundDistributedDp(this.participantLevel, {
              federationId: this.settings.federationId,
              roundId,
              participants: participants.length,
              threshold: shape.reconstructionThreshold,
              dimension: this.model.length,
            }),
          }),
    });
  }
}

export class NoOpenRoundError extends FedgateError {
  constructor() {
    super('FAILED_PRECONDITION', 'no round is open: the message arrived between rounds or after its round ended', { reason: 'NO_OPEN_ROUND' });
    this.name = 'NoOpenRoundError';
  }
}

/** The round's unsigned metrics, as the ledger records them (with the task's extra metric slots, if any). */
function roundMetrics(participants: number, result: AggregateResult, slots: RoundMetricSlots | undefined): RoundMetrics {
  return {
    participants,
    survivors: result.maskedSurvivors.length,
    evalLossSum: result.evalLossSum,
    evalCorrect: result.evalCorrect,
    evalExamples: result.evalExamples,
    weightSum: result.weightSum,
    ...extraRoundMetrics(slots, result.metricSums),
  };
}

/**
 * RoundConfig.metricSlots of a task: none for class-index targets, the label counts for multi-label, the
 * error and target sums for regression with the configured per-element bounds (secagg.max_eval_target,
 * secagg.max_eval_error). Sites check the kind and T against their own task.
 */
function metricSlotsOf(shape: ReturnType<typeof evaluationShapeOf>, secagg: SecAggSettings): RoundMetricSlots | undefined {
  switch (shape.kind) {
    case 'class':
      return undefined;
    case 'multi_label':
      return { kind: 'multi_label', outputs: shape.outputs };
    case 'regression':
      return { kind: 'regression', outputs: shape.outputs, maxAbsTarget: secagg.maxEvalTarget ?? 1000, maxAbsError: secagg.maxEvalError ?? 1000 };
  }
}

/** The figures of an evaluation that apply to its kind, for a log line. */
function reportedFigures(figures: EvaluationFigures): Record<string, number | string | null> {
  const { kind, examples, loss, accuracy } = figures;
  switch (kind) {
    case 'classification':
      return { kind, examples, loss, accuracy };
    case 'multi_label':
      return { kind, examples, loss, exactMatch: accuracy, precision: figures.precision, recall: figures.recall, f1: figures.f1 };
    case 'regression':
      return { kind, examples, loss, mse: figures.mse, mae: figures.mae, rmse: figures.rmse, r2: figures.r2 };
  }
}

/** A member's certificate (DER from its TLS session, or PEM) as the PEM the commit record carries. */
function certificatePem(certificate: Uint8Array | string | undefined): string {
  if (certificate === undefined) throw new Error('a member of U3 has no certificate');
  return typeof certificate === 'string' ? certificate : new X509Certificate(certificate).toString();
}

/** Read through a call, so the compiler does not keep a narrowing of `signal.aborted` across awaits. */
function stopped(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true;
}
