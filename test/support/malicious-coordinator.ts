/**
 * A malicious coordinator for tests: a real Federation gRPC server on 127.0.0.1:0 with real mutual TLS
 * (the test PKI's coordinator certificate) whose every message is scripted by the test. It drives real
 * participant daemons through real SecAgg+ rounds with the real SecAggServer state machine
 * (scripted-round.ts), so what it unmasks are real aggregates of real training, and it deviates wherever
 * an attack needs: it replays RoundStart bytes, names counters, models and optimiser states of its
 * choosing, leaves out sites, stops sending, and announces commits it makes up.
 *
 * It records what a lying coordinator would get to see: every refusal a site sends (reason and text),
 * every message a site sends, and every aggregate it unmasked (for subtraction.ts).
 */
import { sendCommitRecords } from '../../proto/commit-records.js';
import { randomBytes, X509Certificate } from 'node:crypto';
import type { ServerDuplexStream, ServerReadableStream, ServerWritableStream, sendUnaryData } from '@grpc/grpc-js';
import { toHex } from '../../crypto/bytes.js';
import type { TrustAnchor } from '../../crypto/certificate.js';
import { sha256 } from '../../crypto/hash.js';
import { createRoundConfig, defaultThreshold, makeRoundId, type RoundConfig, type StageDeadlines } from '../../crypto/secagg/config.js';
import type { CoordinatorToSite } from '../../crypto/secagg/round-envelope.js';
import { extraMetricSlotCount, type RoundMetricSlots } from '../../crypto/secagg/metric-slots.js';
import { evaluationShapeOf } from '../../model/task.js';
import { buildTrainingPlan, canonicalTaskBytes, taskHash, type TaskDocument, type TrainingPlan } from '../../model/index.js';
import { encodeServerOptimizerState, initialServerOptimizerState, type ServerOptimizerSpec } from '../../model/server-optimizer.js';
import { encodeWeights } from '../../model/weight-codec.js';
import {
  AccessControl,
  FEDERATION_ACCESS_POLICY,
  FedgateError,
  PROTOCOL_VERSION,
  bindServer,
  createFedgateServer,
  decodeMaskedInputUpload,
  decodeParticipantMessage,
  decodeSiteHello,
  encodeCoordinatorMessage,
  failStream,
  federationProtocol,
  peerIdentity,
  receiveUpload,
  sendModel,
  serverCredentials,
  shutdownServer,
  toServiceError,
  uploadAck,
  type CoordinatorMessage,
  type DownloadModelRequest__Output,
  type FederationHandlers,
  type ModelChunk,
  type ParticipantMessage__Output,
  type UploadAck,
  type UploadMaskedInputRequest__Output,
} from '../../proto/index.js';
import type { TestPki } from './pki.js';
import { ScriptedRound, type RoundHost, type ScriptedRoundOptions } from './scripted-round.js';
import type { ObtainedAggregate } from './subtraction.js';

/** The server optimiser the harness's chain starts from (what the real coordinator's tests use). */
export const HARNESS_SERVER_OPTIMIZER: ServerOptimizerSpec = { kind: 'fedavg', learningRate: 1 };

/**
 * Stage deadlines of the harness's rounds unless a test names its own. A site that enforces them
 * (DESIGN.md "What a site checks for itself") must never leave an honest round of this harness, even on
 * a loaded two-core machine; the harness waits at most this long for a stage whose sites stay silent.
 */
export const HARNESS_DEADLINES: StageDeadlines = {
  advertiseKeysMs: 15_000,
  shareKeysMs: 15_000,
  maskedInputMs: 30_000,
  consistencyCheckMs: 15_000,
  unmaskMs: 15_000,
  commitMs: 15_000,
};

export interface MaliciousCoordinatorOptions {
  readonly pki: TestPki;
  readonly task: TaskDocument;
  readonly federationId: string;
  /** How often the coordinator sends heartbeats (a daemon gives up after three silent intervals). @default 2000 */
  readonly heartbeatIntervalMs?: number;
}

/** A RoundRefusal as a site sent it. */
export interface RecordedRefusal {
  readonly siteId: string;
  /** Hex round id the refusal names. */
  readonly roundId: string;
  readonly reason: string;
  /** The refusal's text, exactly as it reached the coordinator. */
  readonly message: string;
}

