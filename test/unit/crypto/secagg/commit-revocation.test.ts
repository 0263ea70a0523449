/**
 * A revocation during the commit stage (issue 11, item 1): the coordinator's state machine counts a
 * revoked member's commit signature for nothing from the moment the revocation is live - signed before
 * or after, the status, the quorum and the ledger record leave it out - and refuses one sent afterwards.
 * The trust anchor's revocation set is read live, as the coordinator's RevocationRegistry hands it over.
 */
import { X509Certificate } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import type { TrustAnchor } from '../../../../crypto/certificate.js';
import { utf8 } from '../../../../crypto/bytes.js';
import { sha256 } from '../../../../crypto/hash.js';
import { encodeAggregate } from '../../../../crypto/secagg/aggregate-codec.js';
import type { CommitHashes, CommitSignatureMessage } from '../../../../crypto/secagg/messages.js';
import { RoundDriver, cachedFederation, testRoundConfig, type TestFederation } from '../../../support/secagg-sim.js';

let federation: TestFederation;

beforeAll(() => {
  federation = cachedFederation(5, 'rvk-');
}, 300_000);

/** A round of five sites unmasked and at its commit stage, every signature made but none delivered. */
function roundAtCommit(revoked: Set<string>): { driver: RoundDriver; signatures: Map<string, CommitSignatureMessage>; survivors: string[] } {
  // The set behind the getter changes while the round runs, like RevocationRegistry.trustAnchor's.
  const trust: TrustAnchor = {
    caCertificate: new X509Certificate(federation.caPem),
    get revokedSerials(): ReadonlySet<string> {
      return revoked;
    },
  };
  const config = testRoundConfig({ participants: federation.sites.map((site) => site.siteId), degree: 4, threshold: 3, parameters: 8 });
  const driver = new RoundDriver({ federation, config, serverOptions: { trust } });
  const aggregate = driver.unmask(driver.signConsistency(driver.maskInputs(driver.dealShares(driver.revealNonces(driver.advertise())))));
  const hashes: CommitHashes = {
    previousModelHash: config.modelHash,
    aggregateHash: sha256(encodeAggregate(aggregate.sum)),
    newModelHash: sha256(utf8('model r+1')),
    optimizerStateHash: sha256(utf8('optimiser state r+1')),
  };
  const request = driver.server.beginCommit(hashes);
  const signatures = new Map(aggregate.maskedSurvivors.map((siteId) => [siteId, driver.client(siteId).commit(request, hashes)] as const));
  return { driver, signatures, survivors: [...aggregate.maskedSurvivors] };
}

const serialOf = (siteId: string): string => federation.site(siteId).serial;

describe('commit signatures of revoked members', () => {
  it('stop counting the moment the revocation is live: the status, the quorum and the record leave the signer out', () => {
    const revoked = new Set<string>();
    const { driver, signatures, survivors } = roundAtCommit(revoked);
    for (const [siteId, signature] of signatures) driver.server.receive(siteId, signature);
    expect(driver.server.commitStatus()).toMatchObject({ committed: true, required: 3, signers: survivors, revoked: [] });

    // Revoked after it signed (between the last signature and the append).
    const late = survivors[1] as string;
    revoked.add(serialOf(late));
    const status = driver.server.commitStatus();
    expect(status).toMatchObject({ committed: true, revoked: [late] });
    expect(status.signers).not.toContain(late);
    expect(driver.server.commitRecord().signatures.map((entry) => entry.siteId)).toEqual(survivors.filter((siteId) => siteId !== late));
  });

  it('takes the quorum away when too few unrevoked signers remain, and the record is refused', () => {
    const revoked = new Set<string>();
    const { driver, signatures, survivors } = roundAtCommit(revoked);
    for (const siteId of survivors.slice(0, 3)) driver.server.receive(siteId, signatures.get(siteId) as CommitSignatureMessage);
    expect(driver.server.commitStatus().committed).toBe(true);
    revoked.add(serialOf(survivors[0] as string));
    expect(driver.server.commitStatus()).toMatchObject({ committed: false, required: 3, signers: survivors.slice(1, 3), revoked: [survivors[0]] });
    expect(() => driver.server.commitRecord()).toThrow(expect.objectContaining({ reason: 'COMMIT_QUORUM_NOT_REACHED' }));
    // The members not revoked can still bring the quorum back.
    driver.server.receive(survivors[3] as string, signatures.get(survivors[3] as string) as CommitSignatureMessage);
    expect(driver.server.commitRecord().signatures.map((entry) => entry.siteId)).toEqual(survivors.slice(1, 4));
  });

  it('refuses a commit signature sent after the revocation, with CERTIFICATE_REVOKED', () => {
    const revoked = new Set<string>();
    const { driver, signatures, survivors } = roundAtCommit(revoked);
    const siteId = survivors[2] as string;
    revoked.add(serialOf(siteId));
    expect(() => driver.server.receive(siteId, signatures.get(siteId) as CommitSignatureMessage)).toThrow(
      expect.objectContaining({ code: 'PERMISSION_DENIED', reason: 'CERTIFICATE_REVOKED' }),
    );
    expect(driver.server.commitStatus()).toMatchObject({ signers: [], revoked: [siteId] });
  });
});
