/**
 * TaskPrivacy: the participant-level DP a site reads from its pinned task document (the daemon checks
 * every RoundConfig.distributedDp against it before any key): ringBits resolved to 32 when absent,
 * nothing for a task without it, one read per task hash, a failed read retried.
 */
import { describe, expect, it } from 'vitest';
import { fromHex } from '../../../../crypto/bytes.js';
import { checkRoundDistributedDp } from '../../../../crypto/secagg/distributed-dp-round.js';
import { canonicalTaskBytes, parseTaskDocument, participantLevelOf, taskHash, type TaskDocument } from '../../../../model/task.js';
import { TaskPrivacy } from '../../../../participant/daemon/task-privacy.js';
import { dpRoundConfig } from '../../../support/distributed-dp-round.js';
import { taskFor } from '../../../support/model/tasks.js';
import { siteIds } from '../../../support/secagg-sim.js';

const base = taskFor({ kind: 'logreg', inputShape: [4], classes: 3 }, { seed: 7 });
const participantLevel = { mechanism: 'discrete_gaussian' as const, clipNorm: 1, noiseMultiplier: 0.5, toleratedColluders: 1 };
const dpTask: TaskDocument = { ...base, privacy: { participantLevel } };

function blobs(documents: readonly TaskDocument[]): { fetch: (hash: Uint8Array) => Promise<Uint8Array>; fetches: number } {
  const byHash = new Map(documents.map((document) => [taskHash(document), canonicalTaskBytes(document)]));
  const source = {
    fetches: 0,
    fetch: async (hash: Uint8Array): Promise<Uint8Array> => {
      source.fetches++;
      const bytes = byHash.get(Buffer.from(hash).toString('hex'));
      if (bytes === undefined) throw new Error('no such blob');
      return Promise.resolve(bytes);
    },
  };
  return source;
}

describe('TaskPrivacy', () => {
  it("reads the task's participant-level DP (ringBits 32 when absent), once per task hash", async () => {
    const source = blobs([dpTask, base]);
    const privacy = new TaskPrivacy(source);
    const expected = { ...participantLevel, ringBits: 32 };
    expect(await privacy.participantLevel(fromHex(taskHash(dpTask)))).toEqual(expected);
    expect(await privacy.participantLevel(fromHex(taskHash(dpTask)))).toEqual(expected);
    expect(source.fetches).toBe(1);
    expect(await privacy.participantLevel(fromHex(taskHash(base)))).toBeUndefined();
    expect(participantLevelOf(parseTaskDocument(dpTask))).toEqual(expected);
  });

  it('forgets a failed read so the next round tries again', async () => {
    const source = blobs([]);
    const privacy = new TaskPrivacy(source);
    await expect(privacy.participantLevel(fromHex(taskHash(dpTask)))).rejects.toThrow(/no such blob/);
    await expect(privacy.participantLevel(fromHex(taskHash(dpTask)))).rejects.toThrow(/no such blob/);
    expect(source.fetches).toBe(2);
  });

  it('gives the daemon what it needs to refuse a round with less noise than the task asks', async () => {
    const requirement = await new TaskPrivacy(blobs([dpTask])).participantLevel(fromHex(taskHash(dpTask)));
    const honest = dpRoundConfig({ participants: siteIds(6), degree: 5, parameters: 15 }, requirement!);
    expect(() => checkRoundDistributedDp(honest, requirement)).not.toThrow();
    const weaker = dpRoundConfig({ participants: siteIds(6), degree: 5, parameters: 15 }, { ...requirement!, noiseMultiplier: 0.25 });
    expect(() => checkRoundDistributedDp(weaker, requirement)).toThrow(expect.objectContaining({ reason: 'DP_PARAMETERS_MISMATCH' }));
    expect(() => checkRoundDistributedDp(honest, undefined)).toThrow(expect.objectContaining({ reason: 'DP_NOT_IN_TASK' }));
  });

  it('refuses a task whose bytes are not JSON, naming the task, and reads it again at the next round', async () => {
    let fetches = 0;
    const privacy = new TaskPrivacy({ fetch: async () => (fetches++, new TextEncoder().encode('{"formatVersion": 1,')) });
    const hash = fromHex(taskHash(dpTask));
    const failure = await privacy.participantLevel(hash).then(
      () => undefined,
      (error: unknown) => error as Error,
    );
    expect(failure?.message).toBe(`task ${taskHash(dpTask)} is not a JSON task document`);
    expect(failure?.cause).toBeInstanceOf(SyntaxError);
    await expect(privacy.participantLevel(hash)).rejects.toThrow(/not a JSON task document/);
    expect(fetches).toBe(2);
  });
});
