/**
 * Commit (DESIGN.md step 7): sites of U3 sign (H(L), previous model hash, aggregate hash, new model
 * hash, optimiser state hash, sorted U3) after recomputing the new model themselves. The round is
 * committed when valid signatures from more than half of U3 and at least t are stored. Bad signatures
 * are not fatal - they are reported in the status and left out of the record; signatures from outside
 * U3 are refused outright. A signer whose certificate is revoked counts for nothing from the moment the
 * revocation is live, whether it signed before or after: the status and the record are computed from the
 * revocation set as it is when they are asked for, so the coordinator re-checks every signer when it
 * appends the record (coordinator/federation/revocation-fence.ts).
 */
import type { KeyObject } from 'node:crypto';
import { verifyMessage } from '../signature.js';
import { sameCommitHashes } from './commit-hashes.js';
import type { RoundConfig } from './config.js';
import { secaggDenied, secaggPrecondition } from './errors.js';
import type { CommitHashes, CommitSignatureMessage, KeyListEntry } from './messages.js';
import { commitTranscript, type RoundContext } from './transcript.js';

export interface RejectedCommitSignature {
  readonly siteId: string;
  readonly reason: 'BAD_SIGNATURE' | 'COMMIT_MISMATCH';
}

export interface CommitStatus {
  readonly committed: boolean;
  /** Valid signatures needed: max(floor(|U3| / 2) + 1, t). */
  readonly required: number;
  /** U3 members with a valid signature whose certificate is not revoked. */
  readonly signers: readonly string[];
  readonly rejected: readonly RejectedCommitSignature[];
  /** U3 members whose certificate is revoked now: they cannot count toward the quorum any more. */
  readonly revoked: readonly string[];
}

export interface CommitSignatureRecord {
  readonly siteId: string;
  readonly signature: Uint8Array;
  /** The signer's certificate (DER or PEM) as used for verification, for offline checks. */
  readonly certificate: Uint8Array | string;
}

/** Everything the ledger stores about a committed round; verifiable offline with the CA and the CRL. */
export interface CommitRecord {
  readonly config: RoundConfig;
  readonly roundConfigHash: Uint8Array;
  readonly keyList: readonly KeyListEntry[];
  readonly keyListHash: Uint8Array;
  /** U3 in id order. */
  readonly maskedSurvivors: readonly string[];
  readonly hashes: CommitHashes;
  readonly signatures: readonly CommitSignatureRecord[];
}

/** Quorum of DESIGN.md step 7: more than half of U3 and at least t. */
export function commitQuorum(maskedSurvivorCount: number, threshold: number): number {
  return Math.max(Math.floor(maskedSurvivorCount / 2) + 1, threshold);
}

export class CommitCollector {
  private readonly signatures = new Map<string, Uint8Array>();
  private readonly rejected: RejectedCommitSignature[] = [];
  private readonly transcript: Uint8Array;

  constructor(
    context: RoundContext,
    keyListHash: Uint8Array,
    readonly hashes: CommitHashes,
    private readonly maskedSurvivors: readonly string[],
    private readonly threshold: number,
    /** Whether a member's certificate is revoked now (read on every call: the set changes during a round). */
    private readonly isRevoked: (siteId: string) => boolean = () => false,
  ) {
    this.transcript = commitTranscript(context, keyListHash, hashes, maskedSurvivors);
  }

  /** Stores a valid signature; throws (and reports) a bad one, refuses non-members and repeats. */
  add(sender: string, message: CommitSignatureMessage, publicKey: KeyObject): void {
    const where = { stage: 'commit', site: sender };
    if (!this.maskedSurvivors.includes(sender)) {
      throw secaggDenied('NOT_A_MEMBER', 'commit signatures are accepted from members of U3 only', where);
    }
    if (this.signatures.has(sender)) throw secaggPrecondition('DUPLICATE_MESSAGE', 'this site already sent its commit signature', where);
    if (this.isRevoked(sender)) throw secaggDenied('CERTIFICATE_REVOKED', "the sender's certificate has been revoked: its commit signature cannot count", where);
    if (!sameCommitHashes(message, this.hashes)) {
      this.reject(sender, 'COMMIT_MISMATCH');
      throw secaggPrecondition('COMMIT_MISMATCH', 'the commit signature is over other model, aggregate or optimiser hashes than this round\'s', where);
    }
    if (!verifyMessage(publicKey, this.transcript, message.signature)) {
      this.reject(sender, 'BAD_SIGNATURE');
      throw secaggDenied('BAD_SIGNATURE', 'commit.signature does not verify against the sender\'s certificate', where);
    }
    this.signatures.set(sender, new Uint8Array(message.signature));
  }

  status(): CommitStatus {
    const required = commitQuorum(this.maskedSurvivors.length, this.threshold);
    const revoked = this.maskedSurvivors.filter((siteId) => this.isRevoked(siteId));
    const signers = this.maskedSurvivors.filter((siteId) => this.signatures.has(siteId) && !revoked.includes(siteId));
    return { committed: signers.length >= required, required, signers, rejected: [...this.rejected], revoked };
  }

  signatureOf(siteId: string): Uint8Array | undefined {
    return this.signatures.get(siteId);
  }

  private reject(siteId: string, reason: RejectedCommitSignature['reason']): void {
    if (!this.rejected.some((entry) => entry.siteId === siteId && entry.reason === reason)) this.rejected.push({ siteId, reason });
  }
}
