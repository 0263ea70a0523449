/**
 * SecAggClient: one site's side of one SecAgg+ round as a pure state machine (DESIGN.md "A round";
 * Bonawitz et al., CCS 2017, Fig. 4, rounds 0-4; Bell et al., CCS 2020, SecAgg+). Messages in, messages
 * out: no I/O, no timers (time comes in as an argument), so every dropout and every hostile coordinator
 * message is testable in-process.
 *
 * Stages, in order: advertiseKeys (policy check, fresh keys) -> revealNonce (sign H(L), reveal r_u) ->
 * shareKeys (verify graph and neighbours, deal shares) -> acceptShares (U2 and incoming shares) ->
 * maskedInput -> consistencyCheck (sign U3) -> unmask (reveal per client-reveal.ts) -> commit.
 *
 * Failure rule: a message for another round or stage is refused and changes nothing; any other refusal
 * (a check of the protocol failed) ends the site's part in the round: it zeroizes its secrets and every
 * later call repeats the refusal. A site never answers a manipulated round half-way.
 */
import type { KeyObject } from 'node:crypto';
import { bytesEqual, toHex, zeroize } from '../bytes.js';
import type { TrustAnchor } from '../certificate.js';
import { CryptoError } from '../errors.js';
import type { MaskStream, PrgScratch } from '../prg.js';
import type { RandomSource } from '../quantize.js';
import { encodeShare } from '../shamir.js';
import { signMessage } from '../signature.js';
import { acceptKeyList, createAdvert, signKeyList, verifyGraph, type AcceptedKeyList, type RoundKeys, type VerifiedGraph, type VerifiedNeighbour } from './client-keys.js';
import { createMaskedInput, derivePairwiseMasks } from './client-mask.js';
import { decideReveals } from './client-reveal.js';
import { acceptShareDelivery, createShareKeys, type AcceptedDelivery, type HeldShares } from './client-shares.js';
import { acceptMaskedSurvivors, consistencySigners, type AcceptedMaskedSurvivors, type SurvivorView } from './client-survivors.js';
import { COMMIT_HASH_FIELDS, checkCommitHashDigests, checkCommitHashes, sameCommitHashes } from './commit-hashes.js';
import { decodeRoundConfig, encodeRoundConfig } from './config-codec.js';
import { vectorLength, type RoundConfig } from './config.js';
import { SecAggError, secaggInvalid, secaggPrecondition } from './errors.js';
import type {
  AdvertiseKeysMessage,
  CommitHashes,
  CommitRequestMessage,
  CommitSignatureMessage,
  ConsistencyRequestMessage,
  ConsistencySignatureMessage,
  GraphMessage,
  KeyListMessage,
  MaskedInputMessage,
  NonceRevealMessage,
  RevealedSecret,
  RevealedShare,
  ServerMessage,
  ShareDeliveryMessage,
  ShareKeysMessage,
  UnmaskRequestMessage,
  UnmaskResponseMessage,
} from './messages.js';
import { checkRoundConfigAgainstPolicy, type SitePolicy } from './policy.js';
import { commitTranscript, consistencyTranscript, revealDigest, roundContext, unmaskTranscript, type RoundContext } from './transcript.js';
import type { LocalUpdate } from './update-vector.js';

export interface SecAggClientOptions {
  /** This site's id (its certificate CN). */
  readonly siteId: string;
  /** The private key of this site's certificate; signs every protocol message. */
  readonly signingKey: KeyObject;
  readonly policy: SitePolicy;
  /** Federation CA and the serials this site already knows to be revoked. */
  readonly trust: TrustAnchor;
  /** Randomness of stochastic rounding (seeded only in tests). */
  readonly random?: RandomSource;
  /** Reusable PRG buffers (one per process is enough). */
  readonly scratch?: PrgScratch;
}

/** Where the site is in the round. */
export type ClientPhase =
  | 'idle'
  | 'advertised'
  | 'nonce_revealed'
  | 'shares_sent'
  | 'shares_accepted'
  | 'masked'
  | 'consistency_signed'
  | 'unmasked'
  | 'committed'
  | 'failed';

