/**
 * Bad input to the coordinator's state machine: every malformed, misdirected, replayed or forged
 * message gets a typed error, and the round's state is exactly what it was before.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import type { NeighbourGraph } from '../../../../crypto/graph.js';
import { SecAggError } from '../../../../crypto/secagg/errors.js';
import type { ClientMessage, MaskedInputMessage, RevealedShare, ShareKeysMessage } from '../../../../crypto/secagg/messages.js';
import type { SecAggServer } from '../../../../crypto/secagg/server.js';
import { uploadHash } from '../../../../crypto/secagg/transcript.js';
import { RoundDriver, cachedFederation, testRoundConfig, testUpdate, type TestFederation } from '../../../support/secagg-sim.js';

let federation: TestFederation;
// Generating every site's RSA key is slow on a busy machine: allow it time, once per file.
beforeAll(() => {
  federation = cachedFederation(6, 'srv-');
}, 300_000);

function driver(): RoundDriver {
  return new RoundDriver({ federation, config: testRoundConfig({ participants: federation.sites.map((site) => site.siteId), degree: 4, threshold: 3, parameters: 32 }) });
}

type Expected = readonly [code: string, reason: string];

/** The message is refused with (code, reason) and the server's state summary is unchanged. */
function expectRejected(server: SecAggServer, sender: string, message: unknown, [code, reason]: Expected): void {
  const before = server.summary();
  let error: unknown;
  try {
    server.receive(sender, message as ClientMessage);
  } catch (caught) {
    error = caught;
  }
  expect(error, `${reason}: the message was accepted`).toBeInstanceOf(SecAggError);
  expect(error).toMatchObject({ code, reason });
  expect(server.summary()).toEqual(before);
}

function flip(bytes: Uint8Array, index = 0): Uint8Array {
  const copy = new Uint8Array(bytes);
  copy[index] = (copy[index] as number) ^ 0x01;
  return copy;
}

