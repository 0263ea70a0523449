import { ChannelCredentials, ServerCredentials } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { FedgateError, channelCredentials, serverCredentials, type TlsIdentity } from '../../../proto/index.js';
import { createTestPki } from '../../support/pki.js';

const pki = await createTestPki();
const foreignParticipant = await (await createTestPki('foreign CA')).participant();
const [participant, operator, expired] = await Promise.all([pki.participant(), pki.operator(), pki.expiredParticipant()]);
const caPem = pki.ca.certificatePem;
const coordinatorIdentity: TlsIdentity = { caPem, certPem: pki.coordinator.certificatePem, keyPem: pki.coordinator.privateKeyPem };

function failure(run: () => unknown): FedgateError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(FedgateError);
    return error as FedgateError;
  }
  throw new Error('expected a FedgateError');
}

describe('mutual TLS credentials', () => {
  it('builds server credentials from a coordinator certificate and client credentials for participants and operators', () => {
    expect(serverCredentials(coordinatorIdentity)).toBeInstanceOf(ServerCredentials);
    for (const identity of [participant, operator]) {
      expect(channelCredentials({ caPem, certPem: identity.certificatePem, keyPem: identity.privateKeyPem })).toBeInstanceOf(ChannelCredentials);
    }
  });

  it('requires TLS 1.3, a client certificate, and rejects calls without a verified one', () => {
    const credentials = serverCredentials(coordinatorIdentity);
    expect(credentials._getConstructorOptions()).toMatchObject({ requestCert: true, minVersion: 'TLSv1.3' });
    expect(credentials._getInterceptors()).toHaveLength(1);
    expect(credentials._isSecure()).toBe(true);
  });

  it.each<[string, () => unknown, string, string, RegExp]>([
    [
      'a key that belongs to another certificate',
      () => channelCredentials({ caPem, certPem: participant.certificatePem, keyPem: operator.privateKeyPem }),
      'INVALID_ARGUMENT',
      'KEY_MISMATCH',
      /client keyPem does not belong to the certificate of OU=participant, CN=site-a/,
    ],
    [
      'a certificate from another CA',
      () => channelCredentials({ caPem, certPem: foreignParticipant.certificatePem, keyPem: foreignParticipant.privateKeyPem }),
      'FAILED_PRECONDITION',
      'CERTIFICATE_NOT_FROM_CA',
      /was not issued by the federation CA CN=fedgate test CA/,
    ],
    [
      'an expired certificate',
      () => channelCredentials({ caPem, certPem: expired.certificatePem, keyPem: expired.privateKeyPem }),
      'FAILED_PRECONDITION',
      'CERTIFICATE_EXPIRED',
      /ask the CA operator to renew it/,
    ],
    [
      'a participant certificate on the server side',
      () => serverCredentials({ caPem, certPem: participant.certificatePem, keyPem: participant.privateKeyPem }),
      'INVALID_ARGUMENT',
      'WRONG_ROLE',
      /server credentials need a certificate with role coordinator \(subject OU\); OU=participant, CN=site-a has "participant"/,
    ],
    [
      'a coordinator certificate on the client side',
      () => channelCredentials(coordinatorIdentity),
      'INVALID_ARGUMENT',
      'WRONG_ROLE',
      /client credentials need a certificate with role participant or operator/,
    ],
    [
      'a leaf certificate in place of the CA',
      () => channelCredentials({ caPem: pki.coordinator.certificatePem, certPem: participant.certificatePem, keyPem: participant.privateKeyPem }),
      'INVALID_ARGUMENT',
      'NOT_A_CA',
      /client caPem \(OU=coordinator, CN=coordinator\) is not a CA certificate/,
    ],
    ['text that is not PEM', () => serverCredentials({ ...coordinatorIdentity, certPem: 'hello' }), 'INVALID_ARGUMENT', 'INVALID_PEM', /server certPem is not a PEM X\.509 certificate/],
    ['a key that is not PEM', () => serverCredentials({ ...coordinatorIdentity, keyPem: 'hello' }), 'INVALID_ARGUMENT', 'INVALID_PEM', /server keyPem is not a PEM private key/],
  ])('refuses %s at construction', (_case, build, code, reason, message) => {
    const error = failure(build);
    expect([error.code, error.reason]).toEqual([code, reason]);
    expect(error.message).toMatch(message);
  });
});
