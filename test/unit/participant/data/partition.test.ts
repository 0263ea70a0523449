import { describe, expect, it } from 'vitest';
import {
  type Dataset,
  DataError,
  createDataset,
  labelHistogram,
  partitionDirichlet,
  partitionIid,
  partitionShards,
  splitIndices,
  subset,
  trainTestSplit,
} from '../../../../participant/data/index.js';

/** 1,000 examples, 10 balanced classes, features = the example index (so subsets can be traced). */
function balanced(count = 1000, classes = 10): Dataset {
  return createDataset({
    features: Float32Array.from({ length: count }, (_, i) => i),
    labels: Int32Array.from({ length: count }, (_, i) => i % classes),
    exampleShape: [1],
    classes,
  });
}

/** Every index in [0, count) appears in exactly one part. */
function expectExactCover(parts: readonly Int32Array[], count: number): void {
  const seen = new Uint8Array(count);
  let total = 0;
  for (const part of parts) {
    for (const index of part) {
      expect(index).toBeGreaterThanOrEqual(0);
      expect(index).toBeLessThan(count);
      seen[index] = (seen[index] as number) + 1;
      total++;
    }
  }
  expect(total).toBe(count);
  expect(seen.every((n) => n === 1)).toBe(true);
}

function distinctLabels(dataset: Dataset, part: Int32Array): number {
  return labelHistogram(dataset, part).filter((n) => n > 0).length;
}

describe('partitionIid', () => {
  it('assigns every example exactly once in near-equal parts, deterministically per seed', () => {
    const data = balanced(1003);
    const parts = partitionIid(data, { clients: 7, seed: 5 });
    expectExactCover(parts, 1003);
    const sizes = parts.map((p) => p.length);
    expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
    expect(partitionIid(data, { clients: 7, seed: 5 })).toEqual(parts);
    expect(partitionIid(data, { clients: 7, seed: 6 })).not.toEqual(parts);
    // IID: each client sees every class.
    for (const part of parts) expect(distinctLabels(data, part)).toBe(10);
  });

  it('rejects more clients than examples', () => {
    expect(() => partitionIid(balanced(5), { clients: 6, seed: 1 })).toThrow(DataError);
    expect(() => partitionIid(balanced(5), { clients: 0, seed: 1 })).toThrow('clients must be an integer >= 1, got 0');
  });
});

describe('partitionDirichlet', () => {
  it('assigns every example exactly once, deterministically per seed', () => {
    const data = balanced();
    const parts = partitionDirichlet(data, { clients: 8, alpha: 0.5, seed: 11 });
    expectExactCover(parts, data.count);
    expect(partitionDirichlet(data, { clients: 8, alpha: 0.5, seed: 11 })).toEqual(parts);
    expect(partitionDirichlet(data, { clients: 8, alpha: 0.5, seed: 12 })).not.toEqual(parts);
    for (const part of parts) expect(part.length).toBeGreaterThanOrEqual(1);
  });

  it('small alpha gives skewed label distributions, large alpha near-uniform ones', () => {
    const data = balanced(5000);
    // Share of a client's examples that belong to its most frequent class, averaged over clients.
    const dominance = (parts: Int32Array[]): number => {
      let sum = 0;
      for (const part of parts) sum += Math.max(...labelHistogram(data, part)) / part.length;
      return sum / parts.length;
    };
    const skewed = partitionDirichlet(data, { clients: 10, alpha: 0.05, seed: 3 });
    const uniform = partitionDirichlet(data, { clients: 10, alpha: 1000, seed: 3 });
    expectExactCover(skewed, data.count);
    expect(dominance(skewed)).toBeGreaterThan(0.6);
    expect(dominance(uniform)).toBeLessThan(0.15);
    const meanDistinct = (parts: Int32Array[]): number => parts.reduce((s, p) => s + distinctLabels(data, p), 0) / parts.length;
    expect(meanDistinct(skewed)).toBeLessThan(5);
    expect(meanDistinct(uniform)).toBe(10);
  });

  it('honours minExamplesPerClient and says when it cannot', () => {
    const data = balanced(200);
    const parts = partitionDirichlet(data, { clients: 5, alpha: 1, seed: 2, minExamplesPerClient: 20 });
    for (const part of parts) expect(part.length).toBeGreaterThanOrEqual(20);
    expect(() => partitionDirichlet(data, { clients: 5, alpha: 1, seed: 2, minExamplesPerClient: 41 })).toThrow(
      'cannot give 5 clients 41 example(s) each from 200 examples',
    );
    expect(() => partitionDirichlet(data, { clients: 20, alpha: 0.001, seed: 2, minExamplesPerClient: 10, maxAttempts: 3 })).toThrow(
      expect.objectContaining({ reason: 'DIRICHLET_MIN_SIZE_UNREACHABLE' }) as Error,
    );
    expect(() => partitionDirichlet(data, { clients: 5, alpha: 0, seed: 2 })).toThrow('alpha must be a finite number > 0, got 0');
  });

  it('capAtEqualShare (NIID-Bench) deals no more classes to a client once it holds count / clients examples', () => {
    const data = balanced(6000);
    const share = data.count / 10;
    // A client below its share before a class is dealt gets at most that whole class (600) on top.
    const largest = (parts: Int32Array[]): number => Math.max(...parts.map((part) => part.length));
    let uncappedOver = 0;
    for (const seed of [1, 2, 3, 4, 5]) {
      const capped = partitionDirichlet(data, { clients: 10, alpha: 0.1, seed, capAtEqualShare: true });
      expectExactCover(capped, data.count);
      expect(largest(capped)).toBeLessThan(share + 600);
      if (largest(partitionDirichlet(data, { clients: 10, alpha: 0.1, seed })) >= share + 600) uncappedOver++;
    }
    // Without the cap, heavy clients do go past that bound: the cap is what holds it.
    expect(uncappedOver).toBeGreaterThan(0);
  });
});

