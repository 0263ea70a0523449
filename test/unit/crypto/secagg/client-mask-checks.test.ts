/**
 * A neighbour whose advertised mask key s_pk (or share-encryption key c_pk) is a low-order X25519 point.
 * A pairwise mask seed derived from it would be the all-zero shared secret - a seed anyone can compute, so
 * the mask it adds to the site's input hides nothing; shares sealed under it would be readable by anyone.
 * The site checks both advertised keys when it verifies its neighbours at the graph stage, and leaves the
 * round there, before it deals a share or derives a mask.
 *
 * The liar's advert is signed with its own key and committed to in L (the coordinator checks nothing
 * here: uncheckedKeyList), and it signs the H(L) of that L.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { signMessage } from '../../../../crypto/signature.js';
import { SecAggClient } from '../../../../crypto/secagg/client.js';
import { roundConfigHash } from '../../../../crypto/secagg/config-codec.js';
import { SecAggError } from '../../../../crypto/secagg/errors.js';
import type { AdvertiseKeysMessage, NonceRevealMessage } from '../../../../crypto/secagg/messages.js';
import { advertiseTranscript, keyListHash, keyListTranscript, roundContext } from '../../../../crypto/secagg/transcript.js';
import { cachedFederation, testPolicy, testRoundConfig, uncheckedGraphMessage, uncheckedKeyList, type TestFederation } from '../../../support/secagg-sim.js';

let federation: TestFederation;
const ids = (): string[] => federation.sites.map((site) => site.siteId);
// Generating every site's RSA key is slow on a busy machine: allow it time, once per file.
beforeAll(() => {
  federation = cachedFederation(8, 'mc-');
}, 300_000);

describe('a neighbour that advertises a low-order mask key', () => {
  it('makes each of its neighbours leave the round at the graph stage, before dealing a share', () => {
    const liar = 'mc-05';
    const config = testRoundConfig({ participants: ids(), degree: 4, threshold: 3, parameters: 64 });
    const context = roundContext(config);
    const clients = new Map(ids().map((siteId) => [siteId, new SecAggClient({ siteId, signingKey: federation.site(siteId).privateKey, policy: testPolicy(), trust: federation.trust })]));
    const client = (siteId: string): SecAggClient => clients.get(siteId) as SecAggClient;
    const genuineAdverts = new Map<string, AdvertiseKeysMessage>(ids().map((siteId) => [siteId, client(siteId).advertiseKeys(config)]));
    const genuine = genuineAdverts.get(liar) as AdvertiseKeysMessage;
    const lowOrder = new Uint8Array(32); // u = 0, a point of order 1 or 2 on Curve25519's twist
    const forged: AdvertiseKeysMessage = {
      ...genuine,
      maskPublicKey: lowOrder,
      signature: signMessage(federation.site(liar).privateKey, advertiseTranscript(context, genuine.cipherPublicKey, lowOrder, genuine.nonceCommitment)),
    };
    const adverts = new Map([...genuineAdverts, [liar, forged]]);
    const keyList = uncheckedKeyList(config.roundId, adverts);
    const reveals = new Map<string, NonceRevealMessage>();
    for (const siteId of ids()) if (siteId !== liar) reveals.set(siteId, client(siteId).revealNonce(keyList));
    const liarReveal = client(liar).revealNonce(uncheckedKeyList(config.roundId, genuineAdverts));
    reveals.set(liar, { ...liarReveal, keyListSignature: signMessage(federation.site(liar).privateKey, keyListTranscript(context, keyListHash(keyList.entries))) });
    const base = { federation, roundId: config.roundId, roundConfigHash: roundConfigHash(config), degree: 4, keyList, adverts, reveals };
    const victim = uncheckedGraphMessage(liar, base).neighbours[0]?.siteId as string;
    const victimNeighbours = uncheckedGraphMessage(victim, base).neighbours.map((record) => record.siteId);
    expect(victimNeighbours).toContain(liar);

    // The victim refuses the graph that names the liar as its neighbour: it deals no share (no ShareKeys
    // message leaves it) and it will never derive a pairwise mask seed from the all-zero secret.
    let error: unknown;
    try {
      client(victim).shareKeys(uncheckedGraphMessage(victim, base), new Date());
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(SecAggError);
    expect(error).toMatchObject({ code: 'FAILED_PRECONDITION', reason: 'X25519_LOW_ORDER' });
    expect((error as Error).message).toContain(`neighbour "${liar}" advertised a low-order X25519 key for s`);
    expect(client(victim).phase).toBe('failed');
    expect(client(victim).heldSecrets().every((buffer) => buffer.every((byte) => byte === 0))).toBe(true);
    // A site the liar is not a neighbour of goes on as before.
    const bystander = ids().find((siteId) => siteId !== liar && !uncheckedGraphMessage(siteId, base).neighbours.some((record) => record.siteId === liar)) as string;
    expect(() => client(bystander).shareKeys(uncheckedGraphMessage(bystander, base), new Date())).not.toThrow();
  });

  it('refuses a low-order share-encryption key c at the graph stage as well', () => {
    const liar = 'mc-02';
    const config = testRoundConfig({ participants: ids(), degree: 4, threshold: 3, parameters: 64 });
    const context = roundContext(config);
    const clients = new Map(ids().map((siteId) => [siteId, new SecAggClient({ siteId, signingKey: federation.site(siteId).privateKey, policy: testPolicy(), trust: federation.trust })]));
    const client = (siteId: string): SecAggClient => clients.get(siteId) as SecAggClient;
    const genuineAdverts = new Map<string, AdvertiseKeysMessage>(ids().map((siteId) => [siteId, client(siteId).advertiseKeys(config)]));
    const genuine = genuineAdverts.get(liar) as AdvertiseKeysMessage;
    // u = 1: the point of order 4 on the curve itself.
    const lowOrder = Uint8Array.from({ length: 32 }, (_, i) => (i === 0 ? 1 : 0));
    const forged: AdvertiseKeysMessage = {
      ...genuine,
      cipherPublicKey: lowOrder,
      signature: signMessage(federation.site(liar).privateKey, advertiseTranscript(context, lowOrder, genuine.maskPublicKey, genuine.nonceCommitment)),
    };
    const adverts = new Map([...genuineAdverts, [liar, forged]]);
    const keyList = uncheckedKeyList(config.roundId, adverts);
    const reveals = new Map<string, NonceRevealMessage>();
    for (const siteId of ids()) if (siteId !== liar) reveals.set(siteId, client(siteId).revealNonce(keyList));
    const liarReveal = client(liar).revealNonce(uncheckedKeyList(config.roundId, genuineAdverts));
    reveals.set(liar, { ...liarReveal, keyListSignature: signMessage(federation.site(liar).privateKey, keyListTranscript(context, keyListHash(keyList.entries))) });
    const base = { federation, roundId: config.roundId, roundConfigHash: roundConfigHash(config), degree: 4, keyList, adverts, reveals };
    const victim = uncheckedGraphMessage(liar, base).neighbours[0]?.siteId as string;
    expect(() => client(victim).shareKeys(uncheckedGraphMessage(victim, base), new Date())).toThrow(
      expect.objectContaining({ reason: 'X25519_LOW_ORDER', message: expect.stringContaining('low-order X25519 key for c') as string }) as Error,
    );
    expect(client(victim).phase).toBe('failed');
  });
});
