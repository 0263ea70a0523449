/**
 * The ledger's commit records as sites fetch them (GetCommitRecords): the records of the rounds after a
 * round counter, in ledger order, as the canonical bytes RoundCommitted carries. Round counters strictly
 * increase along the ledger (each round's id is allocated, fsynced, after the previous commit), so the
 * first record to send is found by binary search: a site that missed a few rounds of a long federation
 * costs a handful of record reads, not the whole ledger.
 */
import { encodeCommitRecord } from '../../crypto/secagg/commit-record-codec.js';
import type { Ledger } from '../state/ledger.js';
import { parseLedgerCommit } from './ledger-commit.js';

export interface LedgerCommitRecord {
  readonly sequence: number;
  /** Canonical bytes of the record (crypto/secagg/commit-record-codec.ts). */
  readonly record: Uint8Array;
}

/** At most `maxRecords` records of the rounds whose counter is above `afterRoundCounter`. */
export async function* commitRecordsAfter(ledger: Ledger, afterRoundCounter: bigint, maxRecords: number): AsyncGenerator<LedgerCommitRecord> {
  const counterAt = async (sequence: number): Promise<bigint> => parseLedgerCommit((await ledger.read(sequence)).body, `ledger record ${sequence}`).counter;
  let low = 1;
  let high = ledger.length + 1;
  while (low < high) {
    const middle = Math.floor((low + high) / 2);
    if ((await counterAt(middle)) > afterRoundCounter) high = middle;
    else low = middle + 1;
  }
  const end = Math.min(ledger.length, low + maxRecords - 1);
  for (let sequence = low; sequence <= end; sequence++) {
    const { body } = parseLedgerCommit((await ledger.read(sequence)).body, `ledger record ${sequence}`);
    yield { sequence, record: encodeCommitRecord(body) };
  }
}
