/**
 * Convolution lowered to batch-wide and per-channel matrix products, for the shapes ONNX Runtime's
 * Conv runs slowly: few output positions per image.
 *
 * ORT's CPU Conv (im2col + one GEMM per image, and per group) is fast while each image has many output
 * positions. A network trained on small images ends in layers where it has one to four (ResNet-18 on
 * 32x32 ends at 1x1 with 512 channels): each image's GEMM is then a matrix-vector product that reads the
 * whole weight again, and ConvTranspose (the input gradient) and the weight-gradient Conv do the same.
 * Depthwise convolution (one group per channel, MobileNet) runs one tiny GEMM per image and channel. At
 * few output positions per image (GEMM_MAX_POSITIONS; DEPTHWISE_MAX_POSITIONS on small inputs), two lowered forms replace them:
 *
 * - 'gemm' (group 1): im2col over the whole batch as one product with a constant 0/1 patch matrix
 *   [H*W, T*P*Q] (zero where a window reads padding), the windows as columns [N*P*Q, C*T] and one GEMM
 *   with the weight [M, C*T]; the weight gradient is one GEMM (dY^T columns), the input gradient one
 *   GEMM (dY W) and col2im, the product with the patch matrix's transpose.
 * - 'depthwise' (group = input channels = output channels): a channel's convolution is linear in that
 *   channel's values, so it is one matrix K_c [P*Q, H*W], the channel's tap weights [T] times a constant
 *   0/1 channel matrix [T, P*Q*H*W]; the forward is one batched product over channels ([C, N, H*W] times
 *   K^T), the input gradient dY times K, and the weight gradient dY^T X per channel folded onto the taps
 *   by the channel matrix's transpose. It multiplies zeros (H*W / T times the direct form's products), but
 *   as GEMMs, where ORT's grouped Conv runs one tiny GEMM per image and channel.
 *
 * A tap only ever reads padding when no output position puts it inside the input (a 3x3 kernel with pad
 * 1 on a 1x1 input reads real values with its centre tap only): such taps are left out, and their weight
 * gradient is zero. Other Conv shapes keep ORT's kernels (conv.ts). The forms were chosen by ORT's
 * per-node profile of ResNet-18 and MobileNetV2 training steps (one thread, alternating runs); a 1x1
 * stride-1 window is the input itself and skips the patch matrix.
 */
import { attr, type GraphBuilder } from '../../graph/builder.js';
import type { DataTypeCode } from '../../onnx/schema.js';
import { isBatchDim } from '../facts.js';
import type { WindowGeometry } from './window.js';

/**
 * Output positions per image at or below which a group-1 Conv becomes one batch-wide GEMM. Measured on
 * ResNet-18 and MobileNetV2 at 32x32 (one thread, ORT's per-node profile, alternating runs): the GEMM form
 * beats ORT's Conv, ConvTranspose and weight-gradient Conv together up to 4x4 outputs (16 positions:
 * ResNet-18's step 79-85 -> 73-74 ms of kernel time, MobileNetV2's 94-96 -> 88-92, against a limit of 4).
 */
export const GEMM_MAX_POSITIONS = 16;

/**
 * The same for depthwise Conv (per-channel matrices), which also needs an input of at most
 * DEPTHWISE_MAX_CELLS values per channel: its products grow with input cells times output positions.
 * MobileNetV2 at 32x32, sum of per-node median kernel times in alternating runs: the former per-tap form
 * (Slice, Mul, and a Pad per tap in col2im) at <= 4 positions 127.6-128.2 ms, this form at <= 4 positions
 * 102.6-115.8; widened to <= 16 positions 128.3-132.6 against 141.5-144.4 at <= 4 in a slower period, to
 * <= 64 120.0-124.0; then leaving the 16x16 -> 8x8 layer (256 input cells) to ORT 80.9-83.3 against
 * 87.9-88.5.
 */
export const DEPTHWISE_MAX_POSITIONS = 64;
export const DEPTHWISE_MAX_CELLS = 64;

/** Largest patch matrix (entries, H*W by kernel taps*P*Q) a lowered Conv builds: 4 MiB of float32. */
export const PATCH_MATRIX_MAX_ENTRIES = 1 << 20;

export type ConvLowering = 'gemm' | 'depthwise' | 'conv';

