/**
 * The signed bytes of a round (crypto/secagg/transcript.ts). Both state machines build them with the same
 * functions, so a round-trip test cannot see a field dropped from a transcript or a digest: the site signs
 * less, the coordinator checks less, and both agree. These tests rebuild every transcript and digest from
 * the documented layout (DESIGN.md "A round": "fedgate/v1/<stage>" || federation id || round id ||
 * H(RoundConfig) || length-prefixed fields), and check that each field it binds changes the bytes: a
 * lying coordinator that swaps any one of them (another U3, another H(L), another model) gets a transcript
 * no honest signature covers.
 */
import { describe, expect, it } from 'vitest';
import { encodeFields, utf8 } from '../../../../crypto/bytes.js';
import { sha256 } from '../../../../crypto/hash.js';
import { canonicalMessage } from '../../../../crypto/signature.js';
import { createRoundConfig, makeRoundId, type RoundConfig } from '../../../../crypto/secagg/config.js';
import { roundConfigHash } from '../../../../crypto/secagg/config-codec.js';
import type { CommitHashes } from '../../../../crypto/secagg/messages.js';
import {
  advertDigest,
  advertiseTranscript,
  commitTranscript,
  commitmentOf,
  consistencyTranscript,
  encodeKeyList,
  keyListHash,
  keyListTranscript,
  maskedInputTranscript,
  revealDigest,
  roundContext,
  shareKeysTranscript,
  sharesDigest,
  survivorDigest,
  unmaskTranscript,
  uploadBytes,
  uploadHash,
} from '../../../../crypto/secagg/transcript.js';

const config: RoundConfig = createRoundConfig({
  federationId: 'fed-transcript',
  roundId: makeRoundId(5n, new Uint8Array(16).fill(9)),
  participants: ['site-a', 'site-b', 'site-c'],
  taskHash: sha256(utf8('task')),
  modelHash: sha256(utf8('model')),
  optimizerStateHash: sha256(utf8('optimiser')),
  neighbourDegree: 2,
  layout: { parameterSegments: [{ length: 3, bound: 1 }], maxLossPerExample: 5, maxEvalExamples: 10 },
  maxWeight: 10,
});
const context = roundContext(config);
const d = (label: string): Uint8Array => sha256(utf8(label));
const hashes: CommitHashes = { previousModelHash: d('previous'), aggregateHash: d('aggregate'), newModelHash: d('new'), optimizerStateHash: d('state') };
const siteSet = (...ids: string[]): Uint8Array => encodeFields(ids.map((id) => utf8(id)));
const expected = (stage: string, fields: Uint8Array[]): Uint8Array => canonicalMessage(stage, 'fed-transcript', config.roundId, roundConfigHash(config), fields);

