/**
 * A running coordinator: the Federation loop (state directory, rounds, ledger) behind a mutual-TLS gRPC
 * server that serves the Federation service to participant certificates and the Admin service to operator
 * certificates (coordinator/admin/), with health checking and server reflection. Files and certificates
 * are read by the caller (cli/); the options are compiled once here (coordinator-options.ts) and the
 * compiled object is what every part keeps. This module owns the server's life cycle and nothing else.
 */
import { X509Certificate } from 'node:crypto';
import { extraMetricSlotCount } from '../../crypto/secagg/metric-slots.js';
import { mkdir } from 'node:fs/promises';
import { installBufferTransfer } from '../../crypto/buffer-release.js';
import { DEFAULT_OPSET } from '../../model/graph/model.js';
import { buildTrainingPlan } from '../../model/plan.js';
import { startingWeights } from '../../model/task-pin.js';
import { canonicalTaskBytes, taskHash } from '../../model/task.js';
import { encodeWeights } from '../../model/weight-codec.js';
import { AccessControl, FEDERATION_ACCESS_POLICY, HEALTH_SERVICE_NAME } from '../../proto/access-control.js';
import { ADMIN_ACCESS_POLICY, ADMIN_SERVICE_NAME, adminProtocol } from '../../proto/admin-loader.js';
import { serverCredentials } from '../../proto/credentials.js';
import { FEDERATION_SERVICE_NAME, federationProtocol } from '../../proto/loader.js';
import { watchHandshakeFailures } from '../../proto/handshake-failures.js';
import { addHealthService, addReflectionService, bindServer, createFedgateServer, shutdownServer } from '../../proto/server.js';
import { arrayBufferTransfer } from '../../platform/index.js';
import { attachAdminService } from '../admin/admin-app.js';
import { RevocationRegistry } from '../admin/revocation-registry.js';
import { Federation } from '../federation/federation.js';
import { acquireStateLock } from '../state/state-lock.js';
import { compileCoordinatorOptions, type CompiledCoordinatorOptions, type CoordinatorOptions } from './coordinator-options.js';
import { federationHandlers } from './federation-service.js';
import { HandshakeFailureLog } from './handshake-log.js';
import { HeapCompactor } from './heap-compaction.js';
import { SessionRegistry } from '../sessions/session-registry.js';

export const FEDGATE_VERSION = '0.1.0';

