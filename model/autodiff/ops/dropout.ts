/**
 * Dropout. Inference copies the node (identity per the spec). Training runs ONNX Dropout-13 with
 * training_mode = true, which returns the kept-element mask; the VJP is dx = dy * mask / (1 - ratio),
 * the same scaling the forward applied. `seed`, when the source node has one, is kept.
 */
import { attr } from '../../graph/builder.js';
import { DataType } from '../../onnx/schema.js';
import { requireInput } from '../facts.js';
import type { OpRule } from '../rule.js';

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
    b.appendNode('Dropout', [inputs[0] as string, ratio, trainingMode], [outputs[0] as string, mask], node.attributes);
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
