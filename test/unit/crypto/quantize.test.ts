import { describe, expect, it } from 'vitest';
import {
  CryptoError,
  RandomSource,
  dequantizeSum,
  layoutLength,
  quantizationScale,
  quantize,
  utf8,
  type Segment,
} from '../../../crypto/index.js';

const seeded = (label: string): RandomSource => RandomSource.seeded(utf8(label));

function sumMod32(vectors: readonly Uint32Array[]): Uint32Array {
  const sum = new Uint32Array(vectors[0]!.length);
  for (const vector of vectors) for (let i = 0; i < sum.length; i++) sum[i] = (sum[i]! + vector[i]!) >>> 0;
  return sum;
}

describe('quantizationScale and layout', () => {
  it('M = floor((2^31 - 1) / |U|)', () => {
    expect(quantizationScale(1)).toBe(2_147_483_647);
    expect(quantizationScale(64)).toBe(33_554_431);
    expect(quantizationScale(3)).toBe(715_827_882);
  });

  it('layoutLength adds the segment lengths', () => {
    expect(layoutLength([])).toBe(0);
    expect(layoutLength([{ kind: 'scaled', length: 5, bound: 1 }, { kind: 'count', length: 2, max: 9 }])).toBe(7);
  });
});

describe('worst case: |U| = 64 sites all at +R or all at -R', () => {
  const sites = 64;
  const scale = quantizationScale(sites);
  const bounds = [1e-6, 0.05, 1, 3.7, 1e6];
  const layout: Segment[] = [
    ...bounds.map((bound): Segment => ({ kind: 'scaled', length: 3, bound })),
    { kind: 'count', length: 2, max: scale },
  ];
  const length = layoutLength(layout);

  it.each([1, -1])('sign %i: the int32 sum never wraps and dequantizes to 64 R within |U| R / M', (sign) => {
    const vectors: Uint32Array[] = [];
    for (let site = 0; site < sites; site++) {
      const values = new Float64Array(length);
      let i = 0;
      for (const bound of bounds) for (let k = 0; k < 3; k++) values[i++] = sign * bound * (k === 2 ? 10 : 1); // at and beyond the bound
      values[i++] = sign > 0 ? scale : 0;
      values[i++] = sign > 0 ? scale : 0;
      const out = new Uint32Array(length);
      quantize(values, layout, scale, out, seeded(`site ${site}`));
      vectors.push(out);
    }
    const sum = sumMod32(vectors);
    const decoded = new Float64Array(length);
    dequantizeSum(sum, layout, scale, decoded);
    let i = 0;
    for (const bound of bounds) {
      for (let k = 0; k < 3; k++, i++) {
        const asInt32 = sum[i]! | 0;
        expect(Math.sign(asInt32)).toBe(sign); // no wrap: the sign survives
        expect(Math.abs(asInt32)).toBe(sites * scale);
        expect(Math.abs(decoded[i]! - sign * sites * bound)).toBeLessThanOrEqual((sites * bound) / scale);
      }
    }
    expect(decoded[i]).toBe(sign > 0 ? sites * scale : 0);
    expect(sites * scale).toBeLessThanOrEqual(2 ** 31 - 1);
  });
});

describe('clipping is exact whatever the coin', () => {
  /** Coins of 0: a value a rounding error below an integer rounds down to the integer below. */
  class ZeroCoins extends RandomSource {
    override fill(out: Uint32Array): void {
      out.fill(0);
    }
  }

  it('|x| >= R quantizes to exactly +/-M even where R * (M / R) rounds below M', () => {
    const scale = quantizationScale(50);
    const awkward: number[] = [];
    for (let k = 1; awkward.length < 5 && k < 100_000; k++) {
      const bound = 1 + k / 997;
      if (bound * (scale / bound) < scale) awkward.push(bound);
    }
    expect(awkward.length).toBe(5);
    for (const bound of awkward) {
      const layout: Segment[] = [{ kind: 'scaled', length: 4, bound }];
      for (const values of [Float64Array.of(bound, -bound, 3 * bound, -Number.MAX_VALUE), Float32Array.of(Math.fround(bound) > bound ? bound : bound * 1.01, -bound * 1.01, 1e30, -1e30)]) {
        const out = new Uint32Array(4);
        quantize(values, layout, scale, out, new ZeroCoins());
        expect([...new Int32Array(out.buffer)]).toEqual([scale, -scale, scale, -scale]);
      }
    }
  });

  it.each([NaN, Infinity, -Infinity])('a %f anywhere in a long Float32 run is refused with its index', (bad) => {
    const values = new Float32Array(40_000).fill(0.25);
    values[33_333] = bad;
    expect(() => quantize(values, [{ kind: 'scaled', length: values.length, bound: 1 }], 1000, new Uint32Array(values.length), seeded('bad')))
      .toThrow(/values\[33333\]/);
  });
});

