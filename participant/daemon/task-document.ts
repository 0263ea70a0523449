/**
 * A pinned task document as a site reads it for its own checks (task-privacy.ts, chain/task-origin.ts):
 * fetched by the hash the site pinned (the blob source checks the bytes against it) and parsed, and the
 * per-hash cache those readers keep, which forgets a failed read so the next round tries again.
 */
import { toHex } from '../../crypto/bytes.js';
import { parseTaskDocument, type TaskDocument } from '../../model/task.js';
import type { BlobSource } from './site-training.js';

/** The task document with `hash`, parsed; rejects when it is not JSON or not a valid task document. */
export async function fetchTaskDocument(blobs: BlobSource, hash: Uint8Array): Promise<TaskDocument> {
  const bytes = await blobs.fetch(hash);
  let document: unknown;
  try {
    document = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (error) {
    throw new Error(`task ${toHex(hash)} is not a JSON task document`, { cause: error });
  }
  return parseTaskDocument(document);
}

/** The promise `cache` holds for `hash`, else `load()`'s, kept until it rejects. */
export function cachedByHash<T>(cache: Map<string, Promise<T>>, hash: Uint8Array, load: () => Promise<T>): Promise<T> {
  const key = toHex(hash);
  let value = cache.get(key);
  if (value === undefined) {
    value = load();
    value.catch(() => cache.delete(key));
    cache.set(key, value);
  }
  return value;
}
