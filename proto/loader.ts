/**
 * Loads proto/fedgate/v1/*.proto at run time with @grpc/proto-loader and exposes typed service
 * definitions and a typed client constructor.
 *
 * Loader options (the contract behind the generated types of proto/generated/, which
 * scripts/generate-proto-types.ts generates with the same options, flag by flag):
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
import { loadPackageDefinition, type ServiceDefinition } from '@grpc/grpc-js';
import { loadSync, type Options, type PackageDefinition } from '@grpc/proto-loader';
import { FedgateError } from './errors.js';
import type { ProtoGrpcType } from './generated/federation.js';
import type { FederationDefinition } from './generated/fedgate/v1/Federation.js';

export type { FederationClient, FederationHandlers } from './generated/fedgate/v1/Federation.js';

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

/** `new FederationClient(address, credentials, channelOptions)`. */
export type FederationClientConstructor = ProtoGrpcType['fedgate']['v1']['Federation'];

export interface FederationProtocol {
  /** Every message, enum and service of the loaded files (also what server reflection serves). */
  readonly packageDefinition: PackageDefinition;
  readonly federationService: FederationDefinition;
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
  const FederationClient = requireService(
    typedPackage<ProtoGrpcType>(packageDefinition).fedgate?.v1?.Federation,
    FEDERATION_SERVICE_NAME,
    ['Session', 'DownloadModel', 'UploadMaskedInput', 'GetCommitRecords'],
    join(root, FEDERATION_PROTO_FILE),
  );
  const federationService = FederationClient.service;
  return { packageDefinition, federationService, FederationClient };
}

/**
 * The loaded package with the types proto-loader-gen-types generated for it. grpc-js returns an untyped
 * GrpcObject; the generator's documented use is exactly this cast, and it is the only one between the
 * loader and the generated service types (`npm run lint` checks that proto/generated/ matches the
 * .proto files; requireService checks at run time that the files loaded are those).
 */
export function typedPackage<Package>(packageDefinition: PackageDefinition): Package {
  return loadPackageDefinition(packageDefinition) as unknown as Package;
}

/** The client constructor of service `name`, once every method its generated definition names is there. */
export function requireService<Client extends { readonly service: ServiceDefinition }>(
  client: Client | undefined,
  name: string,
  methods: readonly (keyof Client['service'] & string)[],
  file: string,
): Client {
  const missing = (): FedgateError => new FedgateError('INTERNAL', `${file} does not define service ${name} with methods ${methods.join(', ')}`, { reason: 'PROTO_INVALID' });
  if (client === undefined) throw missing();
  const service: Partial<ServiceDefinition> | undefined = client.service;
  if (service === undefined || methods.some((method) => service[method] === undefined)) throw missing();
  return client;
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
