/**
 * Where a site's chain starts (participant/chain/task-origin.ts): the task document fetched by the hash
 * the site pinned, checked to be that document and to pin its initial model and server optimiser, and
 * the initial head computed from it - for a zoo task and for a task with a forward ONNX model, which the
 * site fetches by the hash the document names. A coordinator that serves another document, bytes that
 * are not a task, or a draft without pins gets no head, and a failure is not cached.
 */
import { describe, expect, it } from 'vitest';
import { fromHex, toHex, utf8 } from '../../../../crypto/bytes.js';
import { sha256 } from '../../../../crypto/hash.js';
import { pinTask, pinnedChainStart } from '../../../../model/task-pin.js';
import { canonicalTaskBytes, taskHash, type TaskDocument } from '../../../../model/task.js';
import { TaskOrigins } from '../../../../participant/chain/task-origin.js';
import { SMALL_CNN_LABELS, SMALL_CNN_SHAPE, fixtureBytes, onnxTask } from '../../../support/model/fixtures.js';
import { syntheticTask } from '../../../support/synthetic-ledger.js';

/** A coordinator's blob store: bytes by hex SHA-256 (or served under another hash), every fetch counted. */
class Blobs {
  readonly fetched: string[] = [];
  private readonly byHash = new Map<string, Uint8Array>();
  failNext = false;

  put(bytes: Uint8Array, underHash = toHex(sha256(bytes))): Uint8Array {
    this.byHash.set(underHash, bytes);
    return fromHex(underHash);
  }

  fetch(hash: Uint8Array): Promise<Uint8Array> {
    const key = toHex(hash);
    this.fetched.push(key);
    if (this.failNext) {
      this.failNext = false;
      return Promise.reject(new Error('UNAVAILABLE: the coordinator is gone'));
    }
    const bytes = this.byHash.get(key);
    return bytes === undefined ? Promise.reject(new Error(`NOT_FOUND: no blob ${key}`)) : Promise.resolve(bytes);
  }
}

const FEDAVGM = { kind: 'fedavgm', learningRate: 1, momentum: 0.5 } as const;

describe('the origin of a pinned task', () => {
  it('is round 0 on the initial model and initial optimiser state the task pins, computed once per task', async () => {
    const task = syntheticTask(FEDAVGM);
    const blobs = new Blobs();
    const hash = blobs.put(canonicalTaskBytes(task));
    const origins = new TaskOrigins(blobs);
    const start = pinnedChainStart(task);
    const expected = { counter: 0n, modelHash: fromHex(start.modelHash), optimizerStateHash: fromHex(start.optimizerStateHash) };
    expect(await origins.origin(hash)).toEqual(expected);
    expect(await origins.origin(hash)).toEqual(expected);
    expect(blobs.fetched).toEqual([toHex(hash)]);
  });

  it('of a task with a forward ONNX model fetches that model by the hash the document names', async () => {
    const model = fixtureBytes('small_cnn.onnx');
    const task = pinTask(onnxTask(model, SMALL_CNN_SHAPE, SMALL_CNN_LABELS), model);
    const blobs = new Blobs();
    const hash = blobs.put(canonicalTaskBytes(task));
    expect(toHex(hash)).toBe(taskHash(task, model));
    const modelHash = blobs.put(model);
    const start = pinnedChainStart(task, model);
    expect(await new TaskOrigins(blobs).origin(hash)).toEqual({ counter: 0n, modelHash: fromHex(start.modelHash), optimizerStateHash: fromHex(start.optimizerStateHash) });
    expect(blobs.fetched).toEqual([toHex(hash), toHex(modelHash)]);
  });
});

describe('no origin', () => {
  async function reasonOf(promise: Promise<unknown>): Promise<string> {
    return promise.then(
      () => 'RESOLVED',
      (error: unknown) => (error as Error).message,
    );
  }

  it('for bytes that are not JSON', async () => {
    const blobs = new Blobs();
    const hash = blobs.put(utf8('not { json'));
    const error = await new TaskOrigins(blobs).origin(hash).catch((caught: unknown) => caught);
    expect(error).toMatchObject({ message: `task ${toHex(hash)} is not a JSON task document`, cause: expect.any(SyntaxError) });
  });

  it('for another task served under the pinned hash', async () => {
    const blobs = new Blobs();
    const pinned = toHex(sha256(canonicalTaskBytes(syntheticTask(FEDAVGM))));
    const hash = blobs.put(canonicalTaskBytes(syntheticTask(FEDAVGM, 2)), pinned);
    expect(await reasonOf(new TaskOrigins(blobs).origin(hash))).toBe(`task document ${pinned} does not hash to its pin after parsing`);
  });

  it('for a draft that pins no initial model', async () => {
    const { initialModel: _initial, ...draft } = syntheticTask(FEDAVGM);
    const blobs = new Blobs();
    const hash = blobs.put(canonicalTaskBytes(draft as TaskDocument));
    expect(await reasonOf(new TaskOrigins(blobs).origin(hash))).toMatch(/^the task document has no initialModel:/);
  });

  it('while the coordinator cannot serve the task, and the failure is not remembered', async () => {
    const task = syntheticTask(FEDAVGM);
    const blobs = new Blobs();
    const hash = blobs.put(canonicalTaskBytes(task));
    const origins = new TaskOrigins(blobs);
    blobs.failNext = true;
    expect(await reasonOf(origins.origin(hash))).toBe('UNAVAILABLE: the coordinator is gone');
    expect((await origins.origin(hash)).counter).toBe(0n);
    expect(blobs.fetched).toEqual([toHex(hash), toHex(hash)]);
  });
});
