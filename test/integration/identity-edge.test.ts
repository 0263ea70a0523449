/**
 * Crafted certificates against a running federation over mutual TLS (issue 11, item 10):
 *  - a certificate with cA TRUE signed by the federation CA mints leaves for every role: its operator
 *    leaf gets no Admin access, its participant leaf no Session, and a site sends no Hello to a fake
 *    coordinator whose certificate comes from it - both with the CA fedgate creates now
 *    (pathLenConstraint 0: OpenSSL refuses the chain) and with a CA created without the constraint
 *    (each side's own check refuses the leaf);
 *  - a certificate signed by the CA itself whose CN has control characters, or is 2 KB long, is refused
 *    at connection on both sides, with an error that names the rule and never echoes the raw bytes.
 */
import { X509Certificate } from 'node:crypto';
import { credentials as grpcCredentials, Server, ServerCredentials, type ChannelCredentials } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CertificateAuthority } from '../../certs/index.js';
import { verifyPeerCertificate } from '../../crypto/certificate.js';
import { adminProtocol } from '../../proto/admin-loader.js';
import { clientChannelOptions } from '../../proto/channel-options.js';
import { FedgateError } from '../../proto/errors.js';
import { federationProtocol, type FederationHandlers } from '../../proto/loader.js';
import type { ParticipantMessage__Output } from '../../proto/messages.js';
import { fromGrpcError } from '../../proto/status.js';
import { GrpcFederation } from '../support/grpc-federation.js';
import { createTestPki, type TestPki } from '../support/pki.js';
import { craftLeaf, intermediateAuthority, legacyAuthority, type CraftedCertificate } from '../support/rogue-certificates.js';

const ESCAPES = 'site-\x1b[2J\x1b[H\x1b]0;owned\x07';
const LONG_NAME = `site-${'x'.repeat(2043)}`;

/** A stand-in coordinator presenting `certificate` (with its chain); it records every Hello it gets. */
async function fakeCoordinator(caPem: string, certificate: CraftedCertificate): Promise<{ address: string; hellos: ParticipantMessage__Output[]; stop: () => Promise<void> }> {
  const hellos: ParticipantMessage__Output[] = [];
  const server = new Server();
  const handlers: FederationHandlers = {
    Session: (call) => {
      call.on('data', (message: ParticipantMessage__Output) => hellos.push(message));
      call.on('error', () => undefined);
    },
    DownloadModel: (call) => call.end(),
    UploadMaskedInput: (_call, callback) => callback(null, {}),
    GetCommitRecords: (call) => call.end(),
  };
  server.addService(federationProtocol().federationService, handlers);
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(
      '127.0.0.1:0',
      ServerCredentials.createSsl(Buffer.from(caPem), [{ private_key: Buffer.from(certificate.privateKeyPem), cert_chain: Buffer.from(certificate.chainPem) }], true),
      (error, bound) => (error === null ? resolve(bound) : reject(error)),
    );
  });
  return {
    address: `127.0.0.1:${port}`,
    hellos,
    stop: () => new Promise((resolve) => server.tryShutdown(() => resolve())),
  };
}

/** Client credentials a hostile holder builds itself (fedgate's own refuse such a certificate at start). */
function rawCredentials(caPem: string, holder: CraftedCertificate): ChannelCredentials {
  return grpcCredentials.createSsl(Buffer.from(caPem), Buffer.from(holder.privateKeyPem), Buffer.from(holder.chainPem));
}

async function adminStatus(address: string, channel: ChannelCredentials): Promise<FedgateError> {
  const client = new (adminProtocol().AdminClient)(address, channel, clientChannelOptions());
  try {
    return await new Promise<FedgateError>((resolve, reject) => {
      client.getStatus({}, { deadline: Date.now() + 10_000 }, (error) => (error === null ? reject(new Error('GetStatus succeeded')) : resolve(fromGrpcError(error, 'GetStatus'))));
    });
  } finally {
    client.close();
  }
}

async function adminRevoke(address: string, channel: ChannelCredentials, siteId: string): Promise<FedgateError> {
  const client = new (adminProtocol().AdminClient)(address, channel, clientChannelOptions());
  try {
    return await new Promise<FedgateError>((resolve, reject) => {
      client.revokeParticipant({ siteId }, { deadline: Date.now() + 10_000 }, (error) =>
        error === null ? reject(new Error('RevokeParticipant succeeded')) : resolve(fromGrpcError(error, 'RevokeParticipant')),
      );
    });
  } finally {
    client.close();
  }
}

