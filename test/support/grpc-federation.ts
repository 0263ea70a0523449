/**
 * A whole federation over real gRPC and mutual TLS on 127.0.0.1:0, in one process: the real coordinator
 * (startCoordinator: state directory, rounds, ledger, Federation service) and real participant daemons
 * (startParticipant: Session stream, SecAgg+, ONNX training in worker threads, chunked transfers), each
 * site with its own certificate from a throwaway CA and its own IID share of the shipped digits.
 *
 * What tests need to see and steer, without changing the code under test:
 * - every round event of the coordinator and every log line of both sides (pino into arrays);
 * - every message a site got through to the federation, accepted or refused, in arrival order (the
 *   Federation instance's `receive` is wrapped: the service edge calls it for each Session message and
 *   upload), with listeners so a test can stop a daemon right after one of its stages arrived;
 * - each site's own local update (ParticipantAppOptions.onLocalUpdate), to recompute FedAvg;
 * - a rewrite hook on what the coordinator sends to a site (the directory's `send`), to play a lying
 *   coordinator against a real daemon.
 * Each site has its own state_dir (siteStateDirectory), opened once and kept across daemon restarts;
 * a test restarts a site "from disk" by passing a freshly opened store to startSite.
 * A coordinator crash is played with its fault-injection option (`faultInjection`, the spec
 * FEDGATE_FAULT_INJECTION takes; coordinator/state/fault-injection.ts): at the named point the
 * coordinator goes silent at once - nothing more reaches a site or comes in from one, its federation loop
 * and server are stopped - as a killed process would; `restartCoordinator` then starts a new one on the
 * same state directory and port, and the daemons reconnect on their own.
 * close() stops every daemon, then the coordinator, then removes the state directories.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import pino, { type Logger } from 'pino';
import { toHex } from '../../crypto/bytes.js';
import type { SitePolicy } from '../../crypto/secagg/policy.js';
import type { StageDeadlines } from '../../crypto/secagg/config.js';
import type { IssuedCertificate } from '../../certs/index.js';
import type { RoundEvent } from '../../coordinator/federation/federation.js';
import type { CommitBody } from '../../crypto/secagg/commit-record-codec.js';
import type { CoordinatorToSite, SiteToCoordinator } from '../../coordinator/round/round-messages.js';
import { startCoordinator, type RunningCoordinator } from '../../coordinator/service/coordinator-app.js';
import { crashAtFaultPoint } from '../../coordinator/state/fault-injection.js';
import type { LedgerRecord } from '../../coordinator/state/ledger.js';
import { taskHash, type PinnedTaskDocument, type TaskDocument } from '../../model/task.js';
import { pinTask } from '../../model/task-pin.js';
import { startParticipant, type LocalUpdateEvent, type RunningParticipant } from '../../participant/daemon/participant-app.js';
import type { SiteDataSpec } from '../../participant/daemon/site-data.js';
import { SiteStateStore } from '../../participant/state/index.js';
import type { ClientDuplexStream } from '@grpc/grpc-js';
import { MIB } from '../../proto/chunking.js';
import { channelCredentials } from '../../proto/credentials.js';
import type { FedgateError } from '../../proto/errors.js';
import { DEFAULT_OPSET } from '../../model/graph/model.js';
import { clientChannelOptions } from '../../proto/channel-options.js';
import { federationProtocol, type FederationClient } from '../../proto/loader.js';
import { PROTOCOL_VERSION, type CoordinatorMessage__Output, type ParticipantMessage } from '../../proto/messages.js';
import { fromGrpcError } from '../../proto/status.js';
import { DIGITS_MLP_TASK } from './in-memory-federation.js';
import { createTempDirectory, type TempDirectory, type TestPki } from './pki.js';
import { NO_COLLUSION_MARGIN } from './protocol-margin.js';

export type LogEntry = Record<string, unknown> & { readonly msg?: string; readonly level?: number };

/** One message a site got through to the coordinator's federation, and what became of it. */
export interface SiteMessageRecord {
  readonly siteId: string;
  /** The stage of a round message ('advertise_keys' ... 'commit'), or 'refusal'. */
  readonly what: string;
  /** Hex round id the message names. */
  readonly roundId: string;
  readonly accepted: boolean;
  /** Why the coordinator refused it (the state machine's reason), or the site's reason for a refusal. */
  readonly reason?: string;
  readonly message?: string;
}

