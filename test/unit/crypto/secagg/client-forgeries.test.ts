/**
 * Site checks that only a lying coordinator ever meets (STYLE.md: "script the lying peer"). Each test runs
 * honest stages with the simulation harness, forges exactly one field of what one site receives, and
 * expects that site to refuse with the reason of the one check that catches the forgery:
 *  - a ConsistencyCheck request whose MaskedInput closing of a neighbour does not verify
 *    (client-survivors.ts, closing_signature_invalid);
 *  - a key list L whose entry for this site is not the advert and nonce commitment it sent
 *    (client-keys.ts, own_entry_mismatch);
 *  - a Graph message whose neighbour advert is validly signed but is not the one L commits to
 *    (client-keys.ts, advert_mismatch);
 *  - a ShareDelivery whose U2 names a site outside U1 (client-shares.ts, survivor_set_not_subset).
 * Every forgery is otherwise well-formed and validly signed where a signature is checked, so deleting the
 * check would let it through; where it helps, a site the forgery does not concern accepts the same message.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { sha256 } from '../../../../crypto/hash.js';
import type { NeighbourGraph } from '../../../../crypto/graph.js';
import { signMessage } from '../../../../crypto/signature.js';
import { generateX25519KeyPair } from '../../../../crypto/x25519.js';
import { SecAggError } from '../../../../crypto/secagg/errors.js';
import type { AdvertiseKeysMessage, ConsistencyRequestMessage, KeyListMessage, MaskedInputClosing } from '../../../../crypto/secagg/messages.js';
import { advertDigest, advertiseTranscript, commitmentOf, keyListHash, maskedInputTranscript, roundContext } from '../../../../crypto/secagg/transcript.js';
import { RoundDriver, cachedFederation, stagesSent, testRoundConfig, type TestFederation } from '../../../support/secagg-sim.js';

let federation: TestFederation;
const ids = (): string[] => federation.sites.map((site) => site.siteId);
// Generating every site's RSA key is slow on a busy machine: allow it time, once per file.
beforeAll(() => {
  federation = cachedFederation(8, 'frg-');
}, 300_000);

/** k = 4 ring over 8 sites, t = 3. */
function driver(options: { drops?: ReadonlyMap<string, 'advertise_keys'> } = {}): RoundDriver {
  const config = testRoundConfig({ participants: ids(), degree: 4, threshold: 3, parameters: 64 });
  return new RoundDriver({ federation, config, ...(options.drops === undefined ? {} : { drops: options.drops }) });
}

function refusalOf(action: () => unknown): SecAggError {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(SecAggError);
    return error as SecAggError;
  }
  throw new Error('expected the site to refuse the forged message');
}

describe('a MaskedInput closing with a forged signature (client-survivors.ts)', () => {
  type ClosingForgery = (closing: MaskedInputClosing, round: RoundDriver, graph: NeighbourGraph) => MaskedInputClosing;
  const forgeries: readonly [string, ClosingForgery][] = [
    ['random bytes as the signature', (closing) => ({ ...closing, signature: new Uint8Array(randomBytes(closing.signature.length)) })],
    // The coordinator swaps the upload it counts for the neighbour and keeps the neighbour's signature.
    ['the genuine signature over another upload hash', (closing) => ({ ...closing, uploadHash: sha256(closing.uploadHash) })],
    // The closing is validly signed over the right transcript, but by a site that is not the neighbour.
    [
      "a valid signature by another site's key",
      (closing, round, graph) => {
        const signer = ids().find((siteId) => siteId !== closing.siteId && !graph.isNeighbour(closing.siteId, siteId)) as string;
        const transcript = maskedInputTranscript(roundContext(round.config), keyListHash((round.keyList as KeyListMessage).entries), closing.survivorDigest, closing.uploadHash);
        return { ...closing, signature: signMessage(federation.site(signer).privateKey, transcript) };
      },
    ],
  ];

  it.each(forgeries)('is refused: %s', (_name, forge) => {
    const round = driver();
    const request = round.maskInputs(round.dealShares(round.revealNonces(round.advertise())));
    const graph = round.server.neighbourGraph as NeighbourGraph;
    const victim = 'frg-00';
    const neighbour = graph.neighbours(victim)[0] as string;
    const forged: ConsistencyRequestMessage = {
      ...request,
      closings: request.closings.map((closing) => (closing.siteId === neighbour ? forge(closing, round, graph) : closing)),
    };
    // A site that does not have `neighbour` as a neighbour does not check its closing and signs.
    const bystander = ids().find((siteId) => siteId !== neighbour && !graph.isNeighbour(siteId, neighbour)) as string;
    expect(round.client(bystander).consistencyCheck(forged).stage).toBe('consistency_check');

    const error = refusalOf(() => round.client(victim).consistencyCheck(forged));
    expect(error).toMatchObject({ code: 'PERMISSION_DENIED', reason: 'CLOSING_SIGNATURE_INVALID', stage: 'consistency_check' });
    expect(error.message).toContain(`closing of neighbour ${JSON.stringify(neighbour)} does not verify`);
    expect(round.client(victim).phase).toBe('failed');
    expect(stagesSent(round.sent.get(victim))).not.toContain('consistency_check');
  });
});

