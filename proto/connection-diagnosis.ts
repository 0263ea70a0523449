/**
 * What a failed connection to the coordinator means and what to do about it (DESIGN.md anti-pattern:
 * "14 UNAVAILABLE" alone helps nobody, grpc-node #1810). grpc-js reports every transport failure as
 * UNAVAILABLE "No connection established. Last error: <node error>. Resolution note: <often empty>";
 * `diagnoseConnectionFailure` reads the node error and says what failed - nothing listening, no route,
 * a TLS problem with the coordinator's certificate, a server that is no TLS server - and the fix.
 *
 * For a certificate problem, `describeServerCertificate` dials once more without verifying and names
 * the certificate the server presented and its issuer, next to the CA this side trusts: "another
 * federation's CA" becomes visible at a glance.
 */
import { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { connect, type PeerCertificate } from 'node:tls';
import { targetHost } from './target-host.js';

export type ConnectionProblem =
  | 'refused'
  | 'unreachable'
  | 'unresolved'
  | 'server-certificate-untrusted'
  | 'server-certificate-name'
  | 'server-certificate-expired'
  | 'server-certificate-revoked'
  | 'server-not-coordinator'
  | 'client-certificate-refused'
  | 'not-tls'
  | 'closed'
  | 'unknown';

export interface ConnectionDiagnosis {
  readonly problem: ConnectionProblem;
  /** The underlying error, without grpc-js's wrapper (and without an empty "Resolution note"). */
  readonly detail: string;
  /** What failed and what to do, in words. */
  readonly advice: string;
}

/** The certificate problems a look at the server's certificate (describeServerCertificate) explains. */
export const SERVER_CERTIFICATE_PROBLEMS: ReadonlySet<ConnectionProblem> = new Set([
  'server-certificate-untrusted',
  'server-certificate-name',
  'server-certificate-expired',
  'server-certificate-revoked',
  'server-not-coordinator',
]);

/** The node error inside grpc-js's "No connection established. Last error: ... Resolution note: ..." text. */
export function connectionFailureDetail(details: string): string {
  const match = /Last error: (?:Error(?: \[[A-Z_]+\])?: )?([\s\S]*?)\.?\s*Resolution note: ?([\s\S]*)$/.exec(details);
  if (match === null) return details.replace(/\.?\s*Resolution note: ?$/, '').trim();
  const [, error = '', note = ''] = match;
  return note.trim() === '' ? error.trim() : `${error.trim()} (${note.trim()})`;
}

/**
 * Reads an UNAVAILABLE status's details. `address` is what was dialled and `serverName` the name the
 * certificate must carry when set; both only make the advice concrete.
 */
export function diagnoseConnectionFailure(details: string, context: { readonly address?: string; readonly serverName?: string } = {}): ConnectionDiagnosis {
  const detail = connectionFailureDetail(details);
  const where = context.address ?? "the coordinator's address";
  const host = context.address === undefined ? undefined : targetHost(context.address);
  const diagnosis = (problem: ConnectionProblem, advice: string): ConnectionDiagnosis => ({ problem, detail, advice });
  if (/ECONNREFUSED/.test(detail)) {
    const dialled = context.address ?? /ECONNREFUSED (\S+)/.exec(detail)?.[1] ?? where;
    return diagnosis('refused', `connection refused: nothing accepts connections at ${dialled}; check that the coordinator is running and listens there (its log says "coordinator listening" with the address)`);
  }
  if (/ENOTFOUND|EAI_AGAIN|getaddrinfo/.test(detail)) {
    return diagnosis('unresolved', `the host name${host === undefined ? '' : ` ${host}`} does not resolve: check the coordinator address and this machine's DNS`);
  }
  if (/ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|EADDRNOTAVAIL|timed out/i.test(detail)) {
    return diagnosis('unreachable', `no answer from ${where}: server unreachable; check the address, and that no firewall blocks this machine from that port`);
  }
  if (/alert certificate required/i.test(detail)) {
    return diagnosis('client-certificate-refused', "TLS: the server requires a client certificate: configure this side's certificate and key (tls.cert, tls.key)");
  }
  if (/alert (unknown ca|bad certificate|certificate expired|certificate revoked|certificate unknown|unsupported certificate)/i.test(detail)) {
    return diagnosis(
      'client-certificate-refused',
      "TLS: the server refused this side's certificate: it must be issued by the federation CA, unexpired and unrevoked; the coordinator's log (\"TLS handshake refused\") names the certificate",
    );
  }
  if (/self[- ]signed|unable to get (local )?issuer|unable to verify the first certificate|unable to get issuer|UNABLE_TO_|SELF_SIGNED/i.test(detail)) {
    return diagnosis(
      'server-certificate-untrusted',
      "TLS: this side could not verify the server certificate: it was not issued by the CA this side trusts (tls.ca), so the coordinator and this side belong to different federation CAs; use the ca.pem of the coordinator's federation (the bundle `fedgate certs issue` made with that CA), or check that the address is the right coordinator",
    );
  }
  if (/Hostname\/IP does not match|ERR_TLS_CERT_ALTNAME_INVALID/i.test(detail)) {
    const expected = context.serverName ?? host;
    return diagnosis(
      'server-certificate-name',
      `TLS: this side could not verify the server certificate: it does not name ${expected === undefined ? 'the host dialled' : `"${expected}"`}; set server_name to a name the certificate carries, or issue the coordinator a certificate for it (\`fedgate certs issue coordinator --host ${expected ?? 'HOST'}\`)`,
    );
  }
  if (/certificate has expired|certificate is not yet valid|CERT_HAS_EXPIRED|CERT_NOT_YET_VALID/i.test(detail)) {
    return diagnosis(
      'server-certificate-expired',
      "TLS: this side could not verify the server certificate: it is outside its validity period; renew the coordinator's certificate (`fedgate certs renew coordinator NAME`), and check this machine's clock",
    );
  }
  if (/certificate revoked|CERT_REVOKED|CRL has expired|CRL is not yet valid|unable to get certificate CRL/i.test(detail)) {
    return diagnosis(
      'server-certificate-revoked',
      "TLS: this side could not verify the server certificate against its CRL (tls.crl): the coordinator's certificate is revoked, or the CRL is out of date; renew the certificate, or fetch a fresh crl.pem (`fedgate certs crl`)",
    );
  }
  if (/has role .*expected "coordinator"|server certificate of/i.test(detail)) {
    return diagnosis('server-not-coordinator', `TLS: the server at ${where} holds no coordinator certificate: check the coordinator address`);
  }
  if (/wrong version number|packet length too long|http request|unknown protocol|record layer failure|ALPN/i.test(detail)) {
    return diagnosis('not-tls', `the server at ${where} did not answer with TLS: it is not a fedgate coordinator port (a plaintext or HTTP server?); check the address`);
  }
  if (/ECONNRESET|socket hang up|disconnected before secure TLS connection|Connection dropped|Connection closed|EPIPE/i.test(detail)) {
    return diagnosis(
      'closed',
      `the connection to ${where} closed during the TLS handshake: the coordinator may have refused this side's certificate (its log says "TLS handshake refused" with the reason), or something between the two closed it`,
    );
  }
  return diagnosis('unknown', 'server unreachable, TLS handshake refused, or the connection dropped');
}

export interface ServerCertificateDescription {
  /** "CN=coordinator, OU=coordinator (serial 1A2B..., valid 2025-01-01 to 2026-01-01, DNS:localhost, IP Address:127.0.0.1)". */
  readonly certificate: string;
  /** "CN=Other CA". */
  readonly issuer: string;
  /** Whether the server's certificate chains to `caPem`. */
  readonly issuedByTrustedCa: boolean;
  /** "CN=fedgate federation CA": the CA this side trusts. */
  readonly trustedCa: string;
  /** All of it in one sentence. */
  readonly text: string;
}

/**
 * Dials `address` once with TLS, without verifying, and says which certificate the server presented,
 * who issued it, and whether that is the CA this side trusts. No application data is sent. Resolves
 * undefined when the server cannot be reached or sends no certificate within `timeoutMs`.
 */
export function describeServerCertificate(
  address: string,
  tls: { readonly caPem: string | Buffer; readonly certPem: string | Buffer; readonly keyPem: string | Buffer; readonly serverName?: string },
  timeoutMs = 5000,
): Promise<ServerCertificateDescription | undefined> {
  const host = targetHost(address);
  const port = Number(address.slice(address.lastIndexOf(':') + 1));
  const sentName = tls.serverName ?? host;
  const trustedCa = describeName(new X509Certificate(tls.caPem).subject);
  return new Promise((resolve) => {
    const socket = connect({
      host,
      port,
      // The probe presents this side's own certificate, so the coordinator's log shows who it is.
      cert: tls.certPem,
      key: tls.keyPem,
      ca: tls.caPem,
      rejectUnauthorized: false,
      minVersion: 'TLSv1.3',
      ALPNProtocols: ['h2'],
      ...(isIP(sentName) === 0 ? { servername: sentName } : {}),
    });
    const finish = (description: ServerCertificateDescription | undefined): void => {
      clearTimeout(timer);
      // end(), not destroy(): this side's last handshake flight (its certificate) still reaches the server.
      socket.end();
      setTimeout(() => socket.destroy(), 1000).unref();
      resolve(description);
    };
    const timer = setTimeout(() => finish(undefined), timeoutMs);
    socket.once('error', () => finish(undefined));
    socket.once('secureConnect', () => {
      const peer = socket.getPeerCertificate(false);
      if (peer === null || Object.keys(peer).length === 0) {
        finish(undefined);
        return;
      }
      const ca = new X509Certificate(tls.caPem);
      let issuedByTrustedCa = false;
      try {
        const leaf = new X509Certificate(peer.raw);
        issuedByTrustedCa = leaf.checkIssued(ca) && leaf.verify(ca.publicKey);
      } catch {
        issuedByTrustedCa = false;
      }
      const certificate = `${describeName(peer.subject)} (serial ${peer.serialNumber}, valid ${isoDate(peer.valid_from)} to ${isoDate(peer.valid_to)}${peer.subjectaltname === undefined ? '' : `, ${peer.subjectaltname}`})`;
      const issuer = describeName(peer.issuer);
      const text = issuedByTrustedCa
        ? `the coordinator at ${address} presented ${certificate}, issued by ${issuer}, the CA this side trusts`
        : `the coordinator at ${address} presented ${certificate}, issued by ${issuer}; this side trusts only ${trustedCa} (tls.ca)`;
      finish({ certificate, issuer, issuedByTrustedCa, trustedCa, text });
    });
  });
}

/** "CN=coordinator, OU=coordinator" from a parsed subject or X509Certificate's "CN=...\nOU=..." text. */
export function describeName(name: PeerCertificate['subject'] | string): string {
  if (typeof name === 'string') return name.split('\n').filter((part) => part !== '').join(', ');
  return Object.entries(name)
    .map(([key, value]) => `${key}=${Array.isArray(value) ? value.join('+') : String(value)}`)
    .join(', ');
}

function isoDate(text: string): string {
  const date = new Date(text);
  return Number.isNaN(date.getTime()) ? text : date.toISOString().slice(0, 10);
}