export interface GrpcSiteOptions {
  /** Overrides of the site's policy (site.yaml `policy`). */
  readonly policy?: Partial<SitePolicy>;
  /** Pin the federation's task (accepted_tasks). @default true */
  readonly pinTask?: boolean;
  /** Dial this host:port instead of the coordinator's (e.g. a proxy in between). */
  readonly dial?: string;
  /** The site's state store. @default the one opened on its state_dir when the federation started */
  readonly state?: SiteStateStore;
  /** ParticipantAppOptions.deadlineGraceMs. @default the daemon's default */
  readonly deadlineGraceMs?: number;
  /** The site's data (site.yaml `data`). @default its IID share of the shipped digits */
  readonly data?: SiteDataSpec;
  /** ParticipantAppOptions.dataCheckIntervalMs. @default the daemon's default */
  readonly dataCheckIntervalMs?: number;
}

export interface GrpcFederationOptions {
  /** The throwaway PKI of the test file; site certificates are issued from it (and cached per PKI). */
  readonly pki: TestPki;
  readonly sites: number;
  readonly rounds: number;
  readonly task?: TaskDocument;
  /** @default true */
  readonly secureAggregation?: boolean;
  readonly neighbourDegree?: number;
  readonly reconstructionThreshold?: number;
  /** @default the number of sites */
  readonly minParticipants?: number;
  /** c. @default 1 */
  readonly clipBound?: number;
  /** W. @default 2000 */
  readonly maxWeight?: number;
  /**
   * Every stage deadline but MaskedInput. Tests drop sites by stopping their daemons, which the
   * coordinator sees at once, so deadlines only matter on a slow machine. @default 10 s
   */
  readonly stageDeadlineMs?: number;
  /** MaskedInput (training included). @default 60 s */
  readonly maskedInputDeadlineMs?: number;
  readonly siteOptions?: (siteId: string, index: number) => GrpcSiteOptions;
  /** Start every site's daemon at once. @default true */
  readonly startSites?: boolean;
  readonly revokedSerials?: readonly string[];
  /**
   * The coordinator's heartbeat; a daemon gives its connection up after three silent intervals, so keep
   * it well above any event-loop stall of this shared process on a busy machine. @default 5 s
   */
  readonly heartbeatIntervalMs?: number;
  /** Run the evaluation-only round on the final model (CoordinatorOptions.finalEvaluation). @default false */
  readonly finalEvaluation?: boolean;
  /** The file a warm-start task starts from (CoordinatorOptions.initialModelFile). */
  readonly initialModelFile?: Uint8Array;
  /** When a failing site is left out of selection (participants.siteBackoff). @default the coordinator's */
  readonly siteBackoff?: { readonly afterFailures: number; readonly initialMs: number; readonly maxMs: number };
  /**
   * Crash the (first) coordinator at this fault point, written as FEDGATE_FAULT_INJECTION takes it
   * ("commit_pending:1"); see `crashed` and `restartCoordinator`. @default no crash
   */
  readonly faultInjection?: string;
}

/** Thrown by the fault hook to unwind the coordinator's code at the crash point. */
export class SimulatedCrash extends Error {
  constructor(point: string) {
    super(`the coordinator crashed (simulated) at fault point ${point}`);
    this.name = 'SimulatedCrash';
  }
}

export const FEDERATION_ID = 'grpc-test-federation';

/** A Session stream the test drives by hand: what a misbehaving or hostile participant can send. */
export interface RawSession {
  readonly call: ClientDuplexStream<ParticipantMessage, CoordinatorMessage__Output>;
  /** Every message the coordinator sent, in order. */
  readonly received: CoordinatorMessage__Output[];
  /** Resolves when the stream ends: with the status as a FedgateError, or undefined for OK. */
  readonly ended: Promise<FedgateError | undefined>;
  /** The first message (already received or still to come) with this payload. */
  next(payload: string, timeoutMs: number): Promise<CoordinatorMessage__Output>;
}

export interface TlsPair {
  readonly certificatePem: string;
  readonly privateKeyPem: string;
}

const certificateCache = new WeakMap<TestPki, Map<string, Promise<IssuedCertificate>>>();

/** A participant certificate for `siteId`, issued once per PKI (RSA key generation is the slow part). */
export function siteCertificate(pki: TestPki, siteId: string): Promise<IssuedCertificate> {
  let cache = certificateCache.get(pki);
  if (cache === undefined) {
    cache = new Map();
    certificateCache.set(pki, cache);
  }
  let issued = cache.get(siteId);
  if (issued === undefined) {
    issued = pki.participant(siteId);
    cache.set(siteId, issued);
  }
  return issued;
}