describe("a key list L with this site's own entry altered (client-keys.ts)", () => {
  type EntryForgery = (entry: KeyListMessage['entries'][number], advert: AdvertiseKeysMessage) => KeyListMessage['entries'][number];
  const forgeries: readonly [string, EntryForgery][] = [
    // What a coordinator substituting its own keys for the site's would list: another advert's digest.
    [
      'the digest of an advert with other keys',
      (entry, advert) => ({
        ...entry,
        advertDigest: advertDigest(entry.siteId, generateX25519KeyPair().publicKey, generateX25519KeyPair().publicKey, advert.nonceCommitment, advert.signature),
      }),
    ],
    // A nonce commitment the coordinator chose (to grind the graph seed); the advert digest is intact.
    ['a nonce commitment the site never made', (entry) => ({ ...entry, nonceCommitment: commitmentOf(new Uint8Array(randomBytes(32))) })],
  ];

  it.each(forgeries)('is refused: %s', (_name, forge) => {
    const round = driver();
    const keyList = round.advertise();
    const victim = 'frg-01';
    const advert = round.sent.get(victim)?.find((message) => message.stage === 'advertise_keys') as AdvertiseKeysMessage;
    const forged: KeyListMessage = { ...keyList, entries: keyList.entries.map((entry) => (entry.siteId === victim ? forge(entry, advert) : entry)) };
    // The same L is fine for every site whose own entry is intact.
    expect(round.client('frg-02').revealNonce(forged).stage).toBe('nonce_reveal');

    const error = refusalOf(() => round.client(victim).revealNonce(forged));
    expect(error).toMatchObject({ code: 'FAILED_PRECONDITION', reason: 'OWN_ENTRY_MISMATCH', stage: 'key_list' });
    // Nothing left the site: no signature over the forged H(L), no nonce.
    expect(stagesSent(round.sent.get(victim))).toEqual(['advertise_keys']);
    expect(round.client(victim).phase).toBe('failed');
  });
});

describe('a neighbour advert that differs from what L commits to (client-keys.ts)', () => {
  // The neighbour signs a second advert for this round (an equivocating site, or its key in the
  // coordinator's hands): its signature over this site's H(RoundConfig) verifies and its signature over
  // H(L) is genuine, so only the comparison with L's entry can tell.
  const forgeries: readonly [string, (advert: AdvertiseKeysMessage) => { cipher: Uint8Array; mask: Uint8Array; nonceCommitment: Uint8Array }][] = [
    ['other keys, the same nonce commitment', (advert) => ({ cipher: generateX25519KeyPair().publicKey, mask: generateX25519KeyPair().publicKey, nonceCommitment: advert.nonceCommitment })],
    ['the same keys, another nonce commitment', (advert) => ({ cipher: advert.cipherPublicKey, mask: advert.maskPublicKey, nonceCommitment: commitmentOf(new Uint8Array(randomBytes(32))) })],
  ];

  it.each(forgeries)('is refused: %s', (_name, change) => {
    const round = driver();
    const graphs = round.revealNonces(round.advertise());
    const victim = 'frg-02';
    const genuine = graphs.get(victim);
    if (genuine === undefined) throw new Error('no graph message for the victim');
    const record = genuine.neighbours[0];
    if (record === undefined) throw new Error('the victim has no neighbour');
    const { cipher, mask, nonceCommitment } = change(record.advert);
    const context = roundContext(round.config);
    const second: AdvertiseKeysMessage = {
      ...record.advert,
      cipherPublicKey: cipher,
      maskPublicKey: mask,
      nonceCommitment,
      signature: signMessage(federation.site(record.siteId).privateKey, advertiseTranscript(context, cipher, mask, nonceCommitment)),
    };
    const forged = { ...genuine, neighbours: genuine.neighbours.map((entry) => (entry.siteId === record.siteId ? { ...entry, advert: second } : entry)) };

    const error = refusalOf(() => round.client(victim).shareKeys(forged, round.now));
    expect(error).toMatchObject({ code: 'FAILED_PRECONDITION', reason: 'ADVERT_MISMATCH', stage: 'graph' });
    expect(error.message).toContain(`advert of neighbour ${JSON.stringify(record.siteId)} is not the one L commits to`);
    expect(stagesSent(round.sent.get(victim))).toEqual(['advertise_keys', 'nonce_reveal']);
    // The genuine message still passes every check for another site in the same round.
    const other = genuine.neighbours[1]?.siteId as string;
    expect(round.client(other).shareKeys(graphs.get(other) as NonNullable<typeof genuine>, round.now).stage).toBe('share_keys');
  });
});

describe('a ShareDelivery whose U2 is not within U1 (client-shares.ts)', () => {
  it('is refused when U2 names a member of U that never advertised keys', () => {
    // frg-07 drops before AdvertiseKeys: it is in U but not in U1 (L), so it can be in no later set.
    const absent = 'frg-07';
    const round = driver({ drops: new Map([[absent, 'advertise_keys']]) });
    const deliveries = round.dealShares(round.revealNonces(round.advertise()));
    expect((round.keyList as KeyListMessage).entries.map((entry) => entry.siteId)).not.toContain(absent);
    const victim = 'frg-03';
    const genuine = deliveries.get(victim);
    if (genuine === undefined) throw new Error('no delivery for the victim');
    const forged = { ...genuine, survivors: [...genuine.survivors, absent].sort() };

    const error = refusalOf(() => round.client(victim).acceptShares(forged));
    expect(error).toMatchObject({ code: 'FAILED_PRECONDITION', reason: 'SURVIVOR_SET_NOT_SUBSET', stage: 'share_delivery' });
    expect(error.message).toContain('U2');
    expect(round.client(victim).phase).toBe('failed');
    // The genuine delivery is accepted by another site.
    const other = 'frg-04';
    round.client(other).acceptShares(deliveries.get(other) as typeof genuine);
    expect(round.client(other).phase).toBe('shares_accepted');
  });
});
