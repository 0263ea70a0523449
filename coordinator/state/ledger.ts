/**
 * The round ledger (DESIGN.md step 7): append-only, hash-chained records, one file per committed round
 * (`ledger/<sequence, 8 digits>.json`, each written atomically), so a crash during a write leaves either
 * the complete record or none. Each record's hash covers its sequence number, the previous record's hash
 * and the canonical JSON of its body; the body (the signed commit) is produced and verified by callers.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { canonicalJson, type JsonValue } from './canonical-json.js';
import { prepareDirectory, readFileIfExists, writeFileAtomic } from './atomic-file.js';
import { sha256Hex } from './model-store.js';
import { StateError } from './state-error.js';
import { faultPoint } from './fault-injection.js';

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

export class Ledger {
  private constructor(
    private readonly directory: string,
    private readonly records: LedgerRecord[],
  ) {}

  /** Opens (or creates) the ledger in `stateDirectory/ledger` and checks the whole chain. */
  static async open(stateDirectory: string): Promise<Ledger> {
    const directory = join(stateDirectory, 'ledger');
    await prepareDirectory(directory);
    const records = await readLedgerDirectory(directory);
    const problem = findChainProblem(records);
    if (problem !== undefined) throw new StateError('chain_broken', `${directory}: ${problem}`);
    return new Ledger(directory, records);
  }

  get length(): number {
    return this.records.length;
  }

  get headHash(): string {
    return this.records.at(-1)?.recordHash ?? GENESIS_HASH;
  }

  all(): readonly LedgerRecord[] {
    return this.records;
  }

  /** Appends a record; durable on disk before it resolves. */
  async append(body: JsonValue): Promise<LedgerRecord> {
    const sequence = this.records.length + 1;
    const previousRecordHash = this.headHash;
    const record: LedgerRecord = {
      formatVersion: LEDGER_FORMAT_VERSION,
      sequence,
      previousRecordHash,
      body,
      recordHash: recordHash(sequence, previousRecordHash, body),
    };
    await writeFileAtomic(join(this.directory, fileName(sequence)), JSON.stringify(record, null, 1) + '\n', { beforeRename: () => faultPoint('ledger_write') });
    this.records.push(record);
    return record;
  }
}

function fileName(sequence: number): string {
  return `${String(sequence).padStart(8, '0')}.json`;
}

/** Reads every record file of a ledger directory in sequence order (no chain check). */
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
    throw new StateError('corrupt', `${path} is not valid JSON`, { cause: error });
  }
  const record = value as Partial<LedgerRecord>;
  if (record.formatVersion !== LEDGER_FORMAT_VERSION) {
    throw new StateError('unsupported_version', `${path}: format version ${String(record.formatVersion)}, this fedgate reads ${LEDGER_FORMAT_VERSION}`);
  }
  if (!Number.isSafeInteger(record.sequence) || typeof record.previousRecordHash !== 'string' || typeof record.recordHash !== 'string' || record.body === undefined) {
    throw new StateError('corrupt', `${path}: a ledger record needs sequence, previousRecordHash, body and recordHash`);
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
