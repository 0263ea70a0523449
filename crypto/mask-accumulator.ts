/**
 * Adds keystream chunks into a block of the masked vector, mod 2^32: the inner loop of masking and
 * unmasking (DESIGN.md steps 4 and 6). V8 does not vectorise JavaScript loops, and a scalar add costs
 * more than producing the keystream, so the add runs in a small WebAssembly module with 128-bit SIMD
 * (i32x4.add: four lanes per instruction, wrapping mod 2^32 as the protocol needs). WebAssembly cannot
 * read the Buffers that node:crypto returns, so the block and each chunk are copied into its memory;
 * those copies are memcpy from cache and cheap next to the scalar loop they replace. Where WebAssembly
 * is unavailable (e.g. node --jitless) the scalar kernels below do the same arithmetic.
 */
import { CryptoError } from './errors.js';

/** Accumulates sign * (sum of sources) into target[offset, offset + count). */
export interface MaskAccumulator {
  readonly kind: 'simd' | 'scalar';
  /** Starts work on target[offset, offset + count); count <= the chunk size in elements. */
  begin(target: Uint32Array, offset: number, count: number): void;
  /** block += sign * (a + b + ...) for 1 to 4 sources of `count` elements each. */
  add(sign: 1 | -1, sources: readonly Uint32Array[]): void;
  /** Writes the block back into the target. */
  end(): void;
  /** Overwrites any keystream left in private buffers. */
  wipe(): void;
}

// Scalar kernels. A sum of at most five uint32s is an exact integer below 2^53, and the final `>>> 0`
// lets the optimiser keep the loop in 32-bit arithmetic.

/** target[offset, offset + a.length) += a (mod 2^32). */
export function addKeystream(target: Uint32Array, offset: number, a: Uint32Array): void {
  for (let i = 0, n = a.length; i < n; i++) target[offset + i] = (target[offset + i]! + a[i]!) >>> 0;
}

/** target[offset, offset + a.length) -= a (mod 2^32). */
export function subtractKeystream(target: Uint32Array, offset: number, a: Uint32Array): void {
  for (let i = 0, n = a.length; i < n; i++) target[offset + i] = (target[offset + i]! - a[i]!) >>> 0;
}

/** target[offset, offset + a.length) += a + b (mod 2^32). */
export function addKeystreamPair(target: Uint32Array, offset: number, a: Uint32Array, b: Uint32Array): void {
  for (let i = 0, n = a.length; i < n; i++) target[offset + i] = (target[offset + i]! + a[i]! + b[i]!) >>> 0;
}

/** target[offset, offset + a.length) += a + b + c + d (mod 2^32). */
export function addKeystreamQuad(target: Uint32Array, offset: number, a: Uint32Array, b: Uint32Array, c: Uint32Array, d: Uint32Array): void {
  for (let i = 0, n = a.length; i < n; i++) target[offset + i] = (target[offset + i]! + a[i]! + b[i]! + c[i]! + d[i]!) >>> 0;
}

/** target[offset, offset + a.length) -= a + b + c + d (mod 2^32). */
export function subtractKeystreamQuad(target: Uint32Array, offset: number, a: Uint32Array, b: Uint32Array, c: Uint32Array, d: Uint32Array): void {
  for (let i = 0, n = a.length; i < n; i++) target[offset + i] = (target[offset + i]! - a[i]! - b[i]! - c[i]! - d[i]!) >>> 0;
}

class ScalarAccumulator implements MaskAccumulator {
  readonly kind = 'scalar';
  #target: Uint32Array = new Uint32Array(0);
  #offset = 0;

  begin(target: Uint32Array, offset: number): void {
    this.#target = target;
    this.#offset = offset;
  }

