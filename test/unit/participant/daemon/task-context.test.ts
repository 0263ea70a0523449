/**
 * buildTaskContext (participant/daemon/task-context.ts): what a site builds from a task hash the
 * coordinator names. The document must hash to the site's pin once parsed (a lying transfer, or a
 * document that parses to another task, is refused), a forward-ONNX task's model is fetched by the hash
 * the document names, and the plan's Dropout masks are seeded from a fresh secret of this process: two
 * contexts of one task never share their masks, so a coordinator can neither predict nor replay them.
 * Uses the committed small_cnn.onnx fixture (it holds a Dropout node) and a CSV of 144-pixel rows.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromHex, toHex } from '../../../../crypto/bytes.js';
import { sha256 } from '../../../../crypto/hash.js';
import { canonicalTaskBytes, pinTask, taskHash, type PinnedTaskDocument } from '../../../../model/index.js';
import { buildTaskContext, type TaskContext, type TaskContextOptions } from '../../../../participant/daemon/task-context.js';
import { SiteStateStore } from '../../../../participant/state/index.js';
import { SMALL_CNN_LABELS, SMALL_CNN_SHAPE, fixtureBytes, onnxTask } from '../../../support/model/fixtures.js';

const FORWARD = fixtureBytes('small_cnn.onnx');
let task: PinnedTaskDocument;
let hash: Uint8Array;
let dir: string;
let options: Omit<TaskContextOptions, 'blobs'>;

beforeAll(async () => {
  task = pinTask(onnxTask(FORWARD, SMALL_CNN_SHAPE, SMALL_CNN_LABELS), FORWARD);
  hash = fromHex(taskHash(task, FORWARD));
  dir = await mkdtemp(join(tmpdir(), 'fedgate-task-context-'));
  const path = join(dir, 'pixels.csv');
  const rows = Array.from({ length: 12 }, (_, row) => [...Array.from({ length: 144 }, (_, pixel) => ((row * 7 + pixel) % 10) / 10), row % 3].join(','));
  await writeFile(path, `${rows.join('\n')}\n`);
  options = {
    randomness: await SiteStateStore.open(join(dir, 'state')),
    data: { format: 'csv', path, label_column: -1, header: 'no', test_fraction: 0.25, split_seed: 1 },
    device: 'cpu',
    intraOpThreads: 1,
    logger: pino({ level: 'silent' }),
  };
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Serves the task document and its forward model by hash (what the coordinator's transfer would). */
function honestBlobs(fetched: string[] = []): TaskContextOptions['blobs'] {
  const byHash = new Map([
    [toHex(hash), canonicalTaskBytes(task)],
    [toHex(sha256(FORWARD)), FORWARD],
  ]);
  return {
    fetch: async (requested) => {
      fetched.push(toHex(requested));
      const bytes = byHash.get(toHex(requested));
      if (bytes === undefined) throw new Error(`no blob ${toHex(requested)}`);
      return bytes;
    },
  };
}

async function withContext(blobs: TaskContextOptions['blobs'], use: (context: TaskContext) => Promise<void> | void): Promise<void> {
  const context = await buildTaskContext(hash, { ...options, blobs });
  try {
    await use(context);
  } finally {
    await context.trainer.close();
  }
}

describe('buildTaskContext', () => {
  it('fetches the forward model the pinned document names and builds the task on the local data', async () => {
    const fetched: string[] = [];
    await withContext(honestBlobs(fetched), (context) => {
      expect(fetched).toEqual([toHex(hash), toHex(sha256(FORWARD))]);
      expect(context.hash).toBe(hash);
      expect(context.task.model).toEqual({ kind: 'onnx', modelSha256: toHex(sha256(FORWARD)) });
      expect(context.training.trainingExamples).toBe(9);
      expect(context.plan.initialParameters.length).toBeGreaterThan(0);
    });
  });

  it('seeds the Dropout masks from a fresh secret: two contexts of the same task get different training graphs', async () => {
    const graphs: string[] = [];
    for (let build = 0; build < 2; build++) {
      await withContext(honestBlobs(), (context) => {
        graphs.push(toHex(sha256(context.plan.trainStep)));
      });
    }
    expect(graphs[0]).not.toBe(graphs[1]);
  });

  it('refuses bytes that are not JSON, naming the task', async () => {
    const blobs = { fetch: async () => new TextEncoder().encode('\u0000not json') };
    const failure = await buildTaskContext(hash, { ...options, blobs }).then(
      () => undefined,
      (error: unknown) => error as Error,
    );
    expect(failure?.message).toBe(`task ${toHex(hash)} is not a JSON task document`);
    expect(failure?.cause).toBeInstanceOf(SyntaxError);
  });

  it('refuses a document that is not the pinned task (another task served under the pinned hash)', async () => {
    const other = pinTask({ ...onnxTask(FORWARD, SMALL_CNN_SHAPE, SMALL_CNN_LABELS), optimizer: { kind: 'sgd', learningRate: 10 } }, FORWARD);
    const lying = honestBlobs();
    const blobs = { fetch: async (requested: Uint8Array) => (toHex(requested) === toHex(hash) ? canonicalTaskBytes(other) : lying.fetch(requested)) };
    await expect(buildTaskContext(hash, { ...options, blobs })).rejects.toThrow(`task document ${toHex(hash)} does not hash to its pin after parsing`);
  });

  it('refuses a document that pins no initial model (the chain would have no start the site checked)', async () => {
    const unpinned = onnxTask(FORWARD, SMALL_CNN_SHAPE, SMALL_CNN_LABELS);
    const unpinnedHash = fromHex(taskHash(unpinned, FORWARD));
    const forward = honestBlobs();
    const blobs = { fetch: async (requested: Uint8Array) => (toHex(requested) === toHex(unpinnedHash) ? canonicalTaskBytes(unpinned) : forward.fetch(requested)) };
    await expect(buildTaskContext(unpinnedHash, { ...options, blobs })).rejects.toMatchObject({ name: 'ModelError', reason: 'TASK_NOT_PINNED' });
  });
});

