/**
 * The mask generator of SecAgg (Bonawitz et al. 2017, section 4: PRG(b_u) and PRG(s_uv)) as fixed by
 * DESIGN.md step 4: PRG(seed) is the AES-128-CTR keystream under key || IV = HKDF-Expand(seed,
 * "fedgate/v1/prg", 32), the 16-byte IV being the initial 128-bit big-endian counter (OpenSSL's
 * aes-128-ctr), and mask element i is the little-endian uint32 at keystream bytes [4i, 4i + 4).
 *
 * Performance: a site adds ~k + 1 streams and the server regenerates hundreds, each as long as the model,
 * so `addMasks` never materialises a whole stream. It walks the target in blocks that stay in cache and,
 * for each block, pulls the next keystream chunk of every stream (one Cipheriv per stream, kept across
 * blocks) and adds it in place. node:crypto's `update` cannot write into a caller's buffer; it returns a
 * fresh Buffer per call, so the chunk size balances the per-call cost against allocator behaviour
 * (bench/prg-floor.ts measures it against the cheapest keystream-plus-add loop on the same primitive).
 */
import { createCipheriv, type Cipher } from 'node:crypto';
import { assertBytes, assertInteger, utf8, zeroize } from './bytes.js';
import { describeValue, invalidArgument } from './errors.js';
import { hkdfExpand } from './hkdf.js';

/** Length of every mask seed (s_uv from HKDF, self-mask seed b). */
export const PRG_SEED_LENGTH = 32;
const PRG_INFO = utf8('fedgate/v1/prg');

/** Keystream bytes per `update` call (tuned with bench/prg-floor.ts). */
export const DEFAULT_CHUNK_BYTES = 65_536;

const LITTLE_ENDIAN = new Uint8Array(Uint32Array.of(1).buffer)[0] === 1;

export interface MaskStream {
  /** 32-byte seed of this mask. */
  seed: Uint8Array;
  /** +1 adds PRG(seed) to the target, -1 subtracts it (mod 2^32). */
  sign: 1 | -1;
}

/** The AES-128-CTR cipher positioned at the start of PRG(seed). Exported for bench/prg-floor.ts. */
export function keystreamCipher(seed: Uint8Array): Cipher {
  assertBytes(seed, 'seed', PRG_SEED_LENGTH);
  const keyAndIv = hkdfExpand(seed, PRG_INFO, 32);
  try {
    return createCipheriv('aes-128-ctr', keyAndIv.subarray(0, 16), keyAndIv.subarray(16, 32));
  } finally {
    zeroize(keyAndIv);
  }
}

/**
 * The next `count` mask elements of `cipher` as a Uint32Array view of the fresh output of `update`
 * (native byte order fixed up to the little-endian reading the PRG is defined by).
 */
export function nextKeystream(cipher: Cipher, zeros: Uint8Array, count: number): Uint32Array {
  const bytes = cipher.update(count * 4 === zeros.length ? zeros : zeros.subarray(0, count * 4));
  if (!LITTLE_ENDIAN) bytes.swap32();
  if (bytes.byteOffset % 4 !== 0) return new Uint32Array(new Uint8Array(bytes).buffer, 0, count);
  return new Uint32Array(bytes.buffer, bytes.byteOffset, count);
}

// Kernels: target[offset + i] += or -= keystream(s)[i] (mod 2^32). A sum of at most five uint32s is an
// exact integer below 2^53, and the final `>>> 0` lets the optimiser keep the loop in 32-bit arithmetic.
// Grouping streams cuts the loads and stores of the target per keystream element.

/** target[offset, offset + a.length) += a (mod 2^32). */
export function addKeystream(target: Uint32Array, offset: number, a: Uint32Array): void {
  for (let i = 0, n = a.length; i < n; i++) target[offset + i] = (target[offset + i]! + a[i]!) >>> 0;
}

/** target[offset, offset + a.length) -= a (mod 2^32). */
export function subtractKeystream(target: Uint32Array, offset: number, a: Uint32Array): void {
  for (let i = 0, n = a.length; i < n; i++) target[offset + i] = (target[offset + i]! - a[i]!) >>> 0;
}

/** target[offset, offset + a.length) += a + b (mod 2^32): one pass over the target for two streams. */
export function addKeystreamPair(target: Uint32Array, offset: number, a: Uint32Array, b: Uint32Array): void {
  for (let i = 0, n = a.length; i < n; i++) target[offset + i] = (target[offset + i]! + a[i]! + b[i]!) >>> 0;
}

/** target[offset, offset + a.length) -= a + b (mod 2^32). */
export function subtractKeystreamPair(target: Uint32Array, offset: number, a: Uint32Array, b: Uint32Array): void {
  for (let i = 0, n = a.length; i < n; i++) target[offset + i] = (target[offset + i]! - a[i]! - b[i]!) >>> 0;
}

/** target[offset, offset + a.length) += a + b + c + d (mod 2^32). */
export function addKeystreamQuad(target: Uint32Array, offset: number, a: Uint32Array, b: Uint32Array, c: Uint32Array, d: Uint32Array): void {
  for (let i = 0, n = a.length; i < n; i++) target[offset + i] = (target[offset + i]! + a[i]! + b[i]! + c[i]! + d[i]!) >>> 0;
}

/** target[offset, offset + a.length) -= a + b + c + d (mod 2^32). */
export function subtractKeystreamQuad(target: Uint32Array, offset: number, a: Uint32Array, b: Uint32Array, c: Uint32Array, d: Uint32Array): void {
  for (let i = 0, n = a.length; i < n; i++) target[offset + i] = (target[offset + i]! - a[i]! - b[i]! - c[i]! - d[i]!) >>> 0;
}

