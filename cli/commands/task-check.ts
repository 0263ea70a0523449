/**
 * `fedgate task check FILE`: what a site will do with the task, done once on random data when the task is
 * written rather than when a federation first needs it (STYLE.md, "evaluating only when the first round
 * needs it"): build the training plan (an unsupported op, or a model output that does not fit the loss,
 * fails here with the model's own message), then run one training step and one evaluation on the
 * trainer's real path with random examples of the declared input and random targets of the loss's kind.
 */
import { buildTrainingPlan } from '../../model/plan.js';
import { lossOf, namedInputsOf, parseTaskDocument, targetKindOf, type InputSpec, type TaskDocument } from '../../model/task.js';
import { Random, Trainer, createDataset, createNamedInputDataset, createTargetDataset, type Dataset, type NamedInputValues } from '../../participant/index.js';

export interface TaskCheckReport {
  readonly loss: string;
  readonly inputShape: readonly number[];
  /** The named inputs (name, dtype, shape) of a task that has them. */
  readonly inputs?: readonly { readonly name: string; readonly dtype: string; readonly shape: readonly number[] }[];
  readonly outputs: number;
  readonly parameters: number;
  /** 'loss' of the one training step on random data. */
  readonly stepLoss: number;
  /** The evaluation's sums on the same random batch. */
  readonly evaluation: Readonly<Record<string, number>>;
}

/**
 * Random examples of a task with named inputs: standard normal floats, and ids drawn from the input's
 * vocabulary (id 0 without one: the only id every embedding table has).
 */
function randomNamedExamples(task: TaskDocument, inputs: readonly InputSpec[], count: number, random: Random): Dataset {
  const values: NamedInputValues[] = inputs.map((input) => {
    const length = count * input.shape.reduce((n, d) => n * d, 1);
    if (input.dtype === 'float32') return { name: input.name, dtype: 'float32', shape: input.shape, values: Float32Array.from({ length }, () => random.nextNormal()) };
    const ids = input.vocabulary?.length ?? 1;
    return { name: input.name, dtype: 'int64', shape: input.shape, values: BigInt64Array.from({ length }, () => BigInt(random.nextInt(ids))) };
  });
  const outputs = task.labels.length;
  switch (targetKindOf(lossOf(task).kind)) {
    case 'class':
      return createNamedInputDataset({ inputs: values, labels: Int32Array.from({ length: count }, () => random.nextInt(outputs)), classes: outputs, source: 'random data' });
    case 'multi_label':
      return createNamedInputDataset({ inputs: values, targets: Float32Array.from({ length: count * outputs }, () => random.nextInt(2)), targetSize: outputs, source: 'random data' });
    case 'regression':
      return createNamedInputDataset({ inputs: values, targets: Float32Array.from({ length: count * outputs }, () => random.nextNormal()), targetSize: outputs, source: 'random data' });
  }
}

/** Random examples of the task's input and targets of its loss's kind (standard normal features). */
export function randomExamples(task: TaskDocument, count: number, seed = 1): Dataset {
  const random = new Random(seed);
  const named = namedInputsOf(task);
  if (named !== undefined) return randomNamedExamples(task, named, count, random);
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
      ...(namedInputsOf(task) === undefined ? {} : { inputs: (namedInputsOf(task) ?? []).map(({ name, dtype, shape }) => ({ name, dtype, shape })) }),
      outputs: task.labels.length,
      parameters: plan.initialParameters.length,
      stepLoss: result.meanLoss,
      evaluation: { lossSum: evaluation.lossSum, correct: evaluation.correct, examples: evaluation.examples, ...evaluation.sums },
    };
  } finally {
    await trainer.close();
  }
}
