/**
 * Philox4x32-10 (Salmon, Moraes, Dror & Shaw, "Parallel random numbers: as easy as 1, 2, 3", SC 2011):
 * a counter-based generator, so element i of parameter tensor t is a pure function of (seed, t, i).
 * Only 32-bit integer arithmetic and exact double operations are used, so every platform produces
 * the same bits; the uniform mapping is exact too, leaving one IEEE rounding per initial weight.
 */

const M0 = 0xd2511f53;
const M1 = 0xcd9e8d57;
const W0 = 0x9e3779b9;
const W1 = 0xbb67ae85;

/** High 32 bits of the 64-bit product of two uint32 (16-bit limbs keep every partial product exact). */
function mulHi(a: number, b: number): number {
  const aHi = a >>> 16;
  const aLo = a & 0xffff;
  const bHi = b >>> 16;
  const bLo = b & 0xffff;
  const loLo = aLo * bLo;
  const hiLo = aHi * bLo;
  const loHi = aLo * bHi;
  const cross = (loLo >>> 16) + (hiLo & 0xffff) + loHi;
  return (aHi * bHi + (hiLo >>> 16) + Math.floor(cross / 0x10000)) >>> 0;
}

/** One Philox4x32-10 block: 4 uint32 outputs written to `out` for counter `ctr` and key `key`. */
export function philox4x32(ctr: readonly number[], key: readonly number[], out: Uint32Array): void {
  let c0 = (ctr[0] ?? 0) >>> 0;
  let c1 = (ctr[1] ?? 0) >>> 0;
  let c2 = (ctr[2] ?? 0) >>> 0;
  let c3 = (ctr[3] ?? 0) >>> 0;
  let k0 = (key[0] ?? 0) >>> 0;
  let k1 = (key[1] ?? 0) >>> 0;
  for (let round = 0; round < 10; round++) {
    if (round > 0) {
      k0 = (k0 + W0) >>> 0;
      k1 = (k1 + W1) >>> 0;
    }
    const hi0 = mulHi(M0, c0);
    const lo0 = Math.imul(M0, c0) >>> 0;
    const hi1 = mulHi(M1, c2);
    const lo1 = Math.imul(M1, c2) >>> 0;
    c0 = (hi1 ^ c1 ^ k0) >>> 0;
    c1 = lo1;
    c2 = (hi0 ^ c3 ^ k1) >>> 0;
    c3 = lo0;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
}

/** Splits a safe-integer seed into Philox's two 32-bit key words. */
export function seedKey(seed: number): [number, number] {
  return [seed % 0x100000000 >>> 0, Math.floor(seed / 0x100000000) >>> 0];
}

/**
 * Fills `out` with U(-limit, limit) draws from stream `stream` (one stream per parameter tensor):
 * element i uses word i % 4 of block floor(i / 4), counter (block, stream, 0, 0).
 */
export function fillUniform(out: Float32Array, seed: number, stream: number, limit: number): void {
  const key = seedKey(seed);
  const block = new Uint32Array(4);
  const counter = [0, stream, 0, 0];
  for (let i = 0; i < out.length; i += 4) {
    counter[0] = i / 4;
    philox4x32(counter, key, block);
    const n = Math.min(4, out.length - i);
    for (let j = 0; j < n; j++) {
      // 24 random bits -> [0, 1) exactly, then [-1, 1) exactly; one rounding when scaled.
      const unit = ((block[j] as number) >>> 8) / 0x1000000;
      out[i + j] = limit * (2 * unit - 1);
    }
  }
}
