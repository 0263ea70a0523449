import { describe, expect, it } from 'vitest';
import {
  DIGITS_CLASSES,
  createDataset,
  labelHistogram,
  loadDigits,
  normalize,
  normalizeFeatures,
  reshapeExamples,
} from '../../../../participant/data/index.js';

describe('normalize', () => {
  it('applies x * scale + offset', () => {
    expect(Array.from(normalizeFeatures(Float32Array.of(0, 8, 16), [3], { scale: 1 / 16, offset: -0.5 }))).toEqual([-0.5, 0, 0.5]);
  });

  it('applies (x - mean) / std with one, per-channel or per-feature constants', () => {
    const features = Float32Array.of(1, 2, 3, 4, 5, 6, 7, 8); // two examples of shape [2, 2]
    expect(Array.from(normalizeFeatures(features, [2, 2], { mean: [1], std: [2] }))).toEqual([0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5]);
    // Channel 0 = the first two values of each example, channel 1 = the last two.
    expect(Array.from(normalizeFeatures(features, [2, 2], { mean: [1, 3], std: [1, 0.5] }))).toEqual([0, 1, 0, 2, 4, 5, 8, 10]);
    expect(Array.from(normalizeFeatures(features, [4], { mean: [1, 2, 3, 4], std: [1, 1, 1, 1] }))).toEqual([0, 0, 0, 0, 4, 4, 4, 4]);
  });

  it('rejects constants that do not fit the example shape, and zero std', () => {
    expect(() => normalizeFeatures(new Float32Array(6), [2, 3], { mean: [0, 0, 0], std: [1, 1, 1] })).toThrow(
      'normalization.mean has 3 entries for examples of shape [2, 3]; expected 1, 2 (channels) or 6 (features)',
    );
    expect(() => normalizeFeatures(new Float32Array(2), [2], { mean: [0], std: [0] })).toThrow('normalization.std[0] must be a finite number > 0, got 0');
    expect(() => normalizeFeatures(new Float32Array(2), [2], { mean: [0], std: [1, 1] })).toThrow('normalization.mean has 1 entries but normalization.std has 2');
  });

  it('returns a new dataset and leaves the input untouched', () => {
    const data = createDataset({ features: Float32Array.of(2, 4), labels: Int32Array.of(0, 1), exampleShape: [1], classes: 2 });
    const scaled = normalize(data, { scale: 0.5, offset: 0 });
    expect(Array.from(scaled.features)).toEqual([1, 2]);
    expect(Array.from(data.features)).toEqual([2, 4]);
    expect(reshapeExamples(createDataset({ ...data, features: new Float32Array(8), exampleShape: [4] }), [1, 2, 2]).exampleShape).toEqual([1, 2, 2]);
    expect(() => reshapeExamples(data, [2])).toThrow('exampleShape [2] must be positive integers with 1 values in total');
  });
});

describe('loadDigits', () => {
  it('loads the shipped 1,797 x 64 digits with labels 0..9 and features in 0..16', async () => {
    const digits = await loadDigits();
    expect(digits.count).toBe(1797);
    expect(digits.exampleShape).toEqual([64]);
    expect(digits.classes).toBe(DIGITS_CLASSES);
    expect(Array.from(labelHistogram(digits))).toEqual([178, 182, 177, 183, 181, 182, 181, 179, 174, 180]);
    let min = Infinity;
    let max = -Infinity;
    for (const x of digits.features) {
      min = Math.min(min, x);
      max = Math.max(max, x);
    }
    expect([min, max]).toEqual([0, 16]);
    // First row of the file: a zero.
    expect(Array.from(digits.features.subarray(0, 8))).toEqual([0, 0, 5, 13, 9, 1, 0, 0]);
    expect(digits.labels[0]).toBe(0);
  });
});
