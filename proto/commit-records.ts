/**
 * GetCommitRecords (federation.proto) for both sides: the coordinator streams the ledger's commit records
 * of the rounds after a given round counter; a site that joined late or lost its state fetches them to
 * verify its chain from the task's pinned initial model (participant/chain). The records themselves are
 * opaque bytes here: crypto/secagg/commit-record-codec.ts reads them and commit-chain.ts verifies them.
 * Every stream handles errors and cancellation; every received field is checked.
 */
import type { CallOptions, ServerWritableStream } from '@grpc/grpc-js';
import { FedgateError, fedgateError } from './errors.js';
import type { FederationClient } from './loader.js';
import type { CommitRecordEntry, CommitRecordEntry__Output, GetCommitRecordsRequest__Output } from './messages.js';
import { fromGrpcError } from './status.js';
import { WireReader } from './wire-reader.js';

/** Most records one GetCommitRecords call returns (and the page size when the request names none). */
export const MAX_COMMIT_RECORDS_PER_CALL = 1000;

/** One ledger record as GetCommitRecords carries it. */
export interface CommitRecordPageEntry {
  /** 1-based position in the coordinator's ledger. */
  readonly sequence: number;
  /** Canonical bytes of the commit record. */
  readonly record: Uint8Array;
}

/** The request as the coordinator reads it: the counter to start after and the page size, capped. */
export function readCommitRecordsRequest(request: GetCommitRecordsRequest__Output): { afterRoundCounter: bigint; maxRecords: number } {
  const r = new WireReader('GetCommitRecordsRequest');
  const after = r.count(request.afterRoundCounter, 'afterRoundCounter');
  const max = r.count(request.maxRecords, 'maxRecords');
  return { afterRoundCounter: BigInt(after), maxRecords: max === 0 ? MAX_COMMIT_RECORDS_PER_CALL : Math.min(max, MAX_COMMIT_RECORDS_PER_CALL) };
}

/**
 * Coordinator: writes `records` (already limited to the page) and ends the call; stops early, without
 * error, when the caller cancels.
 */
export async function sendCommitRecords(call: ServerWritableStream<unknown, CommitRecordEntry>, records: AsyncIterable<CommitRecordPageEntry>): Promise<void> {
  let cancelled = call.cancelled;
  const onCancelled = (): void => {
    cancelled = true;
  };
  call.once('cancelled', onCancelled);
  try {
    for await (const entry of records) {
      if (cancelled) return;
      if (!call.write({ sequence: entry.sequence, commitRecord: entry.record })) {
        await new Promise<void>((resolve) => {
          const done = (): void => {
            call.off('drain', done);
            call.off('cancelled', done);
            resolve();
          };
          call.once('drain', done);
          call.once('cancelled', done);
        });
      }
    }
    if (!cancelled) call.end();
  } finally {
    call.off('cancelled', onCancelled);
  }
}

export interface FetchCommitRecordsOptions {
  /** Page size asked for. @default MAX_COMMIT_RECORDS_PER_CALL */
  readonly maxRecords?: number;
  /** Largest record accepted, in bytes; a larger one fails the call with RESOURCE_EXHAUSTED. */
  readonly maxRecordBytes: number;
  readonly callOptions?: CallOptions;
}

/**
 * Participant: one page of the commit records of the rounds after `afterRoundCounter`, in ledger order.
 * A page shorter than the one asked for is the end of the ledger.
 */
export async function fetchCommitRecords(client: FederationClient, afterRoundCounter: bigint, options: FetchCommitRecordsOptions): Promise<CommitRecordPageEntry[]> {
  const maxRecords = options.maxRecords ?? MAX_COMMIT_RECORDS_PER_CALL;
  const callName = `GetCommitRecords(after round ${afterRoundCounter})`;
  if (afterRoundCounter < 0n || afterRoundCounter > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw fedgateError('INVALID_ARGUMENT', 'BAD_COUNTER', `${callName}: the round counter must be in [0, 2^53)`);
  }
  const call = client.getCommitRecords({ afterRoundCounter: Number(afterRoundCounter), maxRecords }, options.callOptions ?? {});
  // Errors surface through the iteration below; this keeps a late one (after cancel) from being unhandled.
  call.on('error', () => undefined);
  const entries: CommitRecordPageEntry[] = [];
  try {
    for await (const message of call as AsyncIterable<CommitRecordEntry__Output>) {
      const r = new WireReader(`CommitRecordEntry[${entries.length}]`);
      const sequence = r.count(message.sequence, 'sequence');
      const record = r.bytes(message.commitRecord, 'commitRecord');
      if (record.byteLength > options.maxRecordBytes) {
        throw fedgateError('RESOURCE_EXHAUSTED', 'RECORD_TOO_LARGE', `${callName}: record ${sequence} is ${record.byteLength} bytes, more than the ${options.maxRecordBytes} this site accepts`);
      }
      const previous = entries.at(-1);
      if (previous !== undefined && sequence <= previous.sequence) {
        throw fedgateError('INVALID_ARGUMENT', 'OUT_OF_ORDER_RECORD', `${callName}: record ${sequence} followed record ${previous.sequence}`);
      }
      if (entries.length >= maxRecords) throw fedgateError('INVALID_ARGUMENT', 'TOO_MANY_RECORDS', `${callName}: more than the ${maxRecords} records asked for`);
      entries.push({ sequence, record });
    }
  } catch (error) {
    call.cancel();
    throw error instanceof FedgateError ? error : fromGrpcError(error, callName);
  }
  return entries;
}