describe('SecAggServer input validation', () => {
  it('AdvertiseKeys: unknown stage, wrong round, bad signature, non-member, short key, duplicate', () => {
    const run = driver();
    const sender = 'srv-00';
    const advert = run.client(sender).advertiseKeys(run.config);
    const table: readonly (readonly [string, unknown, Expected])[] = [
      ['unknown stage', { ...advert, stage: 'exfiltrate' }, ['INVALID_ARGUMENT', 'UNKNOWN_STAGE']],
      ['no stage at all', { roundId: advert.roundId }, ['INVALID_ARGUMENT', 'UNKNOWN_STAGE']],
      ['not an object', 'advertise_keys', ['INVALID_ARGUMENT', 'UNKNOWN_STAGE']],
      ['wrong round id', { ...advert, roundId: flip(advert.roundId, 23) }, ['INVALID_ARGUMENT', 'WRONG_ROUND']],
      ['bad signature', { ...advert, signature: flip(advert.signature, 100) }, ['PERMISSION_DENIED', 'BAD_SIGNATURE']],
      ['signature over another key', { ...advert, maskPublicKey: flip(advert.maskPublicKey, 3) }, ['PERMISSION_DENIED', 'BAD_SIGNATURE']],
      ['short key', { ...advert, cipherPublicKey: advert.cipherPublicKey.subarray(0, 31) }, ['INVALID_ARGUMENT', 'INVALID_LENGTH']],
      ['a stage that is not open', { ...advert, stage: 'unmask' }, ['FAILED_PRECONDITION', 'STAGE_CLOSED']],
    ];
    for (const [, message, expected] of table) expectRejected(run.server, sender, message, expected);
    expectRejected(run.server, 'intruder', advert, ['PERMISSION_DENIED', 'UNEXPECTED_SENDER']);
    // Another site's advert under this site's name: the signature is the other site's.
    expectRejected(run.server, 'srv-01', advert, ['PERMISSION_DENIED', 'BAD_SIGNATURE']);
    run.server.receive(sender, advert);
    expectRejected(run.server, sender, advert, ['FAILED_PRECONDITION', 'DUPLICATE_MESSAGE']);
  });

  it('nonce reveal: a nonce off its commitment, a late advert', () => {
    const run = driver();
    const keyList = run.advertise();
    const sender = 'srv-02';
    const reveal = run.client(sender).revealNonce(keyList);
    expectRejected(run.server, sender, { ...reveal, nonce: new Uint8Array(randomBytes(32)) }, ['INVALID_ARGUMENT', 'NONCE_MISMATCH']);
    expectRejected(run.server, sender, { ...reveal, keyListSignature: flip(reveal.keyListSignature, 9) }, ['PERMISSION_DENIED', 'BAD_SIGNATURE']);
    const lateAdvert = run.sent.get(sender)![0];
    expectRejected(run.server, sender, lateAdvert, ['FAILED_PRECONDITION', 'STAGE_CLOSED']);
    run.server.receive(sender, reveal);
  });

  it('ShareKeys: truncated ciphertext, share addressed to someone else, missing share, bad signature', () => {
    const run = driver();
    const graphs = run.revealNonces(run.advertise());
    const sender = 'srv-03';
    const message = run.client(sender).shareKeys(graphs.get(sender)!, run.now) as ShareKeysMessage;
    const graph = run.server.neighbourGraph as NeighbourGraph;
    const stranger = federation.sites.map((site) => site.siteId).find((siteId) => siteId !== sender && !graph.isNeighbour(sender, siteId))!;
    const first = message.shares[0]!;
    const table: readonly (readonly [unknown, Expected])[] = [
      [{ ...message, shares: [{ ...first, ciphertext: first.ciphertext.subarray(0, first.ciphertext.length - 1) }, ...message.shares.slice(1)] }, ['INVALID_ARGUMENT', 'INVALID_LENGTH']],
      [{ ...message, shares: [{ ...first, receiver: stranger }, ...message.shares.slice(1)] }, ['INVALID_ARGUMENT', 'SHARE_MISADDRESSED']],
      [{ ...message, shares: [{ ...first, receiver: sender }, ...message.shares.slice(1)] }, ['INVALID_ARGUMENT', 'SHARE_MISADDRESSED']],
      [{ ...message, shares: message.shares.slice(1) }, ['INVALID_ARGUMENT', 'SHARE_MISSING']],
      [{ ...message, shares: [first, ...message.shares] }, ['INVALID_ARGUMENT', 'DUPLICATE_SHARE']],
      [{ ...message, shares: [{ ...first, ciphertext: flip(first.ciphertext, 40) }, ...message.shares.slice(1)] }, ['PERMISSION_DENIED', 'BAD_SIGNATURE']],
      [{ ...message, selfMaskCommitment: flip(message.selfMaskCommitment) }, ['PERMISSION_DENIED', 'BAD_SIGNATURE']],
      [{ ...message, shares: 'all of them' }, ['INVALID_ARGUMENT', 'MALFORMED_MESSAGE']],
    ];
    for (const [forged, expected] of table) expectRejected(run.server, sender, forged, expected);
    run.server.receive(sender, message);
  });

  it('MaskedInput: wrong vector length, hash mismatch, other H(U2), bad signature; the running sum is untouched', () => {
    const run = driver();
    const deliveries = run.dealShares(run.revealNonces(run.advertise()));
    const sender = 'srv-04';
    const client = run.client(sender);
    client.acceptShares(deliveries.get(sender)!);
    const message = client.maskedInput(testUpdate(run.config, sender)) as MaskedInputMessage;
    const shorter = message.maskedVector.slice(0, message.maskedVector.length - 1);
    const altered = message.maskedVector.slice();
    altered[5] = (altered[5] as number) ^ 1;
    const table: readonly (readonly [unknown, Expected])[] = [
      [{ ...message, maskedVector: shorter, uploadHash: uploadHash(shorter) }, ['INVALID_ARGUMENT', 'INVALID_VECTOR_LENGTH']],
      [{ ...message, maskedVector: new Float32Array(message.maskedVector.length) }, ['INVALID_ARGUMENT', 'INVALID_VECTOR_LENGTH']],
      [{ ...message, maskedVector: altered }, ['INVALID_ARGUMENT', 'UPLOAD_HASH_MISMATCH']],
      [{ ...message, maskedVector: altered, uploadHash: uploadHash(altered) }, ['PERMISSION_DENIED', 'BAD_SIGNATURE']],
      [{ ...message, survivorDigest: flip(message.survivorDigest) }, ['FAILED_PRECONDITION', 'SURVIVOR_SET_MISMATCH']],
    ];
    for (const [forged, expected] of table) expectRejected(run.server, sender, forged, expected);
    run.server.receive(sender, message);
    expectRejected(run.server, sender, message, ['FAILED_PRECONDITION', 'DUPLICATE_MESSAGE']);
  });

  it('Unmask: a share of the wrong secret, of a non-neighbour, at the wrong x, a truncated share', () => {
    const run = driver();
    const request = run.signConsistency(run.maskInputs(run.dealShares(run.revealNonces(run.advertise()))));
    const sender = 'srv-05';
    const response = run.client(sender).unmask(request);
    const graph = run.server.neighbourGraph as NeighbourGraph;
    const stranger = federation.sites.map((site) => site.siteId).find((siteId) => siteId !== sender && !graph.isNeighbour(sender, siteId))!;
    const first = response.shares[0] as RevealedShare;
    const other = run.reveals.get(graph.neighbours(sender)[0]!) ?? run.client(graph.neighbours(sender)[0]!).unmask(request);
    const foreignShare = other.shares.find((share) => share.dealer === first.dealer)!;
    const table: readonly (readonly [unknown, Expected])[] = [
      [{ ...response, shares: [{ ...first, secret: 'mask_key' }, ...response.shares.slice(1)] }, ['INVALID_ARGUMENT', 'UNEXPECTED_SHARE']],
      [{ ...response, shares: [{ ...first, dealer: stranger }, ...response.shares.slice(1)] }, ['INVALID_ARGUMENT', 'SHARE_MISADDRESSED']],
      [{ ...response, shares: [{ ...first, share: foreignShare.share }, ...response.shares.slice(1)] }, ['INVALID_ARGUMENT', 'INVALID_SHARE']],
      [{ ...response, shares: [{ ...first, share: first.share.subarray(0, 20) }, ...response.shares.slice(1)] }, ['INVALID_ARGUMENT', 'INVALID_LENGTH']],
      [{ ...response, shares: [first, ...response.shares] }, ['INVALID_ARGUMENT', 'DUPLICATE_SHARE']],
      [{ ...response, shares: [{ ...first, share: flip(first.share, 10) }, ...response.shares.slice(1)] }, ['PERMISSION_DENIED', 'BAD_SIGNATURE']],
    ];
    for (const [forged, expected] of table) expectRejected(run.server, sender, forged, expected);
    run.server.receive(sender, response);
  });
});
