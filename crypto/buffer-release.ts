/**
 * Hands a spent keystream Buffer's memory back at once instead of leaving it to the garbage collector.
 *
 * node:crypto's `cipher.update` returns a fresh ArrayBuffer per call, and masking asks for hundreds of
 * megabytes of keystream per round. V8 counts every ArrayBuffer's bytes as external memory and, once
 * that count runs 64 MiB past its level at the last full collection, starts a full mark-compact. With
 * the heap of a real process (bench/secagg.ts: ~21 MB) each of those pauses took ~7 ms and came every
 * ~30 ms of masking: a site's k = 49 masking measured 107 ms with them and 46 ms without.
 *
 * Detaching an ArrayBuffer frees its memory and takes its bytes off V8's external-memory count
 * immediately, so no collection is ever asked for. The standard way to detach is
 * `ArrayBuffer.prototype.transfer` (ES2024): built in from Node.js 22, and present in Node.js 20's V8
 * behind --harmony-rab-gsab-transfer (flagged-builtin.ts). Where neither is available `releaseBuffer`
 * does nothing and the collector frees the memory as before.
 */
import { flaggedBuiltin } from './flagged-builtin.js';

type Transfer = (this: ArrayBuffer, newLength?: number) => ArrayBuffer;

let transfer: Transfer | null | undefined;

function findTransfer(): Transfer | null {
  const native = (ArrayBuffer.prototype as { transfer?: unknown }).transfer;
  if (typeof native === 'function') return native as Transfer;
  // V8 11 (Node.js 20 and 21) has the method behind the flag; other V8s would warn about an unknown flag.
  if (!process.versions.v8.startsWith('11.')) return null;
  const fromRealm = flaggedBuiltin('--harmony-rab-gsab-transfer', 'ArrayBuffer.prototype.transfer');
  return typeof fromRealm === 'function' ? (fromRealm as Transfer) : null;
}

/** Whether `releaseBuffer` can free memory on this runtime (tests and benchmarks report it). */
export function canReleaseBuffers(): boolean {
  transfer ??= findTransfer();
  return transfer !== null;
}

/**
 * Frees the memory behind `view` now, leaving `view` (and every other view of that memory) empty. Only
 * for memory the caller alone holds, such as the return value of `cipher.update`; a view that covers
 * part of its ArrayBuffer (a pooled Buffer, a subarray) or a SharedArrayBuffer is left alone.
 */
export function releaseBuffer(view: ArrayBufferView): void {
  transfer ??= findTransfer();
  const buffer = view.buffer;
  if (transfer === null || !(buffer instanceof ArrayBuffer)) return;
  if (view.byteOffset !== 0 || view.byteLength !== buffer.byteLength || buffer.byteLength === 0) return;
  transfer.call(buffer, 0);
}
