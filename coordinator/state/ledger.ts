/**
 * The round ledger (DESIGN.md step 7): append-only, hash-chained records, one file per committed round
 * (`ledger/<sequence, 8 digits>.json`, each written atomically), so a crash during a write leaves either
 * the complete record or none. Each record's hash covers its sequence number, the previous record's hash
 * and the canonical JSON of its body; the body (the signed commit) is produced and verified by callers.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { canonicalJson, type JsonValue } from './canonical-json.js';
import { completeLeftoverWrite, leftoverWrites, prepareDirectory, readFileIfExists, writeFileAtomic } from '../../platform/index.js';
import { sha256Hex } from '../../crypto/hash.js';
import { StateError } from './state-error.js';
import type { FaultPoint } from './fault-injection.js';

export const LEDGER_FORMAT_VERSION = 1;
export const GENESIS_HASH = '0'.repeat(64);
const FILE_PATTERN = /^(\d{8})\.json$/;

export interface LedgerRecord<Body extends JsonValue = JsonValue> {
  readonly formatVersion: number;
  /** 1-based position in the chain. */
  readonly sequence: number;
  readonly previousRecordHash: string;
  readonly body: Body;
  readonly recordHash: string;
}

/** The hash that links record `sequence` to its predecessor. */
export function recordHash(sequence: number, previousRecordHash: string, body: JsonValue): string {
  return sha256Hex(Buffer.from(canonicalJson(['fedgate/v1/ledger', LEDGER_FORMAT_VERSION, sequence, previousRecordHash, body]), 'utf8'));
}

/**
 * The open ledger. A coordinator runs for months, so it holds only each record's hash (to check what it
 * reads back) and the newest record; older records are read from their files on demand.
 */
export interface LedgerOptions {
  /** Crash-injection hook for recovery tests (fault-injection.ts); called as "ledger_write" before each rename. @default none */
  readonly faultPoint?: FaultPoint;
}

export class Ledger {
  private constructor(
    private readonly directory: string,
    private readonly hashes: string[],
    private newest: LedgerRecord | undefined,
    private readonly faultPoint: FaultPoint | undefined,
  ) {}

  /** Opens (or creates) the ledger in `stateDirectory/ledger` and checks the whole chain. */
  static async open(stateDirectory: string, options: LedgerOptions = {}): Promise<Ledger> {
    const directory = join(stateDirectory, 'ledger');
    await prepareDirectory(directory, { keep: (name) => /^\d{8}\.json\.tmp-/.test(name) });
    const records = await readLedgerDirectory(directory);
    const problem = findChainProblem(records);
    if (problem !== undefined) throw new StateError('CHAIN_BROKEN', `${directory}: ${problem}`);
    const rolledForward = await rollForwardPendingRecord(directory, records);
    if (rolledForward !== undefined) records.push(rolledForward);
    await prepareDirectory(directory);
    return new Ledger(directory, records.map((record) => record.recordHash), records.at(-1), options.faultPoint);
  }

  get length(): number {
    return this.hashes.length;
  }

  get headHash(): string {
    return this.hashes.at(-1) ?? GENESIS_HASH;
  }

  /** The newest record, or undefined while the ledger is empty. */
  get head(): LedgerRecord | undefined {
    return this.newest;
  }

  /**
   * Record `sequence` (1-based), read from its file and checked against the hash the chain had when it
   * was opened or appended: a record edited, removed or replaced since then is an error, never served.
   */
  async read(sequence: number): Promise<LedgerRecord> {
    const expectedHash = this.hashes[sequence - 1];
    if (!Number.isSafeInteger(sequence) || expectedHash === undefined) {
      throw new StateError('NOT_FOUND', `ledger record ${String(sequence)} does not exist: the ledger holds records 1..${this.length}`);
    }
    if (sequence === this.newest?.sequence) return this.newest;
    const path = join(this.directory, fileName(sequence));
    const raw = await readFileIfExists(path);
    if (raw === undefined) throw new StateError('CHAIN_BROKEN', `${path} has disappeared since the coordinator opened its ledger; restore it from a backup`);
    const record = parseRecord(raw.toString('utf8'), path);
    if (record.sequence !== sequence || record.recordHash !== expectedHash || recordHash(record.sequence, record.previousRecordHash, record.body) !== expectedHash) {
      throw new StateError('CHAIN_BROKEN', `${path} has changed since the coordinator opened its ledger (its hash no longer matches the chain); restore it from a backup`);
    }
    return record;
  }

