/**
 * `fedgate task check`: one step and one evaluation on random data for every loss kind, and the model
 * whose output does not fit the loss refused with a message naming the output, its shape and the loss.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkTask } from '../../../cli/commands/task-check.js';
import { runFedgateInProcess } from '../../support/cli-in-process.js';
import type { LossSpec, TaskDocument } from '../../../model/index.js';
import { fixtureBytes, onnxTask, SMALL_CNN_SHAPE } from '../../support/model/fixtures.js';
import { taskFor } from '../../support/model/tasks.js';

const withLoss = (loss: LossSpec, outputs: number): TaskDocument => ({
  ...taskFor({ kind: 'mlp', inputShape: [6], hidden: [8], classes: outputs }),
  loss,
  labels: Array.from({ length: outputs }, (_, i) => `out${i}`),
});

describe('fedgate task check', () => {
  it.each([
    ['cross_entropy', withLoss({ kind: 'cross_entropy', classWeights: [1, 2, 3], labelSmoothing: 0.1 }, 3), []],
    ['binary_cross_entropy', withLoss({ kind: 'binary_cross_entropy' }, 4), ['true_positives', 'false_positives', 'false_negatives']],
    ['huber', withLoss({ kind: 'huber', delta: 1 }, 2), ['squared_error_sum', 'absolute_error_sum', 'target_sum', 'target_square_sum']],
  ] as const)('runs one %s step and an evaluation on random data', async (loss, task, sums) => {
    const report = await checkTask(task, undefined);
    expect(report.loss).toBe(loss);
    expect(Number.isFinite(report.stepLoss)).toBe(true);
    expect(report.evaluation['examples']).toBe(4);
    for (const name of sums) expect(Number.isFinite(report.evaluation[name])).toBe(true);
  }, 60_000);

  it('refuses an imported model whose 3 logits do not fit a 2-target regression', async () => {
    const bytes = fixtureBytes('small_cnn.onnx');
    const task: TaskDocument = { ...onnxTask(bytes, SMALL_CNN_SHAPE, ['a', 'b']), loss: { kind: 'mse' } };
    await expect(checkTask(task, bytes)).rejects.toThrow(/has shape \[batch, 3\]; expected \[batch, 2\] \(one output per regression target \(loss mse\)/);
  });

  it('is a CLI subcommand that prints the result', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'fedgate-task-check-'));
    try {
      const file = join(directory, 'task.json');
      await writeFile(file, JSON.stringify(withLoss({ kind: 'mse' }, 1)));
      const { code, stdout } = await runFedgateInProcess(['task', 'check', file, '--json']);
      expect(code).toBe(0);
      expect(JSON.parse(stdout)).toMatchObject({ loss: 'mse', outputs: 1, inputShape: [6] });
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  }, 60_000);
});
