/**
 * A whole federation in one process without gRPC: the coordinator's Federation loop and N sites, each a
 * RoundSession with real SecAgg+, real signatures and real ONNX training, connected by queued in-memory
 * delivery. Lets tests exercise round logic (dropouts, aborts, commits) fast and deterministically; the
 * gRPC integration tests cover the same flow over mTLS.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino, { type Logger } from 'pino';
import { fromHex, toHex } from '../../crypto/bytes.js';
import type { SitePolicy } from '../../crypto/secagg/policy.js';
import { Federation, type SiteDirectory } from '../../coordinator/federation/federation.js';
import { DEFAULT_PARTICIPANTS } from '../../coordinator/service/coordinator-options.js';
import type { PausePoint } from '../../coordinator/state/fault-injection.js';
import { decodeRoundConfig } from '../../crypto/secagg/config-codec.js';
import { DEFAULT_DEADLINES } from '../../crypto/secagg/config.js';
import type { CoordinatorToSite } from '../../crypto/secagg/round-envelope.js';
import { buildTrainingPlan, canonicalTaskBytes, parseTaskDocument, pinTask, taskHash, type PinnedTaskDocument, type TaskDocument } from '../../model/index.js';
import type { Dataset } from '../../participant/data/dataset.js';
import { SiteTraining } from '../../participant/daemon/site-training.js';
import { RoundGuard } from '../../participant/round/round-guard.js';
import { RoundSession } from '../../participant/round/round-session.js';
import { SiteStateStore } from '../../participant/state/index.js';
import { Trainer } from '../../participant/trainer/index.js';
import { cachedFederation, type TestFederation } from './secagg-sim.js';
import { NO_COLLUSION_MARGIN } from './protocol-margin.js';

/** Pinned (model/task-pin.ts): it names its initial model hash and the server optimiser, FedAvg with learning rate 1. */
export const DIGITS_MLP_TASK: PinnedTaskDocument = pinTask(parseTaskDocument({
  formatVersion: 1,
  model: { kind: 'mlp', inputShape: [64], hidden: [32], classes: 10 },
  loss: 'cross_entropy',
  input: { shape: [64], dtype: 'float32' },
  normalization: { scale: 1 / 16, offset: 0 },
  labels: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'],
  optimizer: { kind: 'sgd', learningRate: 0.1 },
  training: { epochs: 1, batchSize: 32, proximalMu: 0, seed: 7 },
}));

export interface InMemorySiteData {
  readonly train: Dataset;
  readonly test: Dataset;
}

export interface InMemoryOptions {
  readonly sites: readonly InMemorySiteData[];
  readonly task?: TaskDocument;
  readonly rounds: number;
  readonly secureAggregation?: boolean;
  readonly neighbourDegree?: number;
  readonly reconstructionThreshold?: number;
  readonly minParticipants?: number;
  readonly clipBound?: number;
  readonly stageDeadlineMs?: number;
  /** MaskedInput deadline (training included). @default 60 s */
  readonly maskedInputDeadlineMs?: number;
  readonly policy?: Partial<SitePolicy>;
  /** Run the evaluation-only round on the final model (FederationSettings.finalEvaluation). @default false */
  readonly finalEvaluation?: boolean;
  /**
   * Drops a site: return true to swallow a message to or from it (the site then looks dead to the round).
   * Called with the direction, the site and the message kind/stage.
   */
  readonly drop?: (direction: 'to_site' | 'from_site', siteId: string, what: string, committedRounds: number) => boolean;
  /** Serials the coordinator holds revoked, read live (a test adds to it while a round runs). @default none */
  readonly revokedSerials?: ReadonlySet<string>;
  /** FederationOptions.pausePoint. @default none */
  readonly pausePoint?: PausePoint;
  readonly logger?: Logger;
}

export interface InMemoryFederation {
  readonly federation: Federation;
  readonly testFederation: TestFederation;
  readonly siteIds: readonly string[];
  readonly localUpdates: Map<string, { roundId: string; delta: Float32Array; examples: number }[]>;
  readonly stateDirectory: string;
  close(): Promise<void>;
}

