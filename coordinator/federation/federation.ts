/**
 * The coordinator's federation loop: waits for enough eligible sites, opens a round under a fresh id
 * (counter fsynced first), drives it with RoundDriver, and on commit appends the signed record to the
 * ledger and moves the global model forward. An aborted round is followed by a new round with a new id.
 * On start-up it resumes from the last committed round (the ledger wins over federation.json).
 *
 * Sites that refuse or fail round after round are left out of selection for a while (site-backoff.ts),
 * so the others keep committing. Once the configured rounds have committed, one evaluation-only round
 * (RoundConfig purpose 'evaluate') measures the final model, whose accuracy no training round reports:
 * the metrics of round r are of the model round r started from.
 */
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { FedgateError } from '../../platform/index.js';
import { fromHex, toHex } from '../../crypto/bytes.js';
import type { TrustAnchor } from '../../crypto/certificate.js';
import { createRoundConfig, type HyperParameterValue, type RoundConfig, type RoundPurpose } from '../../crypto/secagg/config.js';
import { encodeRoundConfig } from '../../crypto/secagg/config-codec.js';
import { SecAggServer } from '../../crypto/secagg/server.js';
import { decodeServerOptimizerState, encodeServerOptimizerState, initialServerOptimizerState, type ServerOptimizerState } from '../../model/server-optimizer.js';
import { decodeWeights, encodeWeights } from '../../model/weight-codec.js';
import type { ParameterLayout } from '../../model/weights.js';
import { RoundDriver, type RoundOutcome } from '../round/round-driver.js';
import { SITE_DEFENCE_REASONS } from '../../crypto/secagg/site-refusals.js';
import type { CoordinatorToSite, SiteToCoordinator } from '../round/round-messages.js';
import type { FaultPoint } from '../state/fault-injection.js';
import { Ledger } from '../state/ledger.js';
import { ModelStore } from '../state/model-store.js';
import { RoundCounter } from '../state/round-counter.js';
import { StateError } from '../state/state-error.js';
import { commitBody, encodeCommitRecord, type RoundMetrics } from '../../crypto/secagg/commit-record-codec.js';
import type { AggregateResult } from '../../crypto/secagg/server-unmask.js';
import { parseLedgerCommit } from './ledger-commit.js';
import type { FederationSettings } from './federation-settings.js';
import { newSamplingSeed, readFederationState, writeFederationState, type FederationState } from './federation-state.js';
import { checkPinnedStart } from './pinned-start.js';
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
  /** Crash-injection hook for recovery tests, handed to the ledger (state/fault-injection.ts). @default none */
  readonly faultPoint?: FaultPoint;
  /** The clock of site backoff (tests). @default Date.now */
  readonly now?: () => number;
}

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
  readonly seconds?: number;
  /** What the round asks of its sites, when it is not the default 'train_and_evaluate'. */
  readonly purpose?: RoundPurpose;
  readonly at: string;
}

export class Federation extends EventEmitter<{ round: [RoundEvent] }> {
  private driver: RoundDriver | undefined;
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

