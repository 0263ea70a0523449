/**
 * The site's MaskedInput (DESIGN.md step 4; Bonawitz et al., CCS 2017, Fig. 4, round 2; Bell et al.,
 * CCS 2020, Algorithm 2 restricted to graph neighbours). In the paper's letters:
 *   y_u = x_u + PRG(b_u) + sum over v in N(u) ∩ U2 of sign(u, v) * PRG(s_uv)   (mod 2^32)
 * with sign(u, v) = +1 if u < v else -1, so every pair's masks cancel in the sum. All masks stream into
 * the one output accumulator (addMasks), never one d-element array per neighbour.
 */
import { type KeyObject } from 'node:crypto';
import { zeroize } from '../bytes.js';
import { deriveMaskSeed } from '../agreement.js';
import { addMasks, type MaskStream, type PrgScratch } from '../prg.js';
import type { RandomSource } from '../quantize.js';
import { signMessage } from '../signature.js';
import type { RoundConfig } from './config.js';
import type { VerifiedNeighbour } from './client-keys.js';
import type { MaskedInputMessage } from './messages.js';
import { pairwiseMaskSign } from './neighbourhood.js';
import { maskedInputTranscript, uploadHash, type RoundContext } from './transcript.js';
import { quantizeUpdate, type LocalUpdate } from './update-vector.js';

export interface MaskInput {
  readonly self: string;
  readonly context: RoundContext;
  readonly config: RoundConfig;
  readonly keyListHash: Uint8Array;
  /** Neighbours in U2 as this site saw U2 (id order). */
  readonly maskingNeighbours: readonly VerifiedNeighbour[];
  readonly survivorDigest: Uint8Array;
  /** b. */
  readonly selfMaskSeed: Uint8Array;
  /** s_sk. */
  readonly maskSecretKey: Uint8Array;
  readonly signingKey: KeyObject;
  readonly random: RandomSource | undefined;
  readonly scratch: PrgScratch | undefined;
}

/** Quantizes `update` into `output`, adds the masks (unless the round is plaintext) and signs the closing. */
export function createMaskedInput(update: LocalUpdate, output: Uint32Array, input: MaskInput): MaskedInputMessage {
  quantizeUpdate(input.config, update, output, input.random);
  if (!input.config.plaintext) {
    const streams: MaskStream[] = [{ seed: input.selfMaskSeed, sign: 1 }];
    for (const neighbour of input.maskingNeighbours) {
      const seed = deriveMaskSeed(input.maskSecretKey, neighbour.maskPublicKey, input.context.roundId, input.self, neighbour.siteId);
      streams.push({ seed, sign: pairwiseMaskSign(input.self, neighbour.siteId) });
    }
    try {
      addMasks(output, streams, input.scratch);
    } finally {
      for (let i = 1; i < streams.length; i++) zeroize((streams[i] as MaskStream).seed);
    }
  }
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
