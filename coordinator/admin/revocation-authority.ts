/**
 * What the Admin service needs from the federation CA to revoke a certificate. coordinator/ does not
 * touch the CA's files itself (it may not import certs/); cli/ implements this over the CA directory
 * named by tls.ca_dir in coordinator.yaml (`fedgate certs` layout), and tests may pass their own.
 */

export interface IssuedCertificateInfo {
  /** Canonical serial: upper-case hex without leading zeros. */
  readonly serial: string;
  readonly commonName: string;
  /** participant, coordinator or operator (the certificate's subject OU). */
  readonly role: string;
  readonly notAfter: Date;
}

export interface CaRevocation {
  readonly serial: string;
  readonly commonName: string;
  readonly role: string;
  readonly revokedAt: Date;
  /** The CA had revoked this serial before. */
  readonly alreadyRevoked: boolean;
}

export interface CaRevocationResult {
  readonly revoked: readonly CaRevocation[];
  /** Number of the CRL signed last, which lists every serial of `revoked`. */
  readonly crlNumber: bigint;
}

export interface RevocationAuthority {
  /** Where the CA lives, for log lines (never sent to callers). */
  readonly description: string;
  /** The certificate the CA issued with this serial, or undefined when it issued none. */
  certificate(serial: string): Promise<IssuedCertificateInfo | undefined>;
  /** Participant certificates issued to `siteId` (subject CN) that have not expired at `now`. */
  participantCertificates(siteId: string, now: Date): Promise<readonly IssuedCertificateInfo[]>;
  /** Records the revocation of every serial and signs a fresh CRL; repeating a serial is not an error. */
  revoke(serials: readonly string[], now: Date): Promise<CaRevocationResult>;
}