/** The Session of `channel`'s holder: how the coordinator ended it. */
async function sessionRefusal(address: string, channel: ChannelCredentials): Promise<FedgateError> {
  const client = new (federationProtocol().FederationClient)(address, channel, clientChannelOptions());
  try {
    const call = client.session();
    const ended = new Promise<FedgateError>((resolve) => call.on('error', (error) => resolve(fromGrpcError(error, 'Session'))));
    call.write({ payload: 'hello', hello: { protocolVersion: 1, fedgateVersion: 'rogue', capabilities: null } });
    return await ended;
  } finally {
    client.close();
  }
}

/** Starts site-1's daemon against `address` and waits long enough for several connection attempts. */
async function dialFake(h: GrpcFederation, address: string): Promise<string[]> {
  h.startSite('site-1', { dial: address });
  await new Promise((resolve) => setTimeout(resolve, 2500));
  await h.stopSite('site-1');
  // A site that never reached the coordinator says so ('cannot connect'), one that lost it says that.
  const failures = new Set(['cannot connect to the coordinator; retrying', 'connection to the coordinator lost; reconnecting']);
  return h.siteLog.filter((entry) => failures.has(String(entry.msg))).map((entry) => String(entry['reason']));
}

const AUTHORITIES: readonly [string, () => Promise<CertificateAuthority | undefined>, string][] = [
  // OpenSSL refuses the chain in the handshake: the peer has no verified certificate at all.
  ['a CA with pathLenConstraint 0, as fedgate creates it', async () => undefined, 'NO_VERIFIED_CERTIFICATE'],
  // The chain verifies in OpenSSL; each side's own issuer check refuses the leaf.
  ['a CA without a path length constraint, as fedgate created it before', async () => legacyAuthority(), 'NOT_ISSUED_BY_FEDERATION_CA'],
];

describe.each(AUTHORITIES)('leaves minted below an intermediate CA, with %s', (_case, authority, reason) => {
  let pki: TestPki;
  let h: GrpcFederation;
  let intermediate: ReturnType<typeof intermediateAuthority>;

  beforeAll(async () => {
    pki = await createTestPki('fedgate identity-edge CA', await authority());
    h = await GrpcFederation.start({ pki, sites: 1, rounds: 1, startSites: false });
    intermediate = intermediateAuthority(pki.ca);
  }, 120_000);

  afterAll(async () => {
    await h?.close();
  });

  it('give the operator leaf no Admin access: status and revocation are refused, naming why', async () => {
    const operator = rawCredentials(pki.ca.certificatePem, craftLeaf(intermediate, { commonName: 'ops-rogue', role: 'operator' }));
    for (const refused of [await adminStatus(h.address, operator), await adminRevoke(h.address, operator, 'site-1')]) {
      expect([refused.code, refused.reason]).toEqual(['UNAUTHENTICATED', reason]);
      if (reason === 'NOT_ISSUED_BY_FEDERATION_CA') expect(refused.message).toContain('was not issued directly by the federation CA');
    }
    // A genuine operator certificate of the same CA is served (the refusal is about the issuer alone).
    const genuine = await pki.operator('ops-genuine');
    const served = new (adminProtocol().AdminClient)(h.address, grpcCredentials.createSsl(Buffer.from(pki.ca.certificatePem), Buffer.from(genuine.privateKeyPem), Buffer.from(genuine.certificatePem)), clientChannelOptions());
    const status = await new Promise<unknown>((resolve, reject) => served.getStatus({}, (error, response) => (error === null ? resolve(response) : reject(error))));
    served.close();
    expect(status).toMatchObject({ federationId: 'grpc-test-federation' });
  });

  it('give the participant leaf no Session', async () => {
    const participant = rawCredentials(pki.ca.certificatePem, craftLeaf(intermediate, { commonName: 'site-1', role: 'participant' }));
    const refused = await sessionRefusal(h.address, participant);
    expect([refused.code, refused.reason]).toEqual(['UNAUTHENTICATED', reason]);
  });

  it('make a site refuse the coordinator during the handshake: it sends no Hello, and says why', async () => {
    const fake = await fakeCoordinator(pki.ca.certificatePem, craftLeaf(intermediate, { commonName: 'coordinator', role: 'coordinator', hosts: ['127.0.0.1', 'localhost'] }));
    try {
      const reasons = await dialFake(h, fake.address);
      expect(fake.hellos).toEqual([]);
      expect(reasons.length).toBeGreaterThan(0);
      expect(reasons.join('\n')).toMatch(reason === 'NOT_ISSUED_BY_FEDERATION_CA' ? /was not issued directly by the federation CA/ : /path length constraint exceeded/i);
    } finally {
      await fake.stop();
    }
  });

  it('are refused as signers by `fedgate verify` and by sites checking their neighbours (verifyPeerCertificate)', () => {
    const trust = { caCertificate: new X509Certificate(pki.ca.certificatePem), revokedSerials: new Set<string>() };
    const leaf = craftLeaf(intermediate, { commonName: 'site-1', role: 'participant' });
    expect(() => verifyPeerCertificate(leaf.certificatePem, trust, new Date(), { siteId: 'site-1', role: 'participant' })).toThrow(
      expect.objectContaining({ reason: 'CERTIFICATE_UNTRUSTED', message: expect.stringContaining('is not issued and signed by the federation CA') as unknown }),
    );
    // The intermediate itself is no signer either.
    expect(() => verifyPeerCertificate(intermediate.certificatePem, trust, new Date())).toThrow(expect.objectContaining({ reason: 'CERTIFICATE_UNTRUSTED' }));
  });

  it('(control) a fake coordinator with a certificate the CA issued itself does get the Hello', async () => {
    const genuine = pki.coordinator;
    const fake = await fakeCoordinator(pki.ca.certificatePem, { certificatePem: genuine.certificatePem, privateKeyPem: genuine.privateKeyPem, chainPem: genuine.certificatePem });
    try {
      h.siteLog.length = 0;
      await dialFake(h, fake.address);
      expect(fake.hellos.map((message) => message.payload)).toContain('hello');
    } finally {
      await fake.stop();
    }
  });
});