export function gridSiteIds(count: number): string[] {
  return Array.from({ length: count }, (_, index) => `site-${index + 1}`);
}

/** Each site's IID share of the shipped digits, with its own local test split. */
export function digitsShare(count: number, index: number): SiteDataSpec {
  return { format: 'digits', test_fraction: 0.2, split_seed: 1, partition: { kind: 'iid', count, index, seed: 3 } };
}

function capturingLogger(entries: LogEntry[]): Logger {
  return pino(
    { level: 'debug' },
    {
      write(line: string): void {
        entries.push(JSON.parse(line) as LogEntry);
      },
    },
  );
}

export class GrpcFederation {
  readonly events: RoundEvent[] = [];
  readonly coordinatorLog: LogEntry[] = [];
  readonly siteLog: LogEntry[] = [];
  readonly received: SiteMessageRecord[] = [];
  readonly localUpdates = new Map<string, LocalUpdateEvent[]>();
  /** Rewrites (or drops, with undefined) what the coordinator sends to a site. */
  rewriteToSite: ((siteId: string, message: CoordinatorToSite) => CoordinatorToSite | undefined) | undefined;
  private readonly daemons = new Map<string, RunningParticipant>();
  private readonly clients: FederationClient[] = [];
  private readonly messageListeners = new Set<(record: SiteMessageRecord) => void>();
  private readonly eventListeners = new Set<() => void>();
  private readonly caPem: string;
  private readonly taskHashHex: string;
  /** The task as the coordinator runs it: pinned (initial model hash and server optimiser filled in). */
  readonly task: PinnedTaskDocument;
  private coordinatorValue: RunningCoordinator | undefined;
  /** Coordinators that crashed: everything they send or receive is dropped. */
  private readonly silenced = new WeakSet<RunningCoordinator>();
  private port = 0;
  private crash: { readonly happened: Promise<void>; readonly signal: () => void; stopped?: Promise<void> };

  private constructor(
    private readonly options: GrpcFederationOptions,
    readonly siteIds: readonly string[],
    private readonly state: TempDirectory,
    private readonly certificates: ReadonlyMap<string, IssuedCertificate>,
    private readonly sitesState: TempDirectory,
    private readonly siteStates: ReadonlyMap<string, SiteStateStore>,
  ) {
    this.caPem = options.pki.ca.certificatePem;
    this.task = pinTask(options.task ?? DIGITS_MLP_TASK);
    this.taskHashHex = taskHash(this.task);
    let signal = (): void => undefined;
    const happened = new Promise<void>((resolve) => (signal = resolve));
    this.crash = { happened, signal };
  }

  static async start(options: GrpcFederationOptions): Promise<GrpcFederation> {
    const siteIds = gridSiteIds(options.sites);
    const issued = await Promise.all(siteIds.map((siteId) => siteCertificate(options.pki, siteId)));
    const state = await createTempDirectory('fedgate-grpc-');
    const sitesState = await createTempDirectory('fedgate-grpc-sites-');
    const stores = await Promise.all(siteIds.map((siteId) => SiteStateStore.open(join(sitesState.path, siteId))));
    const harness = new GrpcFederation(
      options,
      siteIds,
      state,
      new Map(siteIds.map((siteId, index) => [siteId, issued[index] as IssuedCertificate])),
      sitesState,
      new Map(siteIds.map((siteId, index) => [siteId, stores[index] as SiteStateStore])),
    );
    try {
      await harness.startCoordinator(options.faultInjection);
      if (options.startSites !== false) for (const siteId of siteIds) harness.startSite(siteId);
    } catch (error) {
      await harness.close();
      throw error;
    }
    return harness;
  }

  get coordinator(): RunningCoordinator {
    if (this.coordinatorValue === undefined) throw new Error('the coordinator is not running');
    return this.coordinatorValue;
  }

  get address(): string {
    return `127.0.0.1:${this.coordinator.port}`;
  }

  get stateDirectory(): string {
    return this.state.path;
  }

  get taskHash(): string {
    return this.taskHashHex;
  }