export class SecAggClient {
  private phaseValue: ClientPhase = 'idle';
  private failure: SecAggError | undefined;
  private config: RoundConfig | undefined;
  private context: RoundContext | undefined;
  private keys: RoundKeys | undefined;
  private advert: AdvertiseKeysMessage | undefined;
  private keyList: AcceptedKeyList | undefined;
  private verified: VerifiedGraph | undefined;
  private selfMaskSeed: Uint8Array | undefined;
  private pairwiseMasks: readonly MaskStream[] = [];
  private ownShares: HeldShares | undefined;
  private delivery: AcceptedDelivery | undefined;
  private maskedOutput: MaskedInputMessage | undefined;
  private masked: AcceptedMaskedSurvivors | undefined;
  private consistencyOutput: ConsistencySignatureMessage | undefined;
  private unmaskOutput: UnmaskResponseMessage | undefined;
  private commitOutput: CommitSignatureMessage | undefined;
  private readonly revealed = new Map<string, RevealedSecret>();
  private disposed = false;

  constructor(private readonly options: SecAggClientOptions) {
    if (typeof options.siteId !== 'string' || options.siteId.length === 0) {
      throw secaggInvalid('INVALID_ARGUMENT', 'options.siteId must be a non-empty string');
    }
  }

  get siteId(): string {
    return this.options.siteId;
  }

  get phase(): ClientPhase {
    return this.phaseValue;
  }

  /** Why the site left the round, once it has. */
  get failureReason(): SecAggError | undefined {
    return this.failure;
  }

  /** Step 1 + round 0: check RoundConfig against policy (nothing is generated on refusal), then advertise. */
  advertiseKeys(config: RoundConfig): AdvertiseKeysMessage {
    this.requirePhase('idle', 'advertise_keys');
    checkRoundConfigAgainstPolicy(config, this.siteId, this.options.policy);
    // A private canonical copy: later changes to the caller's object cannot change this site's view.
    this.config = decodeRoundConfig(encodeRoundConfig(config));
    this.context = roundContext(this.config);
    const { keys, advert } = createAdvert(this.context, this.options.signingKey);
    this.keys = keys;
    this.advert = advert;
    this.phaseValue = 'advertised';
    return advert;
  }

  /** Graph, part 1: check own entry in L, sign H(L), reveal r_u. */
  revealNonce(message: KeyListMessage): NonceRevealMessage {
    this.accept(message, 'key_list', 'advertised');
    return this.guard(() => {
      const keyList = acceptKeyList(message, this.roundConfig, this.siteId, this.advert as AdvertiseKeysMessage, this.options.policy.minParticipants);
      const keyListSignature = signKeyList(this.roundContext, this.options.signingKey, keyList.hash);
      this.keyList = keyList;
      this.phaseValue = 'nonce_revealed';
      // A copy: the site zeroizes its own when it leaves the round.
      return { stage: 'nonce_reveal', roundId: this.roundConfig.roundId, keyListSignature, nonce: new Uint8Array((this.keys as RoundKeys).nonce) };
    });
  }

  /** Graph, part 2 + round 1: verify nonces, graph and neighbours at `now`; deal the shares. */
  shareKeys(message: GraphMessage, now: Date): ShareKeysMessage {
    this.accept(message, 'graph', 'nonce_revealed');
    return this.guard(() => {
      const keyList = this.keyList as AcceptedKeyList;
      const keys = this.keys as RoundKeys;
      const verified = verifyGraph(message, {
        self: this.siteId,
        context: this.roundContext,
        config: this.roundConfig,
        keyList,
        ownNonce: keys.nonce,
        trust: this.options.trust,
        now,
      });
      const output = createShareKeys({
        self: this.siteId,
        context: this.roundContext,
        config: this.roundConfig,
        members: keyList.members,
        graph: verified.graph,
        neighbours: verified.neighbours,
        keys,
        keyListHash: keyList.hash,
        signingKey: this.options.signingKey,
      });
      this.verified = verified;
      this.selfMaskSeed = output.selfMaskSeed;
      this.ownShares = output.ownShares;
      this.phaseValue = 'shares_sent';
      return output.message;
    });
  }

