/**
 * The participant daemon: dials the coordinator (outbound only, so it works behind NAT), opens its
 * Session with a Hello, and takes part in rounds; when the connection drops it reconnects with jittered
 * exponential backoff. A round in flight when the connection drops is abandoned: the site's round state
 * lives in memory only, so after a reconnect it sits that round out (DESIGN.md step 4) and joins the next.
 * The exception is a round it revealed its shares in: its public context is kept in the state_dir, so the
 * site still signs that round's commit when the coordinator asks again (participant/chain/site-chain.ts).
 * What it must remember against a lying coordinator (round counters, models contributed to, its secret
 * seed) is in its state_dir (`state`), checked through one RoundGuard across reconnects.
 */
import type { KeyObject } from 'node:crypto';
import type { ClientDuplexStream } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { installBufferTransfer } from '../../crypto/buffer-release.js';
import { bytesEqual, fromHex, toHex } from '../../crypto/bytes.js';
import { peekRoundId } from '../../crypto/secagg/config-codec.js';
import { checkRoundDistributedDp } from '../../crypto/secagg/distributed-dp-round.js';
import { checkRoundMetricSlots } from '../../crypto/secagg/metric-slots.js';
import { SecAggError } from '../../crypto/secagg/errors.js';
import type { CommitRequestMessage } from '../../crypto/secagg/messages.js';
import type { TrustAnchor } from '../../crypto/certificate.js';
import type { SitePolicy } from '../../crypto/secagg/policy.js';
import type { SiteSessionMessage } from '../../crypto/secagg/round-envelope.js';
import { DEFAULT_OPSET } from '../../model/graph/model.js';
import { coordinatorChannel } from '../../proto/coordinator-channel.js';
import { federationProtocol, type FederationClient } from '../../proto/loader.js';
import { encodeMaskedInputUpload } from '../../proto/masked-input-codec.js';
import { PROTOCOL_VERSION, type CoordinatorMessage__Output, type ParticipantMessage } from '../../proto/messages.js';
import { decodeCoordinatorMessage, encodeParticipantMessage, type ReceivedCoordinatorTraffic } from '../../proto/session-codec.js';
import { downloadModel, uploadMaskedInput } from '../../proto/transfer.js';
import { fetchCommitRecords } from '../../proto/commit-records.js';
import { MIB } from '../../proto/chunking.js';
import { FedgateError } from '../../proto/errors.js';
import { fromGrpcError } from '../../proto/status.js';
import { arrayBufferTransfer } from '../../platform/index.js';
import { RoundGuard } from '../round/round-guard.js';
import { RoundSession } from '../round/round-session.js';
import { refusalFor } from '../round/refusal.js';
import { SITE_DEFENCE_REASONS, refusalText } from '../../crypto/secagg/site-refusals.js';
import { SiteChain } from '../chain/site-chain.js';
import { TaskOrigins } from '../chain/task-origin.js';
import type { SiteStateStore } from '../state/site-state.js';
import type { SitePrivacy, TaskPrivacyFacts } from '../round/site-privacy.js';
import type { SiteMetrics } from '../metrics/site-metrics.js';
import type { Device, ProgressEvent } from '../trainer/index.js';
import { Backoff } from './backoff.js';
import { ConnectFailureDescriber } from './connection-failure.js';
import { SessionWatchdog } from './session-watchdog.js';
import { loadSiteData, type SiteDataSpec } from './site-data.js';
import { SiteDataInvalidError, SiteDataWatch, isDataError } from './site-data-check.js';
import { buildTaskContext, type TaskContext } from './task-context.js';
import { TaskPrivacy } from './task-privacy.js';

