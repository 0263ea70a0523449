import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { decodeWeights, encodeWeights, modelHash } from '../../../model/weight-codec.js';

const plan = { parameters: [{ name: 'dense.weight', shape: [3, 2] }, { name: 'dense.bias', shape: [2] }] };
const flat = Float32Array.from([0.5, -1, 2, 3.25, -0, 1e-7, 7, -8]);

describe('weight codec', () => {
  it('round-trips and its SHA-256 is the model hash', () => {
    const bytes = encodeWeights(plan, flat);
    expect([...decodeWeights(plan, bytes)]).toEqual([...flat]);
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(modelHash(plan, flat));
  });

  it.each([
    [{ parameters: [{ name: 'dense.weight', shape: [2, 3] }, { name: 'dense.bias', shape: [2] }] }, /shape \[3, 2\], expected \[2, 3\]/],
    [{ parameters: [{ name: 'other', shape: [3, 2] }, { name: 'dense.bias', shape: [2] }] }, /tensor "dense.weight" where "other"/],
    [{ parameters: [{ name: 'dense.weight', shape: [3, 2] }] }, /2 tensors, expected 1/],
  ])('refuses a model of another architecture %#', (otherPlan, message) => {
    expect(() => decodeWeights(otherPlan, encodeWeights(plan, flat))).toThrow(message);
  });

  it('refuses truncated, padded and foreign bytes', () => {
    const bytes = encodeWeights(plan, flat);
    expect(() => decodeWeights(plan, bytes.subarray(0, bytes.length - 1))).toThrow(/end early/);
    expect(() => decodeWeights(plan, new Uint8Array([...bytes, 0]))).toThrow(/1 bytes left over/);
    expect(() => decodeWeights(plan, new Uint8Array(40))).toThrow(/do not start with/);
    expect(() => encodeWeights(plan, new Float32Array(3))).toThrow(/got 3 values, the plan has 8/);
  });
});
