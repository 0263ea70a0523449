/**
 * A site whose data format reads class labels refuses a task with float targets or named inputs at once,
 * naming the format and what the task needs, instead of training on class indices read as targets.
 */
import { describe, expect, it } from 'vitest';
import type { TaskDocument } from '../../../../model/index.js';
import { loadSiteData } from '../../../../participant/daemon/site-data.js';
import { taskFor } from '../../../support/model/tasks.js';

const digits = { format: 'digits', test_fraction: 0.2, split_seed: 1 } as const;
const classifier = taskFor({ kind: 'logreg', inputShape: [64], classes: 10 });

describe('loadSiteData and the task loss', () => {
  it('loads class-label tasks as before', async () => {
    const data = await loadSiteData(digits, classifier);
    expect(data.train.targets).toBeUndefined();
    expect(data.train.count + data.test.count).toBe(1797);
  });

  it.each([
    ['a regression loss', { ...classifier, loss: { kind: 'mse' } }, /data\.format digits .*its loss mse needs float targets/],
    ['a multi-label loss', { ...classifier, loss: { kind: 'binary_cross_entropy' } }, /its loss binary_cross_entropy needs float targets/],
    ['named inputs', { ...classifier, inputs: [{ name: 'x', column: 'pixels', dtype: 'float32', shape: [64] }] }, /maps named inputs from columns/],
  ])('refuses %s for a class-label format', async (_what, task, pattern) => {
    await expect(loadSiteData(digits, task as TaskDocument)).rejects.toThrow(pattern);
  });

  it("gives the digits the task's input shape (an 8x8 image for a convolutional task, 64 features otherwise)", async () => {
    const image = await loadSiteData(digits, taskFor({ kind: 'logreg', inputShape: [1, 8, 8], classes: 10 }));
    expect(image.train.exampleShape).toEqual([1, 8, 8]);
    expect(image.train.features.length).toBe(image.train.count * 64);
    expect((await loadSiteData(digits, classifier)).train.exampleShape).toEqual([64]);
  });
});

