/** The flat weight vector and the model hash over its documented canonical encoding. */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ModelError, flattenParameters, modelHash, parameterCount, unflattenParameters } from '../../../model/index.js';

const plan = {
  parameters: [
    { name: 'fc.weight', shape: [2, 3] },
    { name: 'fc.bias', shape: [2] },
  ],
};

/** The encoding as model/weights.ts documents it, written out independently. */
function referenceEncoding(layout: typeof plan, flat: Float32Array): Uint8Array {
  const parts: number[] = [...new TextEncoder().encode('fedgate/weights/v1')];
  const u32 = (v: number): void => {
    parts.push(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff);
  };
  u32(layout.parameters.length);
  let offset = 0;
  for (const p of layout.parameters) {
    const name = new TextEncoder().encode(p.name);
    u32(name.length);
    parts.push(...name);
    u32(p.shape.length);
    p.shape.forEach(u32);
    const size = p.shape.reduce((n, d) => n * d, 1);
    const view = new DataView(new ArrayBuffer(4));
    for (let i = 0; i < size; i++) {
      view.setFloat32(0, flat[offset + i] as number, true);
      parts.push(view.getUint8(0), view.getUint8(1), view.getUint8(2), view.getUint8(3));
    }
    offset += size;
  }
  return Uint8Array.from(parts);
}

describe('flat parameters', () => {
  const tensors = new Map([
    ['fc.weight', new Float32Array([1, 2, 3, 4, 5, 6])],
    ['fc.bias', new Float32Array([-1, -2])],
  ]);

  it('flatten in plan order and unflatten back', () => {
    const flat = flattenParameters(plan, tensors);
    expect(Array.from(flat)).toEqual([1, 2, 3, 4, 5, 6, -1, -2]);
    expect(parameterCount(plan)).toBe(8);
    const back = unflattenParameters(plan, flat);
    expect([...back.keys()]).toEqual(['fc.weight', 'fc.bias']);
    expect(Array.from(back.get('fc.bias') as Float32Array)).toEqual([-1, -2]);
    // Unflattened tensors are copies: writing to them leaves the flat vector alone.
    (back.get('fc.bias') as Float32Array)[0] = 99;
    expect(flat[6]).toBe(-1);
  });

  it('name the missing, unknown or mis-sized parameter', () => {
    expect(() => flattenParameters(plan, new Map([['fc.weight', new Float32Array(6)]]))).toThrow(/parameter 'fc.bias' is missing/);
    expect(() => flattenParameters(plan, new Map([...tensors, ['extra', new Float32Array(1)]]))).toThrow(/unknown parameter\(s\) 'extra'/);
    expect(() => flattenParameters(plan, new Map([...tensors, ['fc.bias', new Float32Array(3)]]))).toThrow(/'fc.bias' has 3 values; shape \[2\] needs 2/);
    expect(() => unflattenParameters(plan, new Float32Array(7))).toThrow(ModelError);
  });
});

describe('modelHash', () => {
  const flat = new Float32Array([0.5, -1.25, 3, 0, -0, 1e-30, 7, 8]);

  it('is the SHA-256 of the documented encoding', () => {
    expect(modelHash(plan, flat)).toBe(createHash('sha256').update(referenceEncoding(plan, flat)).digest('hex'));
  });

  it('changes with any value bit, a name or a shape', () => {
    const hash = modelHash(plan, flat);
    const flipped = flat.slice();
    flipped[4] = 0; // -0 -> +0: one bit
    expect(modelHash(plan, flipped)).not.toBe(hash);
    expect(modelHash({ parameters: [{ name: 'fc.w', shape: [2, 3] }, plan.parameters[1] as (typeof plan.parameters)[number]] }, flat)).not.toBe(hash);
    expect(modelHash({ parameters: [{ name: 'fc.weight', shape: [3, 2] }, plan.parameters[1] as (typeof plan.parameters)[number]] }, flat)).not.toBe(hash);
  });
});