export const PARTICIPANT_VERSION = '0.1.0';
/** The site's end of its Session stream. */
type SessionCall = ClientDuplexStream<ParticipantMessage, CoordinatorMessage__Output>;
/** Refusals no reconnect can cure: the daemon stops and reports them. */
const FINAL_REFUSALS: ReadonlySet<string> = new Set(['CERTIFICATE_REVOKED']);
/** @see ParticipantAppOptions.helloReplyTimeoutMs */
const HELLO_REPLY_TIMEOUT_MS = 30_000;
/** Heartbeat intervals without any message after which the connection is presumed dead. */
const MISSED_HEARTBEATS = 3;
/** How long a stopping daemon waits for task contexts still being prepared before it returns. */
const CONTEXT_CLOSE_WAIT_MS = 2000;
/** @see ParticipantAppOptions.dataCheckIntervalMs */
const DEFAULT_DATA_CHECK_INTERVAL_MS = 5000;
/** Largest commit record accepted from GetCommitRecords (a record of a few thousand signers). */
const COMMIT_RECORD_MAX_BYTES = 16 * MIB;

export interface ParticipantAppOptions {
  /** host:port of the coordinator. */
  readonly coordinator: string;
  readonly serverName?: string;
  readonly tls: { readonly caPem: string; readonly certPem: string; readonly keyPem: string };
  readonly siteId: string;
  readonly signingKey: KeyObject;
  readonly trust: TrustAnchor;
  readonly policy: SitePolicy;
  readonly data: SiteDataSpec;
  readonly device: Device;
  readonly intraOpThreads: number;
  readonly maxModelBytes: number;
  readonly reconnect: { readonly initialMs: number; readonly maxMs: number };
  /**
   * How often the data files are polled for changes (site-data-check.ts); 0 = never. The files are
   * checked in full at start either way. @default 5 s
   */
  readonly dataCheckIntervalMs?: number;
  /** The site's persisted state (state_dir): round counters, models contributed to, secret seeds. */
  readonly state: SiteStateStore;
  /** How long a new Session may wait for the coordinator's HelloReply before the connection is given up. @default 30 s */
  readonly helloReplyTimeoutMs?: number;
  /** Extra time beyond each RoundConfig stage deadline before the site ends a round itself. @default 10 s */
  readonly deadlineGraceMs?: number;
  readonly logger: Logger;
  readonly onProgress?: (event: ProgressEvent) => void;
  /** Called for every round this site saw end (for CLIs and tests). */
  readonly onRoundEnd?: (event: { roundId: string; outcome: 'committed' | 'evaluated' | 'aborted' | 'left'; reason?: string }) => void;
  /**
   * Observes this site's own update of each round after local training, before it is weighted,
   * quantised and masked: what the site contributes to FedAvg. In-process only (tests compare the
   * committed model with plaintext FedAvg of these); nothing about it leaves the site.
   */
  readonly onLocalUpdate?: (event: LocalUpdateEvent) => void;
  /** Prometheus metrics to keep up to date (the caller serves its registry, platform/metrics-endpoint.ts). @default none */
  readonly metrics?: SiteMetrics;
  /**
   * The site's record-level privacy budget (site.yaml privacy, round/site-privacy.ts): tasks it does not
   * accept and rounds that would not fit are refused, and each DP round is charged before the site
   * trains. @default none: every pinned task is trained and nothing is counted
   */
  readonly privacy?: SitePrivacy;
}

type RoundEndEvent = Parameters<NonNullable<ParticipantAppOptions['onRoundEnd']>>[0];

export interface LocalUpdateEvent {
  /** Hex of the round id. */
  readonly roundId: string;
  /** Local model minus the round's global model, in parameter order. */
  readonly delta: Float32Array;
  /** The example count the site's weight w = min(examples, W) / W is computed from. */
  readonly trainingExamples: number;
}

export interface RunningParticipant {
  /**
   * Resolves when `stop()` was called and everything is closed; rejects (with a FedgateError) when the
   * coordinator refused this site for good - its certificate was revoked - since reconnecting cannot help,
   * and (SiteDataInvalidError) when the site's data fails its check at start or does not fit the task the
   * coordinator runs when the site first prepares it.
   */
  readonly done: Promise<void>;
  /** Latest committed model this site signed (encoded weights), if any. */
  latestModel(): Uint8Array | undefined;
  stop(): Promise<void>;
}