export async function createInMemoryFederation(options: InMemoryOptions): Promise<InMemoryFederation> {
  const task = pinTask(options.task ?? DIGITS_MLP_TASK);
  const plan = buildTrainingPlan(task);
  const logger = options.logger ?? pino({ level: 'silent' });
  const testFederation = cachedFederation(options.sites.length, 'mem-');
  const siteIds = testFederation.sites.map((site) => site.siteId);
  const stateDirectory = await mkdtemp(join(tmpdir(), 'fedgate-mem-'));
  const sitesDirectory = await mkdtemp(join(tmpdir(), 'fedgate-mem-sites-'));
  const hash = taskHash(task);
  const handlers = new Map<string, (message: CoordinatorToSite) => void>();
  const localUpdates = new Map<string, { roundId: string; delta: Float32Array; examples: number }[]>();
  let federation: Federation | undefined;
  const committed = (): number => federation?.committedRounds ?? 0;
  const what = (message: { readonly kind: string; readonly message?: unknown }): string =>
    message.kind === 'stage' ? String((message.message as { stage: string }).stage) : message.kind;

  const directory: SiteDirectory = {
    eligible: () => testFederation.sites.map((site) => ({ siteId: site.siteId, certificate: site.certificatePem })),
    send(siteId, message) {
      if (options.drop?.('to_site', siteId, what(message), committed()) === true) return;
      const handler = handlers.get(siteId);
      if (handler !== undefined) setImmediate(() => handler(message));
    },
    changed: (timeoutMs) => new Promise((resolve) => setTimeout(resolve, Math.min(timeoutMs, 50))),
  };

  const trainers: Trainer[] = [];
  for (const [index, site] of testFederation.sites.entries()) {
    const data = options.sites[index] as InMemorySiteData;
    const trainer = await Trainer.create({ plan, device: 'cpu' });
    trainers.push(trainer);
    // The site's own state_dir, inside the harness's directory: counters, contributions, secret seeds.
    const siteState = await SiteStateStore.open(join(sitesDirectory, site.siteId));
    const guard = new RoundGuard(siteState);
    const training = new SiteTraining({
      task,
      plan,
      trainer,
      train: data.train,
      test: data.test,
      randomness: siteState,
      blobs: { fetch: async (blobHash) => new Uint8Array(await (federation as Federation).blobs.get(toHex(blobHash))) },
    });
    const deliver = (message: Parameters<Federation['receive']>[1]): void => {
      if (options.drop?.('from_site', site.siteId, what(message), committed()) === true) return;
      setImmediate(() => {
        try {
          federation?.receive(site.siteId, message);
        } catch (error) {
          logger.warn({ site: site.siteId, err: error }, 'coordinator refused a message');
        }
      });
    };
    const sessions = new Map<string, RoundSession>();
    handlers.set(site.siteId, (message) => {
      const roundKey = toHex(message.kind === 'stage' ? message.message.roundId : message.roundId);
      if (message.kind === 'round_start') {
        // As the daemon does: a repeated id never replaces the session of the round it names.
        if (sessions.get(roundKey)?.state === 'running') return;
        const session = new RoundSession(message.roundId, {
          logger: logger.child({ site: site.siteId }),
          guard,
          clientOptions: () => ({
            siteId: site.siteId,
            signingKey: site.privateKey,
            trust: testFederation.trust,
            policy: { pinnedTaskHashes: [fromHex(hash)], minParticipants: 2, minThreshold: 2, ...NO_COLLUSION_MARGIN, ...options.policy },
          }),
          send: deliver,
          upload: async (masked) => deliver({ kind: 'stage', message: masked }),
          train: async (config, signal) => {
            const result = await training.train(config, signal);
            const list = localUpdates.get(site.siteId) ?? [];
            list.push({ roundId: toHex(config.roundId), delta: result.delta, examples: result.trainingExamples });
            localUpdates.set(site.siteId, list);
            return result;
          },
          evaluate: (config) => training.evaluateModel(config),
          computeCommit: (config, request) => training.computeCommit(config, request),
        });
        sessions.set(roundKey, session);
        // Decoded once on receipt, as the daemon's codec does (proto/session-codec.ts).
        session.start(decodeRoundConfig(message.roundConfig));
        return;
      }
      const session = sessions.get(roundKey);
      if (session === undefined) return;
      if (message.kind === 'stage') session.handle(message.message);
      else if (message.kind === 'abort') session.stop(message.reason);
      else session.committed(message.newModelHash);
    });
  }

  const deadline = options.stageDeadlineMs ?? 5000;
  federation = await Federation.open({
    settings: {
      federationId: 'mem-federation',
      stateDirectory,
      rounds: options.rounds,
      participants: { minimum: options.minParticipants ?? 3, sampleFraction: 1, waitTimeoutMs: 10_000, siteBackoff: DEFAULT_PARTICIPANTS.siteBackoff },
      secureAggregation: options.secureAggregation ?? true,
      secagg: {
        ...(options.neighbourDegree === undefined ? {} : { neighbourDegree: options.neighbourDegree }),
        ...(options.reconstructionThreshold === undefined ? {} : { reconstructionThreshold: options.reconstructionThreshold }),
        clipBound: options.clipBound ?? 1,
        maxWeight: 2000,
        maxEvalExamples: 2000,
        maxLossPerExample: 50,
      },
      deadlines: { ...DEFAULT_DEADLINES, advertiseKeysMs: deadline, shareKeysMs: deadline, maskedInputMs: options.maskedInputDeadlineMs ?? 60_000, consistencyCheckMs: deadline, unmaskMs: deadline, commitMs: deadline },
      serverOptimizer: task.serverOptimizer,
      finalEvaluation: options.finalEvaluation ?? false,
    },
    taskBytes: canonicalTaskBytes(task),
    taskHash: hash,
    initialModel: plan.initialParameters,
    layout: plan,
    hyperParameters: {},
    trust: () =>
      options.revokedSerials === undefined
        ? testFederation.trust
        : {
            caCertificate: testFederation.trust.caCertificate,
            get revokedSerials(): ReadonlySet<string> {
              return options.revokedSerials ?? new Set();
            },
          },
    sites: directory,
    logger,
    ...(options.pausePoint === undefined ? {} : { pausePoint: options.pausePoint }),
  });
  return {
    federation,
    testFederation,
    siteIds,
    localUpdates,
    stateDirectory,
    async close() {
      await Promise.all(trainers.map((trainer) => trainer.close()));
      await rm(stateDirectory, { recursive: true, force: true });
      await rm(sitesDirectory, { recursive: true, force: true });
    },
  };
}
