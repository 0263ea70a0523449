/**
 * SecAggServer: the coordinator's side of one SecAgg+ round as a pure state machine (DESIGN.md "A
 * round"; Bonawitz et al., CCS 2017, Fig. 4, server side of rounds 0-4; Bell et al., CCS 2020). The
 * caller passes each message with the sender's authenticated site id (the certificate CN of its mTLS
 * session) and closes a stage when its deadline passes or `pending()` is empty. The server routes
 * ciphertext only, sums masked inputs as they arrive, aborts the moment the round cannot complete, and
 * outputs an aggregate only after every mask is removed.
 *
 * Every rejected message throws a SecAggError and leaves the state as it was.
 */
import type { KeyObject } from 'node:crypto';
import { bytesEqual } from '../bytes.js';
import type { TrustAnchor } from '../certificate.js';
import { CryptoError, type CryptoErrorReason } from '../errors.js';
import { buildNeighbourGraph, graphSeed, sortSiteIds, type NeighbourGraph } from '../graph.js';
import { sha256 } from '../hash.js';
import type { PrgScratch } from '../prg.js';
import { decodeRoundConfig, encodeRoundConfig } from './config-codec.js';
import { tailLength, vectorLength, type RoundConfig } from './config.js';
import { SecAggError, secaggAborted, secaggDenied, secaggInvalid, secaggPrecondition } from './errors.js';
import type {
  AdvertiseKeysMessage,
  ClientMessage,
  ClientStage,
  CommitHashes,
  CommitRequestMessage,
  ConsistencyRequestMessage,
  GraphMessage,
  KeyListEntry,
  KeyListMessage,
  MaskedInputClosing,
  RevealedShare,
  ShareDeliveryMessage,
  UnmaskRequestMessage,
} from './messages.js';
import { checkCommitHashes } from './commit-hashes.js';
import { CommitCollector, type CommitRecord, type CommitStatus } from './server-commit.js';
import {
  accumulate,
  commitFieldsOf,
  intakeAdvert,
  intakeConsistency,
  intakeMaskedInput,
  intakeNonce,
  intakeShareKeys,
  intakeUnmask,
  type AcceptedShareKeys,
  type IntakeView,
} from './server-intake.js';
import { describeShortfalls, neededSecrets, predictedRevealers, shortfalls } from './server-survival.js';
import { CLIENT_STAGES } from './stages.js';
import { unmaskAggregate, type AggregateResult } from './server-unmask.js';
import { SiteKeys } from './server-identity.js';
import { graphMessages, keyListEntries, shareDeliveries } from './server-routing.js';
import { keyListHash, roundContext, survivorDigest, type RoundContext } from './transcript.js';
import { liveHolders } from './neighbourhood.js';

export interface SecAggServerOptions {
  readonly config: RoundConfig;
  /** Certificates (DER or PEM) of the members of U, as presented on their mTLS sessions. */
  readonly certificates: ReadonlyMap<string, Uint8Array | string>;
  /** Federation CA and current CRL; the revoked serials are also handed to the sites. */
  readonly trust: TrustAnchor;
  /** When certificates are checked. */
  readonly now: Date;
  /** Fewest survivors the coordinator carries on with at any stage. @default t */
  readonly minSurvivors?: number;
  /** Preallocated running sum (vectorLength elements); zeroed when MaskedInput opens. */
  readonly sumBuffer?: Uint32Array;
  /** Preallocated output of the dequantized sums (vectorLength elements). */
  readonly dequantizedBuffer?: Float64Array;
  readonly scratch?: PrgScratch;
}

/** The stage whose messages the server currently accepts, or where the round ended. */
export type ServerPhase = 'advertise_keys' | 'nonce_reveal' | 'share_keys' | 'masked_input' | 'consistency_check' | 'unmask' | 'aggregated' | 'commit' | 'aborted';