/** Kernel taps along one axis that read at least one real (unpadded) value: [first, last]. */
function liveTaps(geometry: WindowGeometry, axis: 0 | 1): readonly [number, number] {
  const size = geometry.input[axis] as number;
  const pad = geometry.pads[axis] as number;
  const stride = geometry.strides[axis] as number;
  const out = geometry.output[axis] as number;
  const live = (tap: number): boolean => {
    // Output positions o with 0 <= tap - pad + stride * o < size.
    const first = Math.max(0, Math.ceil((pad - tap) / stride));
    const last = Math.min(out - 1, Math.floor((size - 1 - tap + pad) / stride));
    return first <= last;
  };
  let first = 0;
  let last = (geometry.kernel[axis] as number) - 1;
  while (first < last && !live(first)) first++;
  while (last > first && !live(last)) last--;
  return [first, last];
}

/** How Conv with these static shapes (2-D or lifted 1-D, dilation 1) is emitted. */
export function convLowering(input: readonly number[], weight: readonly number[], group: number, geometry: WindowGeometry): ConvLowering {
  const [, channels, height, width] = input as [number, number, number, number];
  if ([channels, height, width, ...weight].some(isBatchDim)) return 'conv';
  const outChannels = weight[0] as number;
  const positions = (geometry.output[0] as number) * (geometry.output[1] as number);
  const patchEntries = height * width * (weight[2] as number) * (weight[3] as number) * positions;
  if (patchEntries > PATCH_MATRIX_MAX_ENTRIES) return 'conv';
  const depthwise = group > 1 && group === channels && outChannels === channels;
  if (depthwise && positions <= DEPTHWISE_MAX_POSITIONS && height * width <= DEPTHWISE_MAX_CELLS) return 'depthwise';
  if (group === 1 && positions <= GEMM_MAX_POSITIONS) return 'gemm';
  return 'conv';
}

/** One live tap: its kernel position and the window of the padded input it reads. */
interface Tap {
  readonly row: number;
  readonly col: number;
}

/** The live taps: the kernel positions that read at least one real input value. */
export interface TapPlan {
  readonly geometry: WindowGeometry;
  /** Live kernel rows and columns, [first, last] each: a rectangle of the kernel. */
  readonly rows: readonly [number, number];
  readonly cols: readonly [number, number];
  readonly taps: readonly Tap[];
  /** The rectangle is the whole kernel. */
  readonly wholeKernel: boolean;
}

export function tapPlan(geometry: WindowGeometry): TapPlan {
  const rows = liveTaps(geometry, 0);
  const cols = liveTaps(geometry, 1);
  const taps: Tap[] = [];
  for (let row = rows[0]; row <= rows[1]; row++) for (let col = cols[0]; col <= cols[1]; col++) taps.push({ row, col });
  const [kh, kw] = geometry.kernel;
  const wholeKernel = rows[0] === 0 && cols[0] === 0 && rows[1] === kh - 1 && cols[1] === kw - 1;
  return {
    geometry,
    rows,
    cols,
    taps,
    wholeKernel,
  };
}

/** Output positions per image. */
const positionsOf = (plan: TapPlan): number => (plan.geometry.output[0] as number) * (plan.geometry.output[1] as number);

/**
 * Every real read of the lowered Conv: calls `read(t, position, cell)` for each live tap t and output
 * position (p*Q + q) whose window reads input cell (h*W + w); reads that fall in the padding are skipped.
 */
function forEachRead(plan: TapPlan, read: (tap: number, position: number, cell: number) => void): void {
  const { input, output, strides, pads } = plan.geometry;
  const [height, width] = input;
  const [p, q] = output;
  plan.taps.forEach((tap, t) => {
    for (let i = 0; i < p; i++) {
      const h = tap.row - pads[0] + strides[0] * i;
      if (h < 0 || h >= height) continue;
      for (let j = 0; j < q; j++) {
        const w = tap.col - pads[1] + strides[1] * j;
        if (w >= 0 && w < width) read(t, i * q + j, h * width + w);
      }
    }
  });
}

/**
 * The 0/1 patch matrix [H*W, T*P*Q]: column (t, p, q) has a 1 in the row of the input value that tap t
 * reads for output position (p, q), and none where that read falls in the padding. X [N*C, H*W] times it
 * gathers every window at once (im2col, padding included); a gradient [N*C, T*P*Q] times its transpose
 * adds each window's gradient back onto the values it read (col2im).
 */