export interface RunningCoordinator {
  readonly port: number;
  /** The options the coordinator runs on, defaults applied. */
  readonly options: CompiledCoordinatorOptions;
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
 * `stop()`: a second coordinator on the same state_dir is refused before it touches anything. Bad options
 * are refused (FedgateError INVALID_ARGUMENT) before anything is touched.
 */
export async function startCoordinator(input: CoordinatorOptions): Promise<RunningCoordinator> {
  const options = compileCoordinatorOptions(input);
  // Unmasking frees spent keystream at once where the runtime can (crypto/buffer-release.ts).
  installBufferTransfer(arrayBufferTransfer());
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

async function startWithLock(options: CompiledCoordinatorOptions): Promise<RunningCoordinator> {
  const { logger } = options;
  if (!options.secureAggregation) {
    logger.warn('secure_aggregation is false: the coordinator will see every site\'s quantised update in the clear (mTLS still protects it in transit); only sites with allow_plaintext: true take part');
  }
  const plan = buildTrainingPlan(options.task, options.forwardModel);
  // The task's own initial weights, or for a warm start the file's, checked against the pinned hash.
  const initialModel = startingWeights(options.task, plan, plan.initialParameters, options.initialModelFile);
  const hash = taskHash(options.task, options.forwardModel);
  const registry = new SessionRegistry(logger);
  const caCertificate = new X509Certificate(options.tls.caPem);
  const revocations = await RevocationRegistry.open(options.stateDirectory, options.revokedSerials);
  const adminEnabled = options.admin.enabled;
  const federation = await Federation.open({
    settings: options,
    taskBytes: canonicalTaskBytes(options.task),
    taskHash: hash,
    ...(options.forwardModel === undefined ? {} : { taskBlobs: [options.forwardModel] }),
    initialModel,
    layout: plan,
    hyperParameters: {
      local_epochs: options.task.training.epochs,
      local_batch_size: options.task.training.batchSize,
      local_learning_rate: options.task.optimizer.learningRate,
      proximal_mu: options.task.training.proximalMu,
    },
    trust: () => revocations.trustAnchor(caCertificate),
    sites: registry,
    logger,
    ...(options.faultPoint === undefined ? {} : { faultPoint: options.faultPoint }),
    ...(options.pausePoint === undefined ? {} : { pausePoint: options.pausePoint }),
  });
  const access = new AccessControl({
    policy: adminEnabled ? ADMIN_ACCESS_POLICY : FEDERATION_ACCESS_POLICY,
    revokedSerials: revocations.serials,
    onDenied: (denial) => logger.warn({ method: denial.method, peer: denial.peer, code: denial.code, reason: denial.reason, identity: denial.identity }, 'call refused'),
  });
  options.metrics?.attach({ federation, connectedSites: () => registry.connected().length, revokedCertificates: () => revocations.serials.size, roundsConfigured: options.rounds });
  const server = createFedgateServer({ access });
  const protocol = adminProtocol();
  let openRoundBytes: number | undefined;
  const heap = new HeapCompactor();
  federation.on('round', (event) => {
    if (event.type === 'round_started') {
      // d + 4 uint32 slots (D + 4 under distributed DP: d padded to a power of two) and the task's extra
      // metric slots; an evaluation-only round uploads the metric slots alone.
      const updateWords = event.purpose === 'evaluate' ? 0 : (event.distributedDp?.paddedDimension ?? plan.initialParameters.length);
      openRoundBytes = (updateWords + 4 + extraMetricSlotCount(federation.metricSlots)) * 4;
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
      heartbeatIntervalMs: options.heartbeatIntervalMs,
      expectedUploadBytes: () => openRoundBytes,
      federation: () => federation,
      registry,
      logger,
      ...(options.participants.allowList === undefined ? {} : { allowList: options.participants.allowList }),
      ...(options.metrics === undefined ? {} : { onTransfer: options.metrics.transferred.bind(options.metrics) }),
    }),
  );
  const admin = adminEnabled
    ? await attachAdminService({
        server,
        federation,
        sessions: registry,
        access,
        revocations,
        ...(options.admin.revocationAuthority === undefined ? {} : { authority: options.admin.revocationAuthority }),
        stateDirectory: options.stateDirectory,
        task: options.task,
        ...(options.forwardModel === undefined ? {} : { forwardModel: options.forwardModel }),
        plan,
        federationId: options.federationId,
        fedgateVersion: FEDGATE_VERSION,
        taskHash: hash,
        roundsConfigured: options.rounds,
        minParticipants: options.participants.minimum,
        secureAggregation: options.secureAggregation,
        logger,
      })
    : undefined;
  addHealthService(server, [FEDERATION_SERVICE_NAME, HEALTH_SERVICE_NAME, ...(adminEnabled ? [ADMIN_SERVICE_NAME] : [])]);
  addReflectionService(server, adminEnabled ? protocol.packageDefinition : federationProtocol().packageDefinition);
  const port = await bindServer(server, options.listen, serverCredentials(options.tls));
  // Refused handshakes never reach a handler: log them here (rate-limited) so the operator sees them.
  const handshakes = new HandshakeFailureLog(logger);
  watchHandshakeFailures(server, (failure) => handshakes.report(failure));
  logger.info({ address: options.listen.replace(/:\d+$/, `:${port}`), port, federation: options.federationId, task: hash, committedRounds: federation.committedRounds, rounds: options.rounds }, 'coordinator listening');

  const stopping = new AbortController();
  const done = federation.run(stopping.signal);
  done.catch(() => undefined);
  return {
    port,
    options,
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
      options.metrics?.detach();
      for (const site of registry.connected()) site.call.end();
      await shutdownServer(server, 2000);
    },
  };
}
