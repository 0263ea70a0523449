/**
 * The participant daemon: dials the coordinator (outbound only, so it works behind NAT), opens its
 * Session with a Hello, and takes part in rounds; when the connection drops it reconnects with jittered
 * exponential backoff. A round in flight when the connection drops is abandoned: the site's round state
 * lives in memory only, so after a reconnect it sits that round out (DESIGN.md step 4) and joins the next.
 * What it must remember against a lying coordinator (round counters, models contributed to, its secret
 * seed) is in its state_dir (`state`), checked through one RoundGuard across reconnects.
 */
import type { KeyObject } from 'node:crypto';
import type { ClientDuplexStream } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { installBufferTransfer } from '../../crypto/buffer-release.js';
import { bytesEqual, fromHex, toHex } from '../../crypto/bytes.js';
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
import type { Device, ProgressEvent } from '../trainer/index.js';
import { Backoff } from './backoff.js';
import { ConnectFailureDescriber } from './connection-failure.js';
import { SessionWatchdog } from './session-watchdog.js';
import type { SiteDataSpec } from './site-data.js';
import { buildTaskContext, type TaskContext } from './task-context.js';

export const PARTICIPANT_VERSION = '0.1.0';
/** The site's end of its Session stream. */
type SessionCall = ClientDuplexStream<ParticipantMessage, CoordinatorMessage__Output>;
/** Refusals no reconnect can cure: the daemon stops and reports them. */
const FINAL_REFUSALS: ReadonlySet<string> = new Set(['CERTIFICATE_REVOKED']);
/** How long a new Session may wait for the coordinator's HelloReply before the connection is given up. */
const HELLO_REPLY_TIMEOUT_MS = 30_000;
/** Heartbeat intervals without any message after which the connection is presumed dead. */
const MISSED_HEARTBEATS = 3;
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
  /** The site's persisted state (state_dir): round counters, models contributed to, secret seeds. */
  readonly state: SiteStateStore;
  /** Extra time beyond each RoundConfig stage deadline before the site ends a round itself. @default 10 s */
  readonly deadlineGraceMs?: number;
  readonly logger: Logger;
  readonly onProgress?: (event: ProgressEvent) => void;
  /** Called for every round this site saw end (for CLIs and tests). */
  readonly onRoundEnd?: (event: { roundId: string; outcome: 'committed' | 'aborted' | 'left'; reason?: string }) => void;
  /**
   * Observes this site's own update of each round after local training, before it is weighted,
   * quantised and masked: what the site contributes to FedAvg. In-process only (tests compare the
   * committed model with plaintext FedAvg of these); nothing about it leaves the site.
   */
  readonly onLocalUpdate?: (event: LocalUpdateEvent) => void;
}

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
   * coordinator refused this site for good - its certificate was revoked - since reconnecting cannot help.
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

  constructor(private readonly options: ParticipantAppOptions) {
    this.client = this.newClient();
    this.guard = new RoundGuard(options.state);
    this.log = options.logger.child({ site: options.siteId });
    const origins = new TaskOrigins({ fetch: (hash) => this.fetchBlob(hash) });
    this.chain = new SiteChain({
      siteId: options.siteId,
      signingKey: options.signingKey,
      policy: options.policy,
      trust: () => options.trust,
      store: options.state,
      origin: (taskHash) => origins.origin(taskHash),
      fetchRecords: (after, maxRecords) => fetchCommitRecords(this.client, after, { maxRecords, maxRecordBytes: COMMIT_RECORD_MAX_BYTES }),
      computeCommit: async (config, request) => (await this.context(config.taskHash)).training.computeCommit(config, request),
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
    for (const context of this.contexts.values()) await context.then((value) => value.trainer.close()).catch(() => undefined);
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
      watchdog.watch(HELLO_REPLY_TIMEOUT_MS);
      const finish = (why: string, final?: FedgateError, unreachable?: string): void => {
        if (finished) return;
        finished = true;
        watchdog.stop();
        this.stopping.signal.removeEventListener('abort', onStop);
        for (const [roundId, round] of rounds) {
          round.stop('connection lost');
          this.options.onRoundEnd?.({ roundId, outcome: 'left', reason: 'connection lost' });
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
        try {
          const message = decodeCoordinatorMessage(wire);
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

  private onMessage(call: SessionCall, message: ReceivedCoordinatorTraffic, rounds: Map<string, RoundSession>, onConnected: () => void): void {
    switch (message.kind) {
      case 'hello_reply': {
        const { reply } = message;
        onConnected();
        this.log.info({ federation: reply.federationId, coordinatorVersion: reply.fedgateVersion }, 'connected to the coordinator');
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
        const session = new RoundSession(config.roundId, {
          logger: this.log,
          clientOptions: () => ({ siteId: this.options.siteId, signingKey: this.options.signingKey, policy: this.options.policy, trust: this.options.trust }),
          guard: this.guard,
          ...(this.options.deadlineGraceMs === undefined ? {} : { deadlineGraceMs: this.options.deadlineGraceMs }),
          send: (out) => this.send(call, out),
          upload: async (masked) => {
            const upload = encodeMaskedInputUpload(masked);
            await uploadMaskedInput(this.client, upload.target, upload.payload, upload.options);
          },
          train: async (roundConfig, signal) => {
            const trained = await (await this.context(roundConfig.taskHash)).training.train(roundConfig, signal);
            this.options.onLocalUpdate?.({ roundId: roundKey, delta: trained.delta, trainingExamples: trained.trainingExamples });
            return trained;
          },
          computeCommit: async (roundConfig, request) => (await this.context(roundConfig.taskHash)).training.computeCommit(roundConfig, request),
          onCommitted: (_config, computation) => {
            this.latestModel = computation.newModel;
          },
          checkRound: (roundConfig) => this.chain.checkRound(roundConfig),
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
        this.options.onRoundEnd?.({ roundId: roundKey, outcome: 'aborted', reason: message.reason });
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
            this.options.onRoundEnd?.({ roundId: roundKey, outcome: 'left', reason: 'COMMIT_RECORD_INVALID' });
            return;
          }
          session.committed(newModelHash);
          await session.settled();
          this.options.onRoundEnd?.({ roundId: roundKey, outcome: 'committed' });
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
    this.options.onRoundEnd?.({ roundId: toHex(roundId), outcome: 'committed' });
  }

  private send(call: SessionCall, message: SiteSessionMessage): void {
    call.write(encodeParticipantMessage(message));
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
      context.catch(() => this.contexts.delete(key));
      this.contexts.set(key, context);
    }
    return context;
  }

  /** Downloads content-addressed bytes (hash-checked by the transfer), keeping the last few in memory. */
  private async fetchBlob(hash: Uint8Array): Promise<Uint8Array> {
    const key = toHex(hash);
    const cached = this.blobCache.get(key);
    if (cached !== undefined) return cached;
    const bytes = new Uint8Array(await downloadModel(this.client, Buffer.from(fromHex(key)), { maxBytes: this.options.maxModelBytes }));
    this.blobCache.set(key, bytes);
    while (this.blobCache.size > 8) this.blobCache.delete(this.blobCache.keys().next().value as string);
    return bytes;
  }
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
