/**
 * The coordinator's intake of messages (crypto/secagg/server-intake.ts) given malformed input no honest
 * site sends: an advert whose two keys are equal, null entries where shares should be, an Unmask answer
 * whose shares are not an array or reveal a share of a site outside U2, commit hashes of the wrong length.
 * Each is refused with its reason code, naming the stage and blaming the sender.
 */
import { secaggRefusal as refusal } from '../../../support/secagg-refusal.js';
import { beforeAll, describe, expect, it } from 'vitest';
import { utf8 } from '../../../../crypto/bytes.js';
import { sha256 } from '../../../../crypto/hash.js';
import { buildNeighbourGraph } from '../../../../crypto/graph.js';
import { encodeShare } from '../../../../crypto/shamir.js';
import type {
  AdvertiseKeysMessage,
  CommitSignatureMessage,
  ConsistencySignatureMessage,
  MaskedInputMessage,
  NonceRevealMessage,
  RevealedShare,
  ShareKeysMessage,
  UnmaskResponseMessage,
} from '../../../../crypto/secagg/messages.js';
import { SECRET_LENGTH, shareCoordinate } from '../../../../crypto/secagg/neighbourhood.js';
import {
  commitFieldsOf,
  intakeAdvert,
  intakeConsistency,
  intakeMaskedInput,
  intakeNonce,
  intakeShareKeys,
  intakeUnmask,
  type IntakeView,
} from '../../../../crypto/secagg/server-intake.js';
import { advertiseTranscript, revealDigest, roundContext, survivorDigest, unmaskTranscript } from '../../../../crypto/secagg/transcript.js';
import { signMessage } from '../../../../crypto/signature.js';
import { cachedFederation, testRoundConfig, type TestFederation } from '../../../support/secagg-sim.js';

let federation: TestFederation;
let view: IntakeView;
/** The round after MaskedInput: U1 = all three sites (one closed neighbourhood), U2 = U3 = the first two. */
let later: IntakeView;
let ids: [string, string, string];

beforeAll(() => {
  federation = cachedFederation(3, 'sik-');
  ids = federation.sites.map((site) => site.siteId) as [string, string, string];
  const config = testRoundConfig({ participants: ids, degree: 2, threshold: 2, parameters: 4 });
  view = { config, context: roundContext(config) };
  const survivors = new Set(ids.slice(0, 2));
  later = {
    ...view,
    keyListHash: sha256(utf8('L')),
    members: ids,
    graph: buildNeighbourGraph(sha256(utf8('server-intake graph')), ids, 2),
    shareSurvivors: survivors,
    survivorDigest: survivorDigest(survivors),
    maskedSurvivors: survivors,
  };
}, 300_000);

describe('intakeAdvert', () => {
  it('refuses an advert whose cipher and mask keys are equal (INVALID_KEY), even signed', () => {
    const site = federation.sites[0] as (typeof federation.sites)[0];
    const key = sha256(utf8('one key for both'));
    const nonceCommitment = sha256(utf8('nonce'));
    const message = {
      stage: 'advertise_keys',
      roundId: view.config.roundId,
      cipherPublicKey: key,
      maskPublicKey: new Uint8Array(key),
      nonceCommitment,
      signature: signMessage(site.privateKey, advertiseTranscript(view.context, key, key, nonceCommitment)),
    } as AdvertiseKeysMessage;
    const error = refusal(() => intakeAdvert(site.siteId, message, view, site.publicKey));
    expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', reason: 'INVALID_KEY', stage: 'advertise_keys', site: site.siteId });
  });
});

describe('each stage\'s refusals name the stage and the sender', () => {
  it('nonce_reveal: a nonce of the wrong length (INVALID_LENGTH)', () => {
    const site = federation.site(ids[0]);
    const message = { stage: 'nonce_reveal', roundId: view.config.roundId, nonce: new Uint8Array(3), keyListSignature: new Uint8Array(64) } as NonceRevealMessage;
    const error = refusal(() => intakeNonce(site.siteId, message, later, site.publicKey));
    expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', reason: 'INVALID_LENGTH', stage: 'nonce_reveal', site: site.siteId });
  });

  it('share_keys: a null entry in place of a share (SHARE_MISADDRESSED)', () => {
    const site = federation.site(ids[0]);
    const message = { stage: 'share_keys', roundId: view.config.roundId, selfMaskCommitment: sha256(utf8('b')), shares: [null], signature: new Uint8Array(64) } as unknown as ShareKeysMessage;
    const error = refusal(() => intakeShareKeys(site.siteId, message, later, site.publicKey));
    expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', reason: 'SHARE_MISADDRESSED', stage: 'share_keys', site: site.siteId });
    expect(error.message).toContain('share_keys.shares[0] is addressed to undefined, which is not a neighbour of the sender');
  });

  it('masked_input: a vector of the wrong length (INVALID_VECTOR_LENGTH)', () => {
    const site = federation.site(ids[1]);
    const message = { stage: 'masked_input', roundId: view.config.roundId, maskedVector: new Uint32Array(1) } as unknown as MaskedInputMessage;
    const error = refusal(() => intakeMaskedInput(site.siteId, message, later, site.publicKey));
    expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', reason: 'INVALID_VECTOR_LENGTH', stage: 'masked_input', site: site.siteId });
  });

  it('consistency_check: a signature that is not bytes (INVALID_LENGTH)', () => {
    const site = federation.site(ids[1]);
    const message = { stage: 'consistency_check', roundId: view.config.roundId, signature: 'signed' } as unknown as ConsistencySignatureMessage;
    const error = refusal(() => intakeConsistency(site.siteId, message, later, site.publicKey));
    expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', reason: 'INVALID_LENGTH', stage: 'consistency_check', site: site.siteId });
  });
});

