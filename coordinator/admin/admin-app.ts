/**
 * Adds the Admin service to a coordinator's gRPC server and wires live revocation: a revocation swaps
 * the AccessControl set (next call refused), reaches rounds through the RevocationRegistry's trust
 * anchor, and ends the open Session and WatchRounds streams of the revoked certificates.
 */
import type { Server } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { exportInferenceModel } from '../../model/export.js';
import type { TrainingPlan } from '../../model/plan.js';
import { participantLevelOf, type TaskDocument } from '../../model/task.js';
import { decodeWeights } from '../../model/weight-codec.js';
import type { AccessControl } from '../../proto/access-control.js';
import { adminProtocol } from '../../proto/admin-loader.js';
import { fedgateError } from '../../proto/errors.js';
import { failStream } from '../../proto/status.js';
import type { Federation } from '../federation/federation.js';
import type { SessionRegistry } from '../sessions/session-registry.js';
import { adminHandlers } from './admin-service.js';
import { ParticipantLevelAccount } from './participant-level-privacy.js';
import { ModelExports } from './model-exports.js';
import type { RevocationAuthority } from './revocation-authority.js';
import type { RevocationRegistry } from './revocation-registry.js';
import { RevocationService } from './revocation-service.js';
import { RoundCatalog } from './round-catalog.js';
import { RoundWatch } from './round-watch.js';

export interface AdminAttachOptions {
  readonly server: Server;
  readonly federation: Federation;
  readonly sessions: SessionRegistry;
  readonly access: AccessControl;
  readonly revocations: RevocationRegistry;
  /** The CA that signs revocations (tls.ca_dir); undefined = RevokeParticipant answers FAILED_PRECONDITION. */
  readonly authority?: RevocationAuthority;
  readonly stateDirectory: string;
  readonly task: TaskDocument;
  readonly forwardModel?: Uint8Array;
  readonly plan: TrainingPlan;
  readonly federationId: string;
  readonly fedgateVersion: string;
  readonly taskHash: string;
  readonly roundsConfigured: number;
  readonly minParticipants: number;
  readonly secureAggregation: boolean;
  readonly logger: Logger;
}

export interface AttachedAdmin {
  readonly revocationService: RevocationService;
  readonly exports: ModelExports;
  /** Ends every WatchRounds stream (call before shutting the server down). */
  close(): void;
}

export async function attachAdminService(options: AdminAttachOptions): Promise<AttachedAdmin> {
  const { federation, sessions, access, revocations, logger, task, forwardModel, plan } = options;
  const exports = await ModelExports.open(options.stateDirectory, federation.blobs, (weights) => exportInferenceModel(task, decodeWeights(plan, weights), forwardModel));
  const watch = new RoundWatch(federation, logger);
  const participantLevel = participantLevelOf(task);
  // The new model's ONNX digest is computed as soon as the round commits, so status calls find it ready.
  federation.on('round', (event) => {
    if (event.type !== 'round_committed' || event.modelHash === undefined) return;
    exports.onnxSha256(event.modelHash).catch((error: unknown) => logger.error({ err: error, model: event.modelHash }, 'could not export the committed model to ONNX'));
  });
  revocations.onChange((serials) => access.replaceRevokedSerials(serials));
  const revocationService = new RevocationService({
    authority: options.authority,
    registry: revocations,
    fence: federation.revocationFence,
    connectedSerial: (siteId) => sessions.get(siteId)?.serial,
    closeStreams: (serials) => {
      watch.closeRevoked(serials);
      return sessions.closeRevoked(serials, (site) => {
        failStream(
          site.call,
          fedgateError('UNAUTHENTICATED', 'CERTIFICATE_REVOKED', `certificate serial ${site.serial} of participant ${site.siteId} has been revoked by the federation CA: this session is closed`),
        );
      });
    },
    logger,
  });
  options.server.addService(
    adminProtocol().adminService,
    adminHandlers({
      federationId: options.federationId,
      fedgateVersion: options.fedgateVersion,
      taskHash: options.taskHash,
      roundsConfigured: options.roundsConfigured,
      minParticipants: options.minParticipants,
      secureAggregation: options.secureAggregation,
      startedAt: new Date(),
      federation,
      sessions,
      catalog: new RoundCatalog(federation.ledgerRecords, () => federation.currentModelHash),
      exports,
      watch,
      revocations,
      revocationService,
      ...(task.privacy?.recordLevel === undefined ? {} : { privacy: { recordLevel: task.privacy.recordLevel, dimension: plan.initialParameters.length } }),
      ...(participantLevel === undefined ? {} : { participantLevel: new ParticipantLevelAccount(participantLevel, federation.ledgerRecords) }),
      logger,
    }),
  );
  return { revocationService, exports, close: () => watch.close() };
}
