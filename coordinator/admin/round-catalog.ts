/**
 * Committed rounds as operators see them, read from the ledger (DESIGN.md step 7): each record's body
 * parsed once (records are immutable) into a summary, pages of summaries for ListRounds, and the
 * mapping from a round number or a hash to the model GetModel serves. Round N is the model ledger record
 * N produced; round 0 the initial model (the previous model of record 1).
 */
import { parseCommitBody } from '../federation/commit-json.js';
import type { Ledger, LedgerRecord } from '../state/ledger.js';
import { fedgateError } from '../../proto/errors.js';

export interface RoundSummary {
  readonly sequence: number;
  /** 24-byte round id (counter || nonce). */
  readonly roundId: Uint8Array;
  readonly participants: readonly string[];
  readonly survivors: readonly string[];
  readonly signers: readonly string[];
  readonly previousModelHash: string;
  readonly modelHash: string;
  readonly aggregateHash: string;
  readonly optimizerStateHash: string;
  readonly recordHash: string;
  readonly committedAt: Date;
  /** Decimal-string metrics as stored (unsigned, informative). */
  readonly metrics: Readonly<Record<string, string>>;
}

export interface RoundPage {
  readonly rounds: readonly RoundSummary[];
  readonly nextPageToken: string;
  readonly total: number;
}

export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 500;
const PAGE_TOKEN = /^r(\d{1,15})$/;

export class RoundCatalog {
  private readonly summaries = new Map<number, RoundSummary>();

  /**
   * @param ledger the federation's ledger (appended to while the coordinator runs)
   * @param currentModelHash the model the federation holds now (the initial model before any commit)
   */
  constructor(
    private readonly ledger: Ledger,
    private readonly currentModelHash: () => string,
  ) {}

  get committedRounds(): number {
    return this.ledger.length;
  }

  /** Round `sequence` (1-based). */
  round(sequence: number): RoundSummary {
    const cached = this.summaries.get(sequence);
    if (cached !== undefined) return cached;
    const record = this.ledger.all()[sequence - 1];
    if (record === undefined) throw fedgateError('NOT_FOUND', 'NO_SUCH_ROUND', `round ${sequence} has not committed: the ledger holds rounds 1..${this.ledger.length}`);
    const summary = summarize(record);
    this.summaries.set(sequence, summary);
    return summary;
  }

  /** One page in ledger order (or newest first); `pageToken` is the previous page's nextPageToken. */
  page(pageSize: number, pageToken: string, newestFirst: boolean): RoundPage {
    const total = this.ledger.length;
    const size = pageSize === 0 ? DEFAULT_PAGE_SIZE : Math.min(pageSize, MAX_PAGE_SIZE);
    let start: number;
    if (pageToken === '') start = newestFirst ? total : 1;
    else {
      const match = PAGE_TOKEN.exec(pageToken);
      start = match === null ? NaN : Number(match[1]);
      if (!Number.isSafeInteger(start) || start < 1 || start > total) {
        throw fedgateError('INVALID_ARGUMENT', 'INVALID_PAGE_TOKEN', `page_token ${JSON.stringify(pageToken.slice(0, 40))} is not a next_page_token of this ledger (rounds 1..${total}); start again with an empty page_token`);
      }
    }
    const rounds: RoundSummary[] = [];
    let sequence = start;
    while (rounds.length < size && sequence >= 1 && sequence <= total) {
      rounds.push(this.round(sequence));
      sequence += newestFirst ? -1 : 1;
    }
    const more = sequence >= 1 && sequence <= total;
    return { rounds, nextPageToken: more ? `r${sequence}` : '', total };
  }

  /** The model_hash of round `round` (0 = the initial model). */
  modelHashOfRound(round: number): string {
    const total = this.ledger.length;
    if (!Number.isSafeInteger(round) || round < 0 || round > total) {
      throw fedgateError('NOT_FOUND', 'NO_SUCH_ROUND', `round ${round} has not committed: the ledger holds rounds 1..${total}, and 0 is the initial model`);
    }
    if (round === 0) return total === 0 ? this.currentModelHash() : this.round(1).previousModelHash;
    return this.round(round).modelHash;
  }

  /** The latest round whose model has this model_hash, or undefined. */
  roundOfModelHash(modelHash: string): number | undefined {
    for (let sequence = this.ledger.length; sequence >= 1; sequence--) {
      if (this.round(sequence).modelHash === modelHash) return sequence;
    }
    return this.modelHashOfRound(0) === modelHash ? 0 : undefined;
  }
}

function summarize(record: LedgerRecord): RoundSummary {
  const { record: commit, committedAt, body } = parseCommitBody(record.body, `ledger record ${record.sequence}`);
  return {
    sequence: record.sequence,
    roundId: commit.config.roundId,
    participants: commit.config.participants,
    survivors: body.survivors,
    signers: body.signatures.map((signature) => signature.siteId),
    previousModelHash: body.previousModelHash,
    modelHash: body.newModelHash,
    aggregateHash: body.aggregateHash,
    optimizerStateHash: body.optimizerStateHash,
    recordHash: record.recordHash,
    committedAt,
    metrics: body.metrics,
  };
}
