import { describe, expect, it } from 'vitest';
import { BatchBuffer } from '../../../../participant/trainer/batches.js';
import { parseDevice } from '../../../../participant/trainer/device.js';
import { TrainerError, fromWire, toWire } from '../../../../participant/trainer/errors.js';
import { planLayout } from '../../../../participant/trainer/plan.js';
import { trainerWorkerSpec } from '../../../../participant/trainer/worker-launch.js';

describe('parseDevice', () => {
  it('accepts auto, cpu, cuda and cuda:N', () => {
    expect(parseDevice('auto')).toEqual({ kind: 'auto' });
    expect(parseDevice('cpu')).toEqual({ kind: 'cpu' });
    expect(parseDevice('cuda')).toEqual({ kind: 'cuda', deviceId: 0 });
    expect(parseDevice('cuda:3')).toEqual({ kind: 'cuda', deviceId: 3 });
  });

  it('rejects anything else naming the value', () => {
    for (const bad of ['gpu', 'cuda:', 'cuda:-1', 'cuda:x', 'CPU', 3, undefined]) {
      expect(() => parseDevice(bad)).toThrow(TrainerError);
    }
    expect(() => parseDevice('gpu')).toThrow(`device must be 'auto', 'cpu', 'cuda' or 'cuda:N' (N a GPU index), got "gpu"`);
  });
});

describe('planLayout', () => {
  it('lays parameters, then optimizer state, out back to back', () => {
    const layout = planLayout({
      parameters: [{ name: 'w', shape: [3, 2] }, { name: 'b', shape: [2] }],
      optimizerState: [{ name: 'momentum.w', shape: [3, 2] }, { name: 'momentum.b', shape: [2] }],
    });
    expect(layout.parameterSize).toBe(8);
    expect(layout.totalSize).toBe(16);
    expect(layout.parameters.map((t) => [t.name, t.offset, t.size])).toEqual([['w', 0, 6], ['b', 6, 2]]);
    expect(layout.optimizerState.map((t) => [t.name, t.offset])).toEqual([['momentum.w', 8], ['momentum.b', 14]]);
    // Scalars ([]) take one value, e.g. Adam's step count.
    expect(planLayout({ parameters: [{ name: 'w', shape: [2] }], optimizerState: [{ name: 'step', shape: [] }] }).totalSize).toBe(3);
  });

  it('rejects duplicate names, bad shapes and an empty parameter list', () => {
    expect(() => planLayout({ parameters: [{ name: 'w', shape: [2] }, { name: 'w', shape: [2] }], optimizerState: [] })).toThrow(
      'plan.parameters[1].name must be a unique non-empty string, got "w"',
    );
    expect(() => planLayout({ parameters: [{ name: 'w', shape: [2, -1] }], optimizerState: [] })).toThrow(
      "plan.parameters[0] ('w') has shape [2, -1]; expected positive integer dimensions",
    );
    expect(() => planLayout({ parameters: [], optimizerState: [] })).toThrow('plan.parameters is empty');
  });
});

describe('BatchBuffer', () => {
  it('gathers the rows of a batch in order and writes int64 labels, including negative ones', () => {
    const features = Float32Array.from({ length: 12 }, (_, i) => i); // 4 examples of 3 values
    const labels = Int32Array.of(7, -2, 0, 123456);
    const buffer = new BatchBuffer(3, 3);
    buffer.gather(features, labels, Int32Array.of(3, 1, 0, 2), 0, 3);
    expect(Array.from(buffer.input)).toEqual([9, 10, 11, 3, 4, 5, 0, 1, 2]);
    expect(Array.from(buffer.labels)).toEqual([123456n, -2n, 7n]);
    buffer.gather(features, labels, Int32Array.of(3, 1, 0, 2), 3, 1, 1);
    expect(Array.from(buffer.input.subarray(3, 6))).toEqual([6, 7, 8]);
    expect(buffer.labels[1]).toBe(0n);
  });
});

describe('errors across the worker boundary', () => {
  it('keep code, reason and message; unknown errors become INTERNAL', () => {
    const rebuilt = fromWire(toWire(new TrainerError('ABORTED', 'TRAINING_DIVERGED', 'loss is NaN')));
    expect(rebuilt).toBeInstanceOf(TrainerError);
    expect([rebuilt.code, rebuilt.reason, rebuilt.message]).toEqual(['ABORTED', 'TRAINING_DIVERGED', 'loss is NaN']);
    expect(fromWire(toWire(new RangeError('boom')))).toMatchObject({ code: 'INTERNAL', reason: 'WORKER_ERROR', message: 'boom' });
    expect(fromWire(toWire('a string'))).toMatchObject({ code: 'INTERNAL', message: 'a string' });
  });
});

describe('trainerWorkerSpec', () => {
  it('starts the compiled .js worker directly', () => {
    const spec = trainerWorkerSpec('file:///srv/fedgate/dist/participant/trainer/worker-launch.js');
    expect(spec).toEqual({ script: new URL('file:///srv/fedgate/dist/participant/trainer/trainer-worker.js'), eval: false });
  });

  it('starts the .ts worker through tsx when running from sources', () => {
    const spec = trainerWorkerSpec(new URL('../../../../participant/trainer/worker-launch.ts', import.meta.url).href);
    expect(spec.eval).toBe(true);
    expect(spec.script).toContain('tsImport');
    expect(spec.script).toContain('participant/trainer/trainer-worker.ts');
  });
});
