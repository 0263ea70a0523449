/**
 * Dropout. Inference copies the node (identity per the spec). Training runs ONNX Dropout-13 with
 * training_mode = true, which returns the kept-element mask; the VJP is dx = dy * mask / (1 - ratio),
 * the same scaling the forward applied. With `ctx.randomSeed` (a site's secret) every training-mode
 * Dropout gets its own `seed` attribute derived from that secret and its emitted name, so the masks a site
 * draws are neither public nor shared between layers; without it the source node's `seed`, when it has
 * one, is kept.
 */
import { createHash } from 'node:crypto';
import { attr } from '../../graph/builder.js';
import { DataType } from '../../onnx/schema.js';
import { requireInput } from '../facts.js';
import type { EmitContext, OpRule } from '../rule.js';

const DEFAULT_RATIO = 0.5;

export const Dropout: OpRule = {
  differentiableInputs: [0],
  infer(node, inputs) {
    const x = requireInput(node, inputs, 0);
    return [
      { elemType: x.elemType, shape: x.shape },
      { elemType: DataType.BOOL, shape: x.shape },
    ];
  },
  emit(node, inputs, _facts, ctx) {
    const b = ctx.builder;
    const outputs = node.outputs.map((name) => (name === '' ? '' : b.fresh(name)));
    if (ctx.mode === 'eval') {
      b.appendNode('Dropout', [inputs[0] as string], [outputs[0] as string], node.attributes);
      return { outputs };
    }
    const ratio = inputs[1] !== undefined && inputs[1] !== '' ? inputs[1] : b.scalar(DEFAULT_RATIO, ctx.floatType);
    const trainingMode = b.constant(DataType.BOOL, [], [1], 'training_mode');
    const mask = outputs[1] !== undefined && outputs[1] !== '' ? outputs[1] : b.fresh(`${node.outputs[0] ?? 'dropout'}/mask`);
    const attributes = ctx.randomSeed === undefined ? node.attributes : { ...node.attributes, seed: attr.int(dropoutSeed(ctx, outputs[0] as string)) };
    b.appendNode('Dropout', [inputs[0] as string, ratio, trainingMode], [outputs[0] as string, mask], attributes);
    return { outputs, saved: { mask, ratio } };
  },
  backward(call, [grad], _needs, ctx) {
    if (grad === undefined) return [];
    const { mask, ratio } = call.saved as Record<'mask' | 'ratio', string>;
    const keep = ctx.op('Cast', [mask], { to: attr.int(ctx.floatType) });
    const scale = ctx.op('Reciprocal', [ctx.op('Sub', [ctx.scalar(1), ratio])]);
    return [ctx.op('Mul', [ctx.op('Mul', [grad, keep]), scale])];
  },
};

/** A non-negative 48-bit seed (exact in a JS number and in ONNX's int64 attribute) for one Dropout node. */
export function dropoutSeed(ctx: Pick<EmitContext, 'randomSeed'>, emittedName: string): number {
  const digest = createHash('sha256')
    .update('fedgate dropout seed\0')
    .update(ctx.randomSeed ?? new Uint8Array())
    .update('\0')
    .update(emittedName)
    .digest();
  return digest.readUIntBE(0, 6);
}