describe('round transcripts, rebuilt from the documented layout', () => {
  it('the round context is the federation, the round id and H(RoundConfig)', () => {
    expect(context).toEqual({ federationId: 'fed-transcript', roundId: config.roundId, roundConfigHash: roundConfigHash(config) });
  });

  it('each stage signs its label and its fields, U3 in id order', () => {
    const [c, s, n, l, u2, up, rd] = ['c', 's', 'n', 'L', 'U2', 'upload', 'reveal'].map(d) as [Uint8Array, Uint8Array, Uint8Array, Uint8Array, Uint8Array, Uint8Array, Uint8Array];
    expect(advertiseTranscript(context, c, s, n)).toEqual(expected('advertise_keys', [c, s, n]));
    expect(keyListTranscript(context, l)).toEqual(expected('key_list', [l]));
    expect(shareKeysTranscript(context, l, c, s)).toEqual(expected('share_keys', [l, c, s]));
    expect(maskedInputTranscript(context, l, u2, up)).toEqual(expected('masked_input', [l, u2, up]));
    expect(consistencyTranscript(context, l, u2, ['site-c', 'site-a'])).toEqual(expected('consistency_check', [l, u2, siteSet('site-a', 'site-c')]));
    expect(unmaskTranscript(context, l, u2, ['site-b', 'site-a'], rd)).toEqual(expected('unmask', [l, u2, siteSet('site-a', 'site-b'), rd]));
    expect(commitTranscript(context, l, hashes, ['site-c', 'site-b'])).toEqual(
      expected('commit', [l, hashes.previousModelHash, hashes.aggregateHash, hashes.newModelHash, hashes.optimizerStateHash, siteSet('site-b', 'site-c')]),
    );
  });

  it('a commit transcript changes with each attested hash, with U3 and with H(L)', () => {
    const honest = commitTranscript(context, d('L'), hashes, ['site-a', 'site-b']);
    for (const field of ['previousModelHash', 'aggregateHash', 'newModelHash', 'optimizerStateHash'] as const) {
      expect(commitTranscript(context, d('L'), { ...hashes, [field]: d('forged') }, ['site-a', 'site-b'])).not.toEqual(honest);
    }
    expect(commitTranscript(context, d('L'), hashes, ['site-a'])).not.toEqual(honest);
    expect(commitTranscript(context, d('other L'), hashes, ['site-a', 'site-b'])).not.toEqual(honest);
  });

  it('the digests: H(r_u), H(advert), L and H(L), H(U2), the sealed and the revealed shares, each under its own label', () => {
    expect(commitmentOf(d('secret'))).toEqual(sha256(d('secret')));
    const [c, s, n, sig] = ['c', 's', 'n', 'sig'].map(d) as [Uint8Array, Uint8Array, Uint8Array, Uint8Array];
    expect(advertDigest('site-a', c, s, n, sig)).toEqual(sha256(encodeFields([utf8('fedgate/v1/advert'), utf8('site-a'), c, s, n, sig])));
    const entry = (siteId: string): { siteId: string; advertDigest: Uint8Array; nonceCommitment: Uint8Array } => ({ siteId, advertDigest: d(`advert ${siteId}`), nonceCommitment: d(`nonce ${siteId}`) });
    const list = encodeFields([utf8('fedgate/v1/key-list'), ...['site-a', 'site-b'].flatMap((id) => [utf8(id), d(`advert ${id}`), d(`nonce ${id}`)])]);
    expect(encodeKeyList([entry('site-b'), entry('site-a')])).toEqual(list);
    expect(keyListHash([entry('site-b'), entry('site-a')])).toEqual(sha256(list));
    expect(survivorDigest(['site-b', 'site-a'])).toEqual(sha256(encodeFields([utf8('fedgate/v1/survivors'), siteSet('site-a', 'site-b')])));
    expect(sharesDigest([{ receiver: 'site-c', ciphertext: c }, { receiver: 'site-b', ciphertext: s }])).toEqual(
      sha256(encodeFields([utf8('fedgate/v1/sealed-shares'), utf8('site-b'), s, utf8('site-c'), c])),
    );
    expect(
      revealDigest([
        { dealer: 'site-c', secret: 'mask_key', share: c },
        { dealer: 'site-a', secret: 'self_mask', share: s },
      ]),
    ).toEqual(sha256(encodeFields([utf8('fedgate/v1/revealed-shares'), utf8('site-a'), utf8('self_mask'), s, utf8('site-c'), utf8('mask_key'), c])));
  });

  it('the upload hash covers the masked vector little-endian, element by element', () => {
    const vector = Uint32Array.of(1, 0x01020304, 0xffffffff);
    const bytes = Uint8Array.of(1, 0, 0, 0, 4, 3, 2, 1, 255, 255, 255, 255);
    expect(uploadBytes(vector)).toEqual(bytes);
    expect(uploadHash(vector)).toEqual(sha256(bytes));
    expect(uploadHash(Uint32Array.of(1, 0x01020304, 0xfffffffe))).not.toEqual(uploadHash(vector));
  });
});
