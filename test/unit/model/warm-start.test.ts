/**
 * Warm start (issue 11, item 8; model/initial-weights.ts, task-pin.ts): a task may start from a given
 * model of its architecture, named by the model hash in initialModel { sha256, warmStart: true }. The
 * weights come from fedgate's weight encoding or from an ONNX model exported by fedgate (the export keeps
 * the model hash exactly); a file of another hash, a missing file and a file the task does not name are
 * refused with what to do; a site refuses weights that are not the pinned ones.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { fromHex, toHex } from '../../../crypto/bytes.js';
import { sha256 } from '../../../crypto/hash.js';
import {
  ModelError,
  buildTrainingPlan,
  canonicalTaskBytes,
  encodeWeights,
  exportInferenceModel,
  modelHash,
  pinTask,
  pinWarmStart,
  pinnedChainStart,
  startingWeights,
  taskHash,
  warmStartWeights,
} from '../../../model/index.js';
import { buildTaskContext } from '../../../participant/daemon/task-context.js';
import { SiteStateStore } from '../../../participant/state/index.js';
import { taskFor } from '../../support/model/tasks.js';

const draft = (): ReturnType<typeof taskFor> => taskFor({ kind: 'mlp', inputShape: [4], hidden: [3], classes: 2 });

/** A model of `draft()`'s architecture that the task does not build: its initial weights, shifted. */
function trainedWeights(shift = 0.125): Float32Array {
  const plan = buildTrainingPlan(draft());
  return plan.initialParameters.map((value, index) => value + shift * ((index % 5) - 2));
}

function modelError(action: () => unknown): ModelError {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(ModelError);
    return error as ModelError;
  }
  throw new Error('expected a ModelError');
}

describe('warm-start weights', () => {
  it('reads an exported ONNX model back to exactly the weights (and model hash) it was exported from', () => {
    const plan = buildTrainingPlan(draft());
    const weights = trainedWeights();
    const onnx = exportInferenceModel(draft(), weights);
    expect(Array.from(warmStartWeights(onnx, plan))).toEqual(Array.from(weights));
    expect(modelHash(plan, warmStartWeights(onnx, plan))).toBe(modelHash(plan, weights));
    expect(Array.from(warmStartWeights(encodeWeights(plan, weights), plan))).toEqual(Array.from(weights));
  });

  it('refuses a model of another architecture, naming the parameter, and bytes that are no model', () => {
    const other = taskFor({ kind: 'mlp', inputShape: [4], hidden: [5], classes: 2 });
    const onnx = exportInferenceModel(other, buildTrainingPlan(other).initialParameters);
    expect(modelError(() => warmStartWeights(onnx, buildTrainingPlan(draft()))).message).toMatch(/has shape \[\d+(, \d+)?\]; the task's model needs \[/);
    const logreg = taskFor({ kind: 'logreg', inputShape: [4], classes: 2 });
    expect(modelError(() => warmStartWeights(exportInferenceModel(logreg, buildTrainingPlan(logreg).initialParameters), buildTrainingPlan(draft()))).message).toMatch(/has no initializer '/);
    expect(modelError(() => warmStartWeights(new TextEncoder().encode('not a model at all'), buildTrainingPlan(draft()))).reason).toBe('INITIAL_MODEL_UNREADABLE');
  });
});

describe('a warm-start task', () => {
  it('pins the given model instead of the built one; the hash changes, a cold task keeps its bytes', () => {
    const plan = buildTrainingPlan(draft());
    const hash = modelHash(plan, trainedWeights());
    const warm = pinWarmStart(draft(), hash);
    const cold = pinTask(draft());
    expect(warm.initialModel).toEqual({ sha256: hash, warmStart: true });
    expect(pinTask(warm)).toEqual(warm);
    expect(taskHash(warm)).not.toBe(taskHash(cold));
    expect(new TextDecoder().decode(canonicalTaskBytes(cold))).not.toContain('warmStart');
    // The chain of commit records starts at the given model (the site checks its weights when it loads them).
    expect(pinnedChainStart(warm).modelHash).toBe(hash);
    // Without warmStart, a hash the task does not build is refused as before.
    expect(modelError(() => pinTask({ ...draft(), initialModel: { sha256: hash } })).reason).toBe('INITIAL_MODEL_MISMATCH');
  });

  it('starts from the file only if it is the model the task names; no file, or a file for a cold task, is refused', () => {
    const plan = buildTrainingPlan(draft());
    const weights = trainedWeights();
    const warm = pinWarmStart(draft(), modelHash(plan, weights));
    expect(Array.from(startingWeights(warm, plan, plan.initialParameters, exportInferenceModel(draft(), weights)))).toEqual(Array.from(weights));
    const wrong = modelError(() => startingWeights(warm, plan, plan.initialParameters, exportInferenceModel(draft(), trainedWeights(0.25))));
    expect([wrong.reason, wrong.message]).toEqual([
      'INITIAL_MODEL_MISMATCH',
      `the initial model file holds weights whose model hash is ${modelHash(plan, trainedWeights(0.25))}, but the task pins initialModel.sha256 ${warm.initialModel.sha256}: give the file of the model the task names, or pin this file with \`fedgate task hash TASK --initial-model FILE\` and re-pin the new task hash at the sites`,
    ]);
    expect(modelError(() => startingWeights(warm, plan, plan.initialParameters, undefined)).reason).toBe('INITIAL_MODEL_MISSING');
    const cold = pinTask(draft());
    expect(startingWeights(cold, plan, plan.initialParameters, undefined)).toBe(plan.initialParameters);
    expect(modelError(() => startingWeights(cold, plan, plan.initialParameters, encodeWeights(plan, weights))).reason).toBe('INITIAL_MODEL_NOT_PINNED');
  });

  it('a site refuses a warm start whose downloaded weights are not the pinned model, before loading data or starting a trainer', async () => {
    const plan = buildTrainingPlan(draft());
    const pinned = pinWarmStart(draft(), modelHash(plan, trainedWeights()));
    const taskBytes = canonicalTaskBytes(pinned);
    const hash = fromHex(taskHash(pinned));
    // A blob source that hands out other weights under the pinned hash (a transfer that did not check).
    const lyingBlobs = {
      fetch: async (requested: Uint8Array): Promise<Uint8Array> => (toHex(requested) === toHex(hash) ? taskBytes : encodeWeights(plan, trainedWeights(0.5))),
    };
    const directory = await mkdtemp(join(tmpdir(), 'fedgate-warm-start-'));
    try {
      const refused = buildTaskContext(hash, {
        blobs: lyingBlobs,
        randomness: await SiteStateStore.open(directory),
        // A path that does not exist: the site refuses before it would read any data.
        data: { format: 'csv', path: join(directory, 'never-read.csv'), label_column: 'label', header: 'auto', test_fraction: 0.2, split_seed: 1 },
        device: 'cpu',
        intraOpThreads: 1,
        logger: pino({ level: 'silent' }),
      });
      await expect(refused).rejects.toThrow(`the task pins initial model ${pinned.initialModel.sha256} (initialModel.sha256) but its initial weights hash to ${modelHash(plan, trainedWeights(0.5))}`);
      expect(sha256(taskBytes)).toEqual(hash);
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });
});