/** A stage message or upload a site sent, and whether the round took it. */
export interface ReceivedStage {
  readonly siteId: string;
  readonly roundId: string;
  readonly stage: string;
  readonly accepted: boolean;
  readonly reason?: string;
}

/** What a test chooses about a round; everything else is what an honest coordinator would send. */
export interface RoundInput {
  readonly counter: bigint | number;
  readonly participants: readonly string[];
  /** @default the task's initial model */
  readonly modelHash?: Uint8Array;
  /** @default the initial state of HARNESS_SERVER_OPTIMIZER */
  readonly optimizerStateHash?: Uint8Array;
  /** k. @default |U| - 1 (the complete graph) */
  readonly neighbourDegree?: number;
  /** t. @default defaultThreshold(k) */
  readonly reconstructionThreshold?: number;
  readonly deadlines?: Partial<StageDeadlines>;
  /**
   * RoundConfig.metricSlots. @default what the task's loss implies (none for class-index targets; the
   * label counts, or the regression sums with Y_max = R_max = 1000); null: leave the field out whatever
   * the task says.
   */
  readonly metricSlots?: RoundMetricSlots | null;
}

/** The layout every round of the harness announces: c = 1, L_max = 50, E_max = 1000, W = 2000. */
const CLIP_BOUND = 1;
const MAX_LOSS_PER_EXAMPLE = 50;
const MAX_EVAL_EXAMPLES = 1000;
const MAX_WEIGHT = 2000;

interface AttachedSite {
  readonly call: ServerDuplexStream<ParticipantMessage__Output, CoordinatorMessage>;
  readonly certificate: Uint8Array;
}

export class MaliciousCoordinator implements RoundHost {
  readonly refusals: RecordedRefusal[] = [];
  readonly received: ReceivedStage[] = [];
  readonly aggregates: ObtainedAggregate[] = [];
  /** Every DownloadModel request: which site asked for which blob (hex SHA-256), in order. */
  readonly downloads: { readonly siteId: string; readonly hash: string }[] = [];
  /** The DownloadModel requests answered in full, in the order they were. */
  readonly served: { readonly siteId: string; readonly hash: string }[] = [];
  /**
   * Downloads of the blobs this returns true for are never answered (nor failed): the stream stays open
   * until the harness closes, as over a connection that died silently. @default none
   */
  holdDownload: (hash: string) => boolean = () => false;
  /** While true, a Hello is taken in silence: no HelloReply, no heartbeats, the stream left open. */
  silentHello = false;
  /** Hellos received, answered or not. */
  hellos = 0;
  readonly plan: TrainingPlan;
  readonly taskHash: Uint8Array;
  readonly initialModelHash: Uint8Array;
  readonly initialOptimizerStateHash: Uint8Array;
  readonly trust: TrustAnchor;
  private readonly blobs = new Map<string, Uint8Array>();
  private readonly sites = new Map<string, AttachedSite>();
  private readonly rounds = new Map<string, ScriptedRound>();
  private readonly listeners = new Set<() => void>();
  private readonly heartbeats = new Set<NodeJS.Timeout>();
  private server: ReturnType<typeof createFedgateServer> | undefined;
  private port = 0;

  private constructor(readonly options: MaliciousCoordinatorOptions) {
    this.plan = buildTrainingPlan(options.task);
    this.taskHash = this.publish(canonicalTaskBytes(options.task));
    if (toHex(this.taskHash) !== taskHash(options.task)) throw new Error('canonical task bytes do not hash to the task hash');
    this.initialModelHash = this.publishModel(this.plan.initialParameters);
    this.initialOptimizerStateHash = this.publish(encodeServerOptimizerState(HARNESS_SERVER_OPTIMIZER, initialServerOptimizerState(HARNESS_SERVER_OPTIMIZER, this.plan.initialParameters.length)));
    this.trust = { caCertificate: new X509Certificate(options.pki.ca.certificatePem), revokedSerials: new Set() };
  }

