/**
 * Where a task's chain starts, as a site computes it for itself (DESIGN.md "What a site checks for
 * itself"): the task document is fetched by the hash the site pinned, must pin its initial model and
 * server optimiser, and the weights it builds must be that initial model; the initial head is that model
 * with the initial optimiser state. Computed from the task alone, without data or trainer, so a round's
 * key exchange does not wait for the site to load its data; one computation per task hash.
 */
import { fromHex, toHex } from '../../crypto/bytes.js';
import type { CommitChainHead } from '../../crypto/secagg/commit-chain.js';
import { parseTaskDocument, taskHash } from '../../model/task.js';
import { pinnedChainStart } from '../../model/task-pin.js';
import type { BlobSource } from '../daemon/site-training.js';

export class TaskOrigins {
  private readonly origins = new Map<string, Promise<CommitChainHead>>();

  constructor(private readonly blobs: BlobSource) {}

  /** The initial head of the task with `hash`; rejects when the task is not pinned or not what it pins. */
  origin(hash: Uint8Array): Promise<CommitChainHead> {
    const key = toHex(hash);
    let origin = this.origins.get(key);
    if (origin === undefined) {
      origin = this.load(hash);
      origin.catch(() => this.origins.delete(key));
      this.origins.set(key, origin);
    }
    return origin;
  }

  private async load(hash: Uint8Array): Promise<CommitChainHead> {
    const bytes = await this.blobs.fetch(hash);
    let document: unknown;
    try {
      document = JSON.parse(Buffer.from(bytes).toString('utf8'));
    } catch (error) {
      throw new Error(`task ${toHex(hash)} is not a JSON task document`, { cause: error });
    }
    const task = parseTaskDocument(document);
    const forwardModel = task.model.kind === 'onnx' ? await this.blobs.fetch(fromHex(task.model.modelSha256)) : undefined;
    if (taskHash(task, forwardModel) !== toHex(hash)) throw new Error(`task document ${toHex(hash)} does not hash to its pin after parsing`);
    const start = pinnedChainStart(task, forwardModel);
    return { counter: 0n, modelHash: fromHex(start.modelHash), optimizerStateHash: fromHex(start.optimizerStateHash) };
  }
}
