/** The task document: validation naming the key, defaults, canonical bytes and hash. */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ModelError, buildTrainingPlan, canonicalTaskBytes, parseTaskDocument, taskHash, type TaskDocument } from '../../../model/index.js';
import { fixtureBytes, onnxTask, SMALL_CNN_LABELS, SMALL_CNN_SHAPE } from '../../support/model/fixtures.js';
import { taskFor } from '../../support/model/tasks.js';
import { thrownBy } from '../../support/thrown.js';

const base = (): Record<string, unknown> => JSON.parse(JSON.stringify(taskFor({ kind: 'mlp', inputShape: [4], hidden: [3], classes: 2 }))) as Record<string, unknown>;

const errorOf = (value: unknown): ModelError => thrownBy(ModelError, () => parseTaskDocument(value));

function edit(mutate: (doc: Record<string, Record<string, unknown>>) => void): unknown {
  const doc = base() as Record<string, Record<string, unknown>>;
  mutate(doc);
  return doc;
}

describe('parseTaskDocument', () => {
  it('accepts a valid document and fills the documented defaults', () => {
    const task = parseTaskDocument(base());
    expect(task.model).toEqual({ kind: 'mlp', inputShape: [4], hidden: [3], classes: 2, activation: 'relu' });
    expect(task.optimizer).toEqual({ kind: 'sgd', learningRate: 0.1, momentum: 0, weightDecay: 0 });
    const adam = parseTaskDocument(edit((d) => (d['optimizer'] = { kind: 'adam', learningRate: 0.001 })));
    expect(adam.optimizer).toEqual({ kind: 'adam', learningRate: 0.001, beta1: 0.9, beta2: 0.999, epsilon: 1e-8 });
  });

  const invalid: [string, () => unknown, RegExp][] = [
    ['a missing key', () => edit((d) => delete d['training']?.['seed']), /training\.seed: missing; expected number/],
    ['a missing section', () => edit((d) => delete d['optimizer']), /optimizer: missing/],
    ['a wrong type', () => edit((d) => ((d['model'] as Record<string, unknown>)['classes'] = '2')), /model\.classes: .*expected number.*got "2"/],
    ['a non-integer', () => edit((d) => ((d['training'] as Record<string, unknown>)['batchSize'] = 2.5)), /training\.batchSize: .*got 2\.5/],
    ['an unknown model kind', () => edit((d) => ((d['model'] as Record<string, unknown>)['kind'] = 'rnn')), /model\.kind: .*'logreg' \| 'mlp' \| 'cnn' \| 'onnx'/],
    ['an unknown key', () => edit((d) => ((d['model'] as Record<string, unknown>)['dropout'] = 0.5)), /model: unknown key\(s\) 'dropout'/],
    ['a wrong format version', () => edit((d) => ((d as Record<string, unknown>)['formatVersion'] = 2)), /formatVersion: .*got 2/],
    ['a negative learning rate', () => edit((d) => ((d['optimizer'] as Record<string, unknown>)['learningRate'] = -1)), /optimizer\.learningRate: .*got -1/],
    ['momentum of 1', () => edit((d) => ((d['optimizer'] as Record<string, unknown>)['momentum'] = 1)), /optimizer\.momentum/],
    ['a bad modelSha256', () => edit((d) => (d['model'] = { kind: 'onnx', modelSha256: 'abc' })), /model\.modelSha256: expected 64 lower-case hex characters/],
    ['a digits-only modelSha256 that YAML read as a number', () => edit((d) => (d['model'] = { kind: 'onnx', modelSha256: 1.1111111111111112e63 })), /model\.modelSha256: expected 64 lower-case hex characters as a string \(in YAML, quote a hash that looks like a number\)/],
    ['a label count that does not match classes', () => edit((d) => ((d as Record<string, unknown>)['labels'] = ['a', 'b', 'c'])), /labels has 3 entries but model\.classes is 2/],
    ['duplicate labels', () => edit((d) => ((d as Record<string, unknown>)['labels'] = ['a', 'a'])), /labels\.1: duplicate label "a"/],
    ['input.shape differing from model.inputShape', () => edit((d) => ((d['input'] as Record<string, unknown>)['shape'] = [5])), /input\.shape \[5\] differs from model\.inputShape \[4\]/],
    ['mean and std of different lengths', () => edit((d) => (d['normalization'] = { mean: [0], std: [1, 1] })), /normalization\.mean has 1 values but normalization\.std has 2/],
    ['a zero std', () => edit((d) => (d['normalization'] = { mean: [0], std: [0] })), /normalization/],
    ['a non-object', () => 'task', /task document: \(document\)/],
  ];
  for (const [what, make, message] of invalid) {
    it(`rejects ${what} with a message naming the key`, () => {
      const error = errorOf(make());
      expect(error.code).toBe('INVALID_ARGUMENT');
      expect(error.reason).toBe('TASK_INVALID');
      expect(error.message).toMatch(message);
    });
  }

  it('reports every problem at once', () => {
    const error = errorOf(edit((d) => {
      delete d['training']?.['seed'];
      (d['model'] as Record<string, unknown>)['classes'] = 0;
    }));
    expect(error.message).toContain('training.seed');
    expect(error.message).toContain('model.classes');
  });

  it('is applied by buildTrainingPlan too', () => {
    expect(() => buildTrainingPlan({ ...taskFor({ kind: 'logreg', inputShape: [4], classes: 2 }), labels: ['only one'] } as TaskDocument)).toThrow(/labels/);
  });
});