export function startParticipant(options: ParticipantAppOptions): RunningParticipant {
  // Masking frees spent keystream at once where the runtime can (crypto/buffer-release.ts).
  installBufferTransfer(arrayBufferTransfer());
  const daemon = new ParticipantDaemon(options);
  const done = daemon.run();
  // The rejection is for whoever awaits `done`; one nobody awaits must not crash the process.
  done.catch(() => undefined);
  return { done, latestModel: () => daemon.latestModel, stop: async () => daemon.stop(done) };
}

class ParticipantDaemon {
  latestModel: Uint8Array | undefined;
  private readonly stopping = new AbortController();
  private client: FederationClient;
  private readonly contexts = new Map<string, Promise<TaskContext>>();
  private readonly blobCache = new Map<string, Uint8Array>();
  private readonly log: Logger;
  private readonly guard: RoundGuard;
  private readonly chain: SiteChain;
  private readonly data: SiteDataWatch;
  private readonly taskPrivacy: TaskPrivacy;
  /** Why the daemon stops on its own (data that does not fit the task when the site first prepares it). */
  private fatal: FedgateError | undefined;
  /** Until the first task context is ready, data that does not fit the task stops the daemon. */
  private startingUp = true;
  /** Aborted when the current Session ends: downloads made on its connection stop waiting then. */
  private connection: AbortSignal = new AbortController().signal;

  constructor(private readonly options: ParticipantAppOptions) {
    this.client = this.newClient();
    this.guard = new RoundGuard(options.state);
    this.log = options.logger.child({ site: options.siteId });
    this.data = new SiteDataWatch({ spec: options.data, intervalMs: options.dataCheckIntervalMs ?? DEFAULT_DATA_CHECK_INTERVAL_MS, reload: () => this.reloadData(), logger: this.log });
    const origins = new TaskOrigins({ fetch: (hash) => this.fetchBlob(hash) });
    this.taskPrivacy = new TaskPrivacy({ fetch: (hash) => this.fetchBlob(hash) });
    this.chain = new SiteChain({
      siteId: options.siteId,
      signingKey: options.signingKey,
      policy: options.policy,
      trust: () => options.trust,
      store: options.state,
      origin: (taskHash) => origins.origin(taskHash),
      fetchRecords: (after, maxRecords) => fetchCommitRecords(this.client, after, { maxRecords, maxRecordBytes: COMMIT_RECORD_MAX_BYTES }),
      computeCommit: async (config, request) => (await this.context(config.taskHash)).training.computeCommit(config, request),
      unmaskedRounds: options.state,
      logger: this.log,
    });
  }

  private newClient(): FederationClient {
    const { FederationClient } = federationProtocol();
    const { options } = this;
    const channel = coordinatorChannel(options.coordinator, { ...options.tls, ...(options.serverName === undefined ? {} : { serverName: options.serverName }) });
    return new FederationClient(options.coordinator, channel.credentials, channel.options);
  }

  async run(): Promise<void> {
    // The whole dataset is checked before the site dials anyone: a bad file stops it here, locally.
    await this.data.checkAtStart();
    this.data.start();
    try {
      await this.serve();
    } finally {
      this.data.stop();
    }
    if (this.fatal !== undefined) throw this.fatal;
  }

  private async serve(): Promise<void> {
    const backoff = new Backoff(this.options.reconnect.initialMs, this.options.reconnect.maxMs);
    const failures = new ConnectFailureDescriber(this.options.coordinator, { ...this.options.tls, ...(this.options.serverName === undefined ? {} : { serverName: this.options.serverName }) });
    let refused: FedgateError | undefined;
    while (!this.stopping.signal.aborted) {
      const outcome = await this.session(() => backoff.reset());
      if (this.stopping.signal.aborted) break;
      if (outcome.final !== undefined) {
        refused = outcome.final;
        this.log.error({ code: refused.code, reason: refused.reason }, `${refused.message}; not reconnecting`);
        break;
      }
      const delay = backoff.next();
      if (outcome.unreachable !== undefined) {
        // Never reached the coordinator on this attempt: no connection was lost, say why none was made.
        const report = await failures.describe(outcome.unreachable);
        this.log.warn({ coordinator: this.options.coordinator, problem: report.problem, reason: report.reason, retryInMs: delay }, 'cannot connect to the coordinator; retrying');
      } else {
        this.log.warn({ reason: outcome.why, retryInMs: delay }, 'connection to the coordinator lost; reconnecting');
      }
      // A fresh channel: the old one may still hold a connection that died silently, and grpc-js would
      // open the next Session on it.
      this.client.close();
      this.client = this.newClient();
      await sleep(delay, this.stopping.signal);
    }
    // A context still being prepared closes its trainer when it is ready; the daemon does not wait for it.
    const closing = [...this.contexts.values()].map((context) => context.then((value) => value.trainer.close()).catch(() => undefined));
    await Promise.race([Promise.all(closing), sleep(CONTEXT_CLOSE_WAIT_MS, new AbortController().signal)]);
    this.client.close();
    if (refused !== undefined) throw refused;
  }

