/**
 * Sliding-window geometry shared by Conv, ConvTranspose, MaxPool and AveragePool (2-D, NCHW; 1-D ops are
 * lifted to 2-D by liftTo2d): resolves auto_pad to explicit pads and computes output sizes exactly as
 * the ONNX operator specs define them.
 */
import { attr } from '../../graph/builder.js';
import type { AttributeValue, NodeIR } from '../../onnx/ir.js';
import { intAttr, intsAttr, shapeError, stringAttr, unsupportedAttribute } from '../facts.js';

export type Pair = readonly [number, number];

export interface WindowGeometry {
  readonly kernel: Pair;
  readonly strides: Pair;
  readonly dilations: Pair;
  /** [h_begin, w_begin, h_end, w_end], the ONNX `pads` layout. */
  readonly pads: readonly [number, number, number, number];
  readonly input: Pair;
  readonly output: Pair;
}

function pairAttr(node: NodeIR, name: string, fallback: number): Pair {
  const value = intsAttr(node, name);
  if (value === undefined) return [fallback, fallback];
  if (value.length !== 2 || value.some((v) => !Number.isInteger(v) || v < 1)) {
    throw unsupportedAttribute(node, `attribute '${name}' is [${value.join(', ')}]; expected two positive integers (2-D)`);
  }
  return [value[0] as number, value[1] as number];
}

export function windowGeometry(node: NodeIR, input: Pair, kernel: Pair, ceilMode = false): WindowGeometry {
  const strides = pairAttr(node, 'strides', 1);
  const dilations = pairAttr(node, 'dilations', 1);
  const autoPad = stringAttr(node, 'auto_pad', 'NOTSET');
  const effective = [0, 1].map((i) => ((kernel[i] as number) - 1) * (dilations[i] as number) + 1);
  const pads: [number, number, number, number] = [0, 0, 0, 0];
  const output: [number, number] = [0, 0];
  for (let i = 0; i < 2; i++) {
    const size = input[i] as number;
    const stride = strides[i] as number;
    const span = effective[i] as number;
    if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
      const out = Math.ceil(size / stride);
      const total = Math.max(0, (out - 1) * stride + span - size);
      const small = Math.floor(total / 2);
      pads[i] = autoPad === 'SAME_UPPER' ? small : total - small;
      pads[i + 2] = total - (pads[i] as number);
      output[i] = out;
      continue;
    }
    if (autoPad === 'NOTSET') {
      const explicit = intsAttr(node, 'pads');
      if (explicit !== undefined) {
        if (explicit.length !== 4 || explicit.some((p) => !Number.isInteger(p) || p < 0)) {
          throw unsupportedAttribute(node, `attribute 'pads' is [${explicit.join(', ')}]; expected four non-negative integers`);
        }
        pads[i] = explicit[i] as number;
        pads[i + 2] = explicit[i + 2] as number;
      }
    } else if (autoPad !== 'VALID') {
      throw unsupportedAttribute(node, `auto_pad '${autoPad}'; expected NOTSET, SAME_UPPER, SAME_LOWER or VALID`);
    }
    const padded = size + (pads[i] as number) + (pads[i + 2] as number) - span;
    let out = (ceilMode ? Math.ceil(padded / stride) : Math.floor(padded / stride)) + 1;
    // ceil_mode: a window may not start in the end padding (the rule ONNX Runtime and PyTorch apply).
    if (ceilMode && (out - 1) * stride >= size + (pads[i] as number)) out -= 1;
    if (padded < 0 || out < 1) {
      throw shapeError(node, `window of ${span} does not fit spatial size ${size} with pads [${pads.join(', ')}]`);
    }
    output[i] = out;
  }
  return { kernel, strides, dilations, pads, input, output };
}

/** Input rows/columns one window spans along an axis: (kernel - 1) * dilation + 1. */
export function windowSpan(geometry: WindowGeometry, axis: 0 | 1): number {
  return ((geometry.kernel[axis] as number) - 1) * (geometry.dilations[axis] as number) + 1;
}

/** Rows/columns past the last window that a strided window never reads (ConvTranspose output_padding). */
export function trailingRemainder(geometry: WindowGeometry, axis: 0 | 1): number {
  return (
    (geometry.input[axis] as number) +
    (geometry.pads[axis] as number) +
    (geometry.pads[axis + 2] as number) -
    windowSpan(geometry, axis) -
    ((geometry.output[axis] as number) - 1) * (geometry.strides[axis] as number)
  );
}

export function requireUnitDilation(node: NodeIR, geometry: WindowGeometry): void {
  if (geometry.dilations[0] !== 1 || geometry.dilations[1] !== 1) {
    throw unsupportedAttribute(node, `dilations [${geometry.dilations.join(', ')}]; fedgate differentiates dilation 1 only`);
  }
}

export const groupOf = (node: NodeIR): number => intAttr(node, 'group', 1);

/**
 * The 2-D form of a 1-D window node (Conv1d, MaxPool1d, AvgPool1d, ConvTranspose1d): the sequence
 * becomes an image of height 1, [N, C, L] -> [N, C, 1, L], with a kernel, stride and dilation of 1 and
 * no padding along the new axis. Gradient rules lift 1-D calls this way and reuse the 2-D rule.
 */
export function liftTo2d(node: NodeIR): NodeIR {
  const attributes: Record<string, AttributeValue> = { ...node.attributes };
  for (const name of ['kernel_shape', 'strides', 'dilations', 'output_padding']) {
    const value = intsAttr(node, name);
    if (value !== undefined) attributes[name] = attr.ints([name === 'output_padding' ? 0 : 1, ...value]);
  }
  const pads = intsAttr(node, 'pads');
  if (pads !== undefined) {
    if (pads.length !== 2) throw unsupportedAttribute(node, `attribute 'pads' is [${pads.join(', ')}]; expected two integers (1-D)`);
    attributes['pads'] = attr.ints([0, pads[0] as number, 0, pads[1] as number]);
  }
  return { ...node, attributes };
}

/** Number of spatial axes of an N, C, ... input: 1 or 2 (fedgate's window ops), else an error. */
export function spatialRank(node: NodeIR, rank: number, what: string): 1 | 2 {
  if (rank === 3 || rank === 4) return (rank - 2) as 1 | 2;
  throw unsupportedAttribute(node, `${what} has rank ${rank}; fedgate supports 1-D (N, C, L) and 2-D (N, C, H, W) windows`);
}

/** [N, C, L] -> [N, C, 1, L] facts (a 1-D window input lifted to 2-D). */
export function liftShape(shape: readonly number[]): number[] {
  return shape.length === 3 ? [shape[0] as number, shape[1] as number, 1, shape[2] as number] : [...shape];
}
