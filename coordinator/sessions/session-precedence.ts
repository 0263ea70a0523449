/**
 * Which session holds a site id when a second one opens with the same certificate CN. The site id is
 * the identity every round signature is bound to, and the CA may have issued more than one certificate
 * to it (renewal keeps the old one valid until it expires), so "the latest Hello wins" would let any
 * holder of such a certificate take a live site's place in its round. The rule, per identity:
 *
 *  - the same certificate (byte for byte) as the live session: a reconnect of the same holder (its old
 *    connection may be half-dead). The new session takes the slot; the old one is ended and, if the site
 *    was in a round, counts as a dropout of that round (the daemon abandons a round on reconnect anyway).
 *  - another certificate issued later (a later notBefore: a renewal) while the live session is in no
 *    open round: the renewed certificate takes the slot, the old session is ended.
 *  - another certificate issued later while the live session is a member of the open round: refused,
 *    retryable; the renewed daemon gets in once the round is over. A round is never disturbed by a swap.
 *  - another certificate issued at the same time or earlier: refused; the live session keeps the slot.
 *    If nobody renewed that site, someone holds a second certificate for its name: revoke that serial.
 */
import { X509Certificate } from 'node:crypto';
import { fedgateError, type FedgateError } from '../../proto/errors.js';

export interface SessionCertificate {
  readonly siteId: string;
  readonly serial: string;
  /** DER of the certificate the session's TLS connection presented. */
  readonly certificate: Buffer;
}

export type SessionPrecedence =
  | { readonly kind: 'replace'; readonly why: 'reconnect' | 'renewal' }
  | { readonly kind: 'refuse'; readonly why: 'in_round' | 'not_newer'; readonly error: FedgateError };

/** What happens to `candidate` given the live session of the same site id (`liveInRound`: a member of the open round). */
export function sessionPrecedence(live: SessionCertificate, candidate: SessionCertificate, liveInRound: boolean): SessionPrecedence {
  if (live.certificate.equals(candidate.certificate)) return { kind: 'replace', why: 'reconnect' };
  const liveIssued = notBefore(live.certificate);
  const candidateIssued = notBefore(candidate.certificate);
  const site = `site ${live.siteId} is connected with certificate serial ${live.serial} (valid from ${liveIssued.toISOString()})`;
  const other = `certificate serial ${candidate.serial} (valid from ${candidateIssued.toISOString()})`;
  if (candidateIssued.getTime() > liveIssued.getTime()) {
    if (!liveInRound) return { kind: 'replace', why: 'renewal' };
    return {
      kind: 'refuse',
      why: 'in_round',
      error: fedgateError(
        'ALREADY_EXISTS',
        'SITE_IN_ROUND',
        `${site} and takes part in the open round; the session with the newer ${other} is accepted once that round is over: retry (the daemon does)`,
      ),
    };
  }
  return {
    kind: 'refuse',
    why: 'not_newer',
    error: fedgateError(
      'ALREADY_EXISTS',
      'SITE_ALREADY_CONNECTED',
      `${site}; a second session with ${other}, not issued later, is refused: a renewed certificate replaces the old one between rounds, ` +
        'and a certificate nobody renewed for this site should be revoked (`fedgate certs revoke SERIAL`)',
    ),
  };
}

function notBefore(der: Buffer): Date {
  try {
    return new Date(new X509Certificate(der).validFrom);
  } catch {
    return new Date(0); // no certificate recorded: never newer than one that has
  }
}