  /** Appends a record; durable on disk before it resolves. */
  async append(body: JsonValue): Promise<LedgerRecord> {
    const sequence = this.hashes.length + 1;
    const previousRecordHash = this.headHash;
    const record: LedgerRecord = {
      formatVersion: LEDGER_FORMAT_VERSION,
      sequence,
      previousRecordHash,
      body,
      recordHash: recordHash(sequence, previousRecordHash, body),
    };
    const { faultPoint } = this;
    await writeFileAtomic(join(this.directory, fileName(sequence)), JSON.stringify(record, null, 1) + '\n', faultPoint === undefined ? {} : { beforeRename: () => faultPoint('ledger_write') });
    this.hashes.push(record.recordHash);
    this.newest = record;
    return record;
  }
}

function fileName(sequence: number): string {
  return `${String(sequence).padStart(8, '0')}.json`;
}

/** Reads every record file of a ledger directory in sequence order (no chain check). */
/**
 * A coordinator killed while appending record n+1 leaves its temporary file, fsynced, beside the ledger.
 * The record holds the round's quorum of commit signatures, and the sites have already unmasked that
 * round's aggregate and will not contribute on its model again: the round is committed, so the append is
 * completed rather than the round re-run. A leftover is used only when it is a whole record that links to
 * the head (sequence, previous hash, its own hash); anything else is discarded.
 */
async function rollForwardPendingRecord(directory: string, records: readonly LedgerRecord[]): Promise<LedgerRecord | undefined> {
  const path = join(directory, fileName(records.length + 1));
  for (const { temporary, content } of await leftoverWrites(path)) {
    let record: LedgerRecord;
    try {
      record = parseRecord(content.toString('utf8'), temporary);
    } catch {
      continue;
    }
    if (findChainProblem([...records, record]) !== undefined) continue;
    await completeLeftoverWrite(temporary, path);
    return record;
  }
  return undefined;
}

export async function readLedgerDirectory(directory: string): Promise<LedgerRecord[]> {
  const names = (await readdir(directory)).filter((name) => FILE_PATTERN.test(name)).sort();
  const records: LedgerRecord[] = [];
  for (const name of names) {
    const path = join(directory, name);
    const raw = await readFileIfExists(path);
    if (raw === undefined) continue;
    records.push(parseRecord(raw.toString('utf8'), path));
  }
  return records;
}

export function parseRecord(text: string, path: string): LedgerRecord {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new StateError('CORRUPT', `${path} is not valid JSON`, { cause: error });
  }
  const record = value as Partial<LedgerRecord>;
  if (record.formatVersion !== LEDGER_FORMAT_VERSION) {
    throw new StateError('UNSUPPORTED_VERSION', `${path}: format version ${String(record.formatVersion)}, this fedgate reads ${LEDGER_FORMAT_VERSION}`);
  }
  if (!Number.isSafeInteger(record.sequence) || typeof record.previousRecordHash !== 'string' || typeof record.recordHash !== 'string' || record.body === undefined) {
    throw new StateError('CORRUPT', `${path}: a ledger record needs sequence, previousRecordHash, body and recordHash`);
  }
  return record as LedgerRecord;
}

/**
 * Checks sequence numbers, links and record hashes; returns a description naming the first bad record,
 * or undefined when the chain is intact.
 */
export function findChainProblem(records: readonly LedgerRecord[]): string | undefined {
  let previous = GENESIS_HASH;
  for (const [index, record] of records.entries()) {
    const expectedSequence = index + 1;
    if (record.sequence !== expectedSequence) {
      return `record ${expectedSequence}: found sequence ${record.sequence} (a record is missing, duplicated or out of order)`;
    }
    if (record.previousRecordHash !== previous) {
      return `record ${expectedSequence}: previousRecordHash does not match record ${expectedSequence - 1} (records removed, swapped or edited)`;
    }
    const expectedHash = recordHash(record.sequence, record.previousRecordHash, record.body);
    if (record.recordHash !== expectedHash) {
      return `record ${expectedSequence}: content does not match its recordHash (the record was edited)`;
    }
    previous = record.recordHash;
  }
  return undefined;
}
