/**
 * What a site needs to train one task, built once per task hash: the task document (downloaded by its
 * hash from the coordinator and checked against the pin), the training plan built locally from it (a
 * site never runs a graph the coordinator sent), the trainer worker and the local data.
 */
import type { Logger } from 'pino';
import { toHex } from '../../crypto/bytes.js';
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
  const plan = buildTrainingPlan(parsed, forwardModel);
  // The chain starts at the initial model the task pins: the plan this site built must produce exactly it.
  const task = checkPinnedInitialModel(parsed, plan, plan.initialParameters);
  const data = await loadSiteData(options.data, task);
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
    ...(options.onProgress === undefined ? {} : { onProgress: options.onProgress }),
  });
  return { hash, task, plan, trainer, training };
}