describe('common names outside the federation name rule, at the mTLS edge', () => {
  let pki: TestPki;
  let h: GrpcFederation;

  beforeAll(async () => {
    pki = await createTestPki('fedgate name-rule CA');
    h = await GrpcFederation.start({ pki, sites: 1, rounds: 1, startSites: false });
  }, 120_000);

  afterAll(async () => {
    await h?.close();
  });

  it.each([
    ['control characters (terminal escapes)', ESCAPES, '\\u{1b}[2J'],
    ['2 KB', LONG_NAME, '(2048 characters)'],
  ])('refuses a client certificate whose CN has %s, on every service, naming the rule', async (_case, commonName, shown) => {
    for (const role of ['participant', 'operator'] as const) {
      const holder = rawCredentials(pki.ca.certificatePem, craftLeaf(pki.ca, { commonName, role }));
      const refused = role === 'participant' ? await sessionRefusal(h.address, holder) : await adminStatus(h.address, holder);
      expect([refused.code, refused.reason]).toEqual(['PERMISSION_DENIED', 'INVALID_COMMON_NAME']);
      expect(refused.message).toContain('is not a federation name');
      expect(refused.message).toContain(shown);
      expect(refused.message).not.toContain('\x1b');
      expect(refused.message.length).toBeLessThan(1000);
    }
    // The coordinator logs the refusal with the name escaped too.
    const logged = h.coordinatorLines('call refused').filter((entry) => entry['reason'] === 'INVALID_COMMON_NAME');
    expect(logged.length).toBeGreaterThan(0);
  });

  it.each([
    ['control characters (terminal escapes)', ESCAPES],
    ['2 KB', LONG_NAME],
  ])('makes a site refuse a coordinator whose CN has %s: no Hello is sent', async (_case, commonName) => {
    const fake = await fakeCoordinator(pki.ca.certificatePem, craftLeaf(pki.ca, { commonName, role: 'coordinator', hosts: ['127.0.0.1', 'localhost'] }));
    try {
      h.siteLog.length = 0;
      const reasons = await dialFake(h, fake.address);
      expect(fake.hellos).toEqual([]);
      expect(reasons.join('\n')).toContain('is not a federation name');
      expect(reasons.join('\n')).not.toContain('\x1b');
    } finally {
      await fake.stop();
    }
  });
});
