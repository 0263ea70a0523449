/**
 * The site's MaskedInput (DESIGN.md step 4; Bonawitz et al., CCS 2017, Fig. 4, round 2; Bell et al.,
 * CCS 2020, Algorithm 2 restricted to graph neighbours). In the paper's letters:
 *   y_u = x_u + PRG(b_u) + sum over v in N(u) ∩ U2 of sign(u, v) * PRG(s_uv)   (mod 2^32)
 * with sign(u, v) = +1 if u < v else -1, so every pair's masks cancel in the sum. All masks stream into
 * the one output accumulator (addMasks), never one d-element array per neighbour.
 *
 * The pairwise seeds s_uv are derived as soon as U2 is known (derivePairwiseMasks), so s_sk can be
 * zeroized before training starts; masking itself is then quantization plus keystream.
 *
 * Plaintext rounds (RoundConfig.plaintext, only where the site's policy allows it) add no masks: the
 * coordinator sees each quantized vector. Everything else is still signed - the advert, H(L), the
 * ShareKeys commitment, the MaskedInput closing (H(L), H(U2), upload hash: each plaintext upload is
 * attributable to its site), the consistency signature over U3 and the commit - so membership and
 * result are agreed exactly as in a masked round.
 */
import { type KeyObject } from 'node:crypto';
import { zeroize } from '../bytes.js';
import { deriveMaskSeed } from '../agreement.js';
import { prepareX25519SecretKey } from '../x25519.js';
import { addMasks, type MaskStream, type PrgScratch } from '../prg.js';
import type { RandomSource } from '../quantize.js';
import { signMessage } from '../signature.js';
import type { RoundConfig } from './config.js';
import type { VerifiedNeighbour } from './client-keys.js';
import type { MaskedInputMessage } from './messages.js';
import { pairwiseMaskSign } from './neighbourhood.js';
import { maskedInputTranscript, uploadHash, type RoundContext } from './transcript.js';
import { quantizeUpdate, type LocalUpdate } from './update-vector.js';

/** sign(u, v) * PRG(s_uv) for every neighbour v of u in U2 (u = `self`), as mask streams. */
export function derivePairwiseMasks(self: string, roundId: Uint8Array, maskSecretKey: Uint8Array, maskingNeighbours: readonly VerifiedNeighbour[]): MaskStream[] {
  const streams: MaskStream[] = [];
  try {
    const preparedKey = prepareX25519SecretKey(maskSecretKey);
    for (const neighbour of maskingNeighbours) {
      streams.push({ seed: deriveMaskSeed(preparedKey, neighbour.maskPublicKey, roundId, self, neighbour.siteId), sign: pairwiseMaskSign(self, neighbour.siteId) });
    }
  } catch (error) {
    for (const stream of streams) zeroize(stream.seed);
    throw error;
  }
  return streams;
}

export interface MaskInput {
  readonly context: RoundContext;
  readonly config: RoundConfig;
  readonly keyListHash: Uint8Array;
  readonly survivorDigest: Uint8Array;
  /** b. */
  readonly selfMaskSeed: Uint8Array;
  /** From derivePairwiseMasks (empty in a plaintext round). */
  readonly pairwiseMasks: readonly MaskStream[];
  readonly signingKey: KeyObject;
  readonly random: RandomSource | undefined;
  readonly scratch: PrgScratch | undefined;
}

/** Quantizes `update` into `output`, adds the masks (unless the round is plaintext) and signs the closing. */
export function createMaskedInput(update: LocalUpdate, output: Uint32Array, input: MaskInput): MaskedInputMessage {
  quantizeUpdate(input.config, update, output, input.random);
  if (!input.config.plaintext) addMasks(output, [{ seed: input.selfMaskSeed, sign: 1 }, ...input.pairwiseMasks], input.scratch);
  const hash = uploadHash(output);
  const signature = signMessage(input.signingKey, maskedInputTranscript(input.context, input.keyListHash, input.survivorDigest, hash));
  return {
    stage: 'masked_input',
    roundId: input.context.roundId,
    maskedVector: output,
    survivorDigest: input.survivorDigest,
    uploadHash: hash,
    signature,
  };
}
