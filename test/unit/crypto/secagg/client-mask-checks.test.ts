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
import { CryptoError } from '../../../../crypto/errors.js';
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

/**
 * A round of 8 sites up to the graph stage in which `liar` advertises the keys `forge` gives it, signed
 * with its own key, committed to in L (the coordinator checks nothing: uncheckedKeyList), and signs the
 * H(L) of that L.
 */
function graphWithForgedAdvert(liar: string, forge: (genuine: AdvertiseKeysMessage) => { cipherPublicKey: Uint8Array; maskPublicKey: Uint8Array }) {
  const config = testRoundConfig({ participants: ids(), degree: 4, threshold: 3, parameters: 64 });
  const context = roundContext(config);
  const clients = new Map(ids().map((siteId) => [siteId, new SecAggClient({ siteId, signingKey: federation.site(siteId).privateKey, policy: testPolicy(), trust: federation.trust })]));
  const client = (siteId: string): SecAggClient => clients.get(siteId) as SecAggClient;
  const genuineAdverts = new Map<string, AdvertiseKeysMessage>(ids().map((siteId) => [siteId, client(siteId).advertiseKeys(config)]));
  const genuine = genuineAdverts.get(liar) as AdvertiseKeysMessage;
  const keys = forge(genuine);
  const forged: AdvertiseKeysMessage = {
    ...genuine,
    ...keys,
    signature: signMessage(federation.site(liar).privateKey, advertiseTranscript(context, keys.cipherPublicKey, keys.maskPublicKey, genuine.nonceCommitment)),
  };
  const adverts = new Map([...genuineAdverts, [liar, forged]]);
  const keyList = uncheckedKeyList(config.roundId, adverts);
  const reveals = new Map<string, NonceRevealMessage>();
  for (const siteId of ids()) if (siteId !== liar) reveals.set(siteId, client(siteId).revealNonce(keyList));
  const liarReveal = client(liar).revealNonce(uncheckedKeyList(config.roundId, genuineAdverts));
  reveals.set(liar, { ...liarReveal, keyListSignature: signMessage(federation.site(liar).privateKey, keyListTranscript(context, keyListHash(keyList.entries))) });
  const base = { federation, roundId: config.roundId, roundConfigHash: roundConfigHash(config), degree: 4, keyList, adverts, reveals };
  const graphOf = (siteId: string): ReturnType<typeof uncheckedGraphMessage> => uncheckedGraphMessage(siteId, base);
  const victim = graphOf(liar).neighbours[0]?.siteId as string;
  return { client, graphOf, victim };
}

describe('a neighbour that advertises a low-order mask key', () => {
  it('makes each of its neighbours leave the round at the graph stage, before dealing a share', () => {
    const liar = 'mc-05';
    // u = 0, a point of order 1 or 2 on Curve25519's twist
    const { client, graphOf, victim } = graphWithForgedAdvert(liar, (genuine) => ({ cipherPublicKey: genuine.cipherPublicKey, maskPublicKey: new Uint8Array(32) }));
    expect(graphOf(victim).neighbours.map((record) => record.siteId)).toContain(liar);

    // The victim refuses the graph that names the liar as its neighbour: it deals no share (no ShareKeys
    // message leaves it) and it will never derive a pairwise mask seed from the all-zero secret.
    let error: unknown;
    try {
      client(victim).shareKeys(graphOf(victim), new Date());
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(SecAggError);
    // Said where it failed (the graph stage, this site refusing) and kept the key check's own error as cause.
    expect(error).toMatchObject({ code: 'FAILED_PRECONDITION', reason: 'X25519_LOW_ORDER', stage: 'graph', site: victim });
    expect((error as SecAggError).cause).toBeInstanceOf(CryptoError);
    expect((error as Error).message).toContain(`neighbour "${liar}" advertised a low-order X25519 key for s`);
    expect(client(victim).phase).toBe('failed');
    expect(client(victim).heldSecrets().every((buffer) => buffer.every((byte) => byte === 0))).toBe(true);
    // A site the liar is not a neighbour of goes on as before.
    const bystander = ids().find((siteId) => siteId !== liar && !graphOf(siteId).neighbours.some((record) => record.siteId === liar)) as string;
    expect(() => client(bystander).shareKeys(graphOf(bystander), new Date())).not.toThrow();
  });

  it('refuses a low-order share-encryption key c at the graph stage as well', () => {
    // u = 1: the point of order 4 on the curve itself.
    const lowOrder = Uint8Array.from({ length: 32 }, (_, i) => (i === 0 ? 1 : 0));
    const { client, graphOf, victim } = graphWithForgedAdvert('mc-02', (genuine) => ({ cipherPublicKey: lowOrder, maskPublicKey: genuine.maskPublicKey }));
    expect(() => client(victim).shareKeys(graphOf(victim), new Date())).toThrow(
      expect.objectContaining({ reason: 'X25519_LOW_ORDER', message: expect.stringContaining('low-order X25519 key for c') as string }) as Error,
    );
    expect(client(victim).phase).toBe('failed');
  });
});
