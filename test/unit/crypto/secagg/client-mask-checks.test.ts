/**
 * A neighbour whose advertised mask key s_pk is a low-order X25519 point (client-mask.ts). Its pairwise
 * mask seed would be derived from the all-zero shared secret - a seed anyone can compute, so the mask it
 * adds to the site's input hides nothing. Nothing before U2 looks at s_pk except its length, so the site
 * meets it when it derives its pairwise masks at ShareDelivery: it must leave the round there, with the
 * primitive's reason, instead of masking without (or with a public) pairwise mask.
 *
 * The liar's advert is signed with its own key and committed to in L (the coordinator checks nothing
 * here: uncheckedKeyList), and it signs the H(L) of that L; its sealed shares to the victim are valid.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { encodeFields } from '../../../../crypto/bytes.js';
import { sealShare } from '../../../../crypto/aead.js';
import { deriveShareKey, shareAssociatedData } from '../../../../crypto/agreement.js';
import { encodeShare, shareValueLength } from '../../../../crypto/shamir.js';
import { signMessage } from '../../../../crypto/signature.js';
import { prepareX25519SecretKey } from '../../../../crypto/x25519.js';
import { SecAggClient } from '../../../../crypto/secagg/client.js';
import { roundConfigHash } from '../../../../crypto/secagg/config-codec.js';
import { SecAggError } from '../../../../crypto/secagg/errors.js';
import type { AdvertiseKeysMessage, NonceRevealMessage, RoutedShare, ShareKeysMessage } from '../../../../crypto/secagg/messages.js';
import { advertiseTranscript, keyListHash, keyListTranscript, roundContext } from '../../../../crypto/secagg/transcript.js';
import { cachedFederation, testPolicy, testRoundConfig, uncheckedGraphMessage, uncheckedKeyList, type TestFederation } from '../../../support/secagg-sim.js';

let federation: TestFederation;
const ids = (): string[] => federation.sites.map((site) => site.siteId);
// Generating every site's RSA key is slow on a busy machine: allow it time, once per file.
beforeAll(() => {
  federation = cachedFederation(8, 'mc-');
}, 300_000);

describe('a neighbour that advertises a low-order mask key', () => {
  it('makes the site leave the round when it derives its pairwise masks', () => {
    const liar = 'mc-05';
    const config = testRoundConfig({ participants: ids(), degree: 4, threshold: 3, parameters: 64 });
    const context = roundContext(config);
    const clients = new Map(ids().map((siteId) => [siteId, new SecAggClient({ siteId, signingKey: federation.site(siteId).privateKey, policy: testPolicy(), trust: federation.trust })]));
    const client = (siteId: string): SecAggClient => clients.get(siteId) as SecAggClient;
    const genuineAdverts = new Map<string, AdvertiseKeysMessage>(ids().map((siteId) => [siteId, client(siteId).advertiseKeys(config)]));
    // The liar's share-encryption secret key (heldSecrets lists it first), to seal its shares to the victim.
    const liarCipherKey = new Uint8Array(client(liar).heldSecrets()[0] as Uint8Array);
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

    // The victim and its honest neighbours accept the graph (s_pk has the right length) and deal shares.
    const dealt = new Map<string, ShareKeysMessage>();
    for (const siteId of [victim, ...victimNeighbours.filter((siteId) => siteId !== liar)]) {
      dealt.set(siteId, client(siteId).shareKeys(uncheckedGraphMessage(siteId, base), new Date()));
    }
    const shares: RoutedShare[] = [];
    for (const [sender, message] of dealt) {
      for (const share of message.shares) if (share.receiver === victim) shares.push({ sender, receiver: victim, ciphertext: share.ciphertext });
    }
    // The liar's shares to the victim: well-formed, for the victim's x, sealed under the genuine c keys.
    const victimX = keyList.entries.findIndex((entry) => entry.siteId === victim) + 1;
    const share = () => encodeShare({ x: victimX, y: new Uint8Array(randomBytes(shareValueLength(32))) });
    const key = deriveShareKey(prepareX25519SecretKey(liarCipherKey), (genuineAdverts.get(victim) as AdvertiseKeysMessage).cipherPublicKey, config.roundId, liar, victim);
    shares.push({ sender: liar, receiver: victim, ciphertext: sealShare(key, encodeFields([share(), share()]), shareAssociatedData(config.roundId, liar, victim)) });

    let error: unknown;
    try {
      client(victim).acceptShares({ stage: 'share_delivery', roundId: config.roundId, survivors: [...ids()].sort(), shares });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(SecAggError);
    expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', reason: 'X25519_LOW_ORDER' });
    expect(client(victim).phase).toBe('failed');
    expect(client(victim).heldSecrets().every((buffer) => buffer.every((byte) => byte === 0))).toBe(true);
  });
});
