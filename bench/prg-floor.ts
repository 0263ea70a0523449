/**
 * How close masking runs to the cost of its primitive. Prints one JSON line:
 * - floor_ns_per_element: the cheapest AES-128-CTR keystream + uint32 add per mask element that
 *   node:crypto allows - one cipher, keystream chunks added into one reused cache-resident accumulator,
 *   with the same kernels addMasks uses (1, 2 or 4 keystreams per pass); min of 5 runs of 50 * d
 *   elements, best chunk size and kernel;
 * - mask_50_streams_ms: addMasks of 50 streams (k = 49 neighbours + self mask) over d = 1,000,000 into a
 *   preallocated target, median of 7 runs; mask_ratio = that / (50 * d * floor);
 * - mask_270_streams_ms: the server's unmasking load (about 270 streams), median of 5 runs;
 * - *_page_faults_per_run: minor page faults while masking (the allocator mapping fresh memory for
 *   keystream buffers; many of them mean the chunk size interacts badly with malloc trimming);
 * - shamir_create_ms_n100_t51 / shamir_combine_ms_n100_t51: one 32-byte secret, n = 100, t = 51, median;
 * - quantize_ms_1e6: quantizing 1e6 float32 values with the CSPRNG, median.
 * Usage: npx tsx bench/prg-floor.ts
 */
import { randomBytes } from 'node:crypto';
import { loadavg } from 'node:os';
import { PrgScratch, RandomSource, addMasks, combineShares, quantizationScale, quantize, splitSecret, type MaskStream } from '../crypto/index.js';
import { DEFAULT_CHUNK_BYTES, addKeystream, addKeystreamPair, addKeystreamQuad, keystreamCipher, nextKeystream } from '../crypto/prg.js';

const D = 1_000_000;
const STREAMS = 50;
const SERVER_STREAMS = 270;

function elapsedMs(run: () => void): number {
  const start = process.hrtime.bigint();
  run();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

function samples(runs: number, run: () => void): number[] {
  run(); // warm-up: JIT and allocator
  return Array.from({ length: runs }, () => elapsedMs(run));
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

const round = (value: number, digits = 3): number => Number(value.toFixed(digits));

type Kernel = 'single' | 'pair' | 'quad';

/** Keystream + add for `elements` elements from one cipher into one chunk-sized accumulator. */
function floorRun(chunkBytes: number, kernel: Kernel, elements: number): void {
  const cipher = keystreamCipher(randomBytes(32));
  const zeros = new Uint8Array(chunkBytes);
  const chunk = chunkBytes / 4;
  const accumulator = new Uint32Array(chunk);
  const next = (): Uint32Array => nextKeystream(cipher, zeros, chunk);
  if (kernel === 'quad') {
    for (let done = 0; done < elements; done += 4 * chunk) addKeystreamQuad(accumulator, 0, next(), next(), next(), next());
  } else if (kernel === 'pair') {
    for (let done = 0; done < elements; done += 2 * chunk) addKeystreamPair(accumulator, 0, next(), next());
  } else {
    for (let done = 0; done < elements; done += chunk) addKeystream(accumulator, 0, next());
  }
}

function measureFloor(): { nsPerElement: number; chunkBytes: number; kernel: Kernel } {
  let best: { nsPerElement: number; chunkBytes: number; kernel: Kernel } = { nsPerElement: Infinity, chunkBytes: 0, kernel: 'single' };
  for (const chunkBytes of [16_384, 32_768, DEFAULT_CHUNK_BYTES]) {
    for (const kernel of ['single', 'pair', 'quad'] as const) {
      const fastest = Math.min(...samples(5, () => floorRun(chunkBytes, kernel, STREAMS * D)));
      const nsPerElement = (fastest * 1e6) / (STREAMS * D);
      if (nsPerElement < best.nsPerElement) best = { nsPerElement, chunkBytes, kernel };
    }
  }
  return best;
}

function maskStreams(count: number): MaskStream[] {
  return Array.from({ length: count }, (_, i): MaskStream => ({ seed: randomBytes(32), sign: i % 2 === 0 ? 1 : -1 }));
}

/** Median time of addMasks, and the minor page faults per run (fresh keystream buffers the allocator had to map). */
function measureMasking(streamCount: number, runs: number): { ms: number; pageFaults: number } {
  const target = new Uint32Array(D);
  const streams = maskStreams(streamCount);
  const scratch = new PrgScratch();
  const faultsBefore = process.resourceUsage().minorPageFault;
  const ms = median(samples(runs, () => addMasks(target, streams, scratch)));
  return { ms, pageFaults: Math.round((process.resourceUsage().minorPageFault - faultsBefore) / (runs + 1)) };
}

function measureShamir(): { create: number; combine: number } {
  const secret = new Uint8Array(randomBytes(32));
  const xs = Array.from({ length: 100 }, (_, i) => i + 1);
  const shares = splitSecret(secret, 51, xs);
  // Many repetitions per sample: one split or combine is far below timer resolution of a single call.
  const repetitions = 100;
  const create = median(samples(9, () => {
    for (let r = 0; r < repetitions; r++) splitSecret(secret, 51, xs);
  })) / repetitions;
  const subset = shares.slice(49);
  const combine = median(samples(9, () => {
    for (let r = 0; r < repetitions; r++) combineShares(subset, 51, 32);
  })) / repetitions;
  return { create, combine };
}

function measureQuantize(): number {
  const values = new Float32Array(D).map((_, i) => Math.sin(i) * 0.01);
  const out = new Uint32Array(D);
  const layout = [{ kind: 'scaled' as const, length: D, bound: 0.05 }];
  const scale = quantizationScale(100);
  const random = new RandomSource();
  return median(samples(7, () => quantize(values, layout, scale, out, random)));
}

const loadBefore = loadavg()[0]!;
const floor = measureFloor();
const mask = measureMasking(STREAMS, 7);
const server = measureMasking(SERVER_STREAMS, 5);
const shamir = measureShamir();
const quantizeMs = measureQuantize();
const floorMs = (floor.nsPerElement * STREAMS * D) / 1e6;

console.log(
  JSON.stringify({
    bench: 'prg-floor',
    d: D,
    streams: STREAMS,
    floor_ns_per_element: round(floor.nsPerElement, 4),
    floor_chunk_bytes: floor.chunkBytes,
    floor_kernel: floor.kernel,
    floor_50_streams_ms: round(floorMs, 1),
    mask_50_streams_ms: round(mask.ms, 1),
    mask_ratio: round(mask.ms / floorMs, 3),
    mask_chunk_bytes: DEFAULT_CHUNK_BYTES,
    mask_50_streams_page_faults_per_run: mask.pageFaults,
    mask_270_streams_ms: round(server.ms, 1),
    mask_270_streams_page_faults_per_run: server.pageFaults,
    shamir_create_ms_n100_t51: round(shamir.create, 4),
    shamir_combine_ms_n100_t51: round(shamir.combine, 4),
    quantize_ms_1e6: round(quantizeMs, 2),
    load_average_1m: [round(loadBefore, 2), round(loadavg()[0]!, 2)],
    node: process.version,
  }),
);
