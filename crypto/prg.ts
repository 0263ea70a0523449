/**
 * The mask generator of SecAgg (Bonawitz et al. 2017, section 4: PRG(b_u) and PRG(s_uv)) as fixed by
 * DESIGN.md step 4: PRG(seed) is the AES-128-CTR keystream under key || IV = HKDF-Expand(seed,
 * "fedgate/v1/prg", 32), the 16-byte IV being the initial 128-bit big-endian counter (OpenSSL's
 * aes-128-ctr), and mask element i is the little-endian uint32 at keystream bytes [4i, 4i + 4).
 *
 * Performance: a site adds ~k + 1 streams and the server regenerates hundreds, each as long as the model,
 * so `addMasks` never materialises a whole stream. It walks the target in blocks that stay in cache and,
 * for each block, pulls the next keystream chunk of every stream (one Cipheriv per stream, kept across
 * blocks) and adds them four at a time with a SIMD kernel (mask-accumulator.ts). node:crypto's `update`
 * cannot write into a caller's buffer; it returns a fresh Buffer per call, which is freed as soon as its
 * elements are added (buffer-release.ts), so neither the collector nor malloc's trimming sees it pile up
 * (bench/prg-floor.ts measures addMasks against the cheapest keystream-plus-add loop on the same primitive).
 */
import { createCipheriv, type Cipher } from 'node:crypto';
import { releaseBuffer } from './buffer-release.js';
import { assertBytes, assertInteger, utf8, zeroize } from './bytes.js';
import { describeValue, invalidArgument } from './errors.js';
import { hkdfExpand } from './hkdf.js';
import { createMaskAccumulator, type MaskAccumulator } from './mask-accumulator.js';


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
 * (native byte order fixed up to the little-endian reading the PRG is defined by). The caller owns the
 * memory and hands it back with `releaseBuffer` once the elements are added (buffer-release.ts).
 */
export function nextKeystream(cipher: Cipher, zeros: Uint8Array, count: number): Uint32Array {
  const bytes = cipher.update(count * 4 === zeros.length ? zeros : zeros.subarray(0, count * 4));
  if (!LITTLE_ENDIAN) bytes.swap32();
  if (bytes.byteOffset % 4 === 0) return new Uint32Array(bytes.buffer, bytes.byteOffset, count);
  const aligned = new Uint32Array(new Uint8Array(bytes).buffer, 0, count);
  releaseBuffer(bytes);
  return aligned;
}

/** Adds the streams' next chunks, then frees them. */
function addChunks(accumulator: MaskAccumulator, sign: 1 | -1, chunks: readonly Uint32Array[]): void {
  accumulator.add(sign, chunks);
  for (const chunk of chunks) releaseBuffer(chunk);
}

/**
 * Reusable state of `addMasks`: the all-zero input that `update` turns into keystream and the block
 * accumulator (with its WebAssembly memory). One per thread doing masking.
 */
export class PrgScratch {
  readonly chunkBytes: number;
  readonly zeros: Uint8Array;
  readonly accumulator: MaskAccumulator;

  /** `options.simd: false` forces the scalar kernels (tests, and comparison in the bench). */
  constructor(chunkBytes: number = DEFAULT_CHUNK_BYTES, options: { simd?: boolean } = {}) {
    assertInteger(chunkBytes, 'chunkBytes', 16, 1 << 24);
    if (chunkBytes % 16 !== 0) {
      throw invalidArgument('INVALID_CHUNK', `chunkBytes must be a multiple of the 16-byte AES block, got ${chunkBytes}`);
    }
    this.chunkBytes = chunkBytes;
    this.zeros = new Uint8Array(chunkBytes);
    this.accumulator = createMaskAccumulator(chunkBytes, options.simd ?? true);
  }
}

let sharedScratch: PrgScratch | undefined;

