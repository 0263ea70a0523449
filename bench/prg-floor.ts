/**
 * How close masking runs to the cost of its primitive. Prints one JSON line:
 * - floor_ns_per_element: the cheapest AES-128-CTR keystream + uint32 add per mask element that
 *   node:crypto allows - one cipher, keystream chunks added four at a time into one reused
 *   cache-resident block with the same SIMD accumulator addMasks uses (keystreamFloor); min of 5 runs
 *   of 50 * d elements, best chunk size; floor_scalar_* is the same with the scalar JavaScript kernel;
 * - mask_50_streams_ms: addMasks of 50 streams (k = 49 neighbours + self mask) over d = 1,000,000 into a
 *   preallocated target, median of 7 runs; mask_ratio = that / (50 * d * floor);
 * - mask_270_streams_ms: the server's unmasking load (about 270 streams), median of 5 runs;
 * - *_page_faults_per_run: minor page faults while masking (the allocator mapping fresh memory for
 *   keystream buffers; many of them mean the chunk size interacts badly with malloc trimming);
 * - shamir_create_ms_n100_t51 / shamir_combine_ms_n100_t51: one 32-byte secret, n = 100, t = 51, median;
 * - quantize_ms_1e6: quantizing 1e6 float32 values with the CSPRNG, median.
 * Every wall-clock figure has a *_cpu twin (user + system CPU time of the process): on a shared machine
 * the wall clock also counts time spent waiting for a core, the CPU time does not.
 * Usage: npx tsx bench/prg-floor.ts
 */
import { randomBytes } from 'node:crypto';
import { loadavg } from 'node:os';
import { PrgScratch, RandomSource, addMasks, combineShares, installBufferTransfer, quantizationScale, quantize, splitSecret, type MaskStream } from '../crypto/index.js';
import { DEFAULT_CHUNK_BYTES, keystreamFloor } from '../crypto/prg.js';
import { arrayBufferTransfer } from '../platform/index.js';

// As the coordinator and participant apps do at start: spent keystream is freed at once (crypto/buffer-release.ts).
installBufferTransfer(arrayBufferTransfer());

const D = 1_000_000;
const STREAMS = 50;
const SERVER_STREAMS = 270;

interface Timing {
  wall: number;
  cpu: number;
}

function time(run: () => void): Timing {
  const cpuStart = process.cpuUsage();
  const start = process.hrtime.bigint();
  run();
  const wall = Number(process.hrtime.bigint() - start) / 1e6;
  const cpu = process.cpuUsage(cpuStart);
  return { wall, cpu: (cpu.user + cpu.system) / 1e3 };
}

