/**
 * The task document's `privacy.participantLevel`: the distributed-DP parameters every site enforces are
 * public and pinned by the task hash; the default ring (32 bits) has one spelling; out-of-range values
 * are refused naming the key.
 */
import { describe, expect, it } from 'vitest';
import { parseTaskDocument, taskHash, type TaskDocument } from '../../../model/index.js';
import { taskErrorOf, taskFor } from '../../support/model/tasks.js';

const base = taskFor({ kind: 'logreg', inputShape: [4], classes: 3 }, { seed: 7 });
const participantLevel = { mechanism: 'discrete_gaussian' as const, clipNorm: 1, noiseMultiplier: 1.1, toleratedColluders: 1, ringBits: 20 };
const private_: TaskDocument = { ...base, privacy: { participantLevel } };


describe('task participant-level privacy', () => {
  it('keeps the distributed-DP parameters and pins each of them in the hash', () => {
    expect(parseTaskDocument(private_).privacy).toEqual({ participantLevel });
    const hash = taskHash(private_);
    expect(hash).not.toBe(taskHash(base));
    for (const [key, value] of [['clipNorm', 2], ['noiseMultiplier', 1.2], ['toleratedColluders', 2], ['ringBits', 24]] as const) {
      expect(taskHash({ ...base, privacy: { participantLevel: { ...participantLevel, [key]: value } } }), key).not.toBe(hash);
    }
  });

  it('sits beside record-level DP, each pinned on its own', () => {
    const recordLevel = { clipNorm: 1, noiseMultiplier: 1.1, samplingRate: 0.01, stepsPerRound: 100 };
    const both = { ...base, privacy: { recordLevel, participantLevel } };
    expect(parseTaskDocument(both).privacy).toEqual({ recordLevel, participantLevel });
    expect(taskHash(both)).not.toBe(taskHash(private_));
    expect(taskHash(both)).not.toBe(taskHash({ ...base, privacy: { recordLevel } }));
  });

  it('hashes ringBits 32 (SecAgg ring, the default) like a task without ringBits', () => {
    const { ringBits: _ringBits, ...withoutBits } = participantLevel;
    const explicit = { ...base, privacy: { participantLevel: { ...participantLevel, ringBits: 32 } } };
    expect(taskHash(explicit)).toBe(taskHash({ ...base, privacy: { participantLevel: withoutBits } }));
    expect(parseTaskDocument(explicit).privacy?.participantLevel?.ringBits).toBeUndefined();
  });

  it('refuses out-of-range or unknown parameters, naming the key', () => {
    const bad = (override: Record<string, unknown>): string => taskErrorOf({ ...base, privacy: { participantLevel: { ...participantLevel, ...override } } });
    expect(bad({ mechanism: 'laplace' })).toMatch(/privacy\.participantLevel\.mechanism/);
    expect(bad({ clipNorm: 0 })).toMatch(/privacy\.participantLevel\.clipNorm/);
    expect(bad({ noiseMultiplier: -1 })).toMatch(/privacy\.participantLevel\.noiseMultiplier/);
    expect(bad({ toleratedColluders: 0.5 })).toMatch(/privacy\.participantLevel\.toleratedColluders/);
    expect(bad({ ringBits: 33 })).toMatch(/privacy\.participantLevel\.ringBits/);
    expect(bad({ ringBits: 1 })).toMatch(/privacy\.participantLevel\.ringBits/);
    expect(bad({ scale: 64 })).toMatch(/privacy\.participantLevel: unknown key\(s\) 'scale'/);
  });
});
