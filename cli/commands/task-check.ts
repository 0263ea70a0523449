/**
 * `fedgate task check FILE`: what a site will do with the task, done once on random data when the task is
 * written rather than when a federation first needs it (STYLE.md, "evaluating only when the first round
 * needs it"): build the training plan (an unsupported op, or a model output that does not fit the loss,
 * fails here with the model's own message), then run one training step and one evaluation on the
 * trainer's real path with random examples of the declared input and random targets of the loss's kind.
 */
import { buildTrainingPlan } from '../../model/plan.js';
import { lossOf, parseTaskDocument, targetKindOf, type TaskDocument } from '../../model/task.js';
import { Random, Trainer, createDataset, createTargetDataset, type Dataset } from '../../participant/index.js';

export interface TaskCheckReport {
  readonly loss: string;
  readonly inputShape: readonly number[];
  readonly outputs: number;
  readonly parameters: number;
  /** 'loss' of the one training step on random data. */
  readonly stepLoss: number;
  /** The evaluation's sums on the same random batch. */
  readonly evaluation: Readonly<Record<string, number>>;
}

/** Random examples of the task's input and targets of its loss's kind (standard normal features). */
export function randomExamples(task: TaskDocument, count: number, seed = 1): Dataset {
  const random = new Random(seed);
  const size = task.input.shape.reduce((n, d) => n * d, 1);
  const features = Float32Array.from({ length: count * size }, () => random.nextNormal());
  const outputs = task.labels.length;
  switch (targetKindOf(lossOf(task).kind)) {
    case 'class':
      return createDataset({ features, labels: Int32Array.from({ length: count }, () => random.nextInt(outputs)), exampleShape: task.input.shape, classes: outputs, source: 'random data' });
    case 'multi_label':
      return createTargetDataset({ features, targets: Float32Array.from({ length: count * outputs }, () => random.nextInt(2)), targetSize: outputs, exampleShape: task.input.shape, source: 'random data' });
    case 'regression':
      return createTargetDataset({ features, targets: Float32Array.from({ length: count * outputs }, () => random.nextNormal()), targetSize: outputs, exampleShape: task.input.shape, source: 'random data' });
  }
}

export async function checkTask(document: TaskDocument, forwardModel: Uint8Array | undefined): Promise<TaskCheckReport> {
  const task = parseTaskDocument(document);
  const plan = buildTrainingPlan(task, forwardModel);
  const batchSize = Math.min(task.training.batchSize, 8);
  const data = randomExamples(task, batchSize);
  const trainer = await Trainer.create({ plan, device: 'cpu', intraOpThreads: 1, stepsPerRun: 1 });
  try {
    const result = await trainer.train(plan.initialParameters, data, { epochs: 1, batchSize, seed: 1, learningRate: task.optimizer.learningRate });
    const evaluation = await trainer.evaluate(result.parameters, data, { batchSize });
    return {
      loss: lossOf(task).kind,
      inputShape: task.input.shape,
      outputs: task.labels.length,
      parameters: plan.initialParameters.length,
      stepLoss: result.meanLoss,
      evaluation: { lossSum: evaluation.lossSum, correct: evaluation.correct, examples: evaluation.examples, ...evaluation.sums },
    };
  } finally {
    await trainer.close();
  }
}