describe('stochastic rounding', () => {
  it.each([0.123_456_7, -0.234_567_8, 0.0009, 0.000_01])('is unbiased: the mean of many draws of x = %f R is within 5 standard errors', (fraction) => {
    const bound = 2.5;
    const scale = 1000;
    const draws = 200_000;
    const x = fraction * bound;
    const exact = (x * scale) / bound;
    const layout: Segment[] = [{ kind: 'scaled', length: draws, bound }];
    const out = new Uint32Array(draws);
    quantize(new Float64Array(draws).fill(x), layout, scale, out, seeded(`bias ${fraction}`));
    let sum = 0;
    let offGrid = 0;
    const floor = Math.floor(exact);
    for (let i = 0; i < draws; i++) {
      const q = out[i]! | 0;
      if (q !== floor && q !== floor + 1) offGrid++;
      sum += q;
    }
    expect(offGrid).toBe(0);
    const p = exact - floor;
    expect(p).toBeGreaterThan(0.005); // a fraction large enough that always rounding down would fail
    const standardError = Math.sqrt((p * (1 - p)) / draws);
    expect(Math.abs(sum / draws - exact)).toBeLessThanOrEqual(5 * standardError + 1e-12);
  });

  it('integers on the grid are exact, negatives are two\'s complement, Float32 input works', () => {
    const layout: Segment[] = [{ kind: 'scaled', length: 4, bound: 2 }];
    const out = new Uint32Array(4);
    quantize(Float32Array.of(0, 1, -1, -0.5), layout, 100, out, seeded('grid'));
    expect([...out]).toEqual([0, 50, 2 ** 32 - 50, 2 ** 32 - 25]);
    const decoded = new Float64Array(4);
    dequantizeSum(out, layout, 100, decoded);
    expect([...decoded]).toEqual([0, 1, -1, -0.5]);
  });

  it('the default source is random, a seeded source is reproducible', () => {
    const layout: Segment[] = [{ kind: 'scaled', length: 1000, bound: 1 }];
    const values = new Float64Array(1000).fill(0.123_456_7);
    const run = (random?: RandomSource): string => {
      const out = new Uint32Array(1000);
      quantize(values, layout, 1_000_000, out, random);
      return out.join(',');
    };
    expect(run(seeded('same'))).toBe(run(seeded('same')));
    expect(run()).not.toBe(run());
  });
});

describe('counts', () => {
  it('are sent exactly and summed exactly', () => {
    const layout: Segment[] = [{ kind: 'scaled', length: 1, bound: 1 }, { kind: 'count', length: 3, max: 500 }];
    const a = new Uint32Array(4);
    const b = new Uint32Array(4);
    quantize(Float64Array.of(0.5, 0, 17, 500), layout, 1000, a, seeded('a'));
    quantize(Float32Array.of(-0.25, 3, 0, 499), layout, 1000, b, seeded('b'));
    const decoded = new Float64Array(4);
    dequantizeSum(sumMod32([a, b]), layout, 1000, decoded);
    expect([...decoded]).toEqual([0.25, 3, 17, 999]);
  });
});

