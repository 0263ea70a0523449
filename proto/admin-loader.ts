/**
 * Loads the Admin service (proto/fedgate/v1/admin.proto) together with federation.proto, with the
 * loader options of loader.ts, and exposes its typed handlers, a typed client constructor, and the
 * access policy that keeps it for operator certificates.
 *
 * The package definition returned here holds every fedgate.v1 service: the coordinator serves server
 * reflection from it, so grpcurl and other tools see Federation and Admin alike.
 */
import {
  makeClientConstructor,
  type CallOptions,
  type ChannelCredentials,
  type ChannelOptions,
  type Client,
  type ClientReadableStream,
  type ClientUnaryCall,
  type Metadata,
  type ServiceDefinition,
  type UntypedServiceImplementation,
  type handleServerStreamingCall,
  type handleUnaryCall,
  type requestCallback,
} from '@grpc/grpc-js';
import { loadSync, type PackageDefinition } from '@grpc/proto-loader';
import { join } from 'node:path';
import { FEDERATION_ACCESS_POLICY, type AccessPolicy } from './access-control.js';
import type {
  GetModelRequest,
  GetStatusRequest,
  GetStatusResponse,
  ListParticipantsRequest,
  ListParticipantsResponse,
  ListRoundsRequest,
  ListRoundsResponse,
  RevokeParticipantRequest,
  RevokeParticipantResponse,
  RoundEventMessage,
  WatchRoundsRequest,
} from './admin-messages.js';
import { FedgateError } from './errors.js';
import { FEDERATION_PROTO_FILE, FEDERATION_SERVICE_NAME, PROTO_LOADER_OPTIONS, protoRoot } from './loader.js';
import type { ModelChunk } from './messages.js';

export const ADMIN_PROTO_FILE = 'fedgate/v1/admin.proto';
export const ADMIN_SERVICE_NAME = 'fedgate.v1.Admin';

/** The coordinator's policy with the Admin service: Federation for participants, Admin for operators only. */
export const ADMIN_ACCESS_POLICY: AccessPolicy = {
  ...FEDERATION_ACCESS_POLICY,
  [ADMIN_SERVICE_NAME]: ['operator'],
};

/** Server-side handler signatures of fedgate.v1.Admin. */
export interface AdminHandlers extends UntypedServiceImplementation {
  GetStatus: handleUnaryCall<GetStatusRequest, GetStatusResponse>;
  ListParticipants: handleUnaryCall<ListParticipantsRequest, ListParticipantsResponse>;
  ListRounds: handleUnaryCall<ListRoundsRequest, ListRoundsResponse>;
  WatchRounds: handleServerStreamingCall<WatchRoundsRequest, RoundEventMessage>;
  GetModel: handleServerStreamingCall<GetModelRequest, ModelChunk>;
  RevokeParticipant: handleUnaryCall<RevokeParticipantRequest, RevokeParticipantResponse>;
}

type Unary<Request, Response> = {
  (request: Request, callback: requestCallback<Response>): ClientUnaryCall;
  (request: Request, metadata: Metadata, options: CallOptions, callback: requestCallback<Response>): ClientUnaryCall;
  (request: Request, options: CallOptions, callback: requestCallback<Response>): ClientUnaryCall;
};

/** Client of fedgate.v1.Admin (lowerCamel method names, as grpc-js also exposes them). */
export interface AdminClient extends Client {
  getStatus: Unary<Partial<GetStatusRequest>, GetStatusResponse>;
  listParticipants: Unary<Partial<ListParticipantsRequest>, ListParticipantsResponse>;
  listRounds: Unary<Partial<ListRoundsRequest>, ListRoundsResponse>;
  revokeParticipant: Unary<RevokeParticipantRequest, RevokeParticipantResponse>;
  watchRounds(request: Partial<WatchRoundsRequest>, options?: CallOptions): ClientReadableStream<RoundEventMessage>;
  getModel(request: GetModelRequest, options?: CallOptions): ClientReadableStream<ModelChunk>;
}

export type AdminClientConstructor = new (address: string, credentials: ChannelCredentials, options?: ChannelOptions) => AdminClient;

export interface AdminProtocol {
  /** Every message and service of federation.proto and admin.proto (what server reflection serves). */
  readonly packageDefinition: PackageDefinition;
  readonly adminService: ServiceDefinition;
  readonly federationService: ServiceDefinition;
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
  const adminService = packageDefinition[ADMIN_SERVICE_NAME] as ServiceDefinition | undefined;
  const federationService = packageDefinition[FEDERATION_SERVICE_NAME] as ServiceDefinition | undefined;
  if (adminService === undefined || !('GetStatus' in adminService) || federationService === undefined) {
    throw new FedgateError('INTERNAL', `${join(root, ADMIN_PROTO_FILE)} does not define service ${ADMIN_SERVICE_NAME}`, { reason: 'PROTO_INVALID' });
  }
  const AdminClient = makeClientConstructor(adminService, ADMIN_SERVICE_NAME) as unknown as AdminClientConstructor;
  return { packageDefinition, adminService, federationService, AdminClient };
}
