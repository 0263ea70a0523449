/**
 * Admin.RevokeParticipant: live revocation without a restart. The steps, in the order that keeps every
 * failure safe to retry, all inside the federation's revocation fence (no ledger append runs meanwhile,
 * and the revocation is dated after every record already written: coordinator/federation/revocation-fence.ts):
 *   1. the CA records the revocation and signs a fresh CRL (RFC 5280 section 5) - the federation's
 *      authoritative list, which `fedgate verify` and the sites' bundles use;
 *   2. the coordinator records the serials in its state directory (they survive a restart);
 *   3. the live set is swapped: the service edge refuses the next call, each later round's SecAggServer
 *      and Graph message carry the serials (sites then reject the certificate, DESIGN.md step 2);
 *   4. open streams of the revoked certificates are ended with UNAUTHENTICATED naming the serial. A
 *      round in progress sees the site disconnect and goes on without it, like any dropout.
 * Revocations are serialised: the CA directory is locked per operation and a CRL number must not race.
 */
import type { Logger } from 'pino';
import type { RevocationFence } from '../federation/revocation-fence.js';
import { FedgateError, fedgateError } from '../../proto/errors.js';
import { canonicalSerial, type PeerIdentity } from '../../proto/identity.js';
import type { RevocationAuthority, IssuedCertificateInfo } from './revocation-authority.js';
import type { RevocationRegistry } from './revocation-registry.js';

export type RevocationTarget = { readonly kind: 'serial'; readonly serial: string } | { readonly kind: 'site'; readonly siteId: string };

export interface RevocationOutcome {
  readonly revoked: readonly { readonly serial: string; readonly commonName: string; readonly role: string; readonly revokedAt: Date; readonly alreadyRevoked: boolean }[];
  readonly crlNumber: bigint;
  /** Site ids whose Session stream was ended. */
  readonly closedSessions: readonly string[];
}

export interface RevocationServiceOptions {
  /** Undefined when coordinator.yaml names no tls.ca_dir: revocation is then refused. */
  readonly authority: RevocationAuthority | undefined;
  readonly registry: RevocationRegistry;
  /** Orders revocations against ledger appends and dates them (the federation's). */
  readonly fence: RevocationFence;
  /** Serial of the certificate of a connected site's session, if it is connected. */
  readonly connectedSerial: (siteId: string) => string | undefined;
  /** Ends every open stream of these serials; returns the site ids whose Session it ended. */
  readonly closeStreams: (serials: ReadonlySet<string>) => readonly string[];
  readonly logger: Logger;
}

export class RevocationService {
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly options: RevocationServiceOptions) {}

  /** Revokes `target` on behalf of `operator`; resolves once the revocation is durable and live. */
  revoke(target: RevocationTarget, operator: PeerIdentity): Promise<RevocationOutcome> {
    const run = this.queue.then(() => this.revokeNow(target, operator));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async revokeNow(target: RevocationTarget, operator: PeerIdentity): Promise<RevocationOutcome> {
    const { authority } = this.options;
    if (authority === undefined) {
      throw fedgateError(
        'FAILED_PRECONDITION',
        'CA_DIR_NOT_CONFIGURED',
        'this coordinator cannot revoke certificates: set tls.ca_dir in coordinator.yaml to the federation CA directory (`fedgate certs init --dir DIR`) and restart it, ' +
          'or revoke offline with `fedgate certs revoke-offline SERIAL --dir DIR` and restart the coordinator with the new crl.pem as tls.crl',
      );
    }
    return this.options.fence.revoke(async (now) => {
      const certificates = await this.resolve(authority, target, now);
      return this.revokeLive(authority, certificates, operator, now);
    });
  }

  /** Steps 1-4 for `certificates`, dated `now`. */
  private async revokeLive(authority: RevocationAuthority, certificates: readonly IssuedCertificateInfo[], operator: PeerIdentity, now: Date): Promise<RevocationOutcome> {
    const { registry, logger } = this.options;
    const result = await authority.revoke(certificates.map((certificate) => certificate.serial), now);
    const crlNumber = result.crlNumber.toString();
    await registry.record(
      result.revoked.map((entry) => ({ serial: canonicalSerial(entry.serial), commonName: entry.commonName, role: entry.role, revokedAt: entry.revokedAt, crlNumber })),
    );
    const serials = new Set(result.revoked.map((entry) => canonicalSerial(entry.serial)));
    const closedSessions = this.options.closeStreams(serials);
    logger.warn(
      { operator: operator.siteId, operatorSerial: operator.serial, serials: [...serials], closedSessions, crlNumber, ca: authority.description },
      'certificates revoked through the Admin API',
    );
    return { revoked: result.revoked.map((entry) => ({ ...entry, serial: canonicalSerial(entry.serial) })), crlNumber: result.crlNumber, closedSessions };
  }

  private async resolve(authority: RevocationAuthority, target: RevocationTarget, now: Date): Promise<IssuedCertificateInfo[]> {
    if (target.kind === 'serial') {
      const serial = parseSerial(target.serial);
      const certificate = await authority.certificate(serial);
      if (certificate === undefined) {
        throw fedgateError('NOT_FOUND', 'UNKNOWN_SERIAL', `the federation CA never issued a certificate with serial ${serial}: check the serial (\`openssl x509 -noout -serial -in CERT.pem\`)`);
      }
      return [certificate];
    }
    const siteId = target.siteId;
    if (siteId.length === 0 || siteId.length > 256) {
      throw fedgateError('INVALID_ARGUMENT', 'INVALID_SITE_ID', `site_id must be a certificate common name of 1 to 256 characters; got ${siteId.length} characters`);
    }
    const certificates = [...(await authority.participantCertificates(siteId, now))];
    // The session's own certificate is revoked even if the CA's records were pruned: it is the one in use.
    const connected = this.options.connectedSerial(siteId);
    if (connected !== undefined && !certificates.some((certificate) => certificate.serial === connected)) {
      const issued = await authority.certificate(connected);
      if (issued !== undefined) certificates.push(issued);
    }
    if (certificates.length === 0) {
      throw fedgateError('NOT_FOUND', 'UNKNOWN_SITE', `the federation CA issued no unexpired participant certificate to site ${JSON.stringify(siteId)}, and no such site is connected`);
    }
    return certificates;
  }
}

function parseSerial(serial: string): string {
  try {
    const canonical = canonicalSerial(serial.trim().replace(/^0x/i, ''));
    if (canonical.length === 0 || canonical.length > 40) throw new RangeError('length');
    return canonical;
  } catch (error) {
    throw new FedgateError(
      'INVALID_ARGUMENT',
      `certificate_serial must be a positive hexadecimal serial of at most 20 octets (RFC 5280 section 4.1.2.2), such as 5F3A09C2...; got ${JSON.stringify(serial.slice(0, 80))}`,
      { reason: 'INVALID_SERIAL', cause: error },
    );
  }
}