/** A plain summary of the state, for logs, metrics and tests ("did this message change anything?"). */
export interface ServerSummary {
  readonly phase: ServerPhase;
  readonly abortReason: string | undefined;
  readonly advertised: readonly string[];
  readonly noncesRevealed: readonly string[];
  readonly sharesDealt: readonly string[];
  readonly maskedInputs: readonly string[];
  readonly consistencySigned: readonly string[];
  readonly unmaskAnswered: readonly string[];
  readonly commitSigned: readonly string[];
  /** SHA-256 of the running sum (hex), while there is one. */
  readonly sumDigest: string | undefined;
}

export class SecAggServer {
  private phaseValue: ServerPhase = 'advertise_keys';
  private abortError: SecAggError | undefined;
  private readonly config: RoundConfig;
  private readonly context: RoundContext;
  private readonly siteKeys: SiteKeys;
  private readonly minSurvivors: number;
  private readonly adverts = new Map<string, AdvertiseKeysMessage>();
  private keyList: readonly KeyListEntry[] = [];
  private listHash: Uint8Array | undefined;
  private members: readonly string[] = [];
  private readonly nonces = new Map<string, { nonce: Uint8Array; keyListSignature: Uint8Array }>();
  private graph: NeighbourGraph | undefined;
  private readonly dealt = new Map<string, AcceptedShareKeys>();
  private shareSurvivors: ReadonlySet<string> = new Set();
  private shareSurvivorDigest: Uint8Array | undefined;
  private sum: Uint32Array | undefined;
  private readonly closings = new Map<string, MaskedInputClosing>();
  private maskedSurvivors: ReadonlySet<string> = new Set();
  private readonly consistency = new Map<string, Uint8Array>();
  private revealers: ReadonlySet<string> = new Set();
  private readonly reveals = new Map<string, readonly RevealedShare[]>();
  private result: AggregateResult | undefined;
  private commits: CommitCollector | undefined;

  constructor(private readonly options: SecAggServerOptions) {
    // A private canonical copy (validated on decoding): the caller's object may change, the round may not.
    this.config = decodeRoundConfig(encodeRoundConfig(options.config));
    this.context = roundContext(this.config);
    this.siteKeys = new SiteKeys(options.certificates, options.trust, options.now);
    this.minSurvivors = options.minSurvivors ?? options.config.reconstructionThreshold;
    if (!Number.isInteger(this.minSurvivors) || this.minSurvivors < 1) {
      throw secaggInvalid('INVALID_ARGUMENT', `options.minSurvivors must be a positive integer, got ${String(options.minSurvivors)}`);
    }
  }

  get phase(): ServerPhase {
    return this.phaseValue;
  }

  get roundConfig(): RoundConfig {
    return this.config;
  }

  /** The neighbour graph, once every nonce is revealed. */
  get neighbourGraph(): NeighbourGraph | undefined {
    return this.graph;
  }

  /** Sites expected to answer the current stage that have not yet. */
  pending(): string[] {
    const { expected, answered } = this.stageSenders();
    return sortSiteIds([...expected].filter((siteId) => !answered.has(siteId)));
  }

  /**
   * Accepts one message from `sender` (its authenticated id). Throws a SecAggError - INVALID_ARGUMENT
   * (malformed, wrong round, unknown stage), FAILED_PRECONDITION (stage closed, duplicate),
   * PERMISSION_DENIED (not expected from this site, bad signature) or ABORTED - and then nothing changed.
   */
  receive(sender: string, message: ClientMessage): void {
    if (this.abortError !== undefined) throw this.roundAborted();
    const stage = typeof message === 'object' && message !== null ? (message as { stage?: unknown }).stage : undefined;
    if (typeof stage !== 'string' || !CLIENT_STAGES.includes(stage as ClientStage)) {
      throw secaggInvalid('UNKNOWN_STAGE', `message stage ${JSON.stringify(stage)} is not one of ${CLIENT_STAGES.join(', ')}`, { site: sender });
    }
    if (!(message.roundId instanceof Uint8Array) || !bytesEqual(message.roundId, this.config.roundId)) {
      throw secaggInvalid('WRONG_ROUND', 'the message is for another round (round id differs)', { stage, site: sender });
    }
    if (stage !== this.openStage()) {
      throw secaggPrecondition('STAGE_CLOSED', `a ${stage} message arrived while the round accepts ${this.openStage() ?? 'no messages'}`, { stage, site: sender });
    }
    const { expected, answered } = this.stageSenders();
    if (!expected.has(sender)) {
      throw secaggDenied('UNEXPECTED_SENDER', `site ${JSON.stringify(sender)} is not expected to send ${stage} in this round`, { stage, site: sender });
    }
    if (answered.has(sender)) {
      throw secaggPrecondition('DUPLICATE_MESSAGE', `site ${JSON.stringify(sender)} already sent its ${stage} message`, { stage, site: sender });
    }
    const publicKey = this.siteKeys.publicKeyOf(sender, stage);
    try {
      this.store(sender, message, publicKey);
    } catch (error) {
      // A primitive's CryptoError (a malformed share, say) keeps its code and reason, with context.
      if (error instanceof CryptoError && !(error instanceof SecAggError)) {
        throw new SecAggError(error.code, error.reason, error.message, { stage, site: sender, cause: error });
      }
      throw error;
    }
  }

