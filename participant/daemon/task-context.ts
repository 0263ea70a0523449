/**
 * What a site needs to train one task, built once per task hash: the task document (downloaded by its
 * hash from the coordinator and checked against the pin), the training plan built locally from it (a
 * site never runs a graph the coordinator sent), the trainer worker and the local data.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { fromHex, toHex } from '../../crypto/bytes.js';
import { decodeWeights } from '../../model/weight-codec.js';
import type { ParameterLayout } from '../../model/weights.js';
import { buildTrainingPlan, type TrainingPlan } from '../../model/plan.js';
import { parseTaskDocument, taskHash, type PinnedTaskDocument } from '../../model/task.js';
import { checkPinnedInitialModel } from '../../model/task-pin.js';
import { Trainer, type Device } from '../trainer/index.js';
import { loadSiteData, type SiteDataSpec } from './site-data.js';
import { SiteTraining, type BlobSource, type SiteRandomness } from './site-training.js';

export interface TaskContext {
  /** The task hash the site pinned. */
  readonly hash: Uint8Array;
  readonly task: PinnedTaskDocument;
  readonly plan: TrainingPlan;
  readonly trainer: Trainer;
  readonly training: SiteTraining;
}

export interface TaskContextOptions {
  readonly blobs: BlobSource;
  /** The site's secret seeds (its SiteStateStore). */
  readonly randomness: SiteRandomness;
  readonly data: SiteDataSpec;
  readonly device: Device;
  readonly intraOpThreads: number;
  readonly logger: Logger;
  readonly onProgress?: ConstructorParameters<typeof SiteTraining>[0]['onProgress'];
}

/**
 * The weights a warm-start task names, fetched by their model hash (BlobSource checks the bytes' SHA-256)
 * and decoded in this site's own plan (names and shapes must fit). checkPinnedInitialModel then
 * re-encodes them and compares the hash with the pin, so no other weights are ever trained on.
 */
export async function warmStartModel(sha256: string, plan: ParameterLayout, blobs: BlobSource): Promise<Float32Array> {
  return decodeWeights(plan, await blobs.fetch(fromHex(sha256)));
}

export async function buildTaskContext(hash: Uint8Array, options: TaskContextOptions): Promise<TaskContext> {
  const bytes = await options.blobs.fetch(hash);
  let document: unknown;
  try {
    document = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (error) {
    throw new Error(`task ${toHex(hash)} is not a JSON task document`, { cause: error });
  }
  const parsed = parseTaskDocument(document);
  const forwardModel = parsed.model.kind === 'onnx' ? await options.blobs.fetch(Buffer.from(parsed.model.modelSha256, 'hex')) : undefined;
  if (taskHash(parsed, forwardModel) !== toHex(hash)) throw new Error(`task document ${toHex(hash)} does not hash to its pin after parsing`);
  // Dropout masks come from a fresh secret of this process: never public, never repeated by a replay.
  const plan = buildTrainingPlan(parsed, forwardModel, { randomSeed: randomBytes(32) });
  // The chain starts at the initial model the task pins: the plan this site built must produce exactly
  // it, or for a warm start the weights downloaded by that hash must be a model of this plan with it.
  const initial = parsed.initialModel?.warmStart === true ? await warmStartModel(parsed.initialModel.sha256, plan, options.blobs) : plan.initialParameters;
  const task = checkPinnedInitialModel(parsed, plan, initial);
  // Ids are checked against the plan's embedding tables now, naming file, row and column (a DataError:
  // the daemon stops at start-up, or sits rounds out later), not at the first round's training.
  const data = await loadSiteData(options.data, task, { idRanges: plan.idRanges });
  options.logger.info({ task: toHex(hash), model: task.model.kind, parameters: plan.initialParameters.length, trainExamples: data.train.count, testExamples: data.test.count }, 'task ready');
  const trainer = await Trainer.create({
    plan,
    device: options.device,
    intraOpThreads: options.intraOpThreads,
    logger: { info: (fields, message) => options.logger.info(fields, message), warn: (fields, message) => options.logger.warn(fields, message) },
  });
  const training = new SiteTraining({
    task,
    plan,
    trainer,
    train: data.train,
    test: data.test,
    blobs: options.blobs,
    randomness: options.randomness,
    log: { warn: (fields, message) => options.logger.warn(fields, message) },
    ...(options.onProgress === undefined ? {} : { onProgress: options.onProgress }),
  });
  return { hash, task, plan, trainer, training };
}
