import type { PeerCertificate } from 'node:tls';
import { describe, expect, it } from 'vitest';
import {
  AccessControl,
  FEDERATION_ACCESS_POLICY,
  FedgateError,
  canonicalSerial,
  identityFromCertificate,
  peerIdentity,
  type AccessDenial,
  type AuthenticatedCall,
} from '../../../proto/index.js';

function peer(subject: Record<string, string | string[]>, serialNumber = '0A1B2C'): AuthenticatedCall {
  const certificate = { subject, serialNumber } as unknown as PeerCertificate;
  return { getAuthContext: () => ({ sslPeerCertificate: certificate }) };
}
const anonymous: AuthenticatedCall = { getAuthContext: () => ({}) };

function thrown(run: () => unknown): FedgateError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(FedgateError);
    return error as FedgateError;
  }
  throw new Error('expected a FedgateError');
}

describe('peer identity', () => {
  it('reads site id from CN, role from OU and the serial in canonical form', () => {
    expect(peerIdentity(peer({ CN: 'site-1', OU: 'participant' }, '0a1b2c'))).toEqual({ siteId: 'site-1', role: 'participant', serial: 'A1B2C' });
    expect(canonicalSerial('00:FF:01')).toBe('FF01');
  });

  it.each<[string, AuthenticatedCall, string, string]>([
    ['no verified certificate', anonymous, 'UNAUTHENTICATED', 'NO_VERIFIED_CERTIFICATE'],
    ['no auth context at all', { getAuthContext: () => null }, 'UNAUTHENTICATED', 'NO_VERIFIED_CERTIFICATE'],
    ['two OUs', peer({ CN: 'site-1', OU: ['participant', 'operator'] }), 'PERMISSION_DENIED', 'AMBIGUOUS_IDENTITY'],
    ['no CN', peer({ OU: 'participant' }), 'PERMISSION_DENIED', 'AMBIGUOUS_IDENTITY'],
    ['an unknown role', peer({ CN: 'x', OU: 'admin' }), 'PERMISSION_DENIED', 'UNKNOWN_ROLE'],
  ])('refuses %s', (_case, call, code, reason) => {
    const error = thrown(() => peerIdentity(call));
    expect([error.code, error.reason]).toEqual([code, reason]);
  });

  it('never takes the role from the name', () => {
    expect(identityFromCertificate({ subject: { CN: 'operator', OU: 'participant' }, serialNumber: '01' } as unknown as PeerCertificate).role).toBe(
      'participant',
    );
  });
});

describe('AccessControl', () => {
  const policy = { ...FEDERATION_ACCESS_POLICY, 'fedgate.v1.Admin': ['operator'], '/fedgate.v1.Admin/GetStatus': ['operator', 'participant'] } as const;
  const session = '/fedgate.v1.Federation/Session';

  it.each<[string, string, AuthenticatedCall, string | null]>([
    ['a participant on the Federation service', session, peer({ CN: 's', OU: 'participant' }), null],
    ['an operator on the Federation service', session, peer({ CN: 'o', OU: 'operator' }), 'ROLE_NOT_ALLOWED'],
    ['a participant on an operator-only method', '/fedgate.v1.Admin/Revoke', peer({ CN: 's', OU: 'participant' }), 'ROLE_NOT_ALLOWED'],
    ['a participant on a method opened to it by a method rule', '/fedgate.v1.Admin/GetStatus', peer({ CN: 's', OU: 'participant' }), null],
    ['anyone on health checking', '/grpc.health.v1.Health/Check', peer({ CN: 'c', OU: 'coordinator' }), null],
    ['a method without a rule', '/other.Service/Call', peer({ CN: 'o', OU: 'operator' }), 'ROLE_NOT_ALLOWED'],
    ['a caller without certificate', session, anonymous, 'NO_VERIFIED_CERTIFICATE'],
  ])('decides %s', (_case, method, call, reason) => {
    const access = new AccessControl({ policy });
    if (reason === null) expect(access.authorize(method, call).siteId).toBeTypeOf('string');
    else expect(thrown(() => access.authorize(method, call)).reason).toBe(reason);
  });

  it('applies a swapped revocation set to the next check, whatever the serial spelling', () => {
    const access = new AccessControl({ policy, revokedSerials: ['00ab'] });
    const call = peer({ CN: 's', OU: 'participant' }, 'AB');
    const revoked = thrown(() => access.authorize(session, call));
    expect([revoked.code, revoked.reason]).toEqual(['UNAUTHENTICATED', 'CERTIFICATE_REVOKED']);
    expect(revoked.message).toBe('certificate serial AB of participant s has been revoked by the federation CA: ask the CA operator for a new certificate');
    access.replaceRevokedSerials([]);
    expect(access.authorize(session, call).serial).toBe('AB');
    access.replaceRevokedSerials(['ab']);
    expect(access.isRevoked('0AB')).toBe(true);
  });

  it('reports refused calls to its audit hook through the interceptor', () => {
    const denials: AccessDenial[] = [];
    const access = new AccessControl({ policy, onDenied: (denial) => denials.push(denial) });
    const sent: { code: number; details: string }[] = [];
    const call = {
      ...peer({ CN: 'o', OU: 'operator' }),
      getPeer: () => 'ipv4:127.0.0.1:5555',
      sendStatus: (status: { code: number; details: string }) => sent.push(status),
      start: (listener: { onReceiveMetadata(metadata: unknown): void }) => listener.onReceiveMetadata({}),
    };
    const intercepted = access.interceptor({ path: session } as never, call as never);
    intercepted.start({ onReceiveMetadata: () => undefined, onReceiveMessage: () => undefined, onReceiveHalfClose: () => undefined, onCancel: () => undefined });
    expect(sent).toEqual([expect.objectContaining({ code: 7, details: expect.stringContaining('operator o may not call /fedgate.v1.Federation/Session') })]);
    expect(denials).toEqual([
      expect.objectContaining({ method: session, peer: 'ipv4:127.0.0.1:5555', code: 'PERMISSION_DENIED', reason: 'ROLE_NOT_ALLOWED', identity: { siteId: 'o', role: 'operator', serial: 'A1B2C' } }),
    ]);
  });
});