function checkStreams(streams: readonly MaskStream[]): void {
  if (!Array.isArray(streams)) throw invalidArgument('INVALID_STREAMS', `streams must be an array of { seed, sign }, got ${describeValue(streams)}`);
  for (const [index, stream] of streams.entries()) {
    if (typeof stream !== 'object' || stream === null) {
      throw invalidArgument('INVALID_STREAMS', `streams[${index}] must be { seed, sign }, got ${describeValue(stream)}`);
    }
    assertBytes(stream.seed, `streams[${index}].seed`, PRG_SEED_LENGTH);
    if (stream.sign !== 1 && stream.sign !== -1) {
      throw invalidArgument('INVALID_STREAMS', `streams[${index}].sign must be 1 or -1, got ${describeValue(stream.sign)}`);
    }
  }
}

/**
 * target += sum over streams of sign * PRG(seed)[0 .. target.length) (mod 2^32): masking a site's
 * quantized vector (DESIGN.md step 4) and removing the masks of survivors and dropouts (step 6).
 * Streams of equal sign are added four per pass over each cached block of the target.
 */
export function addMasks(target: Uint32Array, streams: readonly MaskStream[], scratch?: PrgScratch): void {
  if (!(target instanceof Uint32Array)) throw invalidArgument('INVALID_TARGET', `target must be a Uint32Array, got ${describeValue(target)}`);
  checkStreams(streams);
  if (scratch !== undefined && !(scratch instanceof PrgScratch)) {
    throw invalidArgument('INVALID_SCRATCH', `scratch must be a PrgScratch, got ${describeValue(scratch)}`);
  }
  if (target.length === 0 || streams.length === 0) return;
  const { zeros, chunkBytes, accumulator } = scratch ?? (sharedScratch ??= new PrgScratch());
  const plus = streams.filter((stream) => stream.sign === 1).map((stream) => keystreamCipher(stream.seed));
  const minus = streams.filter((stream) => stream.sign === -1).map((stream) => keystreamCipher(stream.seed));
  const chunkElements = chunkBytes / 4;
  const group: Uint32Array[] = [];
  const apply = (sign: 1 | -1, ciphers: readonly Cipher[], count: number): void => {
    for (let s = 0; s < ciphers.length; s += 4) {
      group.length = 0;
      for (let k = s; k < Math.min(s + 4, ciphers.length); k++) group.push(nextKeystream(ciphers[k]!, zeros, count));
      addChunks(accumulator, sign, group);
    }
  };
  try {
    for (let offset = 0; offset < target.length; offset += chunkElements) {
      const count = Math.min(chunkElements, target.length - offset);
      accumulator.begin(target, offset, count);
      apply(1, plus, count);
      apply(-1, minus, count);
      accumulator.end();
    }
  } finally {
    accumulator.wipe();
  }
}

/**
 * The primitive's floor, for benchmarks: `elements` keystream elements of one PRG(seed) added four
 * chunks at a time into one reused chunk-sized block, with the same `update` calls, accumulator and
 * release of each spent chunk as addMasks but none of its per-stream work (one cipher, one block, no
 * target walk).
 */
export function keystreamFloor(seed: Uint8Array, elements: number, scratch: PrgScratch): void {
  assertInteger(elements, 'elements', 0, Number.MAX_SAFE_INTEGER);
  const cipher = keystreamCipher(seed);
  const { zeros, chunkBytes, accumulator } = scratch;
  const chunk = chunkBytes / 4;
  const block = new Uint32Array(chunk);
  accumulator.begin(block, 0, chunk);
  for (let done = 0; done < elements; done += 4 * chunk) {
    addChunks(accumulator, 1, [nextKeystream(cipher, zeros, chunk), nextKeystream(cipher, zeros, chunk), nextKeystream(cipher, zeros, chunk), nextKeystream(cipher, zeros, chunk)]);
  }
  accumulator.end();
  accumulator.wipe();
}

/** The first `length` elements of PRG(seed), materialised (for tests and small vectors). */
export function prgBlock(seed: Uint8Array, length: number): Uint32Array {
  assertInteger(length, 'length', 0, 2 ** 30);
  const out = new Uint32Array(length);
  addMasks(out, [{ seed, sign: 1 }]);
  return out;
}
