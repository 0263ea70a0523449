/** What each transport failure grpc-js reports means, and what to do about it. */
import { describe, expect, it } from 'vitest';
import { connectionFailureDetail, diagnoseConnectionFailure } from '../../../proto/connection-diagnosis.js';

const wrapped = (error: string, note = ''): string => `No connection established. Last error: ${error}. Resolution note: ${note}`;

describe('connection failure diagnosis', () => {
  it('unwraps the node error and drops an empty resolution note', () => {
    expect(connectionFailureDetail(wrapped('Error: connect ECONNREFUSED 127.0.0.1:7443'))).toBe('connect ECONNREFUSED 127.0.0.1:7443');
    expect(connectionFailureDetail(wrapped('Error: getaddrinfo ENOTFOUND fl.example.org', 'DNS resolution failed'))).toBe('getaddrinfo ENOTFOUND fl.example.org (DNS resolution failed)');
    expect(connectionFailureDetail('Connection dropped')).toBe('Connection dropped');
  });

  it.each([
    [wrapped('Error: connect ECONNREFUSED 127.0.0.1:7443'), 'refused', /nothing accepts connections at 10\.0\.0\.7:7443; check that the coordinator is running/],
    [wrapped('Error: getaddrinfo ENOTFOUND fl.example.org'), 'unresolved', /the host name 10\.0\.0\.7 does not resolve/],
    [wrapped('Error: connect ETIMEDOUT 10.0.0.7:7443'), 'unreachable', /no answer from 10\.0\.0\.7:7443: server unreachable; check the address, and that no firewall/],
    [wrapped('Error: connect EHOSTUNREACH 10.0.0.7:7443'), 'unreachable', /server unreachable/],
    [wrapped('Error: self-signed certificate in certificate chain'), 'server-certificate-untrusted', /different federation CAs; use the ca\.pem of the coordinator's federation/],
    [wrapped('Error: unable to get local issuer certificate'), 'server-certificate-untrusted', /not issued by the CA this side trusts \(tls\.ca\)/],
    [wrapped("Error [ERR_TLS_CERT_ALTNAME_INVALID]: Hostname/IP does not match certificate's altnames: Host: fl.example.org. is not in the cert's altnames: DNS:localhost"), 'server-certificate-name', /does not name "fl\.example\.org"; set server_name/],
    [wrapped('Error: certificate has expired'), 'server-certificate-expired', /outside its validity period; renew the coordinator's certificate/],
    [wrapped('Error: certificate revoked'), 'server-certificate-revoked', /revoked, or the CRL is out of date/],
    [wrapped('Error: 80:error:0A00010B:SSL routines:ssl3_get_record:wrong version number'), 'not-tls', /did not answer with TLS: it is not a fedgate coordinator port/],
    [wrapped('Error: Client network socket disconnected before secure TLS connection was established'), 'closed', /closed during the TLS handshake: the coordinator may have refused this side's certificate/],
    [wrapped('Error: 80:error:0A00045C:SSL routines::tlsv13 alert certificate required'), 'client-certificate-refused', /requires a client certificate/],
    [wrapped('Error: 80:error:0A000418:SSL routines::tlsv1 alert unknown ca'), 'client-certificate-refused', /refused this side's certificate/],
  ])('%s', (details, problem, advice) => {
    const diagnosis = diagnoseConnectionFailure(details, { address: '10.0.0.7:7443', ...(problem === 'server-certificate-name' ? { serverName: 'fl.example.org' } : {}) });
    expect(diagnosis.problem).toBe(problem);
    expect(diagnosis.advice).toMatch(advice);
    expect(diagnosis.detail).not.toMatch(/Resolution note|No connection established/);
  });

  it('names the refused address from the error when no address is given', () => {
    expect(diagnoseConnectionFailure(wrapped('Error: connect ECONNREFUSED 127.0.0.1:9')).advice).toContain('nothing accepts connections at 127.0.0.1:9');
  });
});