describe('intakeUnmask', () => {
  /** A share of `dealer`'s `secret` at the x of `holder` (its y is not checked here). */
  const shareOf = (holder: string, dealer: string, secret: RevealedShare['secret']): RevealedShare => ({
    dealer,
    secret,
    share: encodeShare({ x: shareCoordinate(ids, holder), y: new Uint8Array(SECRET_LENGTH).fill(ids.indexOf(dealer) + 1) }),
  });

  /** `holder`'s answer revealing `shares`, signed by `holder` over the round as `later` shows it. */
  function answer(holder: string, shares: readonly RevealedShare[]): UnmaskResponseMessage {
    const transcript = unmaskTranscript(later.context, later.keyListHash as Uint8Array, later.survivorDigest as Uint8Array, later.maskedSurvivors as ReadonlySet<string>, revealDigest(shares));
    return { stage: 'unmask', roundId: view.config.roundId, shares, signature: signMessage(federation.site(holder).privateKey, transcript) } as UnmaskResponseMessage;
  }

  it('refuses an answer whose shares are not an array (MALFORMED_MESSAGE)', () => {
    const site = federation.sites[1] as (typeof federation.sites)[0];
    const message = { stage: 'unmask', roundId: view.config.roundId, shares: { length: 0 }, signature: new Uint8Array(64) } as unknown as UnmaskResponseMessage;
    const error = refusal(() => intakeUnmask(site.siteId, message, view, site.publicKey));
    expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', reason: 'MALFORMED_MESSAGE', stage: 'unmask', site: site.siteId });
  });

  it('returns exactly the shares of a genuine answer, as copies', () => {
    const [a, b] = ids;
    const shares = [shareOf(a, a, 'self_mask'), shareOf(a, b, 'self_mask')];
    const accepted = intakeUnmask(a, answer(a, shares), later, federation.site(a).publicKey);
    expect(accepted).toEqual(shares);
    expect(accepted[1]?.share).not.toBe(shares[1]?.share);
  });

  it('refuses a null entry in place of a share (SHARE_MISADDRESSED)', () => {
    const [a, b] = ids;
    const message = { ...answer(a, [shareOf(a, b, 'self_mask')]), shares: [shareOf(a, b, 'self_mask'), null] } as unknown as UnmaskResponseMessage;
    const error = refusal(() => intakeUnmask(a, message, later, federation.site(a).publicKey));
    expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', reason: 'SHARE_MISADDRESSED', stage: 'unmask', site: a });
    expect(error.message).toContain('unmask.shares[1] is for undefined');
  });

  it("refuses a signed share of a neighbour outside U2 (it dealt no shares), even of the secret a dropout's would be", () => {
    // c is in U1 and a neighbour of a, but not in U2: a holds no share of it, whatever a claims.
    const [a, b, c] = ids;
    const shares = [shareOf(a, b, 'self_mask'), shareOf(a, c, 'mask_key')];
    const error = refusal(() => intakeUnmask(a, answer(a, shares), later, federation.site(a).publicKey));
    expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', reason: 'SHARE_MISADDRESSED', stage: 'unmask', site: a });
    expect(error.message).toContain(`unmask.shares[1] is for ${JSON.stringify(c)}, whose shares the sender does not hold`);
  });
});

describe('commitFieldsOf', () => {
  const good = (): CommitSignatureMessage =>
    ({
      stage: 'commit',
      roundId: new Uint8Array(16),
      previousModelHash: sha256(utf8('a')),
      aggregateHash: sha256(utf8('b')),
      newModelHash: sha256(utf8('c')),
      optimizerStateHash: sha256(utf8('d')),
      signature: new Uint8Array(71),
    }) as CommitSignatureMessage;

  it('accepts 32-byte hashes and a signature of any length', () => {
    expect(() => commitFieldsOf(good(), 'site-a')).not.toThrow();
    expect(() => commitFieldsOf({ ...good(), signature: new Uint8Array(3) }, 'site-a')).not.toThrow();
  });

  for (const field of ['previousModelHash', 'aggregateHash', 'newModelHash', 'optimizerStateHash'] as const) {
    it(`refuses a ${field} that is not 32 bytes (INVALID_LENGTH), blaming the sender`, () => {
      for (const value of [new Uint8Array(31), new Uint8Array(33), 'not bytes']) {
        const error = refusal(() => commitFieldsOf({ ...good(), [field]: value } as CommitSignatureMessage, 'site-a'));
        expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', reason: 'INVALID_LENGTH', stage: 'commit', site: 'site-a' });
        const got = typeof value === 'string' ? 'string' : `${value.length} bytes`;
        expect(error.message).toBe(`commit.${field} must be 32 bytes, got ${got} (stage commit, site "site-a")`);
      }
    });
  }

  it('refuses a signature that is not bytes (INVALID_LENGTH)', () => {
    const error = refusal(() => commitFieldsOf({ ...good(), signature: [1, 2, 3] } as unknown as CommitSignatureMessage, 'site-a'));
    expect(error).toMatchObject({ reason: 'INVALID_LENGTH', stage: 'commit', site: 'site-a' });
    expect(error.message).toBe('commit.signature must be bytes, got object (stage commit, site "site-a")');
  });
});
