import { describe, expect, it } from 'vitest';
import { createCipheriv, createHash } from 'node:crypto';
import { CryptoError, DEFAULT_CHUNK_BYTES, PrgScratch, addMasks, hkdfExpand, prgBlock, utf8, type MaskStream } from '../../../crypto/index.js';
import { keystreamFloor } from '../../../crypto/prg.js';

function seedOf(label: string): Uint8Array {
  return new Uint8Array(createHash('sha256').update(label).digest());
}

/** Independent reference: the whole keystream in one update call, read as little-endian uint32. */
function reference(seed: Uint8Array, length: number): Uint32Array {
  const keyAndIv = hkdfExpand(seed, utf8('fedgate/v1/prg'), 32);
  const cipher = createCipheriv('aes-128-ctr', keyAndIv.subarray(0, 16), keyAndIv.subarray(16));
  const bytes = cipher.update(new Uint8Array(4 * length));
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return Uint32Array.from({ length }, (_, i) => view.getUint32(4 * i, true));
}

function sameArray(a: Uint32Array, b: Uint32Array): boolean {
  return a.length === b.length && a.every((value, i) => value === b[i]);
}

describe('PRG = AES-128-CTR keystream (DESIGN.md step 4)', () => {
  it('matches an independent single-call reference, across the default chunk boundary', () => {
    const seed = seedOf('a');
    const length = 3 * (DEFAULT_CHUNK_BYTES / 4) + 5;
    expect(sameArray(prgBlock(seed, length), reference(seed, length))).toBe(true);
  });

  it('is deterministic per seed and differs between seeds', () => {
    expect(sameArray(prgBlock(seedOf('a'), 1000), prgBlock(seedOf('a'), 1000))).toBe(true);
    expect(sameArray(prgBlock(seedOf('a'), 1000), prgBlock(seedOf('b'), 1000))).toBe(false);
  });

  it('counts across the 128-bit counter like OpenSSL: a prefix is a prefix of the longer stream', () => {
    const long = prgBlock(seedOf('p'), 10_000);
    for (const length of [0, 1, 3, 4, 5, 4095, 4096, 4097]) {
      expect(sameArray(prgBlock(seedOf('p'), length), long.subarray(0, length))).toBe(true);
    }
  });

  it('uses the WebAssembly SIMD accumulator by default on this platform', () => {
    expect(new PrgScratch().accumulator.kind).toBe('simd');
    expect(new PrgScratch(4096, { simd: false }).accumulator.kind).toBe('scalar');
  });
});

// Every property below holds for both accumulators: the SIMD kernel and the scalar fallback.
describe.each(['simd', 'scalar'] as const)('addMasks with the %s accumulator', (kind) => {
  const scratch = (chunkBytes?: number): PrgScratch => new PrgScratch(chunkBytes, { simd: kind === 'simd' });

  it.each([16, 48, 4096, 65_472, 262_144])('gives the same stream for chunk size %i bytes', (chunkBytes) => {
    const seed = seedOf(`chunk ${chunkBytes}`);
    const length = 70_001; // not a multiple of any chunk size, nor of the 4-lane vector
    const target = new Uint32Array(length);
    addMasks(target, [{ seed, sign: 1 }], scratch(chunkBytes));
    expect(sameArray(target, reference(seed, length))).toBe(true);
  });

  it('writes only its target range when the target is a view into a larger array', () => {
    const backing = new Uint32Array(10_003).fill(7);
    const view = backing.subarray(1, 10_002);
    addMasks(view, [{ seed: seedOf('view'), sign: -1 }], scratch(1024));
    expect(backing[0]).toBe(7);
    expect(backing[10_002]).toBe(7);
    const expected = reference(seedOf('view'), view.length).map((value) => (7 - value) >>> 0);
    expect(sameArray(view, expected)).toBe(true);
  });

  it('adds and subtracts mod 2^32 into an existing vector', () => {
    const length = 40_000;
    const original = Uint32Array.from({ length }, (_, i) => (i * 2_654_435_761) >>> 0);
    const a = reference(seedOf('x'), length);
    const b = reference(seedOf('y'), length);
    const target = original.slice();
    addMasks(
      target,
      [
        { seed: seedOf('x'), sign: 1 },
        { seed: seedOf('y'), sign: -1 },
      ],
      scratch(),
    );
    const expected = original.map((value, i) => (value + a[i]! - b[i]!) >>> 0);
    expect(sameArray(target, expected)).toBe(true);
  });

  it('+PRG(s) and -PRG(s) cancel exactly, for any mix and order of streams', () => {
    const length = 100_003;
    const original = Uint32Array.from({ length }, (_, i) => (0xffff_fff0 + i) >>> 0);
    const seeds = Array.from({ length: 9 }, (_, i) => seedOf(`cancel ${i}`));
    const target = original.slice();
    addMasks(target, seeds.map((seed): MaskStream => ({ seed, sign: 1 })), scratch());
    expect(sameArray(target, original)).toBe(false);
    // Remove them in a different order and grouping.
    addMasks(target, seeds.slice(4).reverse().map((seed): MaskStream => ({ seed, sign: -1 })), scratch());
    addMasks(target, seeds.slice(0, 4).map((seed): MaskStream => ({ seed, sign: -1 })), scratch(1024));
    expect(sameArray(target, original)).toBe(true);
  });

  it('a pairwise mask added by one site and subtracted by the other vanishes from the sum', () => {
    // Bonawitz et al. 2017, section 3: sum of y_u = sum of x_u when masks p_uv = -p_vu.
    const length = 20_000;
    const inputs = [1, 2, 3].map((site) => Uint32Array.from({ length }, (_, i) => (site * 1000 + i) >>> 0));
    const seed = (u: number, v: number): Uint8Array => seedOf(`pair ${Math.min(u, v)}-${Math.max(u, v)}`);
    const masked = inputs.map((input, u) => {
      const y = input.slice();
      const streams = [0, 1, 2].filter((v) => v !== u).map((v): MaskStream => ({ seed: seed(u, v), sign: u < v ? 1 : -1 }));
      addMasks(y, streams, scratch());
      return y;
    });
    const sum = new Uint32Array(length);
    for (const y of masked) for (let i = 0; i < length; i++) sum[i] = (sum[i]! + y[i]!) >>> 0;
    expect(sum.every((value, i) => value === (6000 + 3 * i) >>> 0)).toBe(true);
  });

  it('many streams equal the sum of their references', () => {
    const length = 5_000;
    const streams = Array.from({ length: 37 }, (_, i): MaskStream => ({ seed: seedOf(`many ${i}`), sign: i % 3 === 0 ? -1 : 1 }));
    const target = new Uint32Array(length);
    addMasks(target, streams, scratch());
    const expected = new Uint32Array(length);
    for (const stream of streams) {
      const ks = reference(stream.seed, length);
      for (let i = 0; i < length; i++) expected[i] = (expected[i]! + stream.sign * ks[i]!) >>> 0;
    }
    expect(sameArray(target, expected)).toBe(true);
  });

  it.each([1, 2, 3, 4, 5, 6, 7])('groups of %i added and %i subtracted streams match the references', (count) => {
    const length = 3_001;
    const streams = Array.from({ length: 2 * count }, (_, i): MaskStream => ({ seed: seedOf(`group ${count} ${i}`), sign: i < count ? 1 : -1 }));
    const target = Uint32Array.from({ length }, (_, i) => i);
    addMasks(target, streams, scratch(2048));
    const expected = Uint32Array.from({ length }, (_, i) => i);
    for (const stream of streams) {
      const ks = reference(stream.seed, length);
      for (let i = 0; i < length; i++) expected[i] = (expected[i]! + stream.sign * ks[i]!) >>> 0;
    }
    expect(sameArray(target, expected)).toBe(true);
  });

  it('leaves an empty target or an empty stream list unchanged', () => {
    const empty = new Uint32Array(0);
    addMasks(empty, [{ seed: seedOf('e'), sign: 1 }]);
    const target = Uint32Array.of(1, 2, 3);
    addMasks(target, []);
    expect([...target]).toEqual([1, 2, 3]);
  });
});