  /** End of round 1: accept U2 and decrypt the neighbours' shares, or refuse to go on. */
  acceptShares(message: ShareDeliveryMessage): void {
    this.accept(message, 'share_delivery', 'shares_sent');
    this.guard(() => {
      const verified = this.verified as VerifiedGraph;
      const keys = this.keys as RoundKeys;
      this.delivery = acceptShareDelivery(message, {
        self: this.siteId,
        context: this.roundContext,
        config: this.roundConfig,
        members: (this.keyList as AcceptedKeyList).members,
        graph: verified.graph,
        neighbours: verified.neighbours,
        cipherSecretKey: keys.cipher.secretKey,
        minParticipants: this.options.policy.minParticipants,
      });
      // The share-encryption key has done its job; nothing more is decrypted this round.
      zeroize(keys.cipher.secretKey);
      // U2 fixes the pairwise masks: derive them now so s_sk is gone before training starts.
      if (!this.roundConfig.plaintext) {
        const maskingNeighbours = verified.graph
          .neighbours(this.siteId)
          .filter((siteId) => this.delivery?.survivors.has(siteId))
          .map((siteId) => verified.neighbours.get(siteId) as VerifiedNeighbour);
        this.pairwiseMasks = derivePairwiseMasks(this.siteId, this.roundConfig.roundId, keys.mask.secretKey, maskingNeighbours);
      }
      zeroize(keys.mask.secretKey);
      this.phaseValue = 'shares_accepted';
    });
  }

  /**
   * Round 2: quantize, mask and sign the upload. Once per round: asking again returns the identical
   * message (a retry resends the same bytes). `output` (d + 4 elements) may be preallocated by the
   * caller; the message refers to it, so it must stay untouched while a retry may still be needed.
   */
  maskedInput(update: LocalUpdate, output?: Uint32Array): MaskedInputMessage {
    this.requireUsable('masked_input');
    if (this.maskedOutput !== undefined) return this.maskedOutput;
    this.requirePhase('shares_accepted', 'masked_input');
    const target = output ?? new Uint32Array(vectorLength(this.roundConfig));
    // A bad update (wrong length, NaN) is the caller's error, not the coordinator's: it leaves the
    // state as it was so the caller can fix its input.
    const message = createMaskedInput(update, target, {
      context: this.roundContext,
      config: this.roundConfig,
      keyListHash: (this.keyList as AcceptedKeyList).hash,
      survivorDigest: (this.delivery as AcceptedDelivery).survivorDigest,
      selfMaskSeed: this.selfMaskSeed as Uint8Array,
      pairwiseMasks: this.pairwiseMasks,
      signingKey: this.options.signingKey,
      random: this.options.random,
      scratch: this.options.scratch,
    });
    this.zeroizeMaskSeeds();
    this.maskedOutput = message;
    this.phaseValue = 'masked';
    return message;
  }

  /** Round 3: check and sign U3. One U3 per round: the same U3 again gets the same signature, another is refused. */
  consistencyCheck(message: ConsistencyRequestMessage): ConsistencySignatureMessage {
    if (this.consistencyOutput !== undefined && this.phaseValue !== 'failed') {
      this.envelope(message, 'consistency_request');
      const again = new Set(Array.isArray(message.survivors) ? message.survivors : []);
      const same = again.size === this.masked?.survivors.size && [...again].every((siteId) => this.masked?.survivors.has(siteId));
      if (same) return this.consistencyOutput;
      throw secaggPrecondition('CONFLICTING_SURVIVOR_SET', 'this site already signed a different U3 in this round', this.where('consistency_check'));
    }
    this.accept(message, 'consistency_request', 'masked');
    return this.guard(() => {
      const view = this.survivorView;
      const masked = acceptMaskedSurvivors(message, view);
      const signature = signMessage(
        this.options.signingKey,
        consistencyTranscript(this.roundContext, view.keyListHash, view.survivorDigest, masked.survivors),
      );
      this.masked = masked;
      this.consistencyOutput = { stage: 'consistency_check', roundId: this.roundConfig.roundId, signature };
      this.phaseValue = 'consistency_signed';
      return this.consistencyOutput;
    });
  }

