/**
 * The secrets a SecAgg+ site holds (crypto/secagg/client.ts): heldSecrets() lists every buffer of secret
 * material at every stage (both private keys and the nonce, b, the pairwise mask seeds, its own shares,
 * the shares it holds for its neighbours, the copies of revealed shares), each is zeroized as soon as its
 * stage is done, and dispose() zeroizes all that is left. The test holds references to every buffer it
 * was ever shown and checks the bytes, so a step that forgets to zeroize one, or a buffer missing from
 * the list, fails here. What a coordinator gains from a site that keeps them: shares or b of a neighbour
 * read out of a site's memory (or a late Unmask request answered from them) after the round ended.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { NeighbourGraph } from '../../../../crypto/graph.js';
import type { SecAggClient } from '../../../../crypto/secagg/client.js';
import type { NonceRevealMessage, UnmaskResponseMessage } from '../../../../crypto/secagg/messages.js';
import { RoundDriver, cachedFederation, testRoundConfig, testUpdate, type TestFederation } from '../../../support/secagg-sim.js';

let federation: TestFederation;
// Generating every site's RSA key is slow on a busy machine: allow it time, once per file.
beforeAll(() => {
  federation = cachedFederation(8, 'sec-');
}, 300_000);

const victim = 'sec-02';

/** k = 4 ring over 8 sites, t = 3; `afterAccept` runs for the victim between acceptShares and maskedInput. */
function driver(afterAccept: () => void = () => undefined): RoundDriver {
  const config = testRoundConfig({ participants: federation.sites.map((site) => site.siteId), degree: 4, threshold: 3, parameters: 16 });
  return new RoundDriver({
    federation,
    config,
    update: (siteId) => {
      if (siteId === victim) afterAccept();
      return testUpdate(config, siteId);
    },
  });
}

const isZero = (buffer: Uint8Array): boolean => buffer.every((byte) => byte === 0);
const nonZero = (buffer: Uint8Array): boolean => !isZero(buffer);

/** heldSecrets(), checked to be byte arrays, each listed once. */
function held(client: SecAggClient): Uint8Array[] {
  const list = client.heldSecrets();
  expect(list.every((buffer) => buffer instanceof Uint8Array && buffer.length > 0)).toBe(true);
  expect(new Set(list).size).toBe(list.length);
  return list;
}

describe('SecAggClient secrets', () => {
  it('lists every secret it holds at each stage, zeroizes each when its stage is done, and the rest at dispose', () => {
    let accepted: Uint8Array[] = [];
    let zeroAtAccept: boolean[] = [];
    const round = driver(() => {
      accepted = held(round.client(victim));
      zeroAtAccept = accepted.map(isZero);
    });
    const client = round.client(victim);
    expect(client.heldSecrets()).toEqual([]);

    const keyList = round.advertise();
    // The share-encryption key, the masking key and the nonce r_u.
    const keys = held(client);
    expect(keys).toHaveLength(3);
    expect(keys.every(nonZero)).toBe(true);

    const graphs = round.revealNonces(keyList);
    const nonce = (round.sent.get(victim)?.find((message) => message.stage === 'nonce_reveal') as NonceRevealMessage).nonce;
    const afterNonce = held(client);
    expect(afterNonce).toHaveLength(3);
    afterNonce.forEach((buffer, index) => expect(buffer).toBe(keys[index]));
    const ownNonce = afterNonce.find((buffer) => buffer.length === nonce.length && buffer.every((byte, index) => byte === nonce[index]));
    expect(ownNonce).toBeDefined();
    // The revealed nonce is a copy: zeroizing the site's own must not change what was sent.
    expect(ownNonce).not.toBe(nonce);

    const deliveries = round.dealShares(graphs);
    const k = (round.server.neighbourGraph as NeighbourGraph).neighbours(victim).length;
    expect(k).toBe(4);
    // + b and the two shares the site keeps of its own secrets.
    const dealt = held(client);
    expect(dealt).toHaveLength(3 + 1 + 2);
    // Its own s_sk share is zeroized as it is made (never needed: a site reveals only its own b-share).
    expect(dealt.filter(isZero)).toHaveLength(1);
    keys.forEach((buffer, index) => expect(dealt[index]).toBe(buffer));

    const request = round.maskInputs(deliveries);
    // Between acceptShares and maskedInput: + one pairwise seed and two shares per neighbour in U2; the
    // two private keys have done their job and are zero already.
    expect(accepted).toHaveLength(3 + 1 + k + 2 + 2 * k);
    const nonceBuffer = ownNonce as Uint8Array;
    // Zero then: the two private keys and the own s_sk share; everything else was live.
    expect(zeroAtAccept.filter((zero) => zero)).toHaveLength(3);
    expect(keys.filter((buffer) => buffer !== nonceBuffer).every((buffer) => zeroAtAccept[accepted.indexOf(buffer)] === true)).toBe(true);

    // After masking, b and the pairwise seeds are gone: zero and no longer listed.
    const masked = held(client);
    expect(masked).toHaveLength(3 + 2 + 2 * k);
    const dropped = accepted.filter((buffer) => !masked.includes(buffer));
    expect(dropped).toHaveLength(1 + k);
    expect(dropped.every(isZero)).toBe(true);

    const unmaskRequest = round.signConsistency(request);
    expect(held(client)).toEqual(masked);
    round.unmask(unmaskRequest);
    const answer = round.reveals.get(victim) as UnmaskResponseMessage;
    expect(answer.shares.length).toBeGreaterThan(0);
    // After Unmask: every share it held is zero; it keeps only the copies it revealed (to answer a
    // repeated request) and the nonce.
    const unmasked = held(client);
    expect(unmasked).toHaveLength(3 + 2 + 2 * k + answer.shares.length);
    for (const share of answer.shares) expect(unmasked).toContain(share.share);
    expect(answer.shares.every((share) => nonZero(share.share))).toBe(true);
    expect(accepted.filter((buffer) => buffer !== nonceBuffer).every(isZero)).toBe(true);
    expect(nonZero(nonceBuffer)).toBe(true);

    client.dispose();
    const everything = [...keys, ...dealt, ...accepted, ...masked, ...unmasked];
    expect(everything.every(isZero)).toBe(true);
    expect(answer.shares.every((share) => isZero(share.share))).toBe(true);
    expect(held(client).every(isZero)).toBe(true);
  });

  it('zeroizes the keys, b and its own shares when the round ends before the shares are accepted', () => {
    const round = driver();
    const graphs = round.revealNonces(round.advertise());
    const client = round.client(victim);
    const advertised = held(client);
    client.shareKeys(graphs.get(victim) as NonNullable<ReturnType<typeof graphs.get>>, round.now);
    const dealt = held(client);
    expect(dealt).toHaveLength(6);
    expect(dealt.filter(nonZero)).toHaveLength(5);
    client.dispose();
    expect([...advertised, ...dealt].every(isZero)).toBe(true);
    expect(client.phase).toBe('shares_sent');
  });

  it('zeroizes the keys of a site that only advertised', () => {
    const round = driver();
    round.advertise();
    const client = round.client(victim);
    const keys = held(client);
    expect(keys.every(nonZero)).toBe(true);
    client.dispose();
    expect(keys.every(isZero)).toBe(true);
  });
});
