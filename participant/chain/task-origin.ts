/**
 * Where a task's chain starts, as a site computes it for itself (DESIGN.md "What a site checks for
 * itself"): the task document is fetched by the hash the site pinned, must pin its initial model and
 * server optimiser, and the weights it builds must be that initial model; the initial head is that model
 * with the initial optimiser state. Computed from the task alone, without data or trainer, so a round's
 * key exchange does not wait for the site to load its data; one computation per task hash.
 */
import { fromHex, toHex } from '../../crypto/bytes.js';
import type { CommitChainHead } from '../../crypto/secagg/commit-chain.js';
import { taskHash } from '../../model/task.js';
import { pinnedChainStart } from '../../model/task-pin.js';
import type { BlobSource } from '../daemon/site-training.js';
import { cachedByHash, fetchTaskDocument } from '../daemon/task-document.js';

export class TaskOrigins {
  private readonly origins = new Map<string, Promise<CommitChainHead>>();

  constructor(private readonly blobs: BlobSource) {}

  /** The initial head of the task with `hash`; rejects when the task is not pinned or not what it pins. */
  origin(hash: Uint8Array): Promise<CommitChainHead> {
    return cachedByHash(this.origins, hash, () => this.load(hash));
  }

  private async load(hash: Uint8Array): Promise<CommitChainHead> {
    const task = await fetchTaskDocument(this.blobs, hash);
    const forwardModel = task.model.kind === 'onnx' ? await this.blobs.fetch(fromHex(task.model.modelSha256)) : undefined;
    if (taskHash(task, forwardModel) !== toHex(hash)) throw new Error(`task document ${toHex(hash)} does not hash to its pin after parsing`);
    const start = pinnedChainStart(task, forwardModel);
    return { counter: 0n, modelHash: fromHex(start.modelHash), optimizerStateHash: fromHex(start.optimizerStateHash) };
  }
}