interface Kernels {
  single: typeof addKeystream;
  pair: typeof addKeystreamPair;
  quad: typeof addKeystreamQuad;
}
const ADD: Kernels = { single: addKeystream, pair: addKeystreamPair, quad: addKeystreamQuad };
const SUBTRACT: Kernels = { single: subtractKeystream, pair: subtractKeystreamPair, quad: subtractKeystreamQuad };

/**
 * Reusable state of `addMasks`: the all-zero input that `update` turns into keystream. One per thread
 * doing masking; reusing it avoids a fresh 64 KiB allocation per call.
 */
export class PrgScratch {
  readonly chunkBytes: number;
  readonly zeros: Uint8Array;

  constructor(chunkBytes: number = DEFAULT_CHUNK_BYTES) {
    assertInteger(chunkBytes, 'chunkBytes', 16, 1 << 24);
    if (chunkBytes % 16 !== 0) {
      throw invalidArgument('invalid_chunk', `chunkBytes must be a multiple of the 16-byte AES block, got ${chunkBytes}`);
    }
    this.chunkBytes = chunkBytes;
    this.zeros = new Uint8Array(chunkBytes);
  }
}

let sharedScratch: PrgScratch | undefined;

/**
 * Masking allocates a keystream Buffer per `update` call, and they die in batches of tens of MB between
 * garbage collections. glibc's malloc returns a freed region at the top of the heap to the kernel once
 * it exceeds the trim threshold (128 KiB initially), so with the defaults every batch is unmapped and
 * the next one page-faults back in: measured 10-20x slower keystream generation. mallopt(3) documents
 * the dynamic thresholds: freeing an mmap-ed block of up to 32 MiB raises the mmap threshold to its size
 * and the trim threshold to twice that. One 31 MiB allocation, never touched beyond its first page and
 * freed at the next collection, therefore makes freed keystream chunks reusable for the rest of the
 * process (at the cost of keeping up to ~62 MiB of freed heap mapped). Other allocators just free it.
 */
let allocatorPrimed = false;
/** Applies the allocator tuning above once per process (addMasks calls it; exported for the bench). */
export function primeAllocator(): void {
  if (allocatorPrimed) return;
  allocatorPrimed = true;
  Buffer.allocUnsafeSlow(31 * 1024 * 1024)[0] = 0;
}

function checkStreams(streams: readonly MaskStream[]): void {
  if (!Array.isArray(streams)) throw invalidArgument('invalid_streams', `streams must be an array of { seed, sign }, got ${describeValue(streams)}`);
  for (const [index, stream] of streams.entries()) {
    if (typeof stream !== 'object' || stream === null) {
      throw invalidArgument('invalid_streams', `streams[${index}] must be { seed, sign }, got ${describeValue(stream)}`);
    }
    assertBytes(stream.seed, `streams[${index}].seed`, PRG_SEED_LENGTH);
    if (stream.sign !== 1 && stream.sign !== -1) {
      throw invalidArgument('invalid_streams', `streams[${index}].sign must be 1 or -1, got ${describeValue(stream.sign)}`);
    }
  }
}

/**
 * target += sum over streams of sign * PRG(seed)[0 .. target.length) (mod 2^32): masking a site's
 * quantized vector (DESIGN.md step 4) and removing the masks of survivors and dropouts (step 6).
 * Streams of equal sign are grouped by four so each pass over a cached target block consumes four keystreams.
 */
export function addMasks(target: Uint32Array, streams: readonly MaskStream[], scratch?: PrgScratch): void {
  if (!(target instanceof Uint32Array)) throw invalidArgument('invalid_target', `target must be a Uint32Array, got ${describeValue(target)}`);
  checkStreams(streams);
  if (scratch !== undefined && !(scratch instanceof PrgScratch)) {
    throw invalidArgument('invalid_scratch', `scratch must be a PrgScratch, got ${describeValue(scratch)}`);
  }
  if (target.length === 0 || streams.length === 0) return;
  primeAllocator();
  const { zeros, chunkBytes } = scratch ?? (sharedScratch ??= new PrgScratch());
  const plus = streams.filter((stream) => stream.sign === 1).map((stream) => keystreamCipher(stream.seed));
  const minus = streams.filter((stream) => stream.sign === -1).map((stream) => keystreamCipher(stream.seed));
  const chunkElements = chunkBytes / 4;
  for (let offset = 0; offset < target.length; offset += chunkElements) {
    const count = Math.min(chunkElements, target.length - offset);
    applyGroup(target, offset, plus, zeros, count, ADD);
    applyGroup(target, offset, minus, zeros, count, SUBTRACT);
  }
}

function applyGroup(target: Uint32Array, offset: number, ciphers: readonly Cipher[], zeros: Uint8Array, count: number, kernels: Kernels): void {
  const next = (s: number): Uint32Array => nextKeystream(ciphers[s]!, zeros, count);
  let s = 0;
  for (; s + 3 < ciphers.length; s += 4) kernels.quad(target, offset, next(s), next(s + 1), next(s + 2), next(s + 3));
  for (; s + 1 < ciphers.length; s += 2) kernels.pair(target, offset, next(s), next(s + 1));
  if (s < ciphers.length) kernels.single(target, offset, next(s));
}

/** The first `length` elements of PRG(seed), materialised (for tests and small vectors). */
export function prgBlock(seed: Uint8Array, length: number): Uint32Array {
  assertInteger(length, 'length', 0, 2 ** 30);
  const out = new Uint32Array(length);
  addMasks(out, [{ seed, sign: 1 }]);
  return out;
}
