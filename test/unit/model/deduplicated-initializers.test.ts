/**
 * torch.onnx.export merges equal initializers into `Identity(first)` nodes; fedgate's import gives each
 * such copy its own parameter (named by the exporter, i.e. the PyTorch state_dict key), while a weight the
 * graph reads directly in two places stays one shared parameter.
 */
import { describe, expect, it } from 'vitest';
import { buildTrainingPlan, unflattenParameters } from '../../../model/index.js';
import { GraphBuilder, attr } from '../../../model/graph/builder.js';
import { modelFromGraph } from '../../../model/graph/model.js';
import { encodeModel } from '../../../model/onnx/codec.js';
import { DataType } from '../../../model/onnx/schema.js';
import { onnxTask } from '../../support/model/fixtures.js';

function exportedWithDuplicates(): Uint8Array {
  const b = new GraphBuilder('deduplicated');
  b.addInput('x', DataType.FLOAT, ['N', 2]);
  const ones = new Uint8Array(new Float32Array([1, 0.5, -1, 2]).buffer);
  b.addInitializer({ name: 'layer0.weight', dataType: DataType.FLOAT, dims: [2, 2], data: ones });
  b.addInitializer({ name: 'shared.weight', dataType: DataType.FLOAT, dims: [2, 2], data: new Uint8Array(new Float32Array([0.3, 0.1, 0.2, -0.4]).buffer) });
  // What the exporter writes for a second layer whose weight equals layer0's.
  b.appendNode('Identity', ['layer0.weight'], ['layer1.weight'], {});
  const h0 = b.op('Tanh', [b.op('Gemm', ['x', 'layer0.weight'], { transB: attr.int(1) })]);
  const h1 = b.op('Tanh', [b.op('Gemm', [h0, 'layer1.weight'], { transB: attr.int(1) })]);
  const h2 = b.op('Gemm', [b.op('Gemm', [h1, 'shared.weight']), 'shared.weight']);
  b.appendNode('Identity', [h2], ['logits'], {});
  b.addOutput('logits', DataType.FLOAT, ['N', 2]);
  return encodeModel(modelFromGraph(b.build(), { opset: 17 }));
}

describe('initializers the exporter deduplicated', () => {
  it('become separate parameters with the copied values; a directly shared weight stays one parameter', () => {
    const bytes = exportedWithDuplicates();
    const plan = buildTrainingPlan(onnxTask(bytes, [2], ['a', 'b']), bytes);
    expect(plan.parameters.map((p) => p.name).sort()).toEqual(['layer0.weight', 'layer1.weight', 'shared.weight']);
    const values = unflattenParameters(plan, plan.initialParameters);
    expect(Array.from(values.get('layer1.weight') ?? [])).toEqual([1, 0.5, -1, 2]);
    expect(Array.from(values.get('layer0.weight') ?? [])).toEqual([1, 0.5, -1, 2]);
  });
});
