/**
 * The task document's `privacy` key: the DP-SGD parameters every site runs are public and pinned by the
 * task hash; an empty `privacy` hashes like none; out-of-range values are refused naming the key.
 */
import { describe, expect, it } from 'vitest';
import { parseTaskDocument, taskHash, type TaskDocument } from '../../../model/index.js';
import { taskErrorOf, taskFor } from '../../support/model/tasks.js';

const base = taskFor({ kind: 'logreg', inputShape: [4], classes: 3 }, { seed: 7 });
const recordLevel = { clipNorm: 1, noiseMultiplier: 1.1, samplingRate: 0.01, stepsPerRound: 100 };
const private_: TaskDocument = { ...base, privacy: { recordLevel } };


describe('task privacy', () => {
  it('keeps the DP-SGD parameters and pins each of them in the hash', () => {
    expect(parseTaskDocument(private_).privacy).toEqual({ recordLevel });
    const hash = taskHash(private_);
    expect(hash).not.toBe(taskHash(base));
    for (const [key, value] of [['clipNorm', 2], ['noiseMultiplier', 1.2], ['samplingRate', 0.02], ['stepsPerRound', 101]] as const) {
      expect(taskHash({ ...base, privacy: { recordLevel: { ...recordLevel, [key]: value } } }), key).not.toBe(hash);
    }
  });

  it('hashes an empty privacy key like a task without one', () => {
    expect(taskHash({ ...base, privacy: {} })).toBe(taskHash(base));
    expect(parseTaskDocument({ ...base, privacy: {} }).privacy).toBeUndefined();
  });

  it('refuses out-of-range or unknown parameters, naming the key', () => {
    expect(taskErrorOf({ ...base, privacy: { recordLevel: { ...recordLevel, samplingRate: 1.5 } } })).toMatch(/privacy\.recordLevel\.samplingRate/);
    expect(taskErrorOf({ ...base, privacy: { recordLevel: { ...recordLevel, noiseMultiplier: 0 } } })).toMatch(/privacy\.recordLevel\.noiseMultiplier/);
    expect(taskErrorOf({ ...base, privacy: { recordLevel: { ...recordLevel, stepsPerRound: 2.5 } } })).toMatch(/privacy\.recordLevel\.stepsPerRound/);
    expect(taskErrorOf({ ...base, privacy: { recordLevel: { ...recordLevel, clipNorm: -1 } } })).toMatch(/privacy\.recordLevel\.clipNorm/);
    expect(taskErrorOf({ ...base, privacy: { epsilon: 1 } })).toMatch(/privacy: unknown key\(s\) 'epsilon'/);
  });
});
