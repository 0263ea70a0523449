/**
 * `ArrayBuffer.prototype.transfer` (ES2024) for this runtime: built in from Node.js 22, and present in
 * Node.js 20's V8 (11.x) behind --harmony-rab-gsab-transfer, taken from a fresh realm with the flag set
 * (flagged-builtin.ts). crypto/buffer-release.ts uses it to free spent keystream memory at once; crypto/
 * may not touch process state, so entry points hand it over: `installBufferTransfer(arrayBufferTransfer())`.
 */
import { flaggedBuiltin } from './flagged-builtin.js';

export type ArrayBufferTransfer = (this: ArrayBuffer, newLength?: number) => ArrayBuffer;

let found: ArrayBufferTransfer | null | undefined;

/** The transfer method, or undefined where this runtime has none. Sets the V8 flag once, at the first call. */
export function arrayBufferTransfer(): ArrayBufferTransfer | undefined {
  found ??= findTransfer();
  return found ?? undefined;
}

function findTransfer(): ArrayBufferTransfer | null {
  const native = (ArrayBuffer.prototype as { transfer?: unknown }).transfer;
  if (typeof native === 'function') return native as ArrayBufferTransfer;
  // V8 11 (Node.js 20 and 21) has the method behind the flag; other V8s would warn about an unknown flag.
  if (!process.versions.v8.startsWith('11.')) return null;
  const fromRealm = flaggedBuiltin('--harmony-rab-gsab-transfer', 'ArrayBuffer.prototype.transfer');
  return typeof fromRealm === 'function' ? (fromRealm as ArrayBufferTransfer) : null;
}