  async stop(done: Promise<void>): Promise<void> {
    this.stopping.abort();
    // A daemon the coordinator refused for good has already reported it through `done`.
    await done.catch(() => undefined);
  }

  /**
   * One Session stream from Hello to its end; resolves with why it ended (and the refusal, when it is
   * final; the transport failure's details, when the coordinator was never reached).
   */
  private session(onConnected: () => void): Promise<{ why: string; final?: FedgateError; unreachable?: string }> {
    return new Promise((resolve) => {
      const connection = new AbortController();
      this.connection = connection.signal;
      const call = this.client.session();
      const rounds = new Map<string, RoundSession>();
      let finished = false;
      /** Whether the coordinator answered at all (headers or a message) on this attempt. */
      let reached = false;
      call.on('metadata', () => {
        reached = true;
      });
      let heartbeatIntervalMs = 0;
      const watchdog = new SessionWatchdog((silentMs) => {
        const expected = heartbeatIntervalMs > 0 ? `it sends a heartbeat every ${heartbeatIntervalMs} ms` : 'no HelloReply yet';
        finish(`no message from the coordinator for ${silentMs} ms (${expected}): the connection is presumed dead`);
        call.cancel();
      });
      watchdog.watch(this.options.helloReplyTimeoutMs ?? HELLO_REPLY_TIMEOUT_MS);
      const finish = (why: string, final?: FedgateError, unreachable?: string): void => {
        if (finished) return;
        finished = true;
        watchdog.stop();
        this.options.metrics?.connection(false);
        // Downloads on this connection will never finish if it died silently: give up on them now.
        connection.abort(new Error(`the connection to the coordinator ended (${why}) during a download`));
        this.stopping.signal.removeEventListener('abort', onStop);
        for (const [roundId, round] of rounds) {
          round.stop('connection lost');
          this.roundEnded({ roundId, outcome: 'left', reason: 'connection lost' });
        }
        resolve({ why, ...(final === undefined ? {} : { final }), ...(unreachable === undefined ? {} : { unreachable }) });
      };
      const onStop = (): void => {
        call.end();
        call.cancel();
        finish('stopped');
      };
      this.stopping.signal.addEventListener('abort', onStop, { once: true });
      call.on('error', (error) => {
        const failure = fromGrpcError(error, 'Session');
        const details: unknown = Reflect.get(error, 'details');
        const transportFailure = !reached && failure.code === 'UNAVAILABLE' ? (typeof details === 'string' ? details : error.message) : undefined;
        finish(error.message, FINAL_REFUSALS.has(failure.reason) ? failure : undefined, transportFailure);
      });
      call.on('end', () => finish('the coordinator ended the session'));
      call.on('data', (wire: CoordinatorMessage__Output) => {
        reached = true;
        watchdog.heard();
        let message: ReceivedCoordinatorTraffic;
        try {
          message = decodeCoordinatorMessage(wire);
        } catch (error) {
          this.log.warn({ err: error }, 'could not decode a coordinator message');
          this.refuseUndecodableRoundStart(call, wire, error);
          return;
        }
        try {
          if (message.kind === 'hello_reply') {
            heartbeatIntervalMs = message.reply.heartbeatIntervalMs;
            watchdog.watch(heartbeatIntervalMs * MISSED_HEARTBEATS);
          }
          this.onMessage(call, message, rounds, onConnected);
        } catch (error) {
          this.log.warn({ err: error }, 'could not handle a coordinator message');
        }
      });
      call.write(
        encodeParticipantMessage({
          kind: 'hello',
          hello: {
            protocolVersion: PROTOCOL_VERSION,
            fedgateVersion: PARTICIPANT_VERSION,
            capabilities: {
              device: this.options.device,
              onnxOpset: DEFAULT_OPSET,
              maxModelBytes: this.options.maxModelBytes,
              acceptedTaskHashes: this.options.policy.pinnedTaskHashes,
            },
          },
        }),
      );
    });
  }