  add(sign: 1 | -1, sources: readonly Uint32Array[]): void {
    const [a, b, c, d] = sources;
    if (a !== undefined && b !== undefined && c !== undefined && d !== undefined) {
      (sign === 1 ? addKeystreamQuad : subtractKeystreamQuad)(this.#target, this.#offset, a, b, c, d);
      return;
    }
    for (const source of sources) (sign === 1 ? addKeystream : subtractKeystream)(this.#target, this.#offset, source);
  }

  end(): void {
    this.#target = new Uint32Array(0);
  }

  wipe(): void {}
}

// The WebAssembly module, assembled here (WebAssembly 2.0 binary format, spec section 5): it imports
// its memory and exports add1, add2, add4, sub1, sub2, sub4 with signature
// (dst, src1 .. srcK, byteLength) -> (), computing dst[i] = dst[i] +/- src1[i] +/- ... +/- srcK[i] on
// 16-byte vectors (byteLength a multiple of 16; all pointers are byte offsets into the memory).

const SOURCE_COUNTS = [1, 2, 4] as const;
const I32 = 0x7f;
const OP = {
  block: [0x02, 0x40],
  loop: [0x03, 0x40],
  end: [0x0b],
  brIf: (depth: number) => [0x0d, depth],
  localGet: (index: number) => [0x20, index],
  localTee: (index: number) => [0x22, index],
  i32Const16: [0x41, 0x10],
  i32Eqz: [0x45],
  i32LtU: [0x49],
  i32Add: [0x6a],
  v128Load: [0xfd, 0x00, 0x04, 0x00], // memarg: alignment 2^4, offset 0
  v128Store: [0xfd, 0x0b, 0x04, 0x00],
  i32x4Add: [0xfd, 0xae, 0x01],
  i32x4Sub: [0xfd, 0xb1, 0x01],
};

function uleb128(value: number): number[] {
  const bytes: number[] = [];
  do {
    let byte = value & 0x7f;
    value >>>= 7;
    if (value !== 0) byte |= 0x80;
    bytes.push(byte);
  } while (value !== 0);
  return bytes;
}

const vector = (items: number[][]): number[] => [...uleb128(items.length), ...items.flat()];
const section = (id: number, content: number[]): number[] => [id, ...uleb128(content.length), ...content];
const name = (text: string): number[] => vector([...text].map((character) => [character.charCodeAt(0)]));

/** Body of the kernel with `sources` source pointers: params 0 = dst, 1..sources, then byteLength. */
function kernelBody(sources: number, combine: number[]): number[] {
  const byteLength = sources + 1;
  const i = sources + 2; // the one declared local
  const at = (pointer: number): number[] => [...OP.localGet(pointer), ...OP.localGet(i), ...OP.i32Add];
  const code = [
    ...OP.block,
    ...OP.localGet(byteLength), ...OP.i32Eqz, ...OP.brIf(0),
    ...OP.loop,
    ...at(0), // store address
    ...at(0), ...OP.v128Load,
    ...Array.from({ length: sources }, (_, s) => [...at(s + 1), ...OP.v128Load, ...combine]).flat(),
    ...OP.v128Store,
    ...OP.localGet(i), ...OP.i32Const16, ...OP.i32Add, ...OP.localTee(i),
    ...OP.localGet(byteLength), ...OP.i32LtU, ...OP.brIf(0),
    ...OP.end, ...OP.end, ...OP.end,
  ];
  const body = [...vector([[1, I32]]), ...code];
  return [...uleb128(body.length), ...body];
}

function simdModuleBytes(): Uint8Array {
  const types = SOURCE_COUNTS.map((sources) => [0x60, ...vector(Array.from({ length: sources + 2 }, () => [I32])), 0x00]);
  const functions = SOURCE_COUNTS.flatMap((_, type) => [[type], [type]]);
  const exports = SOURCE_COUNTS.flatMap((sources, type) => [
    [...name(`add${sources}`), 0x00, 2 * type],
    [...name(`sub${sources}`), 0x00, 2 * type + 1],
  ]);
  const bodies = SOURCE_COUNTS.flatMap((sources) => [kernelBody(sources, OP.i32x4Add), kernelBody(sources, OP.i32x4Sub)]);
  return Uint8Array.from([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // "\0asm", version 1
    ...section(1, vector(types)),
    ...section(2, vector([[...name('env'), ...name('memory'), 0x02, 0x00, 0x01]])), // memory, min 1 page
    ...section(3, vector(functions)),
    ...section(7, vector(exports)),
    ...section(10, vector(bodies)),
  ]);
}

/** The parts of the WebAssembly JS API used here (the project's TypeScript lib has no DOM types). */
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
  Memory: new (descriptor: { initial: number; maximum: number }) => { buffer: ArrayBuffer };
}
type Kernel = (...pointersThenByteLength: number[]) => void;
interface KernelSet {
  one: Kernel;
  two: Kernel;
  four: Kernel;
}

let compiled: object | null | undefined;

function simdModule(wasm: WasmApi): object | null {
  if (compiled === undefined) {
    try {
      compiled = new wasm.Module(simdModuleBytes());
    } catch {
      compiled = null; // no SIMD support: the scalar kernels take over
    }
  }
  return compiled;
}

class SimdAccumulator implements MaskAccumulator {
  readonly kind = 'simd';
  readonly #memory: Uint32Array;
  readonly #chunkBytes: number;
  readonly #add: KernelSet;
  readonly #subtract: KernelSet;
  #target: Uint32Array = new Uint32Array(0);
  #offset = 0;
  #count = 0;
  #byteLength = 0;

