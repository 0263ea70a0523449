/**
 * The coordinator's Unmask (DESIGN.md step 6; Bonawitz et al., CCS 2017, Fig. 4, round 4, server side;
 * Bell et al., CCS 2020, Algorithm 2): reconstruct each needed secret from t revealed shares, check it
 * against what its dealer signed (s_sk against s_pk, b against H(b)), resolve a failed check with spare
 * shares and name the inconsistent (dealer, holder) pairs, then regenerate every remaining mask and
 * subtract it from the running sum. In the paper's letters, with y_u the masked inputs:
 *   z = sum_{u in U3} y_u - sum_{u in U3} PRG(b_u)
 *       - sum_{u in U2 \ U3} sum_{v in N(u) ∩ U3} sign(v, u) * PRG(s_vu)      (mod 2^32)
 * Nothing is modified until every secret is recovered, so an abort leaves no half-unmasked sum.
 */
import { bytesEqual, zeroize } from '../bytes.js';
import { deriveMaskSeed } from '../agreement.js';
import { prepareX25519SecretKey } from '../x25519.js';
import { CryptoError } from '../errors.js';
import type { NeighbourGraph } from '../graph.js';
import { sha256 } from '../hash.js';
import { addMasks, type MaskStream, type PrgScratch } from '../prg.js';
import { decodeShare, recoverWithCheck, type Share } from '../shamir.js';
import { x25519PublicKey } from '../x25519.js';
import { dequantizeAggregate, type AggregateValues } from './aggregate-codec.js';
import type { RoundConfig } from './config.js';
import { secaggAborted } from './errors.js';
import type { RevealedSecret, RevealedShare } from './messages.js';
import { SECRET_LENGTH, pairwiseMaskSign, shareCoordinate } from './neighbourhood.js';
import { describeShortfalls, neededSecrets, type Shortfall } from './server-survival.js';
import { sortSiteIds } from '../graph.js';

export interface UnmaskInput {
  readonly config: RoundConfig;
  readonly graph: NeighbourGraph;
  /** U1 in id order (x coordinates). */
  readonly members: readonly string[];
  readonly shareSurvivors: ReadonlySet<string>;
  readonly maskedSurvivors: ReadonlySet<string>;
  /** s_pk of each site, from its signed advert. */
  readonly maskPublicKeys: ReadonlyMap<string, Uint8Array>;
  /** H(b) of each site of U2, from its signed ShareKeys. */
  readonly selfMaskCommitments: ReadonlyMap<string, Uint8Array>;
  /** Accepted Unmask answers by holder. */
  readonly reveals: ReadonlyMap<string, readonly RevealedShare[]>;
  /** Running sum of the masked inputs; unmasked in place. */
  readonly sum: Uint32Array;
  readonly scratch: PrgScratch | undefined;
  /** Preallocated output for the dequantized sums (vectorLength elements). */
  readonly dequantized: Float64Array | undefined;
}

/** A revealed share that is not on its dealer's polynomial: the holder or the dealer cheated. */
export interface InconsistentShare {
  readonly dealer: string;
  readonly holder: string;
  readonly secret: RevealedSecret;
}

/** The unmasked aggregate of one round. */
export interface AggregateResult extends AggregateValues {
  /** U3, whose inputs the sum holds. */
  readonly maskedSurvivors: readonly string[];
  readonly inconsistentShares: readonly InconsistentShare[];
}

