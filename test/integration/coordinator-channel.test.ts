/**
 * Dialling the coordinator by IP address: the certificate is verified against that address, and no
 * IP address is sent as the TLS server name (Node.js warns about that, DEP0123). Its own file so the
 * once-per-process warning is observable.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IssuedCertificate } from '../../certs/index.js';
import {
  AccessControl,
  FEDERATION_ACCESS_POLICY,
  FedgateError,
  IP_TARGET_SERVER_NAME,
  bindServer,
  coordinatorChannel,
  createFedgateServer,
  downloadModel,
  failStream,
  federationProtocol,
  sendModel,
  serverCredentials,
  sha256,
  shutdownServer,
  targetHost,
  type FederationClient,
  type FederationHandlers,
} from '../../proto/index.js';
import { createTestPki, type TestPki } from '../support/pki.js';

const model = randomBytes(4096);
const warnings: Error[] = [];
const onWarning = (warning: Error): void => {
  warnings.push(warning);
};
let pki: TestPki;
let site: IssuedCertificate;
const stops: (() => Promise<void>)[] = [];

async function startServer(coordinator: IssuedCertificate): Promise<number> {
  const server = createFedgateServer({ access: new AccessControl({ policy: FEDERATION_ACCESS_POLICY }) });
  const handlers: FederationHandlers = {
    Session: (call) => failStream(call, new FedgateError('UNIMPLEMENTED', 'not part of this test')),
    DownloadModel: (call) => {
      sendModel(call, model).catch((error: unknown) => failStream(call, error));
    },
    UploadMaskedInput: (_call, callback) => callback({ code: 12, details: 'not part of this test' }),
    GetCommitRecords: (call) => failStream(call, new FedgateError('UNIMPLEMENTED', 'not part of this test')),
  };
  server.addService(federationProtocol().federationService, handlers);
  const port = await bindServer(server, '127.0.0.1:0', serverCredentials({ caPem: pki.ca.certificatePem, certPem: coordinator.certificatePem, keyPem: coordinator.privateKeyPem }));
  stops.push(() => shutdownServer(server, 1000));
  return port;
}

function client(address: string, serverName?: string): FederationClient {
  const channel = coordinatorChannel(address, { caPem: pki.ca.certificatePem, certPem: site.certificatePem, keyPem: site.privateKeyPem, ...(serverName === undefined ? {} : { serverName }) });
  const made = new (federationProtocol().FederationClient)(address, channel.credentials, channel.options);
  stops.push(async () => made.close());
  return made;
}

beforeAll(async () => {
  process.on('warning', onWarning);
  pki = await createTestPki('coordinator channel CA');
  site = await pki.participant('site-a');
});

afterAll(async () => {
  process.off('warning', onWarning);
  for (const stop of stops.reverse()) await stop();
});

describe('dialling the coordinator by IP address', () => {
  it('verifies the certificate against the IP and sends no IP as the TLS server name', async () => {
    const port = await startServer(pki.coordinator); // SANs: localhost, 127.0.0.1
    const received = await downloadModel(client(`127.0.0.1:${port}`), sha256(model), { maxBytes: 1 << 20 });
    expect(received.equals(model)).toBe(true);
    expect(warnings.filter((warning) => (warning as { code?: string }).code === 'DEP0123')).toEqual([]);
  });

  it('with server_name set (the documented operator.yaml), sends that name and verifies the certificate against it', async () => {
    const port = await startServer(pki.coordinator); // SANs: localhost, 127.0.0.1
    const received = await downloadModel(client(`127.0.0.1:${port}`, 'localhost'), sha256(model), { maxBytes: 1 << 20 });
    expect(received.equals(model)).toBe(true);
    expect(warnings.filter((warning) => (warning as { code?: string }).code === 'DEP0123')).toEqual([]);
    const error = await downloadModel(client(`127.0.0.1:${port}`, 'fed.example.org'), sha256(model), { maxBytes: 1 << 20 }).then(() => undefined, (caught: unknown) => caught);
    expect((error as FedgateError).code).toBe('UNAVAILABLE');
    expect((error as FedgateError).message).toMatch(/fed\.example\.org/);
  });

  it('refuses a coordinator certificate that does not name the IP dialled', async () => {
    const elsewhere = await pki.issue({ commonName: 'coordinator', role: 'coordinator', hosts: ['localhost', '10.9.8.7'] });
    const port = await startServer(elsewhere);
    const error = await downloadModel(client(`127.0.0.1:${port}`), sha256(model), { maxBytes: 1 << 20 }).then(() => undefined, (caught: unknown) => caught);
    expect(error).toBeInstanceOf(FedgateError);
    expect((error as FedgateError).code).toBe('UNAVAILABLE');
    expect((error as FedgateError).message).toMatch(/127\.0\.0\.1|altnames|IP/);
  });

  it('sends the configured server name, or a placeholder where the name to check is an IP address', () => {
    const tls = { caPem: pki.ca.certificatePem, certPem: site.certificatePem, keyPem: site.privateKeyPem };
    expect(coordinatorChannel('10.0.0.7:7443', tls).options['grpc.ssl_target_name_override']).toBe(IP_TARGET_SERVER_NAME);
    expect(coordinatorChannel('[::1]:7443', tls).options['grpc.ssl_target_name_override']).toBe(IP_TARGET_SERVER_NAME);
    expect(coordinatorChannel('fed.example.org:7443', tls).options['grpc.ssl_target_name_override']).toBeUndefined();
    // DEP0123 with the documented operator.yaml (server_name: localhost, coordinator: an IP): the name is sent, not the IP.
    expect(coordinatorChannel('10.0.0.7:7443', { ...tls, serverName: 'fed.example.org' }).options['grpc.ssl_target_name_override']).toBe('fed.example.org');
    expect(coordinatorChannel('fed.example.org:7443', { ...tls, serverName: '10.0.0.7' }).options['grpc.ssl_target_name_override']).toBe(IP_TARGET_SERVER_NAME);
    expect(coordinatorChannel('fed.example.org:7443', { ...tls, serverName: 'fed.example.org' }).options['grpc.ssl_target_name_override']).toBeUndefined();
    expect([targetHost('10.0.0.7:7443'), targetHost('[::1]:7443'), targetHost('host:1'), targetHost('host')]).toEqual(['10.0.0.7', '::1', 'host', 'host']);
  });
});