  /** Validates one message completely (intake functions mutate nothing), then stores it. */
  private store(sender: string, message: ClientMessage, publicKey: KeyObject): void {
    const view = this.intakeView();
    switch (message.stage) {
      case 'advertise_keys':
        this.adverts.set(sender, intakeAdvert(sender, message, view, publicKey));
        return;
      case 'nonce_reveal':
        this.nonces.set(sender, intakeNonce(sender, message, view, publicKey));
        return;
      case 'share_keys':
        this.dealt.set(sender, intakeShareKeys(sender, message, view, publicKey));
        return;
      case 'masked_input': {
        const accepted = intakeMaskedInput(sender, message, view, publicKey);
        accumulate(this.sum as Uint32Array, accepted.vector);
        this.closings.set(sender, { siteId: sender, survivorDigest: accepted.survivorDigest, uploadHash: accepted.uploadHash, signature: accepted.signature });
        return;
      }
      case 'consistency_check':
        this.consistency.set(sender, intakeConsistency(sender, message, view, publicKey));
        return;
      case 'unmask':
        this.reveals.set(sender, intakeUnmask(sender, message, view, publicKey));
        return;
      case 'commit':
        commitFieldsOf(message, sender);
        (this.commits as CommitCollector).add(sender, message, publicKey);
        return;
    }
  }

  /** Closes AdvertiseKeys: U1 and the key list L (the same message for every member of U1). */
  closeAdvertiseKeys(): KeyListMessage {
    this.requirePhase('advertise_keys');
    const members = sortSiteIds(this.adverts.keys());
    this.requireSurvivors(members.length, 'U1', 'advertise_keys');
    const holders = Math.min(this.config.neighbourDegree + 1, members.length);
    if (holders < this.config.reconstructionThreshold) {
      this.abort('INSUFFICIENT_SHARE_HOLDERS', `closed neighbourhoods over |U1| = ${members.length} sites have ${holders} members, fewer than t = ${this.config.reconstructionThreshold}`, 'advertise_keys');
    }
    const entries = keyListEntries(members, this.adverts);
    this.members = members;
    this.keyList = entries;
    this.listHash = keyListHash(entries);
    this.phaseValue = 'nonce_reveal';
    return { stage: 'key_list', roundId: this.config.roundId, entries };
  }

