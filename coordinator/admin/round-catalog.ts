/**
 * Committed rounds as operators see them, read from the ledger (DESIGN.md step 7): each record's body
 * parsed into a summary, pages of summaries for ListRounds, and the mapping from a round number or a
 * hash to the model GetModel serves. Round N is the model ledger record N produced; round 0 the initial
 * model (the previous model of record 1).
 *
 * Memory stays flat over a long run: summaries are read from the ledger's files and only the most
 * recently used are kept (SUMMARY_CACHE_SIZE); what stays per round is the model_hash -> round index.
 */
import { parseLedgerCommit } from '../federation/ledger-commit.js';
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

/** Summaries kept in memory: a few ListRounds pages' worth. */
export const SUMMARY_CACHE_SIZE = 256;

export class RoundCatalog {
  /** Least recently used first (a Map iterates in insertion order). */
  private readonly summaries = new Map<number, RoundSummary>();
  /** model_hash -> latest round that produced it, for rounds 1..indexed. */
  private readonly roundByModelHash = new Map<string, number>();
  private indexed = 0;
  private indexing: Promise<void> = Promise.resolve();

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

  /** How many summaries are held in memory (at most SUMMARY_CACHE_SIZE). */
  get cachedSummaries(): number {
    return this.summaries.size;
  }

  /** Round `sequence` (1-based). */
  async round(sequence: number): Promise<RoundSummary> {
    const cached = this.summaries.get(sequence);
    if (cached !== undefined) {
      this.summaries.delete(sequence);
      this.summaries.set(sequence, cached);
      return cached;
    }
    if (!Number.isSafeInteger(sequence) || sequence < 1 || sequence > this.ledger.length) {
      throw fedgateError('NOT_FOUND', 'NO_SUCH_ROUND', `round ${sequence} has not committed: the ledger holds rounds 1..${this.ledger.length}`);
    }
    const summary = summarize(await this.ledger.read(sequence));
    this.summaries.set(sequence, summary);
    if (this.summaries.size > SUMMARY_CACHE_SIZE) this.summaries.delete(this.summaries.keys().next().value as number);
    return summary;
  }

  /** One page in ledger order (or newest first); `pageToken` is the previous page's nextPageToken. */
  async page(pageSize: number, pageToken: string, newestFirst: boolean): Promise<RoundPage> {
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
      rounds.push(await this.round(sequence));
      sequence += newestFirst ? -1 : 1;
    }
    const more = sequence >= 1 && sequence <= total;
    return { rounds, nextPageToken: more ? `r${sequence}` : '', total };
  }

  /** The model_hash of round `round` (0 = the initial model). */
  async modelHashOfRound(round: number): Promise<string> {
    const total = this.ledger.length;
    if (!Number.isSafeInteger(round) || round < 0 || round > total) {
      throw fedgateError('NOT_FOUND', 'NO_SUCH_ROUND', `round ${round} has not committed: the ledger holds rounds 1..${total}, and 0 is the initial model`);
    }
    if (round === 0) return total === 0 ? this.currentModelHash() : (await this.round(1)).previousModelHash;
    return (await this.round(round)).modelHash;
  }

  /** The latest round whose model has this model_hash, or undefined. */
  async roundOfModelHash(modelHash: string): Promise<number | undefined> {
    await this.catchUp();
    const round = this.roundByModelHash.get(modelHash);
    if (round !== undefined) return round;
    return (await this.modelHashOfRound(0)) === modelHash ? 0 : undefined;
  }

  /** Indexes the rounds committed since the last call (all of them, the first time), one caller at a time. */
  private catchUp(): Promise<void> {
    this.indexing = this.indexing.then(async () => {
      while (this.indexed < this.ledger.length) {
        const sequence = this.indexed + 1;
        const { body } = parseLedgerCommit((await this.ledger.read(sequence)).body, `ledger record ${sequence}`);
        this.roundByModelHash.set(body.newModelHash, sequence);
        this.indexed = sequence;
      }
    });
    return this.indexing;
  }
}

function summarize(record: LedgerRecord): RoundSummary {
  const { record: commit, committedAt, body } = parseLedgerCommit(record.body, `ledger record ${record.sequence}`);
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