/** `runs` timings after one warm-up run (JIT, allocator). */
function samples(runs: number, run: () => void): Timing[] {
  run();
  return Array.from({ length: runs }, () => time(run));
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

function medianTiming(timings: Timing[]): Timing {
  return { wall: median(timings.map((t) => t.wall)), cpu: median(timings.map((t) => t.cpu)) };
}

function minTiming(timings: Timing[]): Timing {
  return { wall: Math.min(...timings.map((t) => t.wall)), cpu: Math.min(...timings.map((t) => t.cpu)) };
}

const round = (value: number, digits = 3): number => Number(value.toFixed(digits));

type Kernel = 'simd' | 'scalar';

/**
 * The cheapest per-element cost over chunk sizes, by wall clock and by CPU time, for one kernel
 * (keystreamFloor: one cipher, keystream chunks added four at a time into one reused block).
 */
function measureFloor(kernel: Kernel): { wall: number; cpu: number; chunkBytes: number } {
  let best = { wall: Infinity, cpu: Infinity, chunkBytes: 0 };
  for (const chunkBytes of [16_384, 32_768, 65_536, 131_072]) {
    const scratch = new PrgScratch(chunkBytes, { simd: kernel === 'simd' });
    const fastest = minTiming(samples(5, () => keystreamFloor(randomBytes(32), STREAMS * D, scratch)));
    if (fastest.wall < best.wall) best = { ...best, wall: fastest.wall, chunkBytes };
    best.cpu = Math.min(best.cpu, fastest.cpu);
  }
  const perElement = 1e6 / (STREAMS * D);
  return { wall: best.wall * perElement, cpu: best.cpu * perElement, chunkBytes: best.chunkBytes };
}

function maskStreams(count: number): MaskStream[] {
  return Array.from({ length: count }, (_, i): MaskStream => ({ seed: randomBytes(32), sign: i % 2 === 0 ? 1 : -1 }));
}

/** Median timing of addMasks, and the minor page faults per run (fresh memory the allocator had to map). */
function measureMasking(streamCount: number, runs: number): Timing & { pageFaults: number } {
  const target = new Uint32Array(D);
  const streams = maskStreams(streamCount);
  const scratch = new PrgScratch();
  const faultsBefore = process.resourceUsage().minorPageFault;
  const timing = medianTiming(samples(runs, () => addMasks(target, streams, scratch)));
  return { ...timing, pageFaults: Math.round((process.resourceUsage().minorPageFault - faultsBefore) / (runs + 1)) };
}

function measureShamir(): { create: Timing; combine: Timing } {
  const secret = new Uint8Array(randomBytes(32));
  const xs = Array.from({ length: 100 }, (_, i) => i + 1);
  const subset = splitSecret(secret, 51, xs).slice(49);
  // One split or combine is close to the timer's resolution: time batches and divide.
  const repetitions = 100;
  const perCall = (timing: Timing): Timing => ({ wall: timing.wall / repetitions, cpu: timing.cpu / repetitions });
  const create = perCall(medianTiming(samples(9, () => {
    for (let r = 0; r < repetitions; r++) splitSecret(secret, 51, xs);
  })));
  const combine = perCall(medianTiming(samples(9, () => {
    for (let r = 0; r < repetitions; r++) combineShares(subset, 51, 32);
  })));
  return { create, combine };
}

function measureQuantize(): Timing {
  const values = new Float32Array(D).map((_, i) => Math.sin(i) * 0.01);
  const out = new Uint32Array(D);
  const layout = [{ kind: 'scaled' as const, length: D, bound: 0.05 }];
  const scale = quantizationScale(100);
  const random = new RandomSource();
  return medianTiming(samples(7, () => quantize(values, layout, scale, out, random)));
}

const loadBefore = loadavg()[0]!;
const floor = measureFloor('simd');
const scalarFloor = measureFloor('scalar');
const mask = measureMasking(STREAMS, 7);
const server = measureMasking(SERVER_STREAMS, 5);
const shamir = measureShamir();
const quantized = measureQuantize();
const floorMs = (floor.wall * STREAMS * D) / 1e6;
const floorCpuMs = (floor.cpu * STREAMS * D) / 1e6;

console.log(
  JSON.stringify({
    bench: 'prg-floor',
    d: D,
    streams: STREAMS,
    floor_ns_per_element: round(floor.wall, 4),
    floor_ns_per_element_cpu: round(floor.cpu, 4),
    floor_chunk_bytes: floor.chunkBytes,
    floor_kernel: new PrgScratch().accumulator.kind,
    floor_scalar_ns_per_element: round(scalarFloor.wall, 4),
    floor_scalar_ns_per_element_cpu: round(scalarFloor.cpu, 4),
    floor_50_streams_ms: round(floorMs, 1),
    mask_50_streams_ms: round(mask.wall, 1),
    mask_50_streams_ms_cpu: round(mask.cpu, 1),
    mask_ratio: round(mask.wall / floorMs, 3),
    mask_ratio_cpu: round(mask.cpu / floorCpuMs, 3),
    mask_chunk_bytes: DEFAULT_CHUNK_BYTES,
    mask_50_streams_page_faults_per_run: mask.pageFaults,
    mask_270_streams_ms: round(server.wall, 1),
    mask_270_streams_ms_cpu: round(server.cpu, 1),
    mask_270_streams_page_faults_per_run: server.pageFaults,
    shamir_create_ms_n100_t51: round(shamir.create.wall, 4),
    shamir_combine_ms_n100_t51: round(shamir.combine.wall, 4),
    shamir_create_ms_n100_t51_cpu: round(shamir.create.cpu, 4),
    shamir_combine_ms_n100_t51_cpu: round(shamir.combine.cpu, 4),
    quantize_ms_1e6: round(quantized.wall, 2),
    quantize_ms_1e6_cpu: round(quantized.cpu, 2),
    load_average_1m: [round(loadBefore, 2), round(loadavg()[0]!, 2)],
    node: process.version,
  }),
);
