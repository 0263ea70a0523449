/**
 * A coordinator written by hand for tests: a real Federation gRPC server on 127.0.0.1:0 with real mutual
 * TLS (the test PKI's coordinator certificate) whose handlers the test scripts, so it can lie or misbehave
 * in ways the real coordinator never does (serve the wrong model, stop sending heartbeats). Handlers the
 * test leaves out answer UNIMPLEMENTED.
 */
import {
  AccessControl,
  FEDERATION_ACCESS_POLICY,
  FedgateError,
  bindServer,
  createFedgateServer,
  failStream,
  federationProtocol,
  serverCredentials,
  shutdownServer,
  toGrpcStatus,
  type FederationHandlers,
} from '../../proto/index.js';
import type { TestPki } from './pki.js';

export interface ScriptedCoordinator {
  /** 127.0.0.1:port */
  readonly address: string;
  close(): Promise<void>;
}

export async function startScriptedCoordinator(pki: TestPki, handlers: Partial<FederationHandlers>): Promise<ScriptedCoordinator> {
  const server = createFedgateServer({ access: new AccessControl({ policy: FEDERATION_ACCESS_POLICY }) });
  const unimplemented = (method: string): FedgateError => new FedgateError('UNIMPLEMENTED', `${method} is not scripted in this test`);
  const all: FederationHandlers = {
    Session: handlers.Session ?? ((call) => failStream(call, unimplemented('Session'))),
    DownloadModel: handlers.DownloadModel ?? ((call) => failStream(call, unimplemented('DownloadModel'))),
    UploadMaskedInput: handlers.UploadMaskedInput ?? ((_call, callback) => callback(toGrpcStatus(unimplemented('UploadMaskedInput')))),
    GetCommitRecords: handlers.GetCommitRecords ?? ((call) => failStream(call, unimplemented('GetCommitRecords'))),
  };
  server.addService(federationProtocol().federationService, all);
  const port = await bindServer(
    server,
    '127.0.0.1:0',
    serverCredentials({ caPem: pki.ca.certificatePem, certPem: pki.coordinator.certificatePem, keyPem: pki.coordinator.privateKeyPem }),
  );
  return { address: `127.0.0.1:${port}`, close: () => shutdownServer(server, 2000) };
}