  /**
   * A RoundStart whose RoundConfig does not decode (a threshold without majority, a bad layout) is refused
   * by its round id with the code of the check that failed, so the coordinator learns at once why this
   * site is not in the round instead of waiting for a stage deadline. Nothing is stored: the round was
   * never accepted.
   */
  private refuseUndecodableRoundStart(call: SessionCall, wire: CoordinatorMessage__Output, error: unknown): void {
    if (wire.payload !== 'roundStart' || wire.roundStart === null || wire.roundStart === undefined) return;
    const roundId = peekRoundId(wire.roundStart.roundConfig);
    if (roundId === undefined) return;
    const refusal = refusalFor(error instanceof FedgateError && error.cause instanceof SecAggError ? error.cause : error);
    this.log.warn({ round: toHex(roundId), reason: refusal.reason }, 'refusing a RoundStart whose RoundConfig this site cannot accept');
    this.send(call, { kind: 'refusal', roundId, ...refusal });
  }

  private onMessage(call: SessionCall, message: ReceivedCoordinatorTraffic, rounds: Map<string, RoundSession>, onConnected: () => void): void {
    switch (message.kind) {
      case 'hello_reply': {
        const { reply } = message;
        onConnected();
        this.options.metrics?.connection(true);
        this.log.info({ federation: reply.federationId, coordinatorVersion: reply.fedgateVersion }, 'connected to the coordinator');
        this.prepareAtConnect();
        if (this.options.policy.federationId !== undefined && reply.federationId !== this.options.policy.federationId) {
          this.log.error(
            { federation: reply.federationId, pinned: this.options.policy.federationId },
            'this coordinator serves another federation than the one site.yaml pins (federation_id): the site will refuse every round it offers; check the coordinator address',
          );
        }
        return;
      }
      case 'heartbeat':
        return;
      case 'round_start': {
        // Decoded once, by the codec: the session works on this RoundConfig for the whole round.
        const { config } = message;
        const roundKey = toHex(config.roundId);
        // A repeated round id never replaces the session of the round it names.
        if (rounds.get(roundKey)?.state === 'running') {
          this.log.warn({ round: roundKey }, 'a RoundStart repeats the id of a round this site is running; ignoring it');
          return;
        }
        this.options.metrics?.roundJoined();
        const session = new RoundSession(config.roundId, {
          logger: this.log,
          clientOptions: () => ({ siteId: this.options.siteId, signingKey: this.options.signingKey, policy: this.options.policy, trust: this.options.trust }),
          guard: this.guard,
          ...(this.options.deadlineGraceMs === undefined ? {} : { deadlineGraceMs: this.options.deadlineGraceMs }),
          send: (out) => this.send(call, out),
          upload: async (masked) => {
            const upload = encodeMaskedInputUpload(masked);
            await uploadMaskedInput(this.client, upload.target, upload.payload, upload.options);
            this.options.metrics?.uploaded(upload.payload.length);
          },
          train: async (roundConfig, signal) => {
            const context = await this.context(roundConfig.taskHash);
            const { training } = context;
            // Record before release: charged (and on disk) before anything is computed from the data.
            // Participant-level DP is charged from this RoundConfig's distributedDp (checked again there).
            await this.options.privacy?.chargeRound(roundConfig.taskHash, roundConfig.roundId, privacyFacts(context), roundConfig);
            const started = performance.now();
            const trained = await training.train(roundConfig, signal);
            this.options.metrics?.trained({ seconds: (performance.now() - started) / 1000, trainingExamples: trained.trainingExamples, evalLossSum: trained.evalLossSum, evalExamples: trained.evalExamples });
            this.options.onLocalUpdate?.({ roundId: roundKey, delta: trained.delta, trainingExamples: trained.trainingExamples });
            return trained;
          },
          evaluate: async (roundConfig) => (await this.context(roundConfig.taskHash)).training.evaluateModel(roundConfig),
          onEvaluated: () => {
            // No commit follows an evaluation-only round: it is over for this site once its shares left
            // (the session stays until the coordinator's RoundAbort, which zeroises what it holds).
            this.roundEnded({ roundId: roundKey, outcome: 'evaluated' });
          },
          computeCommit: async (roundConfig, request) => (await this.context(roundConfig.taskHash)).training.computeCommit(roundConfig, request),
          onCommitted: (_config, computation) => {
            this.latestModel = computation.newModel;
          },
          checkRound: async (roundConfig) => {
            // Invalid local data: the site sits the round out with the code alone (SITE_DATA_INVALID).
            this.data.assertUsable();
            await this.chain.checkRound(roundConfig);
            // The round's distributed DP must be exactly what the task asks for (or absent when it asks for
            // none), checked first so that the budget below is checked against a round this site accepts.
            checkRoundDistributedDp(roundConfig, await this.taskPrivacy.participantLevel(roundConfig.taskHash), this.options.siteId);
            // The metric slots (how many, what each holds) must be the ones the task's loss implies: a
            // coordinator can neither drop them nor have this site's sums read as another kind's.
            checkRoundMetricSlots(roundConfig, await this.taskPrivacy.evaluationShape(roundConfig.taskHash), this.options.siteId);
            // A site that requires DP checks the task and its budget (record-level and participant-level
            // curves) before any key is made, which waits for the task to be prepared; any other site keeps
            // preparing it during the key exchange and accounts a DP round when it charges it, before training.
            const { privacy } = this.options;
            if (privacy?.requiresDp === true) privacy.checkRound(privacyFacts(await this.context(roundConfig.taskHash)), roundConfig.purpose !== 'evaluate', roundConfig);
          },
          onUnmasked: (round) => this.chain.unmasked(round),
          onCommitSigned: (roundId, hashes) => this.chain.commitSigned(roundId, hashes),
        });
        rounds.set(roundKey, session);
        // Prepare the task while the key exchange runs (download, plan, worker, data) when it is pinned.
        if (this.options.policy.pinnedTaskHashes.some((hash) => toHex(hash) === toHex(config.taskHash))) {
          this.context(config.taskHash).catch((error: unknown) => this.log.error({ err: error }, 'could not prepare the task'));
        }
        session.start(config);
        return;
      }
      case 'abort': {
        const roundKey = toHex(message.roundId);
        const session = rounds.get(roundKey);
        if (session === undefined) return;
        session.stop(message.reason);
        // An evaluation-only round this site finished was reported as evaluated already.
        if (!session.evaluated) this.roundEnded({ roundId: roundKey, outcome: 'aborted', reason: message.reason });
        rounds.delete(roundKey);
        return;
      }
      case 'committed': {
        const roundKey = toHex(message.roundId);
        const session = rounds.get(roundKey);
        rounds.delete(roundKey);
        session?.endAnnounced();
        // The record moves the chain head only if it is a valid link; model r+1 is kept only then.
        const { roundId, newModelHash } = message;
        void this.chain.committed(message.commitRecord).then(async (valid) => {
          if (session === undefined) {
            this.keepLateModel(valid, roundId, newModelHash);
            return;
          }
          if (!valid) {
            // Tell the coordinator (and its operator) with the code alone; the failing check is in the log.
            this.send(call, { kind: 'refusal', roundId, reason: SITE_DEFENCE_REASONS.COMMIT_RECORD_INVALID, message: refusalText(SITE_DEFENCE_REASONS.COMMIT_RECORD_INVALID) });
            session.stop('COMMIT_RECORD_INVALID');
            this.roundEnded({ roundId: roundKey, outcome: 'left', reason: 'COMMIT_RECORD_INVALID' });
            return;
          }
          session.committed(newModelHash);
          await session.settled();
          this.roundEnded({ roundId: roundKey, outcome: 'committed' });
        });
        return;
      }
      case 'stage': {
        const stage = message.message;
        const session = rounds.get(toHex(stage.roundId));
        if (session === undefined) {
          if (stage.stage === 'commit_request') {
            this.lateCommit(call, stage);
            return;
          }
          this.log.debug({ stage: stage.stage }, 'message for a round this site is not in; ignoring it');
          return;
        }
        session.handle(stage);
      }
    }
  }

