/**
 * Loads the Admin service (proto/fedgate/v1/admin.proto) together with federation.proto, with the
 * loader options of loader.ts, and exposes its generated handler and client types, a typed client
 * constructor, and the access policy that keeps it for operator certificates.
 *
 * The package definition returned here holds every fedgate.v1 service: the coordinator serves server
 * reflection from it, so grpcurl and other tools see Federation and Admin alike.
 */
import type { PackageDefinition } from '@grpc/proto-loader';
import { loadSync } from '@grpc/proto-loader';
import { join } from 'node:path';
import { FEDERATION_ACCESS_POLICY, type AccessPolicy } from './access-control.js';
import type { ProtoGrpcType } from './generated/admin.js';
import type { AdminDefinition } from './generated/fedgate/v1/Admin.js';
import type { FederationDefinition } from './generated/fedgate/v1/Federation.js';
import { FEDERATION_PROTO_FILE, FEDERATION_SERVICE_NAME, PROTO_LOADER_OPTIONS, protoRoot, requireService, typedPackage } from './loader.js';

export type { AdminClient, AdminHandlers } from './generated/fedgate/v1/Admin.js';

export const ADMIN_PROTO_FILE = 'fedgate/v1/admin.proto';
export const ADMIN_SERVICE_NAME = 'fedgate.v1.Admin';

/** The coordinator's policy with the Admin service: Federation for participants, Admin for operators only. */
export const ADMIN_ACCESS_POLICY: AccessPolicy = {
  ...FEDERATION_ACCESS_POLICY,
  [ADMIN_SERVICE_NAME]: ['operator'],
};

/** `new AdminClient(address, credentials, channelOptions)`. */
export type AdminClientConstructor = ProtoGrpcType['fedgate']['v1']['Admin'];

export interface AdminProtocol {
  /** Every message and service of federation.proto and admin.proto (what server reflection serves). */
  readonly packageDefinition: PackageDefinition;
  readonly adminService: AdminDefinition;
  readonly federationService: FederationDefinition;
  readonly AdminClient: AdminClientConstructor;
}

let cached: AdminProtocol | undefined;

/** The loaded Admin protocol; parsed once per process. */
export function adminProtocol(): AdminProtocol {
  cached ??= loadAdminProtocol(protoRoot());
  return cached;
}

export function loadAdminProtocol(root: string): AdminProtocol {
  const packageDefinition = loadSync([FEDERATION_PROTO_FILE, ADMIN_PROTO_FILE], { ...PROTO_LOADER_OPTIONS, includeDirs: [root] });
  const loaded = typedPackage<ProtoGrpcType>(packageDefinition);
  const AdminClient = requireService(loaded.fedgate?.v1?.Admin, ADMIN_SERVICE_NAME, ['GetStatus', 'ListParticipants', 'ListRounds', 'WatchRounds', 'GetModel', 'RevokeParticipant'], join(root, ADMIN_PROTO_FILE));
  const federation = requireService(loaded.fedgate?.v1?.Federation, FEDERATION_SERVICE_NAME, ['Session', 'DownloadModel', 'UploadMaskedInput', 'GetCommitRecords'], join(root, FEDERATION_PROTO_FILE));
  const adminService = AdminClient.service;
  const federationService = federation.service;
  return { packageDefinition, adminService, federationService, AdminClient };
}
