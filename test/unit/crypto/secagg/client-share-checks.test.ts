/**
 * A site's checks of the ShareDelivery message (client-shares.ts): the U2 it is shown and the sealed
 * shares routed to it. Honest stages run with the simulation harness up to the delivery; then one thing
 * in the victim's delivery is changed and the victim must refuse with that check's reason, say what was
 * wrong, and leave the round (it goes on to mask with nothing).
 */
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { encodeFields } from '../../../../crypto/bytes.js';
import { openShare, sealShare } from '../../../../crypto/aead.js';
import { deriveShareKey, shareAssociatedData } from '../../../../crypto/agreement.js';
import type { NeighbourGraph } from '../../../../crypto/graph.js';
import { decodeShare, encodeShare, type Share } from '../../../../crypto/shamir.js';
import { prepareX25519SecretKey } from '../../../../crypto/x25519.js';
import { SecAggError } from '../../../../crypto/secagg/errors.js';
import { FieldReader } from '../../../../crypto/secagg/fields.js';
import type { AdvertiseKeysMessage, RoutedShare, ShareDeliveryMessage } from '../../../../crypto/secagg/messages.js';
import { RoundDriver, cachedFederation, stagesSent, testPolicy, testRoundConfig, type TestFederation } from '../../../support/secagg-sim.js';

/** Every share key and decrypted share pair the sites opened, to see them zeroised after use. */
const opened = vi.hoisted(() => ({ keys: [] as Uint8Array[], plaintexts: [] as Uint8Array[] }));

vi.mock('../../../../crypto/aead.js', async (importOriginal) => {
  const original = await importOriginal<typeof import('../../../../crypto/aead.js')>();
  return {
    ...original,
    openShare: (...args: Parameters<typeof original.openShare>) => {
      const plaintext = original.openShare(...args);
      opened.keys.push(args[0]);
      opened.plaintexts.push(plaintext);
      return plaintext;
    },
  };
});

let federation: TestFederation;
const ids = (): string[] => federation.sites.map((site) => site.siteId);
// Generating every site's RSA key is slow on a busy machine: allow it time, once per file.
beforeAll(() => {
  federation = cachedFederation(8, 'sc-');
}, 300_000);

const victim = 'sc-03';
/** The victim's x coordinate: 1 + its index in U1 (all eight sites). */
const victimX = 4;

interface AtDelivery {
  readonly round: RoundDriver;
  readonly genuine: ShareDeliveryMessage;
  readonly neighbours: readonly string[];
  readonly outsiders: readonly string[];
}

/** k = 4 ring over 8 sites, t = 3, every site in U2; the victim may have a stricter minimum. */
function atDelivery(victimMinimum?: number): AtDelivery {
  const config = testRoundConfig({ participants: ids(), degree: 4, threshold: 3, parameters: 64 });
  const round = new RoundDriver({
    federation,
    config,
    policy: (siteId) => testPolicy(siteId === victim && victimMinimum !== undefined ? { minParticipants: victimMinimum } : {}),
  });
  const deliveries = round.dealShares(round.revealNonces(round.advertise()));
  const genuine = deliveries.get(victim);
  if (genuine === undefined) throw new Error('no delivery for the victim');
  const graph = round.server.neighbourGraph as NeighbourGraph;
  const neighbours = graph.neighbours(victim);
  const outsiders = ids().filter((siteId) => siteId !== victim && !neighbours.includes(siteId));
  expect(genuine.survivors).toHaveLength(8);
  expect(genuine.shares.map((share) => share.sender).sort()).toEqual([...neighbours].sort());
  return { round, genuine, neighbours, outsiders };
}

function refusedDelivery(round: RoundDriver, forged: unknown): SecAggError {
  let error: unknown;
  try {
    round.client(victim).acceptShares(forged as ShareDeliveryMessage);
  } catch (caught) {
    error = caught;
  }
  expect(error).toBeInstanceOf(SecAggError);
  expect((error as SecAggError).stage).toBe('share_delivery');
  expect(round.client(victim).phase).toBe('failed');
  // Nothing held any more, and the site cannot go on to mask.
  expect(round.client(victim).heldSecrets().every((buffer) => buffer.every((byte) => byte === 0))).toBe(true);
  expect(stagesSent(round.sent.get(victim))).toEqual(['advertise_keys', 'nonce_reveal', 'share_keys']);
  return error as SecAggError;
}

