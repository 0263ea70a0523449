/**
 * The coordinator's intake of messages (crypto/secagg/server-intake.ts) given malformed input no honest
 * site sends: an advert whose two keys are equal, an Unmask answer whose shares are not an array, commit
 * hashes of the wrong length. Each is refused with its reason code, blaming the sender.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { utf8 } from '../../../../crypto/bytes.js';
import { sha256 } from '../../../../crypto/hash.js';
import { SecAggError } from '../../../../crypto/secagg/errors.js';
import type { AdvertiseKeysMessage, CommitSignatureMessage, UnmaskResponseMessage } from '../../../../crypto/secagg/messages.js';
import { commitFieldsOf, intakeAdvert, intakeUnmask, type IntakeView } from '../../../../crypto/secagg/server-intake.js';
import { advertiseTranscript, roundContext } from '../../../../crypto/secagg/transcript.js';
import { signMessage } from '../../../../crypto/signature.js';
import { cachedFederation, testRoundConfig, type TestFederation } from '../../../support/secagg-sim.js';

let federation: TestFederation;
let view: IntakeView;

beforeAll(() => {
  federation = cachedFederation(3, 'sik-');
  const config = testRoundConfig({ participants: federation.sites.map((site) => site.siteId), degree: 2, threshold: 2, parameters: 4 });
  view = { config, context: roundContext(config) };
}, 300_000);

function refusal(action: () => unknown): SecAggError {
  try {
    action();
  } catch (error) {
    if (error instanceof SecAggError) return error;
    throw error;
  }
  throw new Error('expected a SecAggError, nothing was thrown');
}

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

describe('intakeUnmask', () => {
  it('refuses an answer whose shares are not an array (MALFORMED_MESSAGE)', () => {
    const site = federation.sites[1] as (typeof federation.sites)[0];
    const message = { stage: 'unmask', roundId: view.config.roundId, shares: { length: 0 }, signature: new Uint8Array(64) } as unknown as UnmaskResponseMessage;
    const error = refusal(() => intakeUnmask(site.siteId, message, view, site.publicKey));
    expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', reason: 'MALFORMED_MESSAGE', stage: 'unmask', site: site.siteId });
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