describe('partitionShards', () => {
  it('assigns every example exactly once and gives each client at most shardsPerClient (+1 at a boundary) labels', () => {
    const data = balanced(6000);
    const parts = partitionShards(data, { clients: 100, shardsPerClient: 2, seed: 9 });
    expectExactCover(parts, data.count);
    // 200 shards of 30 examples over 10 classes of 600: a shard never straddles two classes here.
    for (const part of parts) {
      expect(part.length).toBe(60);
      expect(distinctLabels(data, part)).toBeLessThanOrEqual(2);
    }
    expect(partitionShards(data, { clients: 100, shardsPerClient: 2, seed: 9 })).toEqual(parts);
    expect(partitionShards(data, { clients: 100, shardsPerClient: 2, seed: 10 })).not.toEqual(parts);
  });

  it('handles sizes that do not divide evenly', () => {
    const data = balanced(1001, 7);
    const parts = partitionShards(data, { clients: 13, shardsPerClient: 3, seed: 1 });
    expectExactCover(parts, data.count);
    for (const part of parts) expect(distinctLabels(data, part)).toBeLessThanOrEqual(6);
  });
});

describe('train/test split', () => {
  it('is a seeded exact cover with the requested test fraction', () => {
    const data = balanced(1000);
    const { train, test } = splitIndices(data, { testFraction: 0.2, seed: 4 });
    expect(test.length).toBe(200);
    expectExactCover([train, test], 1000);
    expect(splitIndices(data, { testFraction: 0.2, seed: 4 })).toEqual({ train, test });
    expect(splitIndices(data, { testFraction: 0.2, seed: 5 }).test).not.toEqual(test);
  });

  it('stratified split keeps class proportions', () => {
    const labels = Int32Array.from({ length: 1000 }, (_, i) => (i < 900 ? 0 : 1));
    const data = createDataset({ features: new Float32Array(1000), labels, exampleShape: [1], classes: 2 });
    const { train, test } = splitIndices(data, { testFraction: 0.1, seed: 1, stratify: true });
    expectExactCover([train, test], 1000);
    expect(Array.from(labelHistogram(data, test))).toEqual([90, 10]);
    expect(() => splitIndices(data, { testFraction: 1, seed: 1 })).toThrow('testFraction must be a number in (0, 1), got 1');
  });

  it('materialises the parts as datasets carrying the right rows', () => {
    const data = balanced(50);
    const { train, test } = trainTestSplit(data, { testFraction: 0.3, seed: 8 });
    expect(train.count + test.count).toBe(50);
    for (let i = 0; i < test.count; i++) expect(test.labels[i]).toBe((test.features[i] as number) % 10);
    expect(subset(data, [3, 1]).features).toEqual(Float32Array.of(3, 1));
    expect(() => subset(data, [50])).toThrow('indices[0] = 50 is outside [0, 49]');
  });
});
