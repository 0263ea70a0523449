import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { canReleaseBuffers, installBufferTransfer, releaseBuffer } from '../../../crypto/buffer-release.js';
import { addMasks, PrgScratch, type MaskStream } from '../../../crypto/prg.js';
import { arrayBufferTransfer } from '../../../platform/index.js';

// What every process entry point does (the coordinator and participant apps, the benchmarks): on
// Node.js 20 the transfer method comes from platform/, which crypto/ may not import.
installBufferTransfer(arrayBufferTransfer());

describe('releaseBuffer (spent keystream memory goes back at once)', () => {
  it('is available on the supported Node.js versions', () => {
    expect(canReleaseBuffers()).toBe(true);
  });

  it('empties a view that owns its whole ArrayBuffer', () => {
    const bytes = new Uint8Array(65_536).fill(7);
    const words = new Uint32Array(bytes.buffer);
    releaseBuffer(bytes);
    expect(bytes.length).toBe(0);
    expect(words.length).toBe(0);
    expect(bytes.buffer.byteLength).toBe(0);
  });

  it('leaves partial views, pooled Buffers and shared memory alone', () => {
    const whole = new Uint8Array(64).fill(1);
    const part = whole.subarray(16, 32);
    releaseBuffer(part);
    expect(part.length).toBe(16);
    expect(whole.length).toBe(64);

    const pooled = Buffer.from('a short string lives in the shared pool');
    expect(pooled.buffer.byteLength).toBeGreaterThan(pooled.length);
    releaseBuffer(pooled);
    expect(pooled.toString()).toBe('a short string lives in the shared pool');

    const shared = new Uint8Array(new SharedArrayBuffer(64));
    releaseBuffer(shared);
    expect(shared.length).toBe(64);
  });

  it('keeps masking from piling up keystream memory for the collector', () => {
    // 4 streams x 2^20 elements = 16 MiB of keystream: below the young-generation collection trigger,
    // so without the release every chunk would still be counted when addMasks returns.
    const streams: MaskStream[] = [0, 1, 2, 3].map((i) => ({ seed: new Uint8Array(createHash('sha256').update(`stream ${i}`).digest()), sign: 1 }));
    const target = new Uint32Array(1 << 20);
    const scratch = new PrgScratch();
    addMasks(target.subarray(0, 1024), streams, scratch); // warm up: WebAssembly memory, cipher setup
    const before = process.memoryUsage().arrayBuffers;
    addMasks(target, streams, scratch);
    const growth = process.memoryUsage().arrayBuffers - before;
    expect(growth).toBeLessThan(2 * 1024 * 1024);
  });
});
