/**
 * Loads proto/fedgate/v1/*.proto at run time with @grpc/proto-loader and exposes typed service
 * definitions and a typed client constructor.
 *
 * Loader options (the contract behind messages.ts):
 * - keepCase: false   camelCase field names in TypeScript (`modelHash`); the wire is unaffected.
 * - longs: Number     uint64 fields are numbers; the protocol keeps them below 2^53.
 * - enums: String     enum values are their names ('ROUND_STAGE_MASKED_INPUT').
 * - bytes: Buffer     bytes fields decode as Buffer views of the received message (no copy).
 * - defaults: true    absent scalars decode as their proto3 default; absent messages as null.
 * - oneofs: true      each oneof adds a property naming the member that is set.
 *
 * The .proto files are found by walking up from this module to the package root (the directory with
 * fedgate's package.json), so the same code works from source (tsx, vitest) and compiled (dist/proto/).
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  makeClientConstructor,
  type CallOptions,
  type ChannelCredentials,
  type ChannelOptions,
  type Client,
  type ClientDuplexStream,
  type ClientReadableStream,
  type ClientWritableStream,
  type Metadata,
  type ServiceDefinition,
  type UntypedServiceImplementation,
  type handleBidiStreamingCall,
  type handleClientStreamingCall,
  type handleServerStreamingCall,
  type requestCallback,
} from '@grpc/grpc-js';
import { loadSync, type Options, type PackageDefinition } from '@grpc/proto-loader';
import { FedgateError } from './errors.js';
import type {
  CoordinatorMessage,
  DownloadModelRequest,
  ModelChunk,
  ParticipantMessage,
  UploadAck,
  UploadMaskedInputRequest,
} from './messages.js';

export const PACKAGE_NAME = 'fedgate';
export const FEDERATION_PROTO_FILE = 'fedgate/v1/federation.proto';
export const FEDERATION_SERVICE_NAME = 'fedgate.v1.Federation';

export const PROTO_LOADER_OPTIONS: Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  bytes: Buffer,
  defaults: true,
  oneofs: true,
  arrays: true,
};

/** Server-side handler signatures of fedgate.v1.Federation. */
export interface FederationHandlers extends UntypedServiceImplementation {
  Session: handleBidiStreamingCall<ParticipantMessage, CoordinatorMessage>;
  DownloadModel: handleServerStreamingCall<DownloadModelRequest, ModelChunk>;
  UploadMaskedInput: handleClientStreamingCall<UploadMaskedInputRequest, UploadAck>;
}

/** Client of fedgate.v1.Federation (lowerCamel method names, as grpc-js also exposes them). */
export interface FederationClient extends Client {
  session(options?: CallOptions): ClientDuplexStream<ParticipantMessage, CoordinatorMessage>;
  session(metadata: Metadata, options?: CallOptions): ClientDuplexStream<ParticipantMessage, CoordinatorMessage>;
  downloadModel(request: DownloadModelRequest, options?: CallOptions): ClientReadableStream<ModelChunk>;
  downloadModel(request: DownloadModelRequest, metadata: Metadata, options?: CallOptions): ClientReadableStream<ModelChunk>;
  uploadMaskedInput(callback: requestCallback<UploadAck>): ClientWritableStream<UploadMaskedInputRequest>;
  uploadMaskedInput(options: CallOptions, callback: requestCallback<UploadAck>): ClientWritableStream<UploadMaskedInputRequest>;
  uploadMaskedInput(metadata: Metadata, options: CallOptions, callback: requestCallback<UploadAck>): ClientWritableStream<UploadMaskedInputRequest>;
}

export type FederationClientConstructor = new (address: string, credentials: ChannelCredentials, options?: ChannelOptions) => FederationClient;

export interface FederationProtocol {
  /** Every message, enum and service of the loaded files (also what server reflection serves). */
  readonly packageDefinition: PackageDefinition;
  readonly federationService: ServiceDefinition;
  readonly FederationClient: FederationClientConstructor;
}

let cached: FederationProtocol | undefined;

/** The loaded protocol; parsed once per process. */
export function federationProtocol(): FederationProtocol {
  cached ??= loadFederationProtocol(protoRoot());
  return cached;
}

export function loadFederationProtocol(root: string): FederationProtocol {
  const packageDefinition = loadSync(FEDERATION_PROTO_FILE, { ...PROTO_LOADER_OPTIONS, includeDirs: [root] });
  const federationService = packageDefinition[FEDERATION_SERVICE_NAME] as ServiceDefinition | undefined;
  if (federationService === undefined || !('Session' in federationService)) {
    throw new FedgateError('INTERNAL', `${join(root, FEDERATION_PROTO_FILE)} does not define service ${FEDERATION_SERVICE_NAME}`, { reason: 'PROTO_INVALID' });
  }
  const FederationClient = makeClientConstructor(federationService, FEDERATION_SERVICE_NAME) as unknown as FederationClientConstructor;
  return { packageDefinition, federationService, FederationClient };
}

/** Directory holding `fedgate/v1/*.proto`: `<package root>/proto`. */
export function protoRoot(startDirectory: string = dirname(fileURLToPath(import.meta.url))): string {
  for (let directory = startDirectory; ; directory = dirname(directory)) {
    const manifest = join(directory, 'package.json');
    if (existsSync(manifest) && isFedgateManifest(manifest) && existsSync(join(directory, 'proto', FEDERATION_PROTO_FILE))) {
      return join(directory, 'proto');
    }
    if (dirname(directory) === directory) {
      throw new FedgateError(
        'INTERNAL',
        `cannot find ${join('proto', FEDERATION_PROTO_FILE)} in any parent of ${startDirectory} holding fedgate's package.json: reinstall fedgate with its proto/ directory`,
        { reason: 'PROTO_NOT_FOUND' },
      );
    }
  }
}

function isFedgateManifest(path: string): boolean {
  try {
    return (JSON.parse(readFileSync(path, 'utf8')) as { name?: unknown }).name === PACKAGE_NAME;
  } catch {
    return false;
  }
}
