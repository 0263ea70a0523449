/**
 * Pinning a task (model/task-pin.ts): the task hash fixes the initial model and the server optimiser, so
 * a coordinator cannot open round 1 on weights it chose alone or run another optimiser than the sites
 * reviewed.
 */
import { describe, expect, it } from 'vitest';
import {
  ModelError,
  buildTrainingPlan,
  chainStart,
  checkPinnedInitialModel,
  encodeWeights,
  initialModelHash,
  modelHash,
  parseTaskDocument,
  pinTask,
  pinnedChainStart,
  requirePinnedTask,
  taskHash,
  taskParameterCount,
} from '../../../model/index.js';
import { sha256Hex } from '../../../model/digest.js';
import { encodeServerOptimizerState, initialServerOptimizerState } from '../../../model/server-optimizer.js';
import { taskFor } from '../../support/model/tasks.js';

const draft = (): ReturnType<typeof taskFor> => taskFor({ kind: 'mlp', inputShape: [4], hidden: [3], classes: 2 });

describe('pinTask', () => {
  it('fills the initial model hash of the weights the task builds and FedAvg as the server optimiser', () => {
    const plan = buildTrainingPlan(draft());
    const pinned = pinTask(draft());
    expect(pinned.initialModel.sha256).toBe(modelHash(plan, plan.initialParameters));
    expect(pinned.initialModel.sha256).toBe(sha256Hex(encodeWeights(plan, plan.initialParameters)));
    expect(pinned.serverOptimizer).toEqual({ kind: 'fedavg', learningRate: 1 });
    expect(pinTask(pinned)).toEqual(pinned);
    expect(initialModelHash(draft())).toBe(pinned.initialModel.sha256);
  });

  it('puts both keys in the canonical bytes: the task hash pins them', () => {
    const pinned = pinTask(draft());
    expect(taskHash(pinned)).not.toBe(taskHash(draft()));
    expect(taskHash({ ...pinned, serverOptimizer: { kind: 'fedavg', learningRate: 0.5 } })).not.toBe(taskHash(pinned));
    expect(taskHash({ ...pinned, initialModel: { sha256: 'e'.repeat(64) } })).not.toBe(taskHash(pinned));
    const momentum = parseTaskDocument({ ...pinned, serverOptimizer: { kind: 'fedavgm', learningRate: 1 } });
    expect(momentum.serverOptimizer).toEqual({ kind: 'fedavgm', learningRate: 1, momentum: 0.9 });
  });

  it('refuses a pinned initial model the task does not build', () => {
    const wrong = { ...draft(), initialModel: { sha256: 'a'.repeat(64) } };
    expect(() => pinTask(wrong)).toThrow(expect.objectContaining({ reason: 'INITIAL_MODEL_MISMATCH' }));
    const plan = buildTrainingPlan(draft());
    expect(() => checkPinnedInitialModel(wrong, plan, plan.initialParameters)).toThrow(ModelError);
    expect(checkPinnedInitialModel(pinTask(draft()), plan, plan.initialParameters).initialModel.sha256).toBe(modelHash(plan, plan.initialParameters));
  });

  it('refuses malformed keys by name', () => {
    expect(() => parseTaskDocument({ ...draft(), initialModel: { sha256: 'abc' } })).toThrow(/initialModel\.sha256: expected 64 lower-case hex characters/);
    expect(() => parseTaskDocument({ ...draft(), serverOptimizer: { kind: 'adam', learningRate: 1 } })).toThrow(/serverOptimizer/);
    expect(() => parseTaskDocument({ ...draft(), serverOptimizer: { kind: 'fedavgm', learningRate: 1, momentum: 1 } })).toThrow(/serverOptimizer\.momentum/);
  });
});

describe('requirePinnedTask', () => {
  it('refuses a draft, naming the missing keys', () => {
    expect(() => requirePinnedTask(parseTaskDocument(draft()))).toThrow(/no initialModel and no serverOptimizer/);
    expect(() => requirePinnedTask(parseTaskDocument(draft()))).toThrow(expect.objectContaining({ reason: 'TASK_NOT_PINNED' }));
  });
});

describe('chainStart', () => {
  it('is the pinned initial model and the hash of the initial optimiser state (FedAvgM: zero velocity)', () => {
    const pinned = pinTask({ ...draft(), serverOptimizer: { kind: 'fedavgm', learningRate: 1, momentum: 0.9 } });
    const count = taskParameterCount(pinned);
    const start = chainStart(pinned, count);
    expect(start.modelHash).toBe(pinned.initialModel.sha256);
    expect(start.optimizerStateHash).toBe(sha256Hex(encodeServerOptimizerState(pinned.serverOptimizer, initialServerOptimizerState(pinned.serverOptimizer, count))));
    expect(count).toBe(buildTrainingPlan(pinned).initialParameters.length);
    // What a site computes from the task alone before round 1: the same start, and only for a pinned task
    // whose weights are its pinned initial model.
    expect(pinnedChainStart(pinned)).toEqual(start);
    expect(() => pinnedChainStart(parseTaskDocument(draft()))).toThrow(expect.objectContaining({ reason: 'TASK_NOT_PINNED' }));
    expect(() => pinnedChainStart({ ...pinned, initialModel: { sha256: 'b'.repeat(64) } })).toThrow(expect.objectContaining({ reason: 'INITIAL_MODEL_MISMATCH' }));
  });
});
