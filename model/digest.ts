/**
 * The one SHA-256 of model/. model/ imports nothing of ours (DESIGN.md, layering), so it cannot use
 * crypto/hash.ts; yet it needs a digest for itself in two places: the task hash and the model hash
 * written into an exported ONNX model's metadata (export.ts), and the check that a forward ONNX model
 * is the one its task names before a training plan is built from it (task.ts). Everything model/ only
 * encodes for others (weights, server-optimiser state) it returns as canonical bytes; callers hash them.
 */
import { createHash } from 'node:crypto';

/** Lower-case hex SHA-256 of `bytes`. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}