  static async start(options: MaliciousCoordinatorOptions): Promise<MaliciousCoordinator> {
    const coordinator = new MaliciousCoordinator(options);
    await coordinator.listen();
    return coordinator;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  get federationId(): string {
    return this.options.federationId;
  }

  /** Serves `bytes` by their SHA-256 on DownloadModel (models, optimiser states, aggregates, the task). */
  publish(bytes: Uint8Array): Uint8Array {
    const hash = sha256(bytes);
    this.blobs.set(toHex(hash), new Uint8Array(bytes));
    return hash;
  }

  publishModel(values: Float32Array): Uint8Array {
    return this.publish(encodeWeights(this.plan, values));
  }

  blob(hash: Uint8Array): Uint8Array {
    const bytes = this.blobs.get(toHex(hash));
    if (bytes === undefined) throw new Error(`the harness published nothing with hash ${toHex(hash)}`);
    return bytes;
  }

  /** Site ids whose Session is open (Hello accepted). */
  connected(): string[] {
    return [...this.sites.keys()].sort();
  }

  /** The certificate (DER) the site's current TLS session presented. */
  certificateOf(siteId: string): Uint8Array {
    const site = this.sites.get(siteId);
    if (site === undefined) throw new Error(`${siteId} is not connected`);
    return site.certificate;
  }

  async waitForSites(siteIds: readonly string[], timeoutMs: number): Promise<void> {
    await this.until(() => siteIds.every((siteId) => this.sites.has(siteId)), timeoutMs, () => `sites ${siteIds.join(', ')} to connect (connected: ${this.connected().join(', ') || 'none'})`);
  }

  /** A RoundConfig as an honest coordinator would make it, with what the test chose. */
  roundConfig(input: RoundInput): RoundConfig {
    const k = input.neighbourDegree ?? input.participants.length - 1;
    return createRoundConfig({
      federationId: this.options.federationId,
      roundId: makeRoundId(BigInt(input.counter), new Uint8Array(randomBytes(16))),
      participants: input.participants,
      taskHash: this.taskHash,
      modelHash: input.modelHash ?? this.initialModelHash,
      optimizerStateHash: input.optimizerStateHash ?? this.initialOptimizerStateHash,
      hyperParameters: { local_epochs: this.options.task.training.epochs, local_batch_size: this.options.task.training.batchSize, local_learning_rate: this.options.task.optimizer.learningRate },
      reconstructionThreshold: input.reconstructionThreshold ?? defaultThreshold(k),
      neighbourDegree: k,
      layout: { parameterSegments: [{ length: this.plan.initialParameters.length, bound: CLIP_BOUND }], maxLossPerExample: MAX_LOSS_PER_EXAMPLE, maxEvalExamples: MAX_EVAL_EXAMPLES },
      maxWeight: MAX_WEIGHT,
      deadlines: { ...HARNESS_DEADLINES, ...input.deadlines },
      ...metricSlotsField(input.metricSlots === undefined ? honestMetricSlots(this.options.task) : (input.metricSlots ?? undefined)),
    });
  }

  /**
   * A round over `config` driven by a fresh SecAggServer. Stage messages and uploads naming its round id
   * go to it from now on (a replayed round id takes over from the earlier round with that id).
   */
  round(config: RoundConfig, options: Partial<ScriptedRoundOptions> = {}): ScriptedRound {
    const round = new ScriptedRound(this, config, options);
    this.rounds.set(round.label, round);
    return round;
  }

  /** Sends `message` on the Session of `siteId`; false when the site is not connected. */
  send(siteId: string, message: CoordinatorToSite): boolean {
    const site = this.sites.get(siteId);
    if (site === undefined) return false;
    site.call.write(encodeCoordinatorMessage(message));
    return true;
  }

  /** Ends the Session of `siteId` from the coordinator's side (status OK), as a coordinator that drops it; false when not connected. */
  drop(siteId: string): boolean {
    const site = this.sites.get(siteId);
    if (site === undefined) return false;
    site.call.end();
    return true;
  }

  /** Sends RoundStart with exactly `roundConfigBytes` (a replay sends the bytes of an earlier round). */
  sendRoundStart(siteIds: readonly string[], roundConfigBytes: Uint8Array, roundId: Uint8Array): string[] {
    return siteIds.filter((siteId) => this.send(siteId, { kind: 'round_start', roundId, roundConfig: roundConfigBytes }));
  }

  /** Refusals that name round `roundId`. */
  refusalsOf(roundId: Uint8Array): RecordedRefusal[] {
    const label = toHex(roundId);
    return this.refusals.filter((refusal) => refusal.roundId === label);
  }

  /** Resolves with the refusals of `siteIds` for round `roundId` once each of them sent one, or rejects after `timeoutMs`. */
  async waitForRefusals(roundId: Uint8Array, siteIds: readonly string[], timeoutMs: number): Promise<RecordedRefusal[]> {
    const of = (): RecordedRefusal[] => this.refusalsOf(roundId).filter((refusal) => siteIds.includes(refusal.siteId));
    await this.until(
      () => siteIds.every((siteId) => of().some((refusal) => refusal.siteId === siteId)),
      timeoutMs,
      () => `refusals of round ${toHex(roundId).slice(0, 16)}... from ${siteIds.join(', ')} (got ${JSON.stringify(of().map((refusal) => [refusal.siteId, refusal.reason]))})`,
    ).catch(() => undefined);
    return of();
  }

  /** Stores what a round unmasked (called by ScriptedRound). */
  recordAggregate(aggregate: ObtainedAggregate): void {
    this.aggregates.push(aggregate);
  }

  /** Wakes whoever waits on a condition of the coordinator or a round. */
  notify(): void {
    for (const listener of [...this.listeners]) listener();
  }

  /** Resolves once `condition` holds (re-checked on every site message), or rejects after `timeoutMs`. */
  async until(condition: () => boolean, timeoutMs: number, what: () => string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!condition()) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what()}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(wake, Math.min(remaining, 250));
        this.listeners.add(wake);
        const listeners = this.listeners;
        function wake(): void {
          clearTimeout(timer);
          listeners.delete(wake);
          resolve();
        }
      });
    }
  }

  async close(): Promise<void> {
    for (const timer of this.heartbeats) clearInterval(timer);
    for (const site of this.sites.values()) site.call.end();
    this.sites.clear();
    if (this.server !== undefined) await shutdownServer(this.server, 1000);
  }

  private async listen(): Promise<void> {
    const server = createFedgateServer({ access: new AccessControl({ policy: FEDERATION_ACCESS_POLICY }) });
    const handlers: FederationHandlers = {
      Session: (call) => this.session(call),
      DownloadModel: (call) => void this.download(call),
      UploadMaskedInput: (call, callback) => void this.upload(call, callback),
      // No ledger: every attack starts from the task's initial model, so no site needs to catch up.
      GetCommitRecords: (call) => void sendCommitRecords(call, (async function* () {})()),
    };
    server.addService(federationProtocol().federationService, handlers);
    const { pki } = this.options;
    this.port = await bindServer(server, '127.0.0.1:0', serverCredentials({ caPem: pki.ca.certificatePem, certPem: pki.coordinator.certificatePem, keyPem: pki.coordinator.privateKeyPem }));
    this.server = server;
  }

  private session(call: ServerDuplexStream<ParticipantMessage__Output, CoordinatorMessage>): void {
    const siteId = peerIdentity(call).siteId;
    const certificate = new Uint8Array(call.getAuthContext()?.sslPeerCertificate?.raw ?? []);
    let heartbeat: NodeJS.Timeout | undefined;
    const detach = (): void => {
      if (heartbeat !== undefined) {
        clearInterval(heartbeat);
        this.heartbeats.delete(heartbeat);
      }
      if (this.sites.get(siteId)?.call !== call) return;
      this.sites.delete(siteId);
      for (const round of this.rounds.values()) round.siteDisconnected(siteId);
      this.notify();
    };
    call.on('error', detach);
    call.on('cancelled', detach);
    call.on('end', () => {
      detach();
      call.end();
    });
    call.on('data', (wire: ParticipantMessage__Output) => {
      if (wire.payload === 'hello') {
        try {
          decodeSiteHello(wire);
        } catch (error) {
          failStream(call, error);
          return;
        }
        this.hellos += 1;
        this.notify();
        if (this.silentHello) return;
        heartbeat = this.attach(siteId, call, certificate);
        return;
      }
      // Like the real coordinator, a malformed or refused round message does not end the session: it is
      // recorded (deliver) and the site simply drops out of that stage.
      try {
        const message = decodeParticipantMessage(wire);
        if (message.kind === 'refusal') {
          this.refusals.push({ siteId, roundId: toHex(message.roundId), reason: message.reason, message: message.message });
          this.rounds.get(toHex(message.roundId))?.siteRefused(siteId);
        } else if (message.kind === 'stage') {
          this.deliver(siteId, message.message.roundId, message.message.stage, (round) => round.receive(siteId, message.message));
        }
      } catch {
        // Recorded in `received` where it concerns a round.
      }
      this.notify();
    });
  }

  /** Accepts a Hello: the site's session is current from now on, with heartbeats; returns their timer. */
  private attach(siteId: string, call: ServerDuplexStream<ParticipantMessage__Output, CoordinatorMessage>, certificate: Uint8Array): NodeJS.Timeout {
    this.sites.set(siteId, { call, certificate });
    const intervalMs = this.options.heartbeatIntervalMs ?? 2000;
    call.write(
      encodeCoordinatorMessage({
        kind: 'hello_reply',
        reply: { protocolVersion: PROTOCOL_VERSION, fedgateVersion: 'malicious-harness', federationId: this.options.federationId, siteId, heartbeatIntervalMs: intervalMs },
      }),
    );
    let sequence = 0;
    const heartbeat = setInterval(() => call.write(encodeCoordinatorMessage({ kind: 'heartbeat', heartbeat: { sequence: ++sequence, sentAtUnixMs: Date.now() } })), intervalMs);
    this.heartbeats.add(heartbeat);
    this.notify();
    return heartbeat;
  }

  /** Hands a site's stage message to its round and records the outcome. */
  private deliver(siteId: string, roundId: Uint8Array, stage: string, handle: (round: ScriptedRound) => void): void {
    const label = toHex(roundId);
    const round = this.rounds.get(label);
    try {
      if (round === undefined) throw new FedgateError('FAILED_PRECONDITION', `no round ${label} is open`, { reason: 'NO_OPEN_ROUND' });
      handle(round);
      this.received.push({ siteId, roundId: label, stage, accepted: true });
    } catch (error) {
      const reason = (error as { reason?: unknown }).reason;
      this.received.push({ siteId, roundId: label, stage, accepted: false, reason: typeof reason === 'string' ? reason : 'UNKNOWN' });
      throw error;
    } finally {
      this.notify();
    }
  }

  private async download(call: ServerWritableStream<DownloadModelRequest__Output, ModelChunk>): Promise<void> {
    call.on('error', () => undefined);
    try {
      const hash = Buffer.from(call.request.modelHash ?? []);
      const request = { siteId: peerIdentity(call).siteId, hash: hash.toString('hex') };
      this.downloads.push(request);
      this.notify();
      if (this.holdDownload(request.hash)) return;
      const bytes = this.blobs.get(request.hash);
      if (bytes === undefined) throw new FedgateError('NOT_FOUND', `the harness holds no blob ${request.hash}`, { reason: 'NO_SUCH_BLOB' });
      await sendModel(call, bytes, { modelSha256: hash });
      this.served.push(request);
      this.notify();
    } catch (error) {
      failStream(call, error);
    }
  }

  private async upload(call: ServerReadableStream<UploadMaskedInputRequest__Output, UploadAck>, callback: sendUnaryData<UploadAck>): Promise<void> {
    call.on('error', () => undefined);
    try {
      const siteId = peerIdentity(call).siteId;
      // d + 4 slots, and the task's extra metric slots (RoundConfig.metricSlots) when its loss has them.
      const expected = (this.plan.initialParameters.length + 4 + extraMetricSlotCount(honestMetricSlots(this.options.task))) * 4;
      const upload = await receiveUpload(call, { maxBytes: () => expected });
      const message = decodeMaskedInputUpload(upload, expected);
      this.deliver(siteId, message.roundId, message.stage, (round) => round.receive(siteId, message));
      callback(null, uploadAck(upload));
    } catch (error) {
      callback(toServiceError(error));
    }
  }
}

/** The metric slots an honest coordinator announces for `task` (coordinator/federation/federation.ts metricSlotsOf). */
export function honestMetricSlots(task: TaskDocument): RoundMetricSlots | undefined {
  const shape = evaluationShapeOf(task);
  if (shape.kind === 'class') return undefined;
  return shape.kind === 'multi_label' ? { kind: 'multi_label', outputs: shape.outputs } : { kind: 'regression', outputs: shape.outputs, maxAbsTarget: 1000, maxAbsError: 1000 };
}

function metricSlotsField(slots: RoundMetricSlots | undefined): { metricSlots?: RoundMetricSlots } {
  return slots === undefined ? {} : { metricSlots: slots };
}
