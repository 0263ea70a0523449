import { describe, expect, it } from 'vitest';
import {
  applyServerStep,
  decodeServerOptimizerState,
  encodeServerOptimizerState,
  initialServerOptimizerState,
  type ServerOptimizerSpec,
  type ServerOptimizerState,
} from '../../../model/server-optimizer.js';
import { sha256Hex } from '../../../crypto/hash.js';

const stateHash = (spec: ServerOptimizerSpec, state: ServerOptimizerState): string => sha256Hex(encodeServerOptimizerState(spec, state));

describe('server optimiser', () => {
  it('FedAvg moves the model by the weighted mean delta', () => {
    const spec: ServerOptimizerSpec = { kind: 'fedavg', learningRate: 1 };
    const model = new Float32Array([1, 2, 3]);
    // two sites: w=1 delta=(1,0,-1), w=0.5 delta=(4,2,2) -> sum(w*delta)=(3,1,0), sum(w)=1.5
    const { model: next } = applyServerStep(spec, model, initialServerOptimizerState(spec, 3), new Float64Array([3, 1, 0]), 1.5);
    expect([...next]).toEqual([3, Math.fround(2 + 1 / 1.5), 3]);
    expect([...model]).toEqual([1, 2, 3]);
  });

  it('FedAvgM accumulates velocity across rounds', () => {
    const spec: ServerOptimizerSpec = { kind: 'fedavgm', learningRate: 0.5, momentum: 0.9 };
    let state = initialServerOptimizerState(spec, 1);
    let model: Float32Array = new Float32Array([0]);
    ({ model, state } = applyServerStep(spec, model, state, new Float64Array([2]), 2)); // mean 1, v=1, x=0.5
    ({ model, state } = applyServerStep(spec, model, state, new Float64Array([2]), 2)); // v=1.9, x=0.5+0.95
    expect(state.velocity[0]).toBeCloseTo(1.9, 6);
    expect(model[0]).toBeCloseTo(1.45, 6);
  });

  it('state encoding round-trips and its hash changes with the state', () => {
    const spec: ServerOptimizerSpec = { kind: 'fedavgm', learningRate: 1, momentum: 0.5 };
    const state = { velocity: new Float32Array([0.25, -1]) };
    const decoded = decodeServerOptimizerState(encodeServerOptimizerState(spec, state));
    expect(decoded.spec).toEqual(spec);
    expect([...decoded.state.velocity]).toEqual([0.25, -1]);
    expect(stateHash(spec, state)).not.toBe(stateHash(spec, { velocity: new Float32Array([0.25, -2]) }));
  });

  it.each([
    [new Uint8Array(2), /too short/],
    [new Uint8Array([0, 0, 0, 50, 1]), /past the end/],
    [(() => { const b = encodeServerOptimizerState({ kind: 'fedavg', learningRate: 1 }, { velocity: new Float32Array(0) }); return new Uint8Array([...b, 0]); })(), /should hold 0 floats/],
  ])('rejects malformed state %#', (bytes, message) => {
    expect(() => decodeServerOptimizerState(bytes)).toThrow(message);
  });

  it('rejects mismatched lengths and a zero weight', () => {
    const spec: ServerOptimizerSpec = { kind: 'fedavg', learningRate: 1 };
    const state = initialServerOptimizerState(spec, 2);
    expect(() => applyServerStep(spec, new Float32Array(2), state, new Float64Array(3), 1)).toThrow(/3 entries, the model has 2/);
    expect(() => applyServerStep(spec, new Float32Array(2), state, new Float64Array(2), 0)).toThrow(/positive number/);
  });
});