  /** Round 4: reveal shares as decideReveals allows. Answered once; a repeated request gets the same answer. */
  unmask(message: UnmaskRequestMessage): UnmaskResponseMessage {
    if (this.unmaskOutput !== undefined && this.phaseValue !== 'failed') {
      this.envelope(message, 'unmask_request');
      return this.unmaskOutput;
    }
    this.accept(message, 'unmask_request', 'consistency_signed');
    return this.guard(() => {
      const view = this.survivorView;
      const masked = this.masked as AcceptedMaskedSurvivors;
      const decision = decideReveals({
        self: this.siteId,
        closedNeighbourhood: (this.verified as VerifiedGraph).graph.closedNeighbourhood(this.siteId),
        shareSurvivors: view.shareSurvivors,
        maskedSurvivors: masked.survivors,
        consistencySigners: consistencySigners(message, view, masked.survivors),
        survivorDigestMatches: masked.survivorDigestMatches,
        reconstructionThreshold: this.roundConfig.reconstructionThreshold,
        minParticipants: this.options.policy.minParticipants,
        alreadyRevealed: this.revealed,
        plaintext: this.roundConfig.plaintext,
      });
      if (decision.action === 'refuse') {
        throw secaggPrecondition(decision.reason, `refusing to unmask: ${decision.detail}`, this.where('unmask'));
      }
      const shares: RevealedShare[] = decision.reveals.map(({ dealer, secret }) => {
        const held = dealer === this.siteId ? (this.ownShares as HeldShares) : ((this.delivery as AcceptedDelivery).held.get(dealer) as HeldShares);
        return { dealer, secret, share: encodeShare(secret === 'self_mask' ? held.selfMask : held.maskKey) };
      });
      const signature = signMessage(
        this.options.signingKey,
        unmaskTranscript(this.roundContext, view.keyListHash, view.survivorDigest, masked.survivors, revealDigest(shares)),
      );
      for (const { dealer, secret } of decision.reveals) this.revealed.set(dealer, secret);
      this.unmaskOutput = { stage: 'unmask', roundId: this.roundConfig.roundId, shares, signature };
      this.zeroizeShares();
      this.phaseValue = 'unmasked';
      return this.unmaskOutput;
    });
  }

  /**
   * Step 7: sign (H(L), previous model hash, aggregate hash, new model hash, optimiser state hash,
   * sorted U3). `computed` are the hashes this site obtained itself, recomputing model r+1 and the
   * optimiser state from the broadcast aggregate (model/next-model.ts): the site signs only if the
   * coordinator's request names exactly those, and only if the previous model is the one RoundConfig
   * named. A refusal ends the site's part in the round. Signed once per round.
   */
  commit(message: CommitRequestMessage, computed: CommitHashes): CommitSignatureMessage {
    this.envelope(message, 'commit_request');
    if (this.commitOutput !== undefined) {
      if (sameCommitHashes(message, this.commitOutput)) return this.commitOutput;
      throw secaggPrecondition('CONFLICTING_COMMIT', 'this site already signed a different commit in this round', this.where('commit'));
    }
    if (this.phaseValue !== 'unmasked' && this.phaseValue !== 'consistency_signed') this.requirePhase('unmasked', 'commit');
    return this.guard(() => {
      const where = this.where('commit');
      const hashes = checkCommitHashes(message, this.roundConfig.modelHash, 'commit_request', where);
      checkCommitHashDigests(computed, 'computed', where);
      const differing = COMMIT_HASH_FIELDS.find((field) => !bytesEqual(hashes[field], computed[field]));
      if (differing !== undefined) {
        throw secaggPrecondition('COMMIT_MISMATCH', `commit_request.${differing} is ${toHex(hashes[differing])} but this site computed ${toHex(computed[differing])}`, where);
      }
      const transcript = commitTranscript(this.roundContext, (this.keyList as AcceptedKeyList).hash, hashes, (this.masked as AcceptedMaskedSurvivors).survivors);
      this.commitOutput = { stage: 'commit', roundId: this.roundConfig.roundId, ...hashes, signature: signMessage(this.options.signingKey, transcript) };
      this.phaseValue = 'committed';
      return this.commitOutput;
    });
  }

  /**
   * Zeroizes every secret - both private keys, the nonce, b and the pairwise mask seeds, the shares it
   * holds and the copies of revealed shares kept to answer a repeated Unmask request - and refuses every
   * later call. Call when the round ends in any way (a site's stage deadline included).
   */
  dispose(): void {
    this.disposed = true;
    if (this.keys !== undefined) zeroize(this.keys.cipher.secretKey, this.keys.mask.secretKey, this.keys.nonce);
    this.zeroizeMaskSeeds();
    this.zeroizeShares();
    for (const revealed of this.unmaskOutput?.shares ?? []) zeroize(revealed.share);
  }

