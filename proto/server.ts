/**
 * Assembling a fedgate gRPC server: message limits, the access-control interceptor, health checking
 * (grpc.health.v1, grpc-health-check) and server reflection (@grpc/reflection), so Python, Go and
 * grpcurl users need nothing but the .proto files. Binding and shutdown as promises.
 */
import { Server, type ServerCredentials, type ServerOptions } from '@grpc/grpc-js';
import type { PackageDefinition } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation, type ServingStatus } from 'grpc-health-check';
import type { AccessControl } from './access-control.js';
import { serverChannelOptions } from './channel-options.js';
import { fedgateError } from './errors.js';

export interface FedgateServerOptions {
  /** Enforced on every call (revocation and role); see AccessControl. */
  readonly access: AccessControl;
  /** Extra grpc options; message limits default to channel-options.ts. */
  readonly grpcOptions?: ServerOptions;
}

/** A grpc-js Server with fedgate's limits and access control installed. Add services, then bind. */
export function createFedgateServer(options: FedgateServerOptions): Server {
  const { interceptors = [], ...grpcOptions } = options.grpcOptions ?? {};
  return new Server(serverChannelOptions({ ...grpcOptions, interceptors: [options.access.interceptor, ...interceptors] }));
}

/**
 * Adds grpc.health.v1.Health reporting SERVING for the whole server ('') and each named service.
 * Returns the implementation so the caller can report NOT_SERVING while draining.
 */
export function addHealthService(server: Server, serviceNames: readonly string[]): HealthImplementation {
  const statuses: Record<string, ServingStatus> = { '': 'SERVING' };
  for (const name of serviceNames) statuses[name] = 'SERVING';
  const health = new HealthImplementation(statuses);
  health.addToServer(server);
  return health;
}

/** Adds gRPC server reflection (v1 and v1alpha) describing every service of `packageDefinition`. */
export function addReflectionService(server: Server, packageDefinition: PackageDefinition): void {
  new ReflectionService(packageDefinition).addToServer(server);
}

/** Binds `address` (e.g. '127.0.0.1:0') and resolves with the port actually bound. */
export function bindServer(server: Server, address: string, credentials: ServerCredentials): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(address, credentials, (error, port) => {
      if (error !== null) {
        reject(fedgateError('UNAVAILABLE', 'BIND_FAILED', `cannot listen on ${address}: ${error.message}`));
        return;
      }
      resolve(port);
    });
  });
}

/** Graceful shutdown: lets calls finish for `graceMs`, then cancels whatever is still running. */
export function shutdownServer(server: Server, graceMs: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, graceMs);
    timer.unref();
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}