const from = (shares: readonly RoutedShare[], sender: string): RoutedShare => shares.find((share) => share.sender === sender) as RoutedShare;

type SharePair = { readonly selfMask: Share; readonly maskKey: Share };

/**
 * The victim's shares with `dealer`'s replaced by the plaintext `forge` makes of its genuine pair, sealed
 * under the genuine pairwise share key: what a dealer (the coordinator's accomplice) can send.
 */
function resealed(round: RoundDriver, genuine: ShareDeliveryMessage, dealer: string, forge: (pair: SharePair) => Uint8Array): RoutedShare[] {
  const roundId = round.config.roundId;
  const victimAdvert = round.sent.get(victim)?.find((message) => message.stage === 'advertise_keys') as AdvertiseKeysMessage;
  // The dealer's share-encryption secret key (heldSecrets lists it first while the dealer still holds it).
  const dealerCipherKey = round.client(dealer).heldSecrets()[0] as Uint8Array;
  const key = deriveShareKey(prepareX25519SecretKey(dealerCipherKey), victimAdvert.cipherPublicKey, roundId, dealer, victim);
  const associatedData = shareAssociatedData(roundId, dealer, victim);
  const reader = new FieldReader(openShare(key, from(genuine.shares, dealer).ciphertext, associatedData), 'test');
  const pair = { selfMask: decodeShare(reader.field('selfMask'), 32), maskKey: decodeShare(reader.field('maskKey'), 32) };
  const ciphertext = sealShare(key, forge(pair), associatedData);
  return genuine.shares.map((share) => (share.sender === dealer ? { ...share, ciphertext } : share));
}

const isZero = (buffer: Uint8Array): boolean => buffer.every((byte) => byte === 0);

describe('the U2 of a ShareDelivery', () => {
  it('is refused when it is not an array, naming the field', () => {
    const { round, genuine } = atDelivery();
    const error = refusedDelivery(round, { ...genuine, survivors: 'all of them' });
    expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', reason: 'MALFORMED_MESSAGE' });
    expect(error.message).toContain('share_delivery.survivors must be an array');
  });

  it('is refused when it leaves this site out', () => {
    const { round, genuine } = atDelivery();
    const error = refusedDelivery(round, { ...genuine, survivors: genuine.survivors.filter((siteId) => siteId !== victim) });
    expect(error).toMatchObject({ code: 'FAILED_PRECONDITION', reason: 'NOT_IN_SURVIVOR_SET' });
    expect(error.message).toContain('this site is not in U2');
  });

  it("is refused when it is below the site's minimum (a site that is not a neighbour left out)", () => {
    const { round, genuine, outsiders } = atDelivery(8);
    const error = refusedDelivery(round, { ...genuine, survivors: genuine.survivors.filter((siteId) => siteId !== outsiders[0]) });
    expect(error).toMatchObject({ code: 'FAILED_PRECONDITION', reason: 'TOO_FEW_SURVIVORS' });
    expect(error.message).toContain("|U2| = 7 is below this site's minimum of 8");
  });

  it('is refused when fewer than t of its closed neighbourhood are in it', () => {
    const { round, genuine, neighbours, outsiders } = atDelivery();
    const kept = neighbours[0] as string;
    const survivors = [victim, kept, ...outsiders].sort();
    const error = refusedDelivery(round, { ...genuine, survivors, shares: [from(genuine.shares, kept)] });
    expect(error).toMatchObject({ code: 'FAILED_PRECONDITION', reason: 'INSUFFICIENT_SHARE_HOLDERS' });
    expect(error.message).toContain("2 members of this site's closed neighbourhood are in U2; t = 3 are required");
  });
});

