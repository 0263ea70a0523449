/**
 * The participant-level DP a pinned task asks for (privacy.participantLevel), read from the task
 * document itself: a site checks every RoundConfig.distributedDp against it before it makes any key
 * (crypto/secagg/distributed-dp-round.ts checkRoundDistributedDp), so the coordinator cannot give it less
 * noise, another ring, scale or rotation, or a round without the DP its task names. Read from the task
 * alone (no data, no trainer), once per task hash, so the key exchange does not wait for training to be
 * prepared.
 */
import type { DistributedDpRequirement } from '../../crypto/secagg/dp-fields.js';
import type { TaskEvaluationShape } from '../../crypto/secagg/metric-slots.js';
import { evaluationShapeOf, participantLevelOf, type TaskDocument } from '../../model/task.js';
import type { BlobSource } from './site-training.js';
import { cachedByHash, fetchTaskDocument } from './task-document.js';

export class TaskPrivacy {
  private readonly documents = new Map<string, Promise<TaskDocument>>();

  /** `blobs` returns content-addressed bytes checked against their hash (the task document by its pin). */
  constructor(private readonly blobs: BlobSource) {}

  async participantLevel(hash: Uint8Array): Promise<DistributedDpRequirement | undefined> {
    return participantLevelOf(await this.document(hash));
  }

  /**
   * What the task's evaluation reports (its target kind and outputs): the site checks RoundConfig's
   * metric slots against it before any key (crypto/secagg/metric-slots.ts checkRoundMetricSlots).
   */
  async evaluationShape(hash: Uint8Array): Promise<TaskEvaluationShape> {
    return evaluationShapeOf(await this.document(hash));
  }

  private document(hash: Uint8Array): Promise<TaskDocument> {
    return cachedByHash(this.documents, hash, () => fetchTaskDocument(this.blobs, hash));
  }
}