  /** A commit request for a round whose session this site lost: sign it from the kept context, or refuse. */
  private lateCommit(call: SessionCall, request: CommitRequestMessage): void {
    this.chain.lateCommit(request).then(
      (signature) => {
        if (signature === undefined) this.log.debug('commit request for a round this site did not unmask in; ignoring it');
        else this.send(call, { kind: 'stage', message: signature });
      },
      (error: unknown) => {
        // Reason codes only: the details stay in this site's log.
        const refusal = refusalFor(error);
        this.log.warn({ reason: refusal.reason, detail: error instanceof Error ? error.message : String(error) }, 'refusing to sign the commit of the round this site unmasked in');
        this.send(call, { kind: 'refusal', roundId: request.roundId, ...refusal });
      },
    );
  }

  /** A committed round this site signed outside a live session: keep its model r+1 once the record verified. */
  private keepLateModel(valid: boolean, roundId: Uint8Array, newModelHash: Uint8Array): void {
    const computation = this.chain.lateComputation(roundId);
    if (!valid || computation === undefined || !bytesEqual(computation.hashes.newModelHash, newModelHash)) return;
    this.latestModel = computation.newModel;
    this.roundEnded({ roundId: toHex(roundId), outcome: 'committed' });
  }

  private send(call: SessionCall, message: SiteSessionMessage): void {
    if (message.kind === 'refusal') this.options.metrics?.refusalSent(message.reason);
    call.write(encodeParticipantMessage(message));
  }