  private constructor(
    private readonly options: FederationOptions,
    private readonly store: ModelStore,
    private readonly ledger: Ledger,
    private readonly counter: RoundCounter,
    private state: FederationState,
    private readonly evaluations: ModelEvaluations,
  ) {
    super();
    this.settings = options.settings;
    this.backoff = new SiteBackoff(options.settings.participants.siteBackoff, options.now);
    for (const evaluation of evaluations.all) this.metricsSpent.add(evaluation.modelHash);
    this.model = options.initialModel;
    this.optimizerState = initialServerOptimizerState(options.settings.serverOptimizer, options.initialModel.length);
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
    if (head !== undefined && ledger.length !== state.committedRounds) {
      const { body } = parseLedgerCommit(head.body, `ledger record ${head.sequence}`);
      state = { ...state, committedRounds: ledger.length, modelHash: body.newModelHash, optimizerStateHash: body.optimizerStateHash };
    }
    await writeFederationState(stateDirectory, state);
    const federation = new Federation(options, store, ledger, counter, state, await ModelEvaluations.open(stateDirectory));
    federation.model = decodeWeights(options.layout, await store.get(state.modelHash));
    federation.optimizerState = decodeServerOptimizerState(await store.get(state.optimizerStateHash)).state;
    return federation;
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

  /** Runs rounds until the configured number have committed or `signal` fires. */
  async run(signal?: AbortSignal): Promise<void> {
    const log = this.options.logger;
    let consecutiveAborts = 0;
    try {
      while (this.state.committedRounds < this.settings.rounds && signal?.aborted !== true) {
        const participants = await this.waitForParticipants(signal);
        if (participants === undefined) continue;
        const outcome = await this.runRound(participants, this.trainingPurpose(), signal);
        consecutiveAborts = outcome.status === 'aborted' ? consecutiveAborts + 1 : 0;
        if (consecutiveAborts > 0) await this.pauseAfterAborts(consecutiveAborts, signal);
      }
      if (this.settings.finalEvaluation && signal?.aborted !== true) await this.evaluateFinalModel(signal);
    } catch (error) {
      // Callers may only hold on to the promise (the gRPC app does): say here that no more rounds will run.
      log.error({ err: error, committedRounds: this.state.committedRounds }, 'the federation loop failed; no further rounds will start');
      throw error;
    }
    log.info({ committedRounds: this.state.committedRounds }, 'federation finished its rounds');
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
      const outcome = await this.runRound(participants, 'evaluate', signal);
      if (outcome.status === 'evaluated') return;
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
    const survivors = outcome.status === 'aborted' ? undefined : new Set(outcome.result.maskedSurvivors);
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

  private async runRound(sites: readonly EligibleSite[], purpose: RoundPurpose, signal?: AbortSignal): Promise<RoundOutcome> {
    const participants = sites.map((site) => site.siteId);
    const certificates = new Map(sites.map((site) => [site.siteId, site.certificate]));
    const started = performance.now();
    const roundId = await this.counter.allocate();
    const config = this.roundConfig(roundId.bytes, participants, purpose);
    const roundLabel = toHex(roundId.bytes);
    const server = new SecAggServer({ config, certificates, trust: this.options.trust(), now: new Date() });
    let finalized: Awaited<ReturnType<typeof finalizeRound>> | undefined;
    this.driver = new RoundDriver({
      server,
      roundConfigBytes: encodeRoundConfig(config),
      transport: { send: (siteId, message) => this.options.sites.send(siteId, message) },
      logger: this.options.logger,
      ...(signal === undefined ? {} : { signal }),
      // One contribution per model: an unmasked round short of commit signatures is finished, not re-run.
      presence: this.options.sites,
      finalize: async (result) => {
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
    });
    const base = { roundId: roundLabel, roundCounter: roundId.counter.toString(), participants, ...(purpose === 'train_and_evaluate' ? {} : { purpose }) };
    this.emit('round', { ...base, type: 'round_started', at: new Date().toISOString() });
    this.options.logger.info({ round: roundLabel, counter: roundId.counter.toString(), participants, purpose }, purpose === 'evaluate' ? 'evaluation-only round started on the final model' : 'round started');
    const outcome = await this.driver.run();
    this.driver = undefined;
    this.recordSiteOutcomes(participants, outcome);
    const seconds = (performance.now() - started) / 1000;
    if (outcome.status === 'evaluated') {
      await this.recordEvaluation(base, outcome.result, outcome.stageSeconds, seconds);
      return outcome;
    }
    if (outcome.status === 'aborted' || finalized === undefined) {
      const reason = outcome.status === 'aborted' ? outcome.reason : 'NOT_FINALIZED';
      this.emit('round', { ...base, type: 'round_aborted', reason, stageSeconds: outcome.stageSeconds, seconds, at: new Date().toISOString() });
      return outcome;
    }
    const metrics: RoundMetrics = {
      participants: participants.length,
      survivors: outcome.result.maskedSurvivors.length,
      evalLossSum: outcome.result.evalLossSum,
      evalCorrect: outcome.result.evalCorrect,
      evalExamples: outcome.result.evalExamples,
      weightSum: outcome.result.weightSum,
    };
    const body = commitBody(outcome.record, new Date(), metrics);
    const record = await this.ledger.append(body);
    const commitRecord = encodeCommitRecord(body);
    this.model = finalized.model;
    this.optimizerState = finalized.optimizerState;
    this.state = { ...this.state, committedRounds: this.ledger.length, modelHash: finalized.modelHash, optimizerStateHash: finalized.optimizerStateHash };
    await writeFederationState(this.settings.stateDirectory, this.state);
    // Every member of U hears how the round ended, so sites that dropped or refused release its state too.
    for (const siteId of participants) {
      this.options.sites.send(siteId, {
        kind: 'committed',
        roundId: roundId.bytes,
        sequence: record.sequence,
        newModelHash: finalized.hashes.newModelHash,
        signatures: outcome.record.signatures.length,
        commitRecord,
      });
    }
    this.emit('round', {
      ...base,
      type: 'round_committed',
      survivors: outcome.result.maskedSurvivors,
      sequence: record.sequence,
      modelHash: finalized.modelHash,
      metrics,
      stageSeconds: outcome.stageSeconds,
      seconds,
      at: new Date().toISOString(),
    });
    return outcome;
  }

  /** Stores the metric sums of an evaluation-only round, announces them and logs the final model's accuracy. */
  private async recordEvaluation(base: Pick<RoundEvent, 'roundId' | 'roundCounter' | 'participants' | 'purpose'>, result: AggregateResult, stageSeconds: RoundEvent['stageSeconds'], seconds: number): Promise<void> {
    const metrics: RoundMetrics = {
      participants: base.participants.length,
      survivors: result.maskedSurvivors.length,
      evalLossSum: result.evalLossSum,
      evalCorrect: result.evalCorrect,
      evalExamples: result.evalExamples,
      weightSum: result.weightSum,
    };
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
    const examples = metrics.evalExamples;
    this.options.logger.info(
      {
        model: evaluation.modelHash,
        sequence: evaluation.sequence,
        survivors: result.maskedSurvivors,
        accuracy: examples > 0 ? metrics.evalCorrect / examples : null,
        loss: examples > 0 ? metrics.evalLossSum / examples : null,
        examples,
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
    });
  }
}

export class NoOpenRoundError extends FedgateError {
  constructor() {
    super('FAILED_PRECONDITION', 'no round is open: the message arrived between rounds or after its round ended', { reason: 'NO_OPEN_ROUND' });
    this.name = 'NoOpenRoundError';
  }
}
