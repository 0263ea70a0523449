/**
 * A running coordinator: the Federation loop (state directory, rounds, ledger) behind a mutual-TLS gRPC
 * server that serves the Federation service to participant certificates and the Admin service to operator
 * certificates (coordinator/admin/), with health checking and server reflection. Everything is passed in already read and validated (cli/ reads files and certificates);
 * this module owns the server's life cycle and nothing else.
 */
import { X509Certificate } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { StageDeadlines } from '../../crypto/secagg/config.js';
import { DEFAULT_OPSET } from '../../model/graph/model.js';
import { buildTrainingPlan } from '../../model/plan.js';
import type { ServerOptimizerSpec } from '../../model/server-optimizer.js';
import { canonicalTaskBytes, taskHash, type TaskDocument } from '../../model/task.js';
import { encodeWeights } from '../../model/weight-codec.js';
import { AccessControl, FEDERATION_ACCESS_POLICY, HEALTH_SERVICE_NAME } from '../../proto/access-control.js';
import { ADMIN_ACCESS_POLICY, ADMIN_SERVICE_NAME, adminProtocol } from '../../proto/admin-loader.js';
import { serverCredentials } from '../../proto/credentials.js';
import { FEDERATION_SERVICE_NAME, federationProtocol } from '../../proto/loader.js';
import { addHealthService, addReflectionService, bindServer, createFedgateServer, shutdownServer } from '../../proto/server.js';
import { attachAdminService } from '../admin/admin-app.js';
import type { RevocationAuthority } from '../admin/revocation-authority.js';
import { RevocationRegistry } from '../admin/revocation-registry.js';
import { Federation } from '../federation/federation.js';
import { acquireStateLock } from '../state/state-lock.js';
import { federationHandlers } from './federation-service.js';
import { HeapCompactor } from './heap-compaction.js';
import { SessionRegistry } from '../sessions/session-registry.js';

export const FEDGATE_VERSION = '0.1.0';

export interface CoordinatorAppOptions {
  readonly federationId: string;
  /** host:port; port 0 picks a free port (see RunningCoordinator.port). */
  readonly listen: string;
  readonly tls: { readonly caPem: string; readonly certPem: string; readonly keyPem: string };
  /** Serials of the CA-verified CRL; merged with revocations recorded in the state directory. */
  readonly revokedSerials: Iterable<string>;
  /** The operator API on the same port (operator certificates only). @default enabled, no CA (no revocation) */
  readonly admin?: { readonly enabled: boolean; readonly revocationAuthority?: RevocationAuthority };
  readonly stateDirectory: string;
  readonly task: TaskDocument;
  readonly forwardModel?: Uint8Array;
  readonly rounds: number;
  readonly minParticipants: number;
  readonly sampleFraction: number;
  readonly allowList?: readonly string[];
  readonly waitTimeoutMs: number;
  readonly secureAggregation: boolean;
  readonly neighbourDegree?: number;
  readonly reconstructionThreshold?: number;
  readonly clipBound: number;
  readonly maxWeight: number;
  readonly maxEvalExamples: number;
  readonly maxLossPerExample: number;
  readonly deadlines: StageDeadlines;
  readonly serverOptimizer: ServerOptimizerSpec;
  readonly logger: Logger;
  /** @default 10 s */
  readonly heartbeatIntervalMs?: number;
}