function patchMatrix(b: GraphBuilder, plan: TapPlan, floatType: DataTypeCode): string {
  const cells = (plan.geometry.input[0] as number) * (plan.geometry.input[1] as number);
  const positions = positionsOf(plan);
  const columns = plan.taps.length * positions;
  const values = new Array<number>(cells * columns).fill(0);
  forEachRead(plan, (t, position, cell) => {
    values[cell * columns + t * positions + position] = 1;
  });
  return b.constant(floatType, [cells, columns], values, 'patch_matrix');
}

/**
 * The 0/1 matrix [T, P*Q*H*W] of a depthwise Conv's taps: row t has a 1 at (p, q, h, w) where tap t reads
 * input (h, w) for output position (p, q) (none where it reads padding). The per-channel weights [C, T]
 * times it give each channel's whole convolution as one matrix [P*Q, H*W].
 */
export function channelMatrix(b: GraphBuilder, plan: TapPlan, floatType: DataTypeCode): string {
  const cells = (plan.geometry.input[0] as number) * (plan.geometry.input[1] as number);
  const row = positionsOf(plan) * cells;
  const values = new Array<number>(plan.taps.length * row).fill(0);
  forEachRead(plan, (t, position, cell) => {
    values[t * row + position * cells + cell] = 1;
  });
  return b.constant(floatType, [plan.taps.length, row], values, 'channel_matrix');
}

/**
 * The only live tap reads the whole input as it is (a 1x1 kernel at stride 1 without padding, or the
 * centre tap of a padded kernel on a 1x1 input): the columns are the input's rows (rowsOf) and col2im
 * is imageOf, without a patch matrix.
 */
function windowIsInput(plan: TapPlan): boolean {
  const tap = plan.taps[0];
  if (plan.taps.length !== 1 || tap === undefined) return false;
  const { input, output, strides, pads } = plan.geometry;
  // Its window starts at the input's first value and covers every value once, in order.
  const wholeAxis = (axis: 0 | 1, start: number): boolean =>
    start === 0 && output[axis] === input[axis] && (output[axis] === 1 || strides[axis] === 1);
  return wholeAxis(0, tap.row - pads[0]) && wholeAxis(1, tap.col - pads[1]);
}

/** Every live tap's window of x [N, C, H, W], as [N, C, T, P*Q]. */
function patchesOf(b: GraphBuilder, x: string, channels: number, plan: TapPlan, floatType: DataTypeCode): string {
  const [height, width] = plan.geometry.input;
  const flat = b.op('Reshape', [x, b.int64s([-1, height * width])]);
  const gathered = b.op('MatMul', [flat, patchMatrix(b, plan, floatType)], {}, 'im2col');
  return b.op('Reshape', [gathered, b.int64s([-1, channels, plan.taps.length, positionsOf(plan)])]);
}

/** The adjoint of patchesOf: a gradient [N, C, T, P*Q] of the windows, summed onto the input [N, C, H, W]. */
function foldPatches(b: GraphBuilder, grad: string, channels: number, plan: TapPlan, floatType: DataTypeCode): string {
  const [height, width] = plan.geometry.input;
  const flat = b.op('Reshape', [grad, b.int64s([-1, plan.taps.length * positionsOf(plan)])]);
  const folded = b.op('Gemm', [flat, patchMatrix(b, plan, floatType)], { transB: attr.int(1) }, 'col2im');
  return b.op('Reshape', [folded, b.int64s([-1, channels, height, width])]);
}

/** [N, C, T, P*Q] windows -> im2col rows [N*P*Q, C*T], channel-major (the weight's layout). */
function columnsOf(b: GraphBuilder, patches: string, channels: number, plan: TapPlan): string {
  const moved = positionsOf(plan) === 1 ? patches : b.op('Transpose', [patches], { perm: attr.ints([0, 3, 1, 2]) });
  return b.op('Reshape', [moved, b.int64s([-1, channels * plan.taps.length])]);
}

/** The inverse of columnsOf: [N*P*Q, C*T] -> [N, C, T, P*Q]. */
function patchesFromColumns(b: GraphBuilder, columns: string, channels: number, plan: TapPlan): string {
  const positions = positionsOf(plan);
  const taps = plan.taps.length;
  if (positions === 1) return b.op('Reshape', [columns, b.int64s([-1, channels, taps, 1])]);
  const split = b.op('Reshape', [columns, b.int64s([-1, positions, channels, taps])]);
  return b.op('Transpose', [split], { perm: attr.ints([0, 2, 3, 1]) });
}

