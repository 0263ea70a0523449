/**
 * The server's side of a connection that never became a call: TLS handshakes that failed, and clients
 * whose certificate the federation CA did not issue. grpc-js handles neither visibly (it traces a failed
 * handshake at most; a client with an untrusted certificate is refused per call by requireVerifiedPeer),
 * so a site with another federation's bundle retried for ever while the coordinator's log said nothing.
 *
 * grpc-js keeps the http2 servers bindAsync creates in its private `http2Servers` map (the same access
 * as raiseConnectionWindows in server.ts); each gets a 'tlsClientError' and a 'secureConnection'
 * listener that report a HandshakeFailure. Reporting only: what is accepted does not change.
 */
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Server } from '@grpc/grpc-js';
import { describeName } from './connection-diagnosis.js';

export type HandshakeProblem =
  /** The client closed the connection during the handshake: usually it did not trust our certificate. */
  | 'client-closed'
  /** The client sent a TLS alert refusing our certificate. */
  | 'client-refused-certificate'
  /** Not TLS (plaintext gRPC, HTTP), or a TLS version or cipher we do not speak. */
  | 'not-tls'
  /** A client certificate the federation CA did not issue. */
  | 'client-certificate-untrusted'
  /** A client certificate outside its validity period. */
  | 'client-certificate-expired'
  /** No client certificate at all. */
  | 'no-client-certificate'
  | 'tls-error';

export interface HandshakeFailure {
  /** host:port of the client. */
  readonly peer: string;
  /** The client's address alone (rate limits go by it). */
  readonly peerHost: string;
  readonly problem: HandshakeProblem;
  /** What happened and what to do, in words. */
  readonly detail: string;
  /** The client certificate, when it sent one: subject, issuer, serial. */
  readonly certificate?: { readonly subject: string; readonly issuer: string; readonly serial: string };
}

const watched = new WeakSet<object>();

/**
 * Reports each failed handshake and each connection with an unverified client certificate of every
 * http2 server `server` has bound. Call after bindServer. False when this grpc-js keeps no such map.
 */
export function watchHandshakeFailures(server: Server, onFailure: (failure: HandshakeFailure) => void): boolean {
  const http2Servers: unknown = Reflect.get(server, 'http2Servers');
  if (!(http2Servers instanceof Map)) return false;
  for (const http2Server of http2Servers.keys()) {
    if (!(http2Server instanceof EventEmitter) || watched.has(http2Server)) continue;
    watched.add(http2Server);
    // A socket whose handshake failed no longer knows its peer: note it when the TCP connection arrives.
    http2Server.prependListener('connection', (socket: Socket) => {
      if (socket.remoteAddress !== undefined) peers.set(socket, { host: socket.remoteAddress, ...(socket.remotePort === undefined ? {} : { port: socket.remotePort }) });
    });
    http2Server.on('tlsClientError', (error: Error & { code?: string }, socket: TLSSocket) => onFailure(handshakeError(error, socket)));
    http2Server.on('secureConnection', (socket: TLSSocket) => {
      if (!socket.authorized) onFailure(unverifiedClient(socket));
    });
  }
  return true;
}

const peers = new WeakMap<object, { host: string; port?: number }>();

/** Where a socket comes from: its own address, or the one noted for its TCP socket (`_parent`) on arrival. */
function peerOf(socket: TLSSocket): { peer: string; peerHost: string } {
  const parent: unknown = Reflect.get(socket, '_parent');
  const noted = (typeof parent === 'object' && parent !== null ? peers.get(parent) : undefined) ?? peers.get(socket);
  const host = socket.remoteAddress ?? noted?.host ?? 'an unknown address';
  const port = socket.remotePort ?? noted?.port;
  return { peer: port === undefined ? host : `${host.includes(':') ? `[${host}]` : host}:${port}`, peerHost: host };
}

function handshakeError(error: Error & { code?: string }, socket: TLSSocket): HandshakeFailure {
  const where = peerOf(socket);
  const text = `${error.code ?? ''} ${error.message}`;
  if (/alert (unknown ca|bad certificate|certificate unknown|certificate expired|certificate revoked|unsupported certificate)/i.test(text)) {
    return {
      ...where,
      problem: 'client-refused-certificate',
      detail: `the client refused the coordinator's certificate (${error.message}): it trusts another CA, or the certificate lacks the name it dialled or has expired; the client's own log names the problem`,
    };
  }
  if (/http request|wrong version number|unknown protocol|unsupported protocol|no shared cipher|version too low|inappropriate fallback|no application protocol/i.test(text)) {
    return { ...where, problem: 'not-tls', detail: `the client does not speak TLS 1.3 with ALPN h2 (${error.message}): a plaintext or HTTP client, or an old TLS stack, dialled the coordinator's port` };
  }
  if (/ECONNRESET|socket hang up|EPIPE|disconnected|ETIMEDOUT/i.test(text)) {
    return {
      ...where,
      problem: 'client-closed',
      detail: `the client closed the connection during the TLS handshake (${error.message}): most likely it does not accept the coordinator's certificate (another federation's ca.pem, a server name the certificate lacks, an expired certificate); the client's own log names the problem`,
    };
  }
  return { ...where, problem: 'tls-error', detail: `the TLS handshake failed: ${error.message}` };
}

function unverifiedClient(socket: TLSSocket): HandshakeFailure {
  const where = peerOf(socket);
  const peer = socket.getPeerCertificate(false);
  const reason = String(socket.authorizationError ?? 'not verified');
  if (peer === null || Object.keys(peer).length === 0) {
    return { ...where, problem: 'no-client-certificate', detail: 'the client sent no certificate: its calls are refused; it needs a certificate issued by the federation CA (`fedgate certs issue`)' };
  }
  const certificate = { subject: describeName(peer.subject), issuer: describeName(peer.issuer), serial: peer.serialNumber };
  if (/EXPIRED|NOT_YET_VALID|expired|not yet valid/.test(reason)) {
    return {
      ...where,
      problem: 'client-certificate-expired',
      certificate,
      detail: `the client certificate ${certificate.subject} (serial ${certificate.serial}) is outside its validity period (${peer.valid_from} to ${peer.valid_to}): its calls are refused; renew it (\`fedgate certs renew\`)`,
    };
  }
  return {
    ...where,
    problem: 'client-certificate-untrusted',
    certificate,
    detail: `the client certificate ${certificate.subject} (serial ${certificate.serial}) was issued by ${certificate.issuer}, not by the federation CA (${reason}): its calls are refused; a site or operator with another federation's bundle, or a certificate not made by \`fedgate certs issue\` of this CA`,
  };
}