  /** Resolves when the coordinator crashed at `faultInjection`'s point. */
  crashed(timeoutMs: number): Promise<void> {
    return Promise.race([
      this.crash.happened,
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`the coordinator did not reach fault point ${this.options.faultInjection ?? '(none)'} within ${timeoutMs} ms; events: ${this.describeEvents()}`)), timeoutMs).unref()),
    ]);
  }

  /**
   * After a crash: waits until the crashed coordinator is down (a coordinator started since is stopped),
   * then starts a new one (no fault injection) on the same state directory and port. Rejects with the
   * start-up error (a damaged state directory).
   */
  async restartCoordinator(): Promise<RunningCoordinator> {
    if (this.crash.stopped === undefined) throw new Error('the coordinator has not crashed');
    await this.crash.stopped;
    const running = this.coordinatorValue;
    this.coordinatorValue = undefined;
    if (running !== undefined && !this.silenced.has(running)) await running.stop();
    await this.startCoordinator(undefined);
    return this.coordinator;
  }

  /** The state_dir of `siteId`'s daemon (SiteStateStore). */
  siteStateDirectory(siteId: string): string {
    return join(this.sitesState.path, siteId);
  }

  certificate(siteId: string): IssuedCertificate {
    const certificate = this.certificates.get(siteId);
    if (certificate === undefined) throw new Error(`no certificate for ${siteId}`);
    return certificate;
  }

  /** Starts (or restarts) the daemon of `siteId`. */
  startSite(siteId: string, overrides: GrpcSiteOptions = {}): RunningParticipant {
    if (this.daemons.has(siteId)) throw new Error(`${siteId} is already running`);
    const index = this.siteIds.indexOf(siteId);
    const certificate = this.certificate(siteId);
    const configured = { ...this.options.siteOptions?.(siteId, index), ...overrides };
    const pinned = configured.pinTask === false ? [] : [Buffer.from(this.taskHashHex, 'hex')];
    const daemon = startParticipant({
      coordinator: configured.dial ?? this.address,
      tls: { caPem: this.caPem, certPem: certificate.certificatePem, keyPem: certificate.privateKeyPem },
      siteId,
      signingKey: createPrivateKey(certificate.privateKeyPem),
      trust: { caCertificate: new X509Certificate(this.caPem), revokedSerials: new Set() },
      policy: { pinnedTaskHashes: pinned, minParticipants: 2, minThreshold: 2, allowPlaintext: false, ...NO_COLLUSION_MARGIN, ...configured.policy },
      data: configured.data ?? digitsShare(this.siteIds.length, index),
      ...(configured.dataCheckIntervalMs === undefined ? {} : { dataCheckIntervalMs: configured.dataCheckIntervalMs }),
      device: 'cpu',
      intraOpThreads: 1,
      maxModelBytes: 64 * MIB,
      reconnect: { initialMs: 100, maxMs: 1000 },
      state: configured.state ?? this.siteState(siteId),
      ...(configured.deadlineGraceMs === undefined ? {} : { deadlineGraceMs: configured.deadlineGraceMs }),
      logger: capturingLogger(this.siteLog),
      onLocalUpdate: (event) => {
        const list = this.localUpdates.get(siteId) ?? [];
        list.push(event);
        this.localUpdates.set(siteId, list);
      },
    });
    this.daemons.set(siteId, daemon);
    return daemon;
  }

  /** Stops a site's daemon: its Session is cancelled at once, the coordinator sees it disconnect. */
  async stopSite(siteId: string): Promise<void> {
    const daemon = this.daemons.get(siteId);
    this.daemons.delete(siteId);
    await daemon?.stop();
  }

  /** The running daemon of `siteId`, if any. */
  daemon(siteId: string): RunningParticipant | undefined {
    return this.daemons.get(siteId);
  }

  /** A Federation client presenting `certificate` (checked by channelCredentials like a daemon's). */
  client(certificate: TlsPair): FederationClient {
    const client = new (federationProtocol().FederationClient)(
      this.address,
      channelCredentials({ caPem: this.caPem, certPem: certificate.certificatePem, keyPem: certificate.privateKeyPem }),
      clientChannelOptions(),
    );
    this.clients.push(client);
    return client;
  }

  /** Keeps `client` to close it with the federation. */
  track<T extends FederationClient>(client: T): T {
    this.clients.push(client);
    return client;
  }

  /** Opens a Session on `client` and sends a Hello pinning `acceptedTaskHashes` (default: the federation's task). */
  openSession(client: FederationClient, acceptedTaskHashes: readonly string[] = [this.taskHashHex]): RawSession {
    const call = client.session();
    const received: CoordinatorMessage__Output[] = [];
    const waiters = new Set<() => void>();
    const ended = new Promise<FedgateError | undefined>((resolve) => {
      call.on('error', (error) => resolve(fromGrpcError(error, 'Session')));
      call.on('status', (status: { code: number }) => {
        if (status.code === 0) resolve(undefined);
      });
    });
    call.on('data', (message: CoordinatorMessage__Output) => {
      received.push(message);
      for (const wake of [...waiters]) wake();
    });
    call.write({
      payload: 'hello',
      hello: {
        protocolVersion: PROTOCOL_VERSION,
        fedgateVersion: 'test',
        capabilities: { device: 'cpu', onnxOpset: DEFAULT_OPSET, maxModelBytes: 64 * MIB, acceptedTaskHashes: acceptedTaskHashes.map((hash) => Buffer.from(hash, 'hex')) },
      },
    });
    const next = async (payload: string, timeoutMs: number): Promise<CoordinatorMessage__Output> => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = received.find((message) => message.payload === payload);
        if (found !== undefined) return found;
        const remaining = deadline - Date.now();
        if (remaining <= 0) throw new Error(`no ${payload} on the session within ${timeoutMs} ms (got ${received.map((message) => String(message.payload)).join(', ')})`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(wake, remaining);
          waiters.add(wake);
          function wake(): void {
            clearTimeout(timer);
            waiters.delete(wake);
            resolve();
          }
        });
      }
    };
    return { call, received, ended, next };
  }

  /** Calls `listener` for every message a site gets through to the federation, after it was handled. */
  onSiteMessage(listener: (record: SiteMessageRecord) => void): void {
    this.messageListeners.add(listener);
  }

  /** Resolves with the first round event (past or future) matching `predicate`. */
  async waitForEvent(predicate: (event: RoundEvent) => boolean, timeoutMs: number, what = 'a matching round event'): Promise<RoundEvent> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.events.find(predicate);
      if (found !== undefined) return found;
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; events so far: ${this.describeEvents()}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, remaining);
        this.eventListeners.add(done);
        function done(): void {
          clearTimeout(timer);
          resolve();
        }
      });
    }
  }

  /** Resolves once the configured number of rounds has committed. */
  async waitUntilDone(timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the federation did not finish ${this.options.rounds} round(s) within ${timeoutMs} ms; events: ${this.describeEvents()}`)), timeoutMs);
    });
    try {
      await Promise.race([this.coordinator.done, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  committed(): RoundEvent[] {
    return this.events.filter((event) => event.type === 'round_committed');
  }

  /** The update `siteId` trained in round `roundId` (hex). */
  localUpdate(siteId: string, roundId: string): LocalUpdateEvent {
    const update = this.localUpdates.get(siteId)?.find((entry) => entry.roundId === roundId);
    if (update === undefined) throw new Error(`${siteId} reported no local update for round ${roundId}`);
    return update;
  }

  /** The ledger files of the state directory, read back from disk in sequence order. */
  async ledgerFiles(): Promise<LedgerRecord<CommitBody>[]> {
    const directory = join(this.state.path, 'ledger');
    const names = (await readdir(directory)).filter((name) => /^\d{8}\.json$/.test(name)).sort();
    return Promise.all(names.map(async (name) => JSON.parse(await readFile(join(directory, name), 'utf8')) as LedgerRecord<CommitBody>));
  }

  /** Coordinator log lines whose message is `msg`. */
  coordinatorLines(msg: string): LogEntry[] {
    return this.coordinatorLog.filter((entry) => entry.msg === msg);
  }

  async close(): Promise<void> {
    const daemons = [...this.daemons.values()];
    this.daemons.clear();
    await Promise.all(daemons.map((daemon) => daemon.stop()));
    for (const client of this.clients.splice(0)) client.close();
    await this.crash.stopped?.catch(() => undefined);
    if (this.coordinatorValue !== undefined && !this.silenced.has(this.coordinatorValue)) await this.coordinatorValue.stop();
    await this.state.remove();
    await this.sitesState.remove();
  }

  private siteState(siteId: string): SiteStateStore {
    const store = this.siteStates.get(siteId);
    if (store === undefined) throw new Error(`no state store for ${siteId}`);
    return store;
  }

  /** The fault hook's "kill": the coordinator falls silent now and is stopped; its code unwinds from the point. */
  private simulateCrash(point: string): never {
    const crashed = this.coordinator;
    this.silenced.add(crashed);
    this.crash.stopped = crashed.stop();
    this.crash.signal();
    throw new SimulatedCrash(point);
  }

  private async startCoordinator(faultInjection: string | undefined): Promise<void> {
    const options = this.options;
    const stage = options.stageDeadlineMs ?? 10_000;
    const deadlines: StageDeadlines = {
      advertiseKeysMs: stage,
      shareKeysMs: stage,
      maskedInputMs: options.maskedInputDeadlineMs ?? 60_000,
      consistencyCheckMs: stage,
      unmaskMs: stage,
      commitMs: stage,
    };
    const coordinator = await startCoordinator({
      federationId: FEDERATION_ID,
      // A restart keeps the port: the daemons dial the address they were started with.
      listen: `127.0.0.1:${this.port}`,
      tls: { caPem: this.caPem, certPem: options.pki.coordinator.certificatePem, keyPem: options.pki.coordinator.privateKeyPem },
      revokedSerials: options.revokedSerials ?? [],
      stateDirectory: this.state.path,
      task: this.task,
      rounds: options.rounds,
      // A round needs two sites (compileCoordinatorOptions refuses fewer); one-site harnesses never open one.
      participants: {
        minimum: options.minParticipants ?? Math.max(2, options.sites),
        sampleFraction: 1,
        waitTimeoutMs: 10_000,
        ...(options.siteBackoff === undefined ? {} : { siteBackoff: options.siteBackoff }),
      },
      secureAggregation: options.secureAggregation ?? true,
      secagg: {
        ...(options.neighbourDegree === undefined ? {} : { neighbourDegree: options.neighbourDegree }),
        ...(options.reconstructionThreshold === undefined ? {} : { reconstructionThreshold: options.reconstructionThreshold }),
        clipBound: options.clipBound ?? 1,
        maxWeight: options.maxWeight ?? 2000,
        maxEvalExamples: 1000,
        maxLossPerExample: 50,
      },
      deadlines,
      finalEvaluation: options.finalEvaluation ?? false,
      ...(options.initialModelFile === undefined ? {} : { initialModelFile: options.initialModelFile }),
      logger: capturingLogger(this.coordinatorLog),
      heartbeatIntervalMs: options.heartbeatIntervalMs ?? 5000,
      ...(faultInjection === undefined ? {} : { faultPoint: crashAtFaultPoint(faultInjection, () => this.simulateCrash(faultInjection)) }),
    });
    this.coordinatorValue = coordinator;
    this.port = coordinator.port;
    coordinator.federation.on('round', (event) => {
      if (this.silenced.has(coordinator)) return;
      this.events.push(event);
      for (const listener of [...this.eventListeners]) listener();
      this.eventListeners.clear();
    });
    this.observeSiteMessages(coordinator);
    this.interceptSends(coordinator);
  }

  private observeSiteMessages(coordinator: RunningCoordinator): void {
    const federation = coordinator.federation;
    const receive = federation.receive.bind(federation);
    federation.receive = (siteId: string, message: SiteToCoordinator): void => {
      if (this.silenced.has(coordinator)) throw new SimulatedCrash('(after the crash)');
      const what = message.kind === 'refusal' ? 'refusal' : message.message.stage;
      const roundId = toHex(message.kind === 'refusal' ? message.roundId : message.message.roundId);
      let record: SiteMessageRecord;
      try {
        receive(siteId, message);
        record =
          message.kind === 'refusal'
            ? { siteId, what, roundId, accepted: true, reason: message.reason, message: message.message }
            : { siteId, what, roundId, accepted: true };
      } catch (error) {
        const reason = (error as { reason?: unknown }).reason;
        this.record({ siteId, what, roundId, accepted: false, reason: typeof reason === 'string' ? reason : 'unknown', message: (error as Error).message });
        throw error;
      }
      this.record(record);
    };
  }

  private record(record: SiteMessageRecord): void {
    this.received.push(record);
    for (const listener of this.messageListeners) listener(record);
  }

  private interceptSends(coordinator: RunningCoordinator): void {
    const registry = coordinator.registry;
    const send = registry.send.bind(registry);
    registry.send = (siteId: string, message: CoordinatorToSite): void => {
      if (this.silenced.has(coordinator)) return;
      const rewritten = this.rewriteToSite === undefined ? message : this.rewriteToSite(siteId, message);
      if (rewritten !== undefined) send(siteId, rewritten);
    };
  }

  private describeEvents(): string {
    return JSON.stringify(this.events.map((event) => ({ type: event.type, counter: event.roundCounter, reason: event.reason, survivors: event.survivors })));
  }
}