export interface RunningCoordinator {
  readonly port: number;
  readonly federation: Federation;
  readonly registry: SessionRegistry;
  readonly access: AccessControl;
  /** Serials refused now; grows when an operator revokes a certificate (Admin.RevokeParticipant). */
  readonly revocations: RevocationRegistry;
  readonly taskHash: string;
  /** Resolves when the configured rounds have committed (or the coordinator was stopped). */
  readonly done: Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts a coordinator on `options.stateDirectory`, holding that directory's lock (state-lock.ts) until
 * `stop()`: a second coordinator on the same state_dir is refused before it touches anything.
 */
export async function startCoordinator(options: CoordinatorAppOptions): Promise<RunningCoordinator> {
  await mkdir(options.stateDirectory, { recursive: true });
  const lock = await acquireStateLock(options.stateDirectory, (reason) => options.logger.warn(reason));
  let running: RunningCoordinator;
  try {
    running = await startWithLock(options);
  } catch (error) {
    await lock.release();
    throw error;
  }
  return {
    ...running,
    async stop() {
      try {
        await running.stop();
      } finally {
        await lock.release();
      }
    },
  };
}

async function startWithLock(options: CoordinatorAppOptions): Promise<RunningCoordinator> {
  const { logger } = options;
  if (!options.secureAggregation) {
    logger.warn('secure_aggregation is false: the coordinator will see every site\'s quantised update in the clear (mTLS still protects it in transit); only sites with allow_plaintext: true take part');
  }
  const plan = buildTrainingPlan(options.task, options.forwardModel);
  const hash = taskHash(options.task, options.forwardModel);
  const registry = new SessionRegistry(logger);
  const caCertificate = new X509Certificate(options.tls.caPem);
  const revocations = await RevocationRegistry.open(options.stateDirectory, options.revokedSerials);
  const adminEnabled = options.admin?.enabled ?? true;
  const federation = await Federation.open({
    federationId: options.federationId,
    stateDirectory: options.stateDirectory,
    taskBytes: canonicalTaskBytes(options.task),
    taskHash: hash,
    ...(options.forwardModel === undefined ? {} : { taskBlobs: [options.forwardModel] }),
    initialModel: plan.initialParameters,
    layout: plan,
    optimizer: options.serverOptimizer,
    rounds: options.rounds,
    minParticipants: options.minParticipants,
    sampleFraction: options.sampleFraction,
    waitTimeoutMs: options.waitTimeoutMs,
    secureAggregation: options.secureAggregation,
    ...(options.neighbourDegree === undefined ? {} : { neighbourDegree: options.neighbourDegree }),
    ...(options.reconstructionThreshold === undefined ? {} : { reconstructionThreshold: options.reconstructionThreshold }),
    clipBound: options.clipBound,
    maxWeight: options.maxWeight,
    maxEvalExamples: options.maxEvalExamples,
    maxLossPerExample: options.maxLossPerExample,
    deadlines: options.deadlines,
    hyperParameters: {
      local_epochs: options.task.training.epochs,
      local_batch_size: options.task.training.batchSize,
      local_learning_rate: options.task.optimizer.learningRate,
      proximal_mu: options.task.training.proximalMu,
    },
    trust: () => revocations.trustAnchor(caCertificate),
    sites: registry,
    logger,
  });
  const access = new AccessControl({
    policy: adminEnabled ? ADMIN_ACCESS_POLICY : FEDERATION_ACCESS_POLICY,
    revokedSerials: revocations.serials,
    onDenied: (denial) => logger.warn({ method: denial.method, peer: denial.peer, code: denial.code, reason: denial.reason, identity: denial.identity }, 'call refused'),
  });
  const server = createFedgateServer({ access });
  const protocol = adminProtocol();
  let openRoundBytes: number | undefined;
  const heap = new HeapCompactor();
  federation.on('round', (event) => {
    if (event.type === 'round_started') {
      openRoundBytes = (plan.initialParameters.length + 4) * 4;
      return;
    }
    openRoundBytes = undefined;
    // After the round's end is reported (listeners run in order), its objects are garbage.
    setImmediate(() => heap.betweenRounds());
  });
  server.addService(
    protocol.federationService,
    federationHandlers({
      federationId: options.federationId,
      fedgateVersion: FEDGATE_VERSION,
      taskHash: hash,
      requiredOpset: DEFAULT_OPSET,
      modelBytes: encodeWeights(plan, plan.initialParameters).byteLength,
      heartbeatIntervalMs: options.heartbeatIntervalMs ?? 10_000,
      expectedUploadBytes: () => openRoundBytes,
      federation: () => federation,
      registry,
      logger,
      ...(options.allowList === undefined ? {} : { allowList: options.allowList }),
    }),
  );
  const admin = adminEnabled
    ? await attachAdminService({
        server,
        federation,
        sessions: registry,
        access,
        revocations,
        ...(options.admin?.revocationAuthority === undefined ? {} : { authority: options.admin.revocationAuthority }),
        stateDirectory: options.stateDirectory,
        task: options.task,
        ...(options.forwardModel === undefined ? {} : { forwardModel: options.forwardModel }),
        plan,
        federationId: options.federationId,
        fedgateVersion: FEDGATE_VERSION,
        taskHash: hash,
        roundsConfigured: options.rounds,
        minParticipants: options.minParticipants,
        secureAggregation: options.secureAggregation,
        logger,
      })
    : undefined;
  addHealthService(server, [FEDERATION_SERVICE_NAME, HEALTH_SERVICE_NAME, ...(adminEnabled ? [ADMIN_SERVICE_NAME] : [])]);
  addReflectionService(server, adminEnabled ? protocol.packageDefinition : federationProtocol().packageDefinition);
  const port = await bindServer(server, options.listen, serverCredentials({ caPem: options.tls.caPem, certPem: options.tls.certPem, keyPem: options.tls.keyPem }));
  logger.info({ address: options.listen.replace(/:\d+$/, `:${port}`), port, federation: options.federationId, task: hash, committedRounds: federation.committedRounds, rounds: options.rounds }, 'coordinator listening');

  const stopping = new AbortController();
  const done = federation.run(stopping.signal);
  done.catch(() => undefined);
  return {
    port,
    federation,
    registry,
    access,
    revocations,
    taskHash: hash,
    done,
    async stop() {
      stopping.abort();
      await done.catch(() => undefined);
      admin?.close();
      for (const site of registry.connected()) site.call.end();
      await shutdownServer(server, 2000);
    },
  };
}