/** [N, C, P, Q] -> [N*P*Q, C]: one row per output position. */
export function rowsOf(b: GraphBuilder, value: string, channels: number, plan: TapPlan): string {
  const flat = positionsOf(plan) === 1 ? value : b.op('Transpose', [value], { perm: attr.ints([0, 2, 3, 1]) });
  return b.op('Reshape', [flat, b.int64s([-1, channels])]);
}

/** [N*P*Q, C] -> [N, C, P, Q], the inverse of rowsOf. */
export function imageOf(b: GraphBuilder, rows: string, channels: number, plan: TapPlan): string {
  const [p, q] = plan.geometry.output;
  if (positionsOf(plan) === 1) return b.op('Reshape', [rows, b.int64s([-1, channels, 1, 1])]);
  const nhwc = b.op('Reshape', [rows, b.int64s([-1, p, q, channels])]);
  return b.op('Transpose', [nhwc], { perm: attr.ints([0, 3, 1, 2]) });
}

/**
 * One-hot [kh*kw, T] matrix picking the live taps out of a flattened kernel. Selecting (and, in the
 * gradient, scattering back) by a small GEMM is several times faster in ONNX Runtime than Slice and Pad
 * over the kernel's two innermost axes, which copy one element at a time.
 */
function tapSelection(b: GraphBuilder, plan: TapPlan, floatType: DataTypeCode, transposed: boolean): string {
  const [, kw] = plan.geometry.kernel;
  const size = (plan.geometry.kernel[0] as number) * kw;
  const count = plan.taps.length;
  const values = new Array<number>(size * count).fill(0);
  plan.taps.forEach((tap, t) => {
    const k = tap.row * kw + tap.col;
    values[transposed ? t * size + k : k * count + t] = 1;
  });
  return b.constant(floatType, transposed ? [count, size] : [size, count], values, 'tap_selection');
}

/** The live rectangle of a weight [M, C/G, kh, kw] as [M, C/G, rows, cols] (the weight itself when every tap is live). */
export function liveWeight(b: GraphBuilder, w: string, wShape: readonly number[], plan: TapPlan, floatType: DataTypeCode): string {
  if (plan.wholeKernel) return w;
  const [m, c, kh, kw] = wShape as [number, number, number, number];
  const flat = b.op('Reshape', [w, b.int64s([m * c, kh * kw])]);
  const picked = b.op('MatMul', [flat, tapSelection(b, plan, floatType, false)], {}, 'live_weight');
  return b.op('Reshape', [picked, b.int64s([m, c, plan.rows[1] - plan.rows[0] + 1, plan.cols[1] - plan.cols[0] + 1])]);
}

/** A gradient of the live rectangle [M, C/G, rows, cols], zero-filled back to the whole kernel [M, C/G, kh, kw]. */
export function wholeKernelGradient(b: GraphBuilder, grad: string, wShape: readonly number[], plan: TapPlan, floatType: DataTypeCode): string {
  if (plan.wholeKernel) return grad;
  const [m, c] = wShape as [number, number];
  const flat = b.op('Reshape', [grad, b.int64s([m * c, plan.taps.length])]);
  const spread = b.op('MatMul', [flat, tapSelection(b, plan, floatType, true)]);
  return b.op('Reshape', [spread, b.int64s([...wShape])]);
}

/** im2col over the batch: x [N, C, H, W] as columns [N*P*Q, C*T], channel-major (the weight's layout). */
export function columnsOfInput(b: GraphBuilder, x: string, channels: number, plan: TapPlan, floatType: DataTypeCode): string {
  if (windowIsInput(plan)) return rowsOf(b, x, channels, plan);
  return columnsOf(b, patchesOf(b, x, channels, plan, floatType), channels, plan);
}

/** col2im, the adjoint of columnsOfInput: a gradient of the columns [N*P*Q, C*T] summed onto the input [N, C, H, W]. */
export function inputOfColumns(b: GraphBuilder, columns: string, channels: number, plan: TapPlan, floatType: DataTypeCode): string {
  if (windowIsInput(plan)) return imageOf(b, columns, channels, plan);
  return foldPatches(b, patchesFromColumns(b, columns, channels, plan), channels, plan, floatType);
}
