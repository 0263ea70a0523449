/**
 * 2-D Conv (NCHW, group 1, dilation 1, any strides and pads).
 *
 * Gradients, all expressed with ops ORT runs through its im2col + MLAS GEMM path:
 * - input:  the adjoint of a strided convolution is the transposed convolution with the same weight,
 *           strides and pads; output_padding restores the rows a strided window skipped at the end.
 * - weight: dW[m, c, i, j] = sum_{n, p, q} dY[n, m, p, q] X[n, c, s*p + i - pad, s*q + j - pad], i.e. a
 *           convolution of X (batch and channel axes swapped) with dY (likewise swapped) as the kernel,
 *           dilated by the forward stride. Rows the forward windows never read are sliced off first.
 * - bias:   sum of dY over N, H, W.
 */
import { attr } from '../../graph/builder.js';
import { formatShape, intsAttr, requireInput, requireRank, shapeError, unsupportedAttribute } from '../facts.js';
import type { OpCall, OpRule } from '../rule.js';
import { groupOf, requireUnitDilation, trailingRemainder, windowGeometry, type WindowGeometry } from './window.js';

function convGeometry(call: Pick<OpCall, 'node' | 'inputFacts'>): WindowGeometry {
  const x = call.inputFacts[0]?.shape ?? [];
  const w = call.inputFacts[1]?.shape ?? [];
  return windowGeometry(call.node, [x[2] as number, x[3] as number], [w[2] as number, w[3] as number]);
}

export const Conv: OpRule = {
  differentiableInputs: [0, 1, 2],
  infer(node, inputs) {
    const x = requireInput(node, inputs, 0);
    const w = requireInput(node, inputs, 1);
    requireRank(node, x, 4, 'input X (fedgate supports 2-D convolution, NCHW)');
    requireRank(node, w, 4, 'weight W');
    if (groupOf(node) !== 1) throw unsupportedAttribute(node, `group ${groupOf(node)}; fedgate differentiates group 1 only`);
    const kernelShape = intsAttr(node, 'kernel_shape');
    if (kernelShape !== undefined && (kernelShape[0] !== w.shape[2] || kernelShape[1] !== w.shape[3])) {
      throw shapeError(node, `kernel_shape [${kernelShape.join(', ')}] disagrees with weight ${formatShape(w.shape)}`);
    }
    if (x.shape[1] !== w.shape[1]) {
      throw shapeError(node, `input has ${x.shape[1]} channels, weight ${formatShape(w.shape)} expects ${w.shape[1]}`);
    }
    const b = inputs[2];
    if (b !== undefined && (b.shape.length !== 1 || b.shape[0] !== w.shape[0])) {
      throw shapeError(node, `bias ${formatShape(b.shape)}; expected [${w.shape[0]}]`);
    }
    const geometry = convGeometry({ node, inputFacts: inputs });
    requireUnitDilation(node, geometry);
    return [{ elemType: x.elemType, shape: [x.shape[0] as number, w.shape[0] as number, ...geometry.output] }];
  },
  backward(call, [grad], needs, ctx) {
    if (grad === undefined) return [];
    const [x, w] = call.inputs as [string, string];
    const g = convGeometry(call);
    const xShape = call.inputFacts[0]?.shape ?? [];
    let gradX: string | undefined;
    let gradW: string | undefined;
    let gradB: string | undefined;
    if (needs[0]) {
      gradX = ctx.op('ConvTranspose', [grad, w], {
        kernel_shape: attr.ints(g.kernel),
        strides: attr.ints(g.strides),
        pads: attr.ints(g.pads),
        output_padding: attr.ints([trailingRemainder(g, 0), trailingRemainder(g, 1)]),
      });
    }
    if (needs[1]) {
      const swap = { perm: attr.ints([1, 0, 2, 3]) };
      let xT = ctx.op('Transpose', [x], swap);
      // End padding the windows reach; negative = input rows the windows never read, dropped by Slice.
      const endPads = [0, 1].map((axis) => (g.pads[axis + 2] as number) - trailingRemainder(g, axis as 0 | 1));
      if (endPads.some((p) => p < 0)) {
        const ends = [0, 1].map((axis) => (xShape[axis + 2] as number) + Math.min(0, endPads[axis] as number));
        xT = ctx.op('Slice', [xT, ctx.builder.int64s([0, 0]), ctx.builder.int64s(ends), ctx.builder.int64s([2, 3])]);
      }
      const gradT = ctx.op('Transpose', [grad], swap);
      const gradWT = ctx.op('Conv', [xT, gradT], {
        pads: attr.ints([g.pads[0], g.pads[1], Math.max(0, endPads[0] as number), Math.max(0, endPads[1] as number)]),
        dilations: attr.ints(g.strides),
      });
      gradW = ctx.op('Transpose', [gradWT], swap);
    }
    if (needs[2] && call.inputs[2] !== undefined && call.inputs[2] !== '') {
      gradB = ctx.sumAxes(grad, [0, 2, 3], false);
    }
    return [gradX, gradW, gradB];
  },
};
