/**
 * Assembling a fedgate gRPC server: message limits, the access-control interceptor, health checking
 * (grpc.health.v1, grpc-health-check) and server reflection (@grpc/reflection), so Python, Go and
 * grpcurl users need nothing but the .proto files. Binding and shutdown as promises.
 */
import { EventEmitter } from 'node:events';
import type { Http2Session } from 'node:http2';
import { Server, type ServerCredentials, type ServerOptions } from '@grpc/grpc-js';
import type { PackageDefinition } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation, type ServingStatus } from 'grpc-health-check';
import type { AccessControl } from './access-control.js';
import { serverChannelOptions } from './channel-options.js';
import { connectionWindowBytes } from './credentials.js';
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

/**
 * Binds `address` (e.g. '127.0.0.1:0') and resolves with the port actually bound. Every connection the
 * server then accepts gets the receive window the credentials' tuning sets (see raiseConnectionWindows).
 */
export function bindServer(server: Server, address: string, credentials: ServerCredentials): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(address, credentials, (error, port) => {
      if (error !== null) {
        reject(fedgateError('UNAVAILABLE', 'BIND_FAILED', `cannot listen on ${address}: ${error.message}`));
        return;
      }
      raiseConnectionWindows(server, connectionWindowBytes(credentials));
      resolve(port);
    });
  });
}

const windowRaised = new WeakSet<object>();

/**
 * HTTP/2 gives each connection a 64 KiB receive window until the receiver raises it (RFC 9113 section
 * 6.9.2; SETTINGS_INITIAL_WINDOW_SIZE covers streams only). grpc-js raises it on the client side
 * ('grpc-node.flow_control_window') but has no server option for it, so a 64 MiB upload crept along a
 * window per round trip: ~200 MiB/s on loopback here, ~300+ with the window raised (bench/transfer.ts).
 * grpc-js keeps the http2 servers that bindAsync creates in a private map, `http2Servers`; each gets a
 * 'session' listener raising that session's window. The window bounds what one peer can have sent and
 * not yet been read, per connection. Returns false if this grpc-js has no such map (the transport
 * tests then fail, so an upgrade cannot lose the window silently).
 */
export function raiseConnectionWindows(server: Server, windowBytes: number): boolean {
  const http2Servers: unknown = Reflect.get(server, 'http2Servers');
  if (!(http2Servers instanceof Map)) return false;
  for (const http2Server of http2Servers.keys()) {
    if (!(http2Server instanceof EventEmitter) || windowRaised.has(http2Server)) continue;
    windowRaised.add(http2Server);
    http2Server.on('session', (session: Http2Session) => {
      const raise = (): void => {
        if (!session.destroyed) session.setLocalWindowSize(windowBytes);
      };
      if (session.connecting) session.once('connect', raise);
      else raise();
    });
  }
  return true;
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
