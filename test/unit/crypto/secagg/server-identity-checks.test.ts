/**
 * The coordinator's view of who signed (crypto/secagg/server-identity.ts): a site without a certificate,
 * with one that does not parse, that names another site or has another role, is refused with its reason
 * code and blamed; a certificate is checked once per round, and revocation is read from the certificate
 * itself when the site's key was never looked up, for PEM and DER alike.
 */
import { secaggRefusal as refusal } from '../../../support/secagg-refusal.js';
import { X509Certificate } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import type { TrustAnchor } from '../../../../crypto/certificate.js';
import { SiteKeys } from '../../../../crypto/secagg/server-identity.js';
import { cachedFederation, type TestFederation } from '../../../support/secagg-sim.js';

let federation: TestFederation;

beforeAll(() => {
  federation = cachedFederation(3, 'sid-');
}, 300_000);

/** Site 0 by PEM, site 1 by DER, site 2 by PEM; 'garbled' holds bytes that are no certificate. */
function keysWith(revoked: Set<string>): SiteKeys {
  const [pem0, der1, pem2] = federation.sites as [typeof federation.sites[0], typeof federation.sites[0], typeof federation.sites[0]];
  const certificates = new Map<string, Uint8Array | string>([
    [pem0.siteId, pem0.certificatePem],
    [der1.siteId, new Uint8Array(new X509Certificate(der1.certificatePem).raw)],
    [pem2.siteId, pem2.certificatePem],
    ['garbled', new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x00])],
  ]);
  const trust: TrustAnchor = { caCertificate: new X509Certificate(federation.caPem), revokedSerials: revoked };
  return new SiteKeys(certificates, trust, new Date());
}

const ids = (): string[] => federation.sites.map((site) => site.siteId);

describe('SiteKeys', () => {
  it('refuses a site it has no certificate for (CERTIFICATE_MISSING), naming the stage and the site', () => {
    const error = refusal(() => keysWith(new Set()).publicKeyOf('stranger', 'share_keys'));
    expect(error).toMatchObject({ code: 'PERMISSION_DENIED', reason: 'CERTIFICATE_MISSING', stage: 'share_keys', site: 'stranger' });
    expect(error.message).toContain('no certificate is known for site "stranger"');
  });

  it('refuses an unparseable certificate with the certificate check\'s reason, naming the stage and the site', () => {
    const error = refusal(() => keysWith(new Set()).publicKeyOf('garbled', 'commit'));
    expect(error).toMatchObject({ code: 'PERMISSION_DENIED', reason: 'CERTIFICATE_MALFORMED', stage: 'commit', site: 'garbled' });
    expect(error.cause).toBeDefined();
    expect(error.message).toMatch(/^the certificate of site "garbled" was rejected: \S/);
  });

  it("refuses another site's valid certificate registered under a site's id (CERTIFICATE_IDENTITY)", () => {
    const [a, b] = ids() as [string, string];
    const keys = new SiteKeys(new Map([[a, federation.site(b).certificatePem]]), federation.trust, new Date());
    const error = refusal(() => keys.publicKeyOf(a, 'advertise_keys'));
    expect(error).toMatchObject({ code: 'PERMISSION_DENIED', reason: 'CERTIFICATE_IDENTITY', stage: 'advertise_keys', site: a });
    expect(error.message).toContain(`identifies site ${JSON.stringify(b)}, expected ${JSON.stringify(a)}`);
  });

  it("refuses a site's certificate of another role than participant (CERTIFICATE_ROLE)", () => {
    const a = ids()[0] as string;
    const coordinator = federation.issue(a, { role: 'coordinator' });
    const keys = new SiteKeys(new Map([[a, coordinator.certificatePem]]), federation.trust, new Date());
    const error = refusal(() => keys.publicKeyOf(a, 'advertise_keys'));
    expect(error).toMatchObject({ code: 'PERMISSION_DENIED', reason: 'CERTIFICATE_ROLE', stage: 'advertise_keys', site: a });
  });

  it('checks a certificate once per round: revoked later, the key stays for the round while isRevoked says so', () => {
    // The round goes on with the key it admitted (its Unmask answer may still be needed); revocation
    // counts where it is read live, at the commit (server-commit-checks.test.ts).
    const [a] = ids() as [string];
    const revoked = new Set<string>();
    const keys = keysWith(revoked);
    const key = keys.publicKeyOf(a, 'advertise_keys');
    revoked.add(federation.site(a).serial);
    expect(keys.publicKeyOf(a, 'unmask')).toBe(key);
    expect(keys.isRevoked(a)).toBe(true);
  });

  it('returns the key of a valid certificate, PEM or DER', () => {
    const keys = keysWith(new Set());
    for (const siteId of ids()) {
      const key = keys.publicKeyOf(siteId, 'advertise_keys');
      expect(key.equals(federation.site(siteId).publicKey)).toBe(true);
    }
  });

  it('reads revocation from the certificate of a site whose key was never looked up (PEM and DER)', () => {
    const [a, b, c] = ids() as [string, string, string];
    const revoked = new Set([federation.site(a).serial, federation.site(b).serial]);
    const keys = keysWith(revoked);
    expect([keys.isRevoked(a), keys.isRevoked(b), keys.isRevoked(c)]).toEqual([true, true, false]);
    expect(keys.isRevoked('stranger')).toBe(false);
    expect(keys.isRevoked('garbled')).toBe(false);
    // Read live: a revocation added later counts, also for a serial already cached.
    revoked.add(federation.site(c).serial);
    expect(keys.isRevoked(c)).toBe(true);
    revoked.delete(federation.site(a).serial);
    expect(keys.isRevoked(a)).toBe(false);
  });
});