  /** Closes the nonce reveal: aborts if any r_u is missing, else derives the graph; one message per site. */
  closeNonceReveal(): Map<string, GraphMessage> {
    this.requirePhase('nonce_reveal');
    const missing = this.members.filter((siteId) => !this.nonces.has(siteId));
    if (missing.length > 0) {
      // A withheld nonce must end the round: letting the others go on would let the last revealer
      // choose the graph (DESIGN.md step 2).
      this.abort('NONCE_WITHHELD', `${missing.length} member(s) of U1 did not reveal their nonce r_u, e.g. ${JSON.stringify(missing[0])}`, 'nonce_reveal');
    }
    const nonces = new Map([...this.nonces].map(([siteId, reveal]) => [siteId, reveal.nonce]));
    const graph = buildNeighbourGraph(graphSeed(this.context.roundConfigHash, this.listHash as Uint8Array, nonces, this.members), this.members, this.config.neighbourDegree);
    this.graph = graph;
    const messages = graphMessages({
      roundId: this.config.roundId,
      members: this.members,
      graph,
      nonces,
      adverts: this.adverts,
      keyListSignatures: new Map([...this.nonces].map(([siteId, reveal]) => [siteId, reveal.keyListSignature])),
      certificates: this.options.certificates,
      revokedSerials: this.options.trust.revokedSerials,
    });
    this.phaseValue = 'share_keys';
    return messages;
  }

  /** Closes ShareKeys: U2, then each member's incoming ciphertexts. Aborts if a U2 member lacks t live holders. */
  closeShareKeys(): Map<string, ShareDeliveryMessage> {
    this.requirePhase('share_keys');
    const graph = this.graph as NeighbourGraph;
    const survivors = new Set(this.dealt.keys());
    this.requireSurvivors(survivors.size, 'U2', 'share_keys');
    const short = [...survivors].filter((siteId) => liveHolders(graph, siteId, survivors) < this.config.reconstructionThreshold);
    if (short.length > 0) {
      this.abort('INSUFFICIENT_SHARE_HOLDERS', `${short.length} member(s) of U2 have fewer than t = ${this.config.reconstructionThreshold} of their closed neighbourhood in U2, e.g. ${JSON.stringify(short[0])}; they cannot mask safely`, 'share_keys');
    }
    const messages = shareDeliveries(this.config.roundId, graph, survivors, (sender, receiver) => (this.dealt.get(sender) as AcceptedShareKeys).shares.get(receiver) as Uint8Array);
    this.shareSurvivors = survivors;
    this.shareSurvivorDigest = survivorDigest(survivors);
    const length = vectorLength(this.config);
    const buffer = this.options.sumBuffer;
    if (buffer !== undefined && buffer.length !== length) {
      throw secaggInvalid('INVALID_ARGUMENT', `options.sumBuffer must have d + ${tailLength(this.config)} = ${length} elements, got ${buffer.length}`);
    }
    this.sum = buffer === undefined ? new Uint32Array(length) : buffer.fill(0);
    this.phaseValue = 'masked_input';
    return messages;
  }

  /** Closes MaskedInput: U3 with every closing. Aborts when a needed secret already lacks t live holders. */
  closeMaskedInput(): ConsistencyRequestMessage {
    this.requirePhase('masked_input');
    const survivors = new Set(this.closings.keys());
    this.requireSurvivors(survivors.size, 'U3', 'masked_input');
    if (!this.config.plaintext) this.requireHolders(survivors, survivors, 'masked_input');
    this.maskedSurvivors = survivors;
    this.phaseValue = 'consistency_check';
    const ordered = sortSiteIds(survivors);
    return { stage: 'consistency_request', roundId: this.config.roundId, survivors: ordered, closings: ordered.map((siteId) => this.closings.get(siteId) as MaskedInputClosing) };
  }

  /** Closes ConsistencyCheck: the signatures for the Unmask request. Aborts when the revealers cannot reach t. */
  closeConsistencyCheck(): UnmaskRequestMessage {
    this.requirePhase('consistency_check');
    const signers = new Set(this.consistency.keys());
    const revealers = predictedRevealers(this.graph as NeighbourGraph, signers, this.config.reconstructionThreshold);
    if (!this.config.plaintext) this.requireHolders(this.maskedSurvivors, revealers, 'consistency_check');
    this.revealers = revealers;
    this.phaseValue = 'unmask';
    return {
      stage: 'unmask_request',
      roundId: this.config.roundId,
      signatures: sortSiteIds(signers).map((siteId) => ({ siteId, signature: this.consistency.get(siteId) as Uint8Array })),
    };
  }