  /**
   * For tests and audits: every buffer of secret material the client holds right now (the ones dispose()
   * and the stage steps zeroize). Buffers already dropped (b and the mask seeds after masking) are not
   * listed; keep an earlier list to check them.
   */
  heldSecrets(): Uint8Array[] {
    const held: Uint8Array[] = [];
    if (this.keys !== undefined) held.push(this.keys.cipher.secretKey, this.keys.mask.secretKey, this.keys.nonce);
    if (this.selfMaskSeed !== undefined) held.push(this.selfMaskSeed);
    for (const stream of this.pairwiseMasks) held.push(stream.seed);
    if (this.ownShares !== undefined) held.push(this.ownShares.selfMask.y, this.ownShares.maskKey.y);
    for (const shares of this.delivery?.held.values() ?? []) held.push(shares.selfMask.y, shares.maskKey.y);
    for (const revealed of this.unmaskOutput?.shares ?? []) held.push(revealed.share);
    return held;
  }

  private zeroizeMaskSeeds(): void {
    zeroize(this.selfMaskSeed, ...this.pairwiseMasks.map((stream) => stream.seed));
    this.selfMaskSeed = undefined;
    this.pairwiseMasks = [];
  }

  private zeroizeShares(): void {
    if (this.ownShares !== undefined) zeroize(this.ownShares.selfMask.y, this.ownShares.maskKey.y);
    for (const held of this.delivery?.held.values() ?? []) zeroize(held.selfMask.y, held.maskKey.y);
  }

  private get roundConfig(): RoundConfig {
    return this.config as RoundConfig;
  }

  private get roundContext(): RoundContext {
    return this.context as RoundContext;
  }

  private get survivorView(): SurvivorView {
    const verified = this.verified as VerifiedGraph;
    const delivery = this.delivery as AcceptedDelivery;
    return {
      self: this.siteId,
      context: this.roundContext,
      graph: verified.graph,
      neighbours: verified.neighbours,
      keyListHash: (this.keyList as AcceptedKeyList).hash,
      shareSurvivors: delivery.survivors,
      survivorDigest: delivery.survivorDigest,
      minParticipants: this.options.policy.minParticipants,
    };
  }

  private where(stage: string): { stage: string; site: string } {
    return { stage, site: this.siteId };
  }

  /** Envelope and order checks; a failure here changes nothing. */
  private accept(message: ServerMessage, stage: ServerMessage['stage'], phase: ClientPhase): void {
    this.envelope(message, stage);
    this.requirePhase(phase, stage);
  }

  private envelope(message: ServerMessage, stage: ServerMessage['stage']): void {
    this.requireUsable(stage);
    if (typeof message !== 'object' || message === null || message.stage !== stage) {
      const got = typeof message === 'object' && message !== null ? JSON.stringify((message as { stage?: unknown }).stage) : typeof message;
      throw secaggInvalid('UNEXPECTED_STAGE', `expected a ${stage} message, got stage ${got}`, this.where(stage));
    }
    if (this.config === undefined || !(message.roundId instanceof Uint8Array) || !bytesEqual(message.roundId, this.config.roundId)) {
      throw secaggInvalid('WRONG_ROUND', `the ${stage} message is for another round than the one this site is in`, this.where(stage));
    }
  }

  private requireUsable(stage: string): void {
    if (this.failure !== undefined) throw this.failure;
    if (this.disposed) throw secaggPrecondition('CLIENT_DISPOSED', 'this round is over for the site: its secrets were zeroized', this.where(stage));
  }

  private requirePhase(phase: ClientPhase, stage: string): void {
    this.requireUsable(stage);
    if (this.phaseValue !== phase) {
      throw secaggPrecondition('OUT_OF_ORDER', `a ${stage} step needs phase ${phase}, the site is in phase ${this.phaseValue}`, this.where(stage));
    }
  }

  /** Runs one protocol step; if a check fails the site leaves the round and forgets its secrets. */
  private guard<T>(step: () => T): T {
    try {
      return step();
    } catch (error) {
      // A primitive's CryptoError (e.g. a neighbour's low-order key) keeps its code and reason.
      const failure =
        error instanceof SecAggError
          ? error
          : error instanceof CryptoError
            ? new SecAggError(error.code, error.reason, error.message, { cause: error, site: this.siteId })
            : new SecAggError('INTERNAL', 'INTERNAL_ERROR', `unexpected failure: ${error instanceof Error ? error.message : String(error)}`, { cause: error, site: this.siteId });
      this.failure = failure;
      this.phaseValue = 'failed';
      this.dispose();
      throw failure;
    }
  }
}
