/**
 * A JavaScript builtin that this Node.js's V8 only installs under a flag. Such flags decide what a new
 * realm gets when it is created, so the flag is set and the value read from a fresh `vm` realm; the
 * builtin found there works on objects of every realm. Returns undefined if the flag is refused.
 * Setting a V8 flag changes the whole process, which is why this lives in platform/ and only process
 * entry points (the coordinator and participant apps, benchmarks, tests) call it: for
 * ArrayBuffer.prototype.transfer on Node.js 20 (array-buffer-transfer.ts) and V8's `gc`
 * (coordinator/service/heap-compaction.ts).
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

export function flaggedBuiltin(flag: string, expression: string): unknown {
  try {
    setFlagsFromString(flag);
    return runInNewContext(expression);
  } catch {
    return undefined;
  }
}