  /** Closes Unmask: reconstructs, checks and removes the masks. Aborts (and outputs nothing) if a secret is unrecoverable. */
  closeUnmask(): AggregateResult {
    this.requirePhase('unmask');
    const maskPublicKeys = new Map([...this.adverts].map(([siteId, advert]) => [siteId, advert.maskPublicKey]));
    const selfMaskCommitments = new Map([...this.dealt].map(([siteId, dealt]) => [siteId, dealt.selfMaskCommitment]));
    try {
      this.result = unmaskAggregate({
        config: this.config,
        graph: this.graph as NeighbourGraph,
        members: this.members,
        shareSurvivors: this.shareSurvivors,
        maskedSurvivors: this.maskedSurvivors,
        maskPublicKeys,
        selfMaskCommitments,
        reveals: this.reveals,
        sum: this.sum as Uint32Array,
        scratch: this.options.scratch,
        dequantized: this.options.dequantizedBuffer,
      });
    } catch (error) {
      if (error instanceof SecAggError && error.code === 'ABORTED') this.markAborted(error);
      throw error;
    }
    this.phaseValue = 'aggregated';
    return this.result;
  }

  /** Opens Commit with the hashes the coordinator computed from the aggregate; sent to every member of U3. */
  beginCommit(hashes: CommitHashes): CommitRequestMessage {
    this.requirePhase('aggregated');
    const copied = checkCommitHashes(hashes, this.config.modelHash, 'hashes', { stage: 'commit' });
    this.commits = new CommitCollector(this.context, this.listHash as Uint8Array, copied, sortSiteIds(this.maskedSurvivors), this.config.reconstructionThreshold, (siteId) =>
      this.siteKeys.isRevoked(siteId),
    );
    this.phaseValue = 'commit';
    return { stage: 'commit_request', roundId: this.config.roundId, ...copied };
  }

  commitStatus(): CommitStatus {
    if (this.commits === undefined) throw secaggPrecondition('OUT_OF_ORDER', 'Commit has not begun', { stage: 'commit' });
    return this.commits.status();
  }

  /**
   * The ledger record, with the signers whose certificates are not revoked now; throws FAILED_PRECONDITION
   * 'COMMIT_QUORUM_NOT_REACHED' while they are too few.
   */
  commitRecord(): CommitRecord {
    const status = this.commitStatus();
    if (!status.committed) {
      throw secaggPrecondition('COMMIT_QUORUM_NOT_REACHED', `${status.signers.length} valid commit signatures, ${status.required} required (> |U3|/2 and >= t)`, { stage: 'commit' });
    }
    return this.commitProgress();
  }

  /**
   * The record as it stands, quorum or not: everything needed to verify and record the signatures still
   * to come, with the valid ones stored so far. What a coordinator keeps on disk while the commit is
   * pending, so a restart finishes the same round (one contribution per model).
   */
  commitProgress(): CommitRecord {
    const status = this.commitStatus();
    const commits = this.commits as CommitCollector;
    return {
      config: this.config,
      roundConfigHash: this.context.roundConfigHash,
      keyList: this.keyList,
      keyListHash: this.listHash as Uint8Array,
      maskedSurvivors: sortSiteIds(this.maskedSurvivors),
      hashes: commits.hashes,
      signatures: status.signers.map((siteId) => ({ siteId, signature: commits.signatureOf(siteId) as Uint8Array, certificate: this.siteKeys.certificateOf(siteId) as Uint8Array | string })),
    };
  }

  /** Ends the round (e.g. the caller's overall deadline); nothing is output afterwards. */
  abort(reason: CryptoErrorReason, message: string, stage?: string): never {
    const error = secaggAborted(reason, `round aborted: ${message}`, stage === undefined ? {} : { stage });
    this.markAborted(error);
    throw error;
  }

