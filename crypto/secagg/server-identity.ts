/**
 * The coordinator's view of who signed what: each member's certificate, checked once against the
 * federation CA and CRL (role participant, CN = the authenticated site id), then its public key cached
 * for every signature of the round. Revocation alone is re-read on demand (`isRevoked`): the trust
 * anchor's set is live, and a certificate revoked during the round must stop counting toward its commit.
 */
import { X509Certificate, type KeyObject } from 'node:crypto';
import { normalizeSerial, verifyPeerCertificate, type TrustAnchor } from '../certificate.js';
import { CryptoError } from '../errors.js';
import { secaggDenied } from './errors.js';

export class SiteKeys {
  private readonly keys = new Map<string, KeyObject>();
  private readonly serials = new Map<string, string>();

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
      const { publicKey, serial } = verifyPeerCertificate(certificate, this.trust, this.at, { siteId, role: 'participant' });
      this.keys.set(siteId, publicKey);
      this.serials.set(siteId, serial);
      return publicKey;
    } catch (cause) {
      const reason = cause instanceof CryptoError ? cause.reason : 'CERTIFICATE_INVALID';
      throw secaggDenied(reason, `the certificate of site ${JSON.stringify(siteId)} was rejected: ${cause instanceof Error ? cause.message : String(cause)}`, { stage, site: siteId, cause });
    }
  }

  /** Whether the certificate of `siteId` is in the trust anchor's revocation set now (false for an unknown site). */
  isRevoked(siteId: string): boolean {
    let serial = this.serials.get(siteId);
    if (serial === undefined) {
      const certificate = this.certificates.get(siteId);
      if (certificate === undefined) return false;
      try {
        serial = normalizeSerial(new X509Certificate(typeof certificate === 'string' ? certificate : Buffer.from(certificate)).serialNumber);
      } catch {
        return false; // an unparseable certificate never verifies, so it never signs either
      }
      this.serials.set(siteId, serial);
    }
    return this.trust.revokedSerials.has(serial);
  }

  certificateOf(siteId: string): Uint8Array | string | undefined {
    return this.certificates.get(siteId);
  }
}