export function unmaskAggregate(input: UnmaskInput): AggregateResult {
  const { config, graph } = input;
  const streams: MaskStream[] = [];
  const inconsistentShares: InconsistentShare[] = [];
  if (!config.plaintext) {
    const secrets = reconstructSecrets(input, inconsistentShares);
    try {
      for (const secret of secrets.selfMask.values()) streams.push({ seed: secret, sign: -1 });
      for (const [dropped, maskSecretKeyBytes] of secrets.maskKey) {
        // One import per dropped site's s_sk, not one per neighbour (the import dominates the agreement).
        const maskSecretKey = prepareX25519SecretKey(maskSecretKeyBytes);
        for (const neighbour of graph.neighbours(dropped)) {
          if (!input.maskedSurvivors.has(neighbour)) continue;
          // The survivor added sign(v, u) * PRG(s_vu); subtract exactly that.
          const seed = deriveMaskSeed(maskSecretKey, input.maskPublicKeys.get(neighbour) as Uint8Array, config.roundId, dropped, neighbour);
          streams.push({ seed, sign: pairwiseMaskSign(neighbour, dropped) === 1 ? -1 : 1 });
        }
      }
      addMasks(input.sum, streams, input.scratch);
    } finally {
      for (const stream of streams) zeroize(stream.seed);
      for (const secret of [...secrets.selfMask.values(), ...secrets.maskKey.values()]) zeroize(secret);
    }
  }
  return {
    ...dequantizeAggregate(config, input.sum, input.dequantized),
    maskedSurvivors: sortSiteIds(input.maskedSurvivors),
    inconsistentShares,
  };
}

interface RecoveredSecrets {
  readonly selfMask: Map<string, Uint8Array>;
  readonly maskKey: Map<string, Uint8Array>;
}

function reconstructSecrets(input: UnmaskInput, inconsistentShares: InconsistentShare[]): RecoveredSecrets {
  const { config, graph } = input;
  const t = config.reconstructionThreshold;
  const needed = neededSecrets(graph, input.shareSurvivors, input.maskedSurvivors);
  const gathered = needed.map((item) => ({ ...item, ...gatherShares(input, item.dealer, item.secret) }));
  const short: Shortfall[] = gathered.filter((item) => item.shares.length < t).map((item) => ({ dealer: item.dealer, secret: item.secret, live: item.shares.length }));
  if (short.length > 0) {
    throw secaggAborted('INSUFFICIENT_SHARE_HOLDERS', `Unmask: ${describeShortfalls(short, t)}`, { stage: 'unmask' });
  }
  const recovered: RecoveredSecrets = { selfMask: new Map(), maskKey: new Map() };
  for (const item of gathered) {
    const check =
      item.secret === 'self_mask'
        ? (secret: Uint8Array) => bytesEqual(sha256(secret), input.selfMaskCommitments.get(item.dealer) as Uint8Array)
        : (secret: Uint8Array) => bytesEqual(x25519PublicKey(secret), input.maskPublicKeys.get(item.dealer) as Uint8Array);
    let result: { secret: Uint8Array; inconsistent: number[] };
    try {
      result = recoverWithCheck(item.shares, t, SECRET_LENGTH, check);
    } catch (cause) {
      for (const secret of [...recovered.selfMask.values(), ...recovered.maskKey.values()]) zeroize(secret);
      if (cause instanceof CryptoError && cause.reason === 'SHAMIR_UNRECOVERABLE') {
        throw secaggAborted('UNRECOVERABLE_SECRET', `Unmask: no ${t} of the ${item.shares.length} revealed shares of ${item.secret} of ${JSON.stringify(item.dealer)} pass its check`, { stage: 'unmask', site: item.dealer, cause });
      }
      throw cause;
    } finally {
      for (const share of item.shares) zeroize(share.y);
    }
    for (const x of result.inconsistent) {
      inconsistentShares.push({ dealer: item.dealer, holder: item.holderByX.get(x) as string, secret: item.secret });
    }
    (item.secret === 'self_mask' ? recovered.selfMask : recovered.maskKey).set(item.dealer, result.secret);
  }
  return recovered;
}

function gatherShares(input: UnmaskInput, dealer: string, secret: RevealedSecret): { shares: Share[]; holderByX: Map<number, string> } {
  const shares: Share[] = [];
  const holderByX = new Map<number, string>();
  for (const holder of input.graph.closedNeighbourhood(dealer)) {
    const revealed = input.reveals.get(holder)?.find((share) => share.dealer === dealer && share.secret === secret);
    if (revealed === undefined) continue;
    const share = decodeShare(revealed.share, SECRET_LENGTH);
    holderByX.set(shareCoordinate(input.members, holder), holder);
    shares.push(share);
  }
  return { shares, holderByX };
}