  summary(): ServerSummary {
    return {
      phase: this.phaseValue,
      abortReason: this.abortError?.reason,
      advertised: sortSiteIds(this.adverts.keys()),
      noncesRevealed: sortSiteIds(this.nonces.keys()),
      sharesDealt: sortSiteIds(this.dealt.keys()),
      maskedInputs: sortSiteIds(this.closings.keys()),
      consistencySigned: sortSiteIds(this.consistency.keys()),
      unmaskAnswered: sortSiteIds(this.reveals.keys()),
      commitSigned: this.commits === undefined ? [] : [...this.commits.status().signers],
      sumDigest: this.sum === undefined ? undefined : Buffer.from(sha256(new Uint8Array(this.sum.buffer, this.sum.byteOffset, this.sum.byteLength))).toString('hex'),
    };
  }

  private markAborted(error: SecAggError): void {
    this.abortError = error;
    this.phaseValue = 'aborted';
    this.sum?.fill(0);
  }

  private roundAborted(): SecAggError {
    const error = this.abortError as SecAggError;
    return secaggAborted(error.reason, `the round was aborted (${error.reason}); no further messages are accepted`);
  }

  private requirePhase(phase: ServerPhase): void {
    if (this.abortError !== undefined) throw this.roundAborted();
    if (this.phaseValue !== phase) {
      throw secaggPrecondition('OUT_OF_ORDER', `closing ${phase} needs phase ${phase}, the round is in phase ${this.phaseValue}`);
    }
  }

  private requireSurvivors(count: number, name: string, stage: string): void {
    if (count < this.minSurvivors) {
      this.abort('TOO_FEW_SURVIVORS', `|${name}| = ${count} is below the minimum of ${this.minSurvivors} survivors`, stage);
    }
  }

  /** Aborts unless every needed secret has t holders among `holders` (U3 itself, or the predicted revealers). */
  private requireHolders(masked: ReadonlySet<string>, holders: ReadonlySet<string>, stage: string): void {
    const graph = this.graph as NeighbourGraph;
    const short = shortfalls(graph, neededSecrets(graph, this.shareSurvivors, masked), holders, this.config.reconstructionThreshold);
    if (short.length > 0) this.abort('INSUFFICIENT_SHARE_HOLDERS', describeShortfalls(short, this.config.reconstructionThreshold), stage);
  }

  private openStage(): ClientStage | undefined {
    switch (this.phaseValue) {
      case 'advertise_keys':
      case 'nonce_reveal':
      case 'share_keys':
      case 'masked_input':
      case 'consistency_check':
      case 'unmask':
      case 'commit':
        return this.phaseValue;
      default:
        return undefined;
    }
  }

  /** Who must answer the open stage, and who already did. */
  private stageSenders(): { expected: ReadonlySet<string>; answered: ReadonlySet<string> } {
    const keysOf = (map: ReadonlyMap<string, unknown>): ReadonlySet<string> => new Set(map.keys());
    switch (this.phaseValue) {
      case 'advertise_keys':
        return { expected: new Set(this.config.participants), answered: keysOf(this.adverts) };
      case 'nonce_reveal':
        return { expected: new Set(this.members), answered: keysOf(this.nonces) };
      case 'share_keys':
        return { expected: new Set(this.members), answered: keysOf(this.dealt) };
      case 'masked_input':
        return { expected: this.shareSurvivors, answered: keysOf(this.closings) };
      case 'consistency_check':
        return { expected: this.maskedSurvivors, answered: keysOf(this.consistency) };
      case 'unmask':
        return { expected: this.revealers, answered: keysOf(this.reveals) };
      case 'commit':
        return { expected: this.maskedSurvivors, answered: new Set(this.commits?.status().signers ?? []) };
      default:
        return { expected: new Set(), answered: new Set() };
    }
  }

  private intakeView(): IntakeView {
    const base: IntakeView = { config: this.config, context: this.context };
    return {
      ...base,
      ...(this.listHash === undefined ? {} : { keyListHash: this.listHash }),
      members: this.members,
      ...(this.graph === undefined ? {} : { graph: this.graph }),
      shareSurvivors: this.shareSurvivors,
      ...(this.shareSurvivorDigest === undefined ? {} : { survivorDigest: this.shareSurvivorDigest }),
      maskedSurvivors: this.maskedSurvivors,
      nonceCommitments: new Map(this.keyList.map((entry) => [entry.siteId, entry.nonceCommitment])),
    };
  }
}
