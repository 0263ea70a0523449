/**
 * The participant-level DP a pinned task asks for (privacy.participantLevel), read from the task
 * document itself: a site checks every RoundConfig.distributedDp against it before it makes any key
 * (crypto/secagg/distributed-dp-round.ts checkRoundDistributedDp), so the coordinator cannot give it less
 * noise, another ring, scale or rotation, or a round without the DP its task names. Read from the task
 * alone (no data, no trainer), once per task hash, so the key exchange does not wait for training to be
 * prepared.
 */
import { toHex } from '../../crypto/bytes.js';
import type { DistributedDpRequirement } from '../../crypto/secagg/dp-fields.js';
import { parseTaskDocument, participantLevelOf } from '../../model/task.js';
import type { BlobSource } from './site-training.js';

export class TaskPrivacy {
  private readonly requirements = new Map<string, Promise<DistributedDpRequirement | undefined>>();

  /** `blobs` returns content-addressed bytes checked against their hash (the task document by its pin). */
  constructor(private readonly blobs: BlobSource) {}

  participantLevel(hash: Uint8Array): Promise<DistributedDpRequirement | undefined> {
    const key = toHex(hash);
    let requirement = this.requirements.get(key);
    if (requirement === undefined) {
      requirement = this.load(hash);
      requirement.catch(() => this.requirements.delete(key));
      this.requirements.set(key, requirement);
    }
    return requirement;
  }

  private async load(hash: Uint8Array): Promise<DistributedDpRequirement | undefined> {
    const bytes = await this.blobs.fetch(hash);
    let document: unknown;
    try {
      document = JSON.parse(Buffer.from(bytes).toString('utf8'));
    } catch (error) {
      throw new Error(`task ${toHex(hash)} is not a JSON task document`, { cause: error });
    }
    return participantLevelOf(parseTaskDocument(document));
  }
}
