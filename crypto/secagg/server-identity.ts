/**
 * The coordinator's view of who signed what: each member's certificate, checked once against the
 * federation CA and CRL (role participant, CN = the authenticated site id), then its public key cached
 * for every signature of the round.
 */
import type { KeyObject } from 'node:crypto';
import { verifyPeerCertificate, type TrustAnchor } from '../certificate.js';
import { CryptoError } from '../errors.js';
import { secaggDenied } from './errors.js';

export class SiteKeys {
  private readonly keys = new Map<string, KeyObject>();

  constructor(
    private readonly certificates: ReadonlyMap<string, Uint8Array | string>,
    private readonly trust: TrustAnchor,
    private readonly at: Date,
  ) {}

  /** The signing key of `siteId`; PERMISSION_DENIED when it has no valid participant certificate. */
  publicKeyOf(siteId: string, stage: string): KeyObject {
    const cached = this.keys.get(siteId);
    if (cached !== undefined) return cached;
    const certificate = this.certificates.get(siteId);
    if (certificate === undefined) {
      throw secaggDenied('CERTIFICATE_MISSING', `no certificate is known for site ${JSON.stringify(siteId)}`, { stage, site: siteId });
    }
    try {
      const { publicKey } = verifyPeerCertificate(certificate, this.trust, this.at, { siteId, role: 'participant' });
      this.keys.set(siteId, publicKey);
      return publicKey;
    } catch (cause) {
      const reason = cause instanceof CryptoError ? cause.reason : 'CERTIFICATE_INVALID';
      throw secaggDenied(reason, `the certificate of site ${JSON.stringify(siteId)} was rejected: ${cause instanceof Error ? cause.message : String(cause)}`, { stage, site: siteId, cause });
    }
  }

  certificateOf(siteId: string): Uint8Array | string | undefined {
    return this.certificates.get(siteId);
  }
}