describe('canonical bytes and task hash', () => {
  const task = taskFor({ kind: 'logreg', inputShape: [4], classes: 2 }, { seed: 7 });

  it('are sorted-key JSON without whitespace, defaults included', () => {
    expect(new TextDecoder().decode(canonicalTaskBytes(task))).toBe(
      '{"formatVersion":1,"input":{"dtype":"float32","shape":[4]},"labels":["class0","class1"],"loss":"cross_entropy",' +
        '"model":{"classes":2,"inputShape":[4],"kind":"logreg"},"normalization":{"offset":0,"scale":1},' +
        '"optimizer":{"kind":"sgd","learningRate":0.1,"momentum":0,"weightDecay":0},' +
        '"training":{"batchSize":4,"epochs":1,"proximalMu":0,"seed":7}}',
    );
  });

  it('do not depend on key order or on spelling out defaults', () => {
    const entries = Object.entries(task).reverse();
    const reordered = JSON.parse(JSON.stringify(Object.fromEntries(entries))) as TaskDocument;
    expect(Object.keys(reordered)[0]).toBe('training');
    const explicit: TaskDocument = { ...task, optimizer: { kind: 'sgd', learningRate: 0.1, momentum: 0, weightDecay: 0 } };
    expect(taskHash(reordered)).toBe(taskHash(task));
    expect(taskHash(explicit)).toBe(taskHash(task));
  });

  it('is the SHA-256 of the canonical bytes and changes with any field', () => {
    expect(taskHash(task)).toBe(createHash('sha256').update(canonicalTaskBytes(task)).digest('hex'));
    expect(taskHash(task)).toBe('216bb4a08e78510215c947e64b68a2aeb140068fbc8714f2cce511db9138e455');
    expect(taskHash({ ...task, optimizer: { kind: 'sgd', learningRate: 0.2 } })).not.toBe(taskHash(task));
    expect(taskHash({ ...task, labels: ['class1', 'class0'] })).not.toBe(taskHash(task));
  });

  it("binds the forward model bytes for kind 'onnx'", () => {
    const bytes = fixtureBytes('small_cnn.onnx');
    const onnx = onnxTask(bytes, SMALL_CNN_SHAPE, SMALL_CNN_LABELS);
    expect(taskHash(onnx, bytes)).toBe(taskHash(onnx));
    const tampered = bytes.slice();
    tampered[tampered.length - 1] = (tampered[tampered.length - 1] as number) ^ 1;
    expect(() => taskHash(onnx, tampered)).toThrow(/FORWARD|SHA-256/);
    expect(taskHash({ ...onnx, model: { kind: 'onnx', modelSha256: 'f'.repeat(64) } })).not.toBe(taskHash(onnx));
  });
});