  private roundEnded(event: RoundEndEvent): void {
    this.options.metrics?.roundEnded(event.outcome, event.reason);
    this.options.onRoundEnd?.(event);
  }

  /**
   * Prepares every pinned task the coordinator holds as soon as the site is connected (the coordinator
   * accepted the Hello, so it runs one of them): the task-dependent check of the data happens now, not
   * when a round is waiting. Data that does not fit the task stops a daemon that is starting up; later
   * it makes the site sit rounds out (SITE_DATA_INVALID) until its files change.
   */
  private prepareAtConnect(): void {
    for (const hash of this.options.policy.pinnedTaskHashes) {
      this.context(hash).then(
        (context) => {
          this.startingUp = false;
          this.checkTaskPrivacy(context);
        },
        (error: unknown) => {
          if (!isDataError(error)) {
            this.log.debug({ task: toHex(hash), err: error }, 'a pinned task could not be prepared now (the coordinator may run another one)');
            return;
          }
          if (this.startingUp) {
            this.fatal = new SiteDataInvalidError(error, 'task');
            this.log.error({ task: toHex(hash), detail: (error as Error).message }, "the site's data does not fit the federation's task; stopping");
            this.stopping.abort();
            return;
          }
          this.data.markInvalid(error);
          this.log.error({ task: toHex(hash), detail: (error as Error).message }, "the site's data does not fit the federation's task: this site sits rounds out (SITE_DATA_INVALID) until its files are fixed");
        },
      );
    }
  }