describe('addMasks argument checks', () => {
  const seed = seedOf('ok');
  const cases: { name: string; run: () => unknown; reason: string; message: string }[] = [
    { name: 'target is an Int32Array', run: () => addMasks(new Int32Array(4) as unknown as Uint32Array, []), reason: 'INVALID_TARGET', message: 'target must be a Uint32Array, got Int32Array' },
    { name: 'target is a plain array', run: () => addMasks([1, 2] as unknown as Uint32Array, []), reason: 'INVALID_TARGET', message: 'got array of 2 elements' },
    { name: 'streams not an array', run: () => addMasks(new Uint32Array(1), { seed, sign: 1 } as unknown as MaskStream[]), reason: 'INVALID_STREAMS', message: 'streams must be an array' },
    { name: 'stream is null', run: () => addMasks(new Uint32Array(1), [null as unknown as MaskStream]), reason: 'INVALID_STREAMS', message: 'streams[0] must be { seed, sign }' },
    { name: 'short seed', run: () => addMasks(new Uint32Array(1), [{ seed: seed.subarray(1), sign: 1 }]), reason: 'INVALID_LENGTH', message: 'streams[0].seed must be 32 bytes long, got 31' },
    { name: 'seed as hex string', run: () => addMasks(new Uint32Array(1), [{ seed, sign: 1 }, { seed: 'ab' as unknown as Uint8Array, sign: 1 }]), reason: 'INVALID_BYTES', message: 'streams[1].seed' },
    { name: 'sign 0', run: () => addMasks(new Uint32Array(1), [{ seed, sign: 0 as 1 }]), reason: 'INVALID_STREAMS', message: 'streams[0].sign must be 1 or -1, got number 0' },
    { name: 'sign as string', run: () => addMasks(new Uint32Array(1), [{ seed, sign: '1' as unknown as 1 }]), reason: 'INVALID_STREAMS', message: 'got string' },
    { name: 'scratch of the wrong type', run: () => addMasks(new Uint32Array(1), [], {} as PrgScratch), reason: 'INVALID_SCRATCH', message: 'scratch must be a PrgScratch' },
    { name: 'chunk not a multiple of 16', run: () => new PrgScratch(1000), reason: 'INVALID_CHUNK', message: 'multiple of the 16-byte AES block, got 1000' },
    { name: 'chunk too small', run: () => new PrgScratch(0), reason: 'INVALID_INTEGER', message: 'chunkBytes' },
    { name: 'keystreamFloor fractional count', run: () => keystreamFloor(seed, 1.5, new PrgScratch()), reason: 'INVALID_INTEGER', message: 'elements' },
    { name: 'prgBlock negative length', run: () => prgBlock(seed, -1), reason: 'INVALID_INTEGER', message: 'length' },
  ];
  it.each(cases)('argument check: $name', ({ run, reason, message }) => {
    let caught: unknown;
    try {
      run();
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(CryptoError);
    expect(caught).toMatchObject({ code: 'INVALID_ARGUMENT', reason });
    expect((caught as CryptoError).message).toContain(message);
  });
});
