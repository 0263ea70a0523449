/**
 * A site's side of one round, around the pure SecAgg+ client (crypto/secagg/client.ts): it reacts to the
 * coordinator's messages, fetches the round's model by hash, trains when the shares are in, uploads the
 * masked input, and at commit recomputes model r+1 itself from the broadcast aggregate before signing
 * (DESIGN.md step 7). Whatever the coordinator sends, the site's policy and the client's checks decide;
 * a refusal is sent back with its reason and the site leaves the round without revealing anything.
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
import type { SiteSessionMessage } from '../../crypto/secagg/round-envelope.js';
import { keyListHash } from '../../crypto/secagg/transcript.js';
import { updateWeight, type LocalUpdate } from '../../crypto/secagg/update-vector.js';

export interface LocalTrainingResult {
  /** Trained local model minus the global model, in parameter order. */
  readonly delta: Float32Array;
  readonly trainingExamples: number;
  /** Federated evaluation of the global model on the site's own test split. */
  readonly evalLossSum: number;
  readonly evalCorrect: number;
  readonly evalExamples: number;
}

export interface CommitComputation {
  readonly hashes: CommitHashes;
  /** Model r+1 and its optimiser state, kept by the site once the round commits. */
  readonly newModel: Uint8Array;
}

export interface SiteRoundEnvironment {
  readonly logger: Logger;
  readonly clientOptions: () => SecAggClientOptions;
  /** Sends a stage message or refusal on the session stream (crypto/secagg/round-envelope.ts). */
  send(message: SiteSessionMessage): void;
  /** Uploads the masked input (chunked RPC); resolves once the coordinator acknowledged it. */
  upload(message: MaskedInputMessage): Promise<void>;
  /** Trains on the global model of `config` (fetched by its hash) and evaluates it. */
  train(config: RoundConfig, signal: AbortSignal): Promise<LocalTrainingResult>;
  /** Recomputes model r+1 and the optimiser state from the commit request; never trusts the coordinator's hashes. */
  computeCommit(config: RoundConfig, request: CommitRequestMessage): Promise<CommitComputation>;
  /** The round committed: keep model r+1. */
  onCommitted?(config: RoundConfig, computation: CommitComputation): void;
  /**
   * The site's own checks of a RoundStart beyond its policy (participant/chain: the round must start from
   * the verified chain head); runs before any key is made, and a rejection is the site's refusal.
   */
  checkRound?(config: RoundConfig): Promise<void>;
  /** The site revealed its shares: what it needs to sign this round's commit later, public values only. */
  onUnmasked?(round: UnmaskedRound): void;
  /** The site signed this round's commit over `hashes`. */
  onCommitSigned?(roundId: Uint8Array, hashes: CommitHashes): void;
}

export type RoundSessionState = 'running' | 'finished' | 'failed';

export class RoundSession {
  private readonly client: SecAggClient;
  private readonly abort = new AbortController();
  private readonly log: Logger;
  private config: RoundConfig | undefined;
  private stateValue: RoundSessionState = 'running';
  private commitComputation: CommitComputation | undefined;
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

  /**
   * Handles RoundStart with its RoundConfig, decoded once from the RoundStart bytes by whoever received
   * them (proto/session-codec.ts on a real site): check policy, advertise keys.
   */
  start(config: RoundConfig): void {
    this.enqueue('round_start', async () => {
      if (!bytesEqual(config.roundId, this.roundId)) throw new Error('RoundStart carries a RoundConfig for another round id');
      this.config = config;
      this.log.info({ participants: config.participants.length, threshold: config.reconstructionThreshold, degree: config.neighbourDegree, configHash: toHex(roundConfigHash(config)) }, 'round started');
      await this.environment.checkRound?.(config);
      this.environment.send({ kind: 'stage', message: this.client.advertiseKeys(config) });
    });
  }

  /** Handles every later coordinator message of this round. */
  handle(message: ServerMessage): void {
    this.enqueue(message.stage, async () => {
      switch (message.stage) {
        case 'key_list':
          this.environment.send({ kind: 'stage', message: this.client.revealNonce(message) });
          this.acceptedKeyListHash = keyListHash(message.entries);
          return;
        case 'graph':
          this.environment.send({ kind: 'stage', message: this.client.shareKeys(message, new Date()) });
          return;
        case 'share_delivery': {
          this.client.acceptShares(message);
          const config = this.requireConfig();
          const trained = await this.environment.train(config, this.abort.signal);
          const update: LocalUpdate = {
            delta: trained.delta,
            weight: updateWeight(trained.trainingExamples, config.maxWeight),
            evalLossSum: trained.evalLossSum,
            evalCorrect: trained.evalCorrect,
            evalExamples: trained.evalExamples,
          };
          const masked = this.client.maskedInput(update);
          await this.environment.upload(masked);
          this.log.info({ examples: trained.trainingExamples, uploadBytes: masked.maskedVector.byteLength }, 'masked input uploaded');
          return;
        }
        case 'consistency_request':
          this.environment.send({ kind: 'stage', message: this.client.consistencyCheck(message) });
          this.acceptedSurvivors = [...message.survivors];
          return;
        case 'unmask_request': {
          this.environment.send({ kind: 'stage', message: this.client.unmask(message) });
          const config = this.requireConfig();
          if (this.acceptedKeyListHash !== undefined && this.acceptedSurvivors !== undefined) {
            this.environment.onUnmasked?.(unmaskedRound(this.client.siteId, config, this.acceptedKeyListHash, this.acceptedSurvivors));
          }
          return;
        }
        case 'commit_request': {
          const config = this.requireConfig();
          const computed = await this.environment.computeCommit(config, message);
          // The client signs only if the request names the hashes this site computed ('commit_mismatch').
          const signature = this.client.commit(message, computed.hashes);
          this.commitComputation = computed;
          this.environment.onCommitSigned?.(signature.roundId, computed.hashes);
          this.environment.send({ kind: 'stage', message: signature });
          return;
        }
      }
    });
  }

  /** The coordinator announced the commit: keep model r+1 (it must be the one this site computed). */
  committed(newModelHash: Uint8Array): void {
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

  private enqueue(stage: string, step: () => Promise<void>): void {
    this.queue = this.queue.then(async () => {
      if (this.stateValue !== 'running') return;
      try {
        await step();
      } catch (error) {
        this.refuse(stage, error);
      }
    });
  }

  private refuse(stage: string, error: unknown): void {
    if (this.abort.signal.aborted) return;
    // Only fedgate's error classes carry a reason meant for the coordinator; anything else is SITE_ERROR.
    const reason = isKnownError(error) ? error.reason : 'SITE_ERROR';
    const message = error instanceof Error ? error.message : String(error);
    this.log.warn({ stage, reason, detail: message }, 'leaving the round');
    this.environment.send({ kind: 'refusal', roundId: this.roundId, reason, message });
    this.abort.abort();
    this.finish('failed');
  }

  private finish(state: RoundSessionState): void {
    this.stateValue = state;
    this.client.dispose();
  }

  private requireConfig(): RoundConfig {
    if (this.config === undefined) throw new Error('no RoundConfig received for this round');
    return this.config;
  }
}
