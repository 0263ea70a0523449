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
 * `ArrayBuffer.prototype.transfer` (ES2024), built in from Node.js 22. Node.js 20's V8 has it only behind
 * a flag, and setting a V8 flag changes the whole process, which crypto/ never does: the process's entry
 * point finds it (platform/array-buffer-transfer.ts) and hands it over with `installBufferTransfer`.
 * Where neither is available `releaseBuffer` does nothing and the collector frees the memory as before.
 */

export type BufferTransfer = (this: ArrayBuffer, newLength?: number) => ArrayBuffer;

const nativeTransfer = (ArrayBuffer.prototype as { transfer?: unknown }).transfer;
let transfer: BufferTransfer | undefined = typeof nativeTransfer === 'function' ? (nativeTransfer as BufferTransfer) : undefined;

/**
 * Gives `releaseBuffer` a transfer method on a runtime without the native one (the built-in method wins
 * when present). Undefined - the runtime has none at all - leaves things as they are.
 */
export function installBufferTransfer(candidate: BufferTransfer | undefined): void {
  if (transfer === undefined && candidate !== undefined) transfer = candidate;
}

/** Whether `releaseBuffer` can free memory on this runtime (tests and benchmarks report it). */
export function canReleaseBuffers(): boolean {
  return transfer !== undefined;
}

/**
 * Frees the memory behind `view` now, leaving `view` (and every other view of that memory) empty. Only
 * for memory the caller alone holds, such as the return value of `cipher.update`; a view that covers
 * part of its ArrayBuffer (a pooled Buffer, a subarray) or a SharedArrayBuffer is left alone.
 */
export function releaseBuffer(view: ArrayBufferView): void {
  const buffer = view.buffer;
  if (transfer === undefined || !(buffer instanceof ArrayBuffer)) return;
  if (view.byteOffset !== 0 || view.byteLength !== buffer.byteLength || buffer.byteLength === 0) return;
  transfer.call(buffer, 0);
}
