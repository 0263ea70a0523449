/**
 * The loss, inputs and target keys of the task document: one canonical spelling per meaning (so the hash
 * pins every loss parameter and the vocabulary), and errors naming the key for what does not fit.
 */
import { describe, expect, it } from 'vitest';
import { canonicalTaskBytes, lossOf, parseTaskDocument, taskHash, type TaskDocument } from '../../../model/index.js';
import { taskErrorOf, taskFor } from '../../support/model/tasks.js';

const classifier = taskFor({ kind: 'logreg', inputShape: [4], classes: 3 }, { seed: 7 });
const regression: TaskDocument = { ...taskFor({ kind: 'logreg', inputShape: [4], classes: 2 }), loss: { kind: 'mse' }, labels: ['price', 'rent'] };

const text = (task: TaskDocument): string => new TextDecoder().decode(canonicalTaskBytes(task));


describe('task loss', () => {
  it('spells cross-entropy without options as the bare string, so old and new spellings hash alike', () => {
    const plain = taskHash(classifier);
    expect(taskHash({ ...classifier, loss: { kind: 'cross_entropy' } })).toBe(plain);
    expect(taskHash({ ...classifier, loss: { kind: 'cross_entropy', labelSmoothing: 0 } })).toBe(plain);
    expect(text({ ...classifier, loss: { kind: 'cross_entropy' } })).toContain('"loss":"cross_entropy"');
  });

  it('pins every loss parameter in the hash', () => {
    const hashes = new Set(
      [
        classifier,
        { ...classifier, loss: { kind: 'cross_entropy', labelSmoothing: 0.1 } },
        { ...classifier, loss: { kind: 'cross_entropy', labelSmoothing: 0.2 } },
        { ...classifier, loss: { kind: 'cross_entropy', classWeights: [1, 2, 3] } },
        { ...classifier, loss: { kind: 'cross_entropy', classWeights: [1, 2, 4] } },
        { ...classifier, loss: { kind: 'binary_cross_entropy' } },
        { ...classifier, loss: { kind: 'binary_cross_entropy', posWeight: [1, 1, 2] } },
        { ...classifier, loss: { kind: 'mse' } },
        { ...classifier, loss: { kind: 'l1' } },
        { ...classifier, loss: { kind: 'huber', delta: 2 } },
      ].map((task) => taskHash(task as TaskDocument)),
    );
    expect(hashes.size).toBe(10);
  });

  it("writes Huber's default delta (PyTorch's 1.0) into the document", () => {
    const task = parseTaskDocument({ ...regression, loss: { kind: 'huber' } });
    expect(task.loss).toEqual({ kind: 'huber', delta: 1 });
    expect(taskHash({ ...regression, loss: { kind: 'huber' } } as unknown as TaskDocument)).toBe(taskHash({ ...regression, loss: { kind: 'huber', delta: 1 } }));
    expect(lossOf(task)).toEqual({ kind: 'huber', delta: 1 });
  });

  it('accepts one output for regression and binary tasks', () => {
    const single = { ...taskFor({ kind: 'logreg', inputShape: [4], classes: 1 }), labels: ['risk'] };
    expect(parseTaskDocument({ ...single, loss: { kind: 'mse' } }).labels).toEqual(['risk']);
    expect(parseTaskDocument({ ...single, loss: { kind: 'binary_cross_entropy' } }).labels).toEqual(['risk']);
  });

  it.each([
    ['cross-entropy with one class', { ...taskFor({ kind: 'logreg', inputShape: [4], classes: 1 }), labels: ['only'] }, /cross_entropy needs at least 2 classes/],
    ['class weights of the wrong count', { ...classifier, loss: { kind: 'cross_entropy', classWeights: [1, 2] } }, /loss\.classWeights has 2 values but labels has 3 classes/],
    ['all-zero class weights', { ...classifier, loss: { kind: 'cross_entropy', classWeights: [0, 0, 0] } }, /all 0/],
    ['a negative class weight', { ...classifier, loss: { kind: 'cross_entropy', classWeights: [1, -1, 1] } }, /loss/],
    ['label smoothing above 1', { ...classifier, loss: { kind: 'cross_entropy', labelSmoothing: 1.5 } }, /loss/],
    ['pos_weight of the wrong count', { ...classifier, loss: { kind: 'binary_cross_entropy', posWeight: [1] } }, /loss\.posWeight has 1 values but labels has 3 outputs/],
    ['a zero Huber delta', { ...regression, loss: { kind: 'huber', delta: 0 } }, /loss/],
    ['an unknown loss', { ...classifier, loss: { kind: 'hinge' } }, /loss/],
    ['target.columns for cross-entropy', { ...classifier, target: { columns: ['a', 'b', 'c'] } }, /cross_entropy reads one class column/],
    ['target.columns not one per output', { ...regression, target: { columns: ['price'] } }, /target\.columns has 1 columns but labels has 2 outputs/],
  ])('rejects %s', (_what, document, pattern) => {
    expect(taskErrorOf(document)).toMatch(pattern);
  });
});

describe('task inputs', () => {
  const tabular: TaskDocument = {
    ...classifier,
    inputs: [
      { name: 'numeric', columns: ['age', 'income', 'debt', 'score'], dtype: 'float32', shape: [4] },
      { name: 'city', column: 'city', dtype: 'int64', shape: [], vocabulary: ['paris', 'lyon', 'nice'] },
    ],
    target: { column: 'class' },
  };

  it('are part of the canonical bytes, vocabulary included', () => {
    expect(parseTaskDocument(tabular).inputs).toEqual(tabular.inputs);
    const other = { ...tabular, inputs: [tabular.inputs?.[0], { name: 'city', column: 'city', dtype: 'int64', shape: [], vocabulary: ['paris', 'nice', 'lyon'] }] } as TaskDocument;
    expect(taskHash(other)).not.toBe(taskHash(tabular));
    expect(text(tabular)).toContain('"vocabulary":["paris","lyon","nice"]');
  });

  it('leave a document without them byte for byte as before', () => {
    expect(text(classifier)).not.toContain('inputs');
    expect(text(classifier)).not.toContain('target');
  });

  it.each([
    ['duplicate input names', [{ name: 'a', column: 'x', dtype: 'float32', shape: [] }, { name: 'a', column: 'y', dtype: 'float32', shape: [] }], /inputs\.1 \('a'\): duplicate input name/],
    ['both column and columns', [{ name: 'a', column: 'x', columns: ['y'], dtype: 'float32', shape: [1] }], /exactly one of column or columns/],
    ['neither column nor columns', [{ name: 'a', dtype: 'float32', shape: [1] }], /exactly one of column or columns/],
    ['columns that do not fill the shape', [{ name: 'a', columns: ['x', 'y'], dtype: 'float32', shape: [3] }], /2 columns do not fill shape \[3\]/],
    ['a vocabulary on a float input', [{ name: 'a', column: 'x', dtype: 'float32', shape: [], vocabulary: ['u'] }], /expected dtype int64 and column/],
    ['a vocabulary with a repeated word', [{ name: 'a', column: 'x', dtype: 'int64', shape: [], vocabulary: ['u', 'v', 'u'] }], /vocabulary\.2 "u" appears twice/],
    ['an unknown dtype', [{ name: 'a', column: 'x', dtype: 'int32', shape: [] }], /inputs\.0\.dtype/],
  ])('rejects %s', (_what, inputs, pattern) => {
    expect(taskErrorOf({ ...classifier, inputs })).toMatch(pattern);
  });
});
