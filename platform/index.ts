/**
 * platform/: process-level helpers that touch the runtime itself (V8 flags, the process's memory). It
 * imports nothing of ours, and everything but crypto/ and model/ may import it; those two stay pure and
 * are handed what they need (crypto/buffer-release.ts's installBufferTransfer).
 */
export { flaggedBuiltin } from './flagged-builtin.js';
export { arrayBufferTransfer, type ArrayBufferTransfer } from './array-buffer-transfer.js';
