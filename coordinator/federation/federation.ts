/**
 * The coordinator's federation loop: waits for enough eligible sites, opens a round under a fresh id
 * (counter fsynced first), drives it with RoundDriver, and on commit appends the signed record to the
 * ledger and moves the global model forward. An aborted round is followed by a new round with a new id.
 * On start-up it resumes from the last committed round (the ledger wins over federation.json).
 */
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { FedgateError } from '../../platform/index.js';
import { fromHex, toHex } from '../../crypto/bytes.js';
import type { TrustAnchor } from '../../crypto/certificate.js';
import { createRoundConfig, type HyperParameterValue, type RoundConfig } from '../../crypto/secagg/config.js';
import { encodeRoundConfig } from '../../crypto/secagg/config-codec.js';
import { SecAggServer } from '../../crypto/secagg/server.js';
import { decodeServerOptimizerState, encodeServerOptimizerState, initialServerOptimizerState, type ServerOptimizerState } from '../../model/server-optimizer.js';
import { decodeWeights, encodeWeights } from '../../model/weight-codec.js';
import type { ParameterLayout } from '../../model/weights.js';
import { RoundDriver, type RoundOutcome } from '../round/round-driver.js';
import type { CoordinatorToSite, SiteToCoordinator } from '../round/round-messages.js';
import type { FaultPoint } from '../state/fault-injection.js';
import { Ledger } from '../state/ledger.js';
import { ModelStore } from '../state/model-store.js';
import { RoundCounter } from '../state/round-counter.js';
import { StateError } from '../state/state-error.js';
import { commitBody, encodeCommitRecord, type RoundMetrics } from '../../crypto/secagg/commit-record-codec.js';
import { parseLedgerCommit } from './ledger-commit.js';
import type { FederationSettings } from './federation-settings.js';
import { newSamplingSeed, readFederationState, writeFederationState, type FederationState } from './federation-state.js';
import { checkPinnedStart } from './pinned-start.js';
import { finalizeRound } from './round-finalizer.js';
import { roundShape, type RoundShape } from './round-shape.js';
import { selectParticipants } from './selection.js';

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
}

export interface RoundEvent {
  readonly type: 'round_started' | 'round_committed' | 'round_aborted';
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
  readonly at: string;
}

export class Federation extends EventEmitter<{ round: [RoundEvent] }> {
  private driver: RoundDriver | undefined;
  /** Round shapes (n/k/t) already warned about, so a long federation logs each once. */
  private readonly shapesWarned = new Set<string>();
  private model: Float32Array;
  private optimizerState: ServerOptimizerState;
  private readonly settings: FederationSettings;

  private constructor(
    private readonly options: FederationOptions,
    private readonly store: ModelStore,
    private readonly ledger: Ledger,
    private readonly counter: RoundCounter,
    private state: FederationState,
  ) {
    super();
    this.settings = options.settings;
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
    const federation = new Federation(options, store, ledger, counter, state);
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
        const outcome = await this.runRound(participants.map((site) => site.siteId), new Map(participants.map((site) => [site.siteId, site.certificate])), signal);
        // After an aborted round wait before the next one, doubling up to 30 s, so a site that refuses
        // every round (policy, broken data) cannot spin the coordinator through hundreds of rounds.
        consecutiveAborts = outcome.status === 'aborted' ? consecutiveAborts + 1 : 0;
        if (consecutiveAborts > 0) {
          const pause = Math.min(30_000, 250 * 2 ** Math.min(consecutiveAborts - 1, 7));
          log.info({ consecutiveAborts, pauseMs: pause }, 'pausing before the next round');
          await this.options.sites.changed(pause, signal);
        }
      }
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

  private async waitForParticipants(signal?: AbortSignal): Promise<EligibleSite[] | undefined> {
    const { participants } = this.settings;
    const deadline = Date.now() + participants.waitTimeoutMs;
    let warned = false;
    for (;;) {
      if (signal?.aborted === true) return undefined;
      const eligible = this.options.sites.eligible();
      const selected = selectParticipants({
        eligible: eligible.map((site) => site.siteId),
        fraction: participants.sampleFraction,
        minimum: participants.minimum,
        samplingSeed: fromHex(this.state.samplingSeed),
        roundCounter: this.counter.peek(),
      });
      if (selected !== undefined) return eligible.filter((site) => selected.includes(site.siteId));
      if (!warned && Date.now() > deadline) {
        this.options.logger.warn({ connected: eligible.length, needed: participants.minimum }, 'still waiting for enough participants');
        warned = true;
      }
      await this.options.sites.changed(1000, signal);
    }
  }

  private async runRound(participants: string[], certificates: Map<string, Uint8Array | string>, signal?: AbortSignal): Promise<RoundOutcome> {
    const started = performance.now();
    const roundId = await this.counter.allocate();
    const config = this.roundConfig(roundId.bytes, participants);
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
    const base = { roundId: roundLabel, roundCounter: roundId.counter.toString(), participants };
    this.emit('round', { ...base, type: 'round_started', at: new Date().toISOString() });
    this.options.logger.info({ round: roundLabel, counter: roundId.counter.toString(), participants }, 'round started');
    const outcome = await this.driver.run();
    this.driver = undefined;
    const seconds = (performance.now() - started) / 1000;
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

  private roundConfig(roundId: Uint8Array, participants: string[]): RoundConfig {
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
        parameterSegments: [{ length: this.model.length, bound: secagg.clipBound }],
        maxLossPerExample: secagg.maxLossPerExample,
        maxEvalExamples: secagg.maxEvalExamples,
      },
      maxWeight: secagg.maxWeight,
      deadlines: this.settings.deadlines,
      plaintext: !this.settings.secureAggregation,
    });
  }
}

export class NoOpenRoundError extends FedgateError {
  constructor() {
    super('FAILED_PRECONDITION', 'no round is open: the message arrived between rounds or after its round ended', { reason: 'NO_OPEN_ROUND' });
    this.name = 'NoOpenRoundError';
  }
}