  constructor(wasm: WasmApi, module: object, chunkBytes: number) {
    // Slot 0 holds the block, slots 1..4 the keystream chunks being added.
    const pages = Math.ceil((5 * chunkBytes) / 65_536);
    const memory = new wasm.Memory({ initial: pages, maximum: pages });
    const { exports } = new wasm.Instance(module, { env: { memory } });
    this.#memory = new Uint32Array(memory.buffer);
    this.#chunkBytes = chunkBytes;
    const kernel = (exported: string): Kernel => {
      const candidate = exports[exported];
      if (typeof candidate !== 'function') throw new CryptoError('INTERNAL', 'SIMD_KERNEL', `SIMD module lacks export ${exported}`);
      return candidate as Kernel;
    };
    this.#add = { one: kernel('add1'), two: kernel('add2'), four: kernel('add4') };
    this.#subtract = { one: kernel('sub1'), two: kernel('sub2'), four: kernel('sub4') };
  }

  begin(target: Uint32Array, offset: number, count: number): void {
    this.#target = target;
    this.#offset = offset;
    this.#count = count;
    // Whole vectors: lanes past `count` compute on stale slot contents and are never written back.
    this.#byteLength = Math.ceil(count / 4) * 16;
    this.#memory.set(target.subarray(offset, offset + count), 0);
  }

  add(sign: 1 | -1, sources: readonly Uint32Array[]): void {
    const slot = this.#chunkBytes;
    const elementsPerSlot = slot / 4;
    const length = this.#byteLength;
    const kernels = sign === 1 ? this.#add : this.#subtract;
    for (let s = 0; s < sources.length; s += 4) {
      const group = Math.min(4, sources.length - s);
      for (let k = 0; k < group; k++) this.#memory.set(sources[s + k]!, (k + 1) * elementsPerSlot);
      if (group === 4) kernels.four(0, slot, 2 * slot, 3 * slot, 4 * slot, length);
      else if (group === 1) kernels.one(0, slot, length);
      else {
        kernels.two(0, slot, 2 * slot, length);
        if (group === 3) kernels.one(0, 3 * slot, length);
      }
    }
  }

  end(): void {
    this.#target.set(this.#memory.subarray(0, this.#count), this.#offset);
    this.#target = new Uint32Array(0);
  }

  wipe(): void {
    this.#memory.fill(0);
  }
}

/**
 * An accumulator for blocks of up to `chunkBytes` bytes: the SIMD one when WebAssembly SIMD is
 * available and `simd` is not false, else the scalar one.
 */
export function createMaskAccumulator(chunkBytes: number, simd = true): MaskAccumulator {
  const wasm = (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;
  const module = simd && wasm !== undefined ? simdModule(wasm) : null;
  return module === null || wasm === undefined ? new ScalarAccumulator() : new SimdAccumulator(wasm, module, chunkBytes);
}