  /**
   * Says in the log, when a pinned task is prepared, whether this site's privacy policy accepts it and
   * what one round of it costs, so an operator learns of a task the site will refuse before its rounds do.
   */
  private checkTaskPrivacy(context: TaskContext): void {
    const privacy = this.options.privacy;
    if (privacy === undefined) return;
    try {
      const facts = privacyFacts(context);
      const account = privacy.account(facts);
      if (facts.task.privacy?.participantLevel !== undefined) {
        this.log.info({ task: toHex(context.hash), delta: privacy.delta, epsilonSpent: privacy.epsilonSpent() }, "participant-level DP task: each round's curve (from its RoundConfig, at t survivors) is charged to the privacy budget before training");
      }
      if (account === undefined) return;
      this.log.info({ task: toHex(context.hash), epsilonPerRound: account.epsilon, delta: privacy.delta, epsilonSpent: privacy.epsilonSpent(), ...(privacy.policy.budget === undefined ? {} : { budgetEpsilon: privacy.policy.budget.epsilon }) }, 'record-level DP task: each round is charged to the privacy budget before training');
      const records = context.training.trainingExamples;
      if (privacy.policy.budget !== undefined && privacy.policy.budget.delta * records >= 1) {
        // delta is the chance the guarantee fails; at 1/N or more, releasing one whole record at random fits it.
        this.log.warn({ delta: privacy.policy.budget.delta, trainingExamples: records }, 'site.yaml privacy.delta is not below 1 / (training examples): a mechanism that publishes one record at random would meet this budget; choose a smaller delta');
      }
    } catch (error) {
      this.log.error({ task: toHex(context.hash), reason: error instanceof FedgateError ? error.reason : undefined, detail: (error as Error).message }, "this site's privacy policy refuses the task: it will refuse every round of it");
    }
  }

  /** The data files changed and passed the structure check: every prepared task reloads them (site-data-check.ts). */
  private async reloadData(): Promise<void> {
    for (const pending of this.contexts.values()) {
      const context = await pending.catch(() => undefined);
      if (context === undefined) continue;
      const data = await loadSiteData(this.options.data, context.task, { idRanges: context.plan.idRanges });
      context.training.useData(data);
      this.log.info({ task: toHex(context.hash), trainExamples: data.train.count, testExamples: data.test.count }, 'reloaded the data files for the task');
    }
  }

  private context(taskHash: Uint8Array): Promise<TaskContext> {
    const key = toHex(taskHash);
    let context = this.contexts.get(key);
    if (context === undefined) {
      context = buildTaskContext(taskHash, {
        randomness: this.options.state,
        blobs: { fetch: (hash) => this.fetchBlob(hash) },
        data: this.options.data,
        device: this.options.device,
        intraOpThreads: this.options.intraOpThreads,
        logger: this.log,
        ...(this.options.onProgress === undefined ? {} : { onProgress: this.options.onProgress }),
      });
      context.catch((error: unknown) => {
        this.contexts.delete(key);
        // Data that does not fit the task: sit rounds out until the files change (at start-up it stops the daemon instead).
        if (isDataError(error) && !this.startingUp) this.data.markInvalid(error);
      });
      this.contexts.set(key, context);
    }
    return context;
  }

  /** Downloads content-addressed bytes (hash-checked by the transfer), keeping the last few in memory. */
  private async fetchBlob(hash: Uint8Array): Promise<Uint8Array> {
    const key = toHex(hash);
    const cached = this.blobCache.get(key);
    if (cached !== undefined) return cached;
    const bytes = new Uint8Array(await untilAborted(downloadModel(this.client, Buffer.from(fromHex(key)), { maxBytes: this.options.maxModelBytes }), this.connection));
    this.options.metrics?.downloaded(bytes.byteLength);
    this.blobCache.set(key, bytes);
    while (this.blobCache.size > 8) this.blobCache.delete(this.blobCache.keys().next().value as string);
    return bytes;
  }
}

/** `work`, or a rejection with the signal's reason once `signal` aborts (the work itself is left to finish or fail). */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error as Error);
      },
    );
  });
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
}

/** What the site's privacy accounting needs of a prepared task (round/site-privacy.ts). */
function privacyFacts(context: TaskContext): TaskPrivacyFacts {
  return { task: context.task, dimension: context.plan.initialParameters.length, trainingExamples: context.training.trainingExamples };
}