describe('argument checks', () => {
  const layout: Segment[] = [{ kind: 'scaled', length: 2, bound: 1 }, { kind: 'count', length: 1, max: 10 }];
  const run = (values: Float64Array, lay: readonly Segment[] = layout, scale = 100, out: Uint32Array = new Uint32Array(3)) => () =>
    quantize(values, lay, scale, out, seeded('x'));
  const cases: { name: string; run: () => unknown; reason: string; message: string }[] = [
    { name: 'NaN', run: run(Float64Array.of(0, Number.NaN, 1)), reason: 'VALUE_NOT_FINITE', message: 'values[1] is NaN' },
    { name: '+Infinity', run: run(Float64Array.of(Infinity, 0, 1)), reason: 'VALUE_NOT_FINITE', message: 'values[0] is Infinity' },
    { name: '-Infinity', run: run(Float64Array.of(0, -Infinity, 1)), reason: 'VALUE_NOT_FINITE', message: 'values[1] is -Infinity' },
    { name: 'count above max', run: run(Float64Array.of(0, 0, 11)), reason: 'COUNT_OUT_OF_RANGE', message: 'values[2] is 11, expected an integer count in [0, 10]' },
    { name: 'negative count', run: run(Float64Array.of(0, 0, -1)), reason: 'COUNT_OUT_OF_RANGE', message: 'values[2] is -1' },
    { name: 'fractional count', run: run(Float64Array.of(0, 0, 2.5)), reason: 'COUNT_NOT_INTEGER', message: 'values[2] is 2.5' },
    { name: 'NaN count', run: run(Float64Array.of(0, 0, Number.NaN)), reason: 'COUNT_NOT_INTEGER', message: 'values[2] is NaN' },
    { name: 'values too short', run: run(Float64Array.of(0, 0)), reason: 'INVALID_LENGTH', message: 'values must hold 3 elements' },
    { name: 'out too long', run: run(Float64Array.of(0, 0, 0), layout, 100, new Uint32Array(4)), reason: 'INVALID_LENGTH', message: 'out must hold 3 elements' },
    { name: 'values as plain array', run: run([0, 0, 0] as unknown as Float64Array), reason: 'INVALID_VALUES', message: 'got array of 3 elements' },
    { name: 'out as Int32Array', run: run(Float64Array.of(0, 0, 0), layout, 100, new Int32Array(3) as unknown as Uint32Array), reason: 'INVALID_TARGET', message: 'out must be a Uint32Array' },
    { name: 'count max above scale', run: run(Float64Array.of(0, 0, 0), layout, 5), reason: 'INVALID_INTEGER', message: 'layout[1].max must be an integer in [0, 5], got number 10' },
    { name: 'zero bound', run: run(Float64Array.of(0, 0, 0), [{ kind: 'scaled', length: 3, bound: 0 }]), reason: 'INVALID_LAYOUT', message: 'layout[0].bound must be a finite positive number, got number 0' },
    { name: 'infinite bound', run: run(Float64Array.of(0, 0, 0), [{ kind: 'scaled', length: 3, bound: Infinity }]), reason: 'INVALID_LAYOUT', message: 'got number Infinity' },
    { name: 'unknown kind', run: run(Float64Array.of(0, 0, 0), [{ kind: 'bits', length: 3 } as unknown as Segment]), reason: 'INVALID_LAYOUT', message: "layout[0].kind must be 'scaled' or 'count', got string" },
    { name: 'negative length', run: run(Float64Array.of(0, 0, 0), [{ kind: 'count', length: -1, max: 1 }]), reason: 'INVALID_INTEGER', message: 'layout[0].length' },
    { name: 'layout not an array', run: run(Float64Array.of(0, 0, 0), {} as unknown as Segment[]), reason: 'INVALID_LAYOUT', message: 'layout must be an array' },
    { name: 'scale zero', run: run(Float64Array.of(0, 0, 0), layout, 0), reason: 'INVALID_INTEGER', message: 'scale must be an integer in [1, 2147483647], got number 0' },
    { name: 'random of the wrong type', run: () => quantize(Float64Array.of(0, 0, 0), layout, 100, new Uint32Array(3), {} as RandomSource), reason: 'INVALID_RANDOM', message: 'random must be a RandomSource' },
    { name: 'dequantize sum too short', run: () => dequantizeSum(new Uint32Array(2), layout, 100, new Float64Array(3)), reason: 'INVALID_LENGTH', message: 'sum must hold 3 elements' },
    { name: 'dequantize into Float32Array', run: () => dequantizeSum(new Uint32Array(3), layout, 100, new Float32Array(3) as unknown as Float64Array), reason: 'INVALID_TARGET', message: 'out must be a Float64Array' },
    { name: 'dequantize sum as Int32Array', run: () => dequantizeSum(new Int32Array(3) as unknown as Uint32Array, layout, 100, new Float64Array(3)), reason: 'INVALID_SUM', message: 'sum must be a Uint32Array' },
    { name: 'scale for zero participants', run: () => quantizationScale(0), reason: 'INVALID_INTEGER', message: 'participantCount' },
    { name: 'layoutLength of a non-array', run: () => layoutLength('scaled' as unknown as Segment[]), reason: 'INVALID_LAYOUT', message: 'layout must be an array of segments, got string' },
    { name: 'layoutLength with a null segment', run: () => layoutLength([null as unknown as Segment]), reason: 'INVALID_LAYOUT', message: 'layout[0] must be a segment object' },
    { name: 'random fill into a plain array', run: () => new RandomSource().fill([0] as unknown as Uint32Array), reason: 'INVALID_TARGET', message: 'out must be a Uint32Array' },
    { name: 'seeded source with a string seed', run: () => RandomSource.seeded('s' as unknown as Uint8Array), reason: 'INVALID_BYTES', message: 'seed' },
  ];
  it.each(cases)('$name', ({ run: attempt, reason, message }) => {
    let caught: unknown;
    try {
      attempt();
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(CryptoError);
    expect(caught).toMatchObject({ code: 'INVALID_ARGUMENT', reason });
    expect((caught as CryptoError).message).toContain(message);
  });
});