describe('the shares of a ShareDelivery', () => {
  it('are refused when they are not an array', () => {
    const { round, genuine } = atDelivery();
    const error = refusedDelivery(round, { ...genuine, shares: { length: 4 } });
    expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', reason: 'MALFORMED_MESSAGE' });
    expect(error.message).toContain('share_delivery.shares must be an array');
  });

  it('are refused with a null entry', () => {
    const { round, genuine } = atDelivery();
    const error = refusedDelivery(round, { ...genuine, shares: [null, ...genuine.shares] });
    expect(error).toMatchObject({ code: 'FAILED_PRECONDITION', reason: 'SHARE_MISADDRESSED' });
    expect(error.message).toContain('a share from undefined is addressed to undefined, not to this site');
  });

  it('are refused when one is addressed to another site (its ciphertext intact)', () => {
    const { round, genuine, neighbours } = atDelivery();
    const sender = neighbours[1] as string;
    const shares = genuine.shares.map((share) => (share.sender === sender ? { ...share, receiver: 'sc-07' } : share));
    const error = refusedDelivery(round, { ...genuine, shares });
    expect(error).toMatchObject({ code: 'FAILED_PRECONDITION', reason: 'SHARE_MISADDRESSED' });
    expect(error.message).toContain(`a share from ${JSON.stringify(sender)} is addressed to "sc-07", not to this site`);
  });

  it('are refused when a sender is not a site id', () => {
    const { round, genuine } = atDelivery();
    const shares = genuine.shares.map((share, index) => (index === 0 ? { ...share, sender: 3 } : share));
    const error = refusedDelivery(round, { ...genuine, shares });
    expect(error).toMatchObject({ code: 'FAILED_PRECONDITION', reason: 'SHARE_UNEXPECTED' });
  });

  it('are refused when one claims to come from a U2 member that is not a neighbour', () => {
    const { round, genuine, neighbours, outsiders } = atDelivery();
    const outsider = outsiders[0] as string;
    const shares = [...genuine.shares, { ...from(genuine.shares, neighbours[0] as string), sender: outsider }];
    const error = refusedDelivery(round, { ...genuine, shares });
    expect(error).toMatchObject({ code: 'FAILED_PRECONDITION', reason: 'SHARE_UNEXPECTED' });
    expect(error.message).toContain(`a share from ${JSON.stringify(outsider)}, which is not a (single) neighbour in U2`);
  });

  it('are refused when one comes from a neighbour outside U2 (its genuine share)', () => {
    const { round, genuine, neighbours } = atDelivery();
    const dropped = neighbours[2] as string;
    const error = refusedDelivery(round, { ...genuine, survivors: genuine.survivors.filter((siteId) => siteId !== dropped) });
    expect(error).toMatchObject({ code: 'FAILED_PRECONDITION', reason: 'SHARE_UNEXPECTED' });
    expect(error.message).toContain(`a share from ${JSON.stringify(dropped)}, which is not a (single) neighbour in U2`);
  });

  it('are refused when one neighbour share comes twice', () => {
    const { round, genuine, neighbours } = atDelivery();
    const twice = neighbours[3] as string;
    const error = refusedDelivery(round, { ...genuine, shares: [...genuine.shares, from(genuine.shares, twice)] });
    expect(error).toMatchObject({ code: 'FAILED_PRECONDITION', reason: 'SHARE_UNEXPECTED' });
    expect(error.message).toContain(JSON.stringify(twice));
  });

  it('are refused when a U2 neighbour share is missing, naming it', () => {
    const { round, genuine, neighbours } = atDelivery();
    const missing = neighbours[0] as string;
    const error = refusedDelivery(round, { ...genuine, shares: genuine.shares.filter((share) => share.sender !== missing) });
    expect(error).toMatchObject({ code: 'FAILED_PRECONDITION', reason: 'SHARE_MISSING' });
    expect(error.message).toContain(`the shares of U2 neighbour ${JSON.stringify(missing)} did not reach this site`);
  });

  it('are refused when a ciphertext is not bytes', () => {
    const { round, genuine, neighbours } = atDelivery();
    const sender = neighbours[1] as string;
    const shares = genuine.shares.map((share) => (share.sender === sender ? { ...share, ciphertext: [...share.ciphertext] } : share));
    const error = refusedDelivery(round, { ...genuine, shares });
    expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', reason: 'MALFORMED_MESSAGE' });
    expect(error.message).toContain(`the share from ${JSON.stringify(sender)} is not bytes`);
  });

  it('are refused when a ciphertext does not open', () => {
    const { round, genuine, neighbours } = atDelivery();
    const sender = neighbours[2] as string;
    const shares = genuine.shares.map((share) => {
      if (share.sender !== sender) return share;
      const ciphertext = new Uint8Array(share.ciphertext);
      ciphertext[ciphertext.length - 1] = (ciphertext[ciphertext.length - 1] as number) ^ 1;
      return { ...share, ciphertext };
    });
    const error = refusedDelivery(round, { ...genuine, shares });
    expect(error).toMatchObject({ code: 'FAILED_PRECONDITION', reason: 'SHARE_DECRYPT_FAILED', site: victim });
    expect(error.message).toContain(`the shares from ${JSON.stringify(sender)} do not decrypt or decode`);
    expect(error.cause).toBeDefined();
  });

  /**
   * A dealer (the coordinator's accomplice) seals the victim a share pair for another x: with it the
   * victim's reveal would feed a wrong point into the reconstruction of the dealer's secret.
   */
  it.each([
    ['its b-share', 'selfMask', `are for x = ${victimX + 1}/${victimX}`],
    ['its s_sk-share', 'maskKey', `are for x = ${victimX}/${victimX + 1}`],
  ] as const)('are refused when a neighbour deals %s for another x', (_name, which, fragment) => {
    const { round, genuine, neighbours } = atDelivery();
    const dealer = neighbours[0] as string;
    const shares = resealed(round, genuine, dealer, (pair) => {
      expect(pair.selfMask.x).toBe(victimX);
      const moved = { ...pair, [which]: { ...pair[which], x: victimX + 1 } };
      return encodeFields([encodeShare(moved.selfMask), encodeShare(moved.maskKey)]);
    });
    const error = refusedDelivery(round, { ...genuine, shares });
    expect(error).toMatchObject({ code: 'FAILED_PRECONDITION', reason: 'SHARE_INVALID' });
    expect(error.message).toContain(`the shares from ${JSON.stringify(dealer)} ${fragment}, this site holds x = ${victimX}`);
  });

  /**
   * A dealer seals the victim a pair that decrypts but does not decode: a field missing, or one too many.
   * The refusal names the dealer and the field, and the decrypted bytes do not outlive the check.
   */
  it.each([
    ['no field at all', () => new Uint8Array(0), 'field selfMask is missing'],
    ['the b-share alone', (pair: SharePair) => encodeFields([encodeShare(pair.selfMask)]), 'field maskKey is missing'],
  ] as const)('are refused when a neighbour seals a pair that does not decode (%s), naming the field', (_name, forge, fragment) => {
    const { round, genuine, neighbours } = atDelivery();
    const dealer = neighbours[1] as string;
    const shares = resealed(round, genuine, dealer, forge);
    opened.plaintexts.length = 0;
    const error = refusedDelivery(round, { ...genuine, shares });
    expect(error).toMatchObject({ code: 'FAILED_PRECONDITION', reason: 'SHARE_DECRYPT_FAILED', site: victim });
    expect(error.message).toContain(`the shares from ${JSON.stringify(dealer)} do not decrypt or decode: shares from ${JSON.stringify(dealer)}: ${fragment}`);
    expect(opened.plaintexts.length).toBeGreaterThan(0);
    expect(opened.plaintexts.every(isZero)).toBe(true);
  });

  it('the genuine delivery is accepted, and each decrypted pair and its share key are zeroised once copied', () => {
    const { round, genuine, neighbours } = atDelivery();
    opened.keys.length = 0;
    opened.plaintexts.length = 0;
    round.client(victim).acceptShares(genuine);
    expect(round.client(victim).phase).toBe('shares_accepted');
    expect(opened.plaintexts).toHaveLength(neighbours.length);
    expect(opened.keys).toHaveLength(neighbours.length);
    expect(opened.plaintexts.every(isZero)).toBe(true);
    expect(opened.keys.every(isZero)).toBe(true);
    // What the site keeps are copies: its held shares are intact.
    expect(round.client(victim).heldSecrets().some((buffer) => !isZero(buffer))).toBe(true);
  });
});
