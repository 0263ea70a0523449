/**
 * The BatchNorm-fused warning: an eval-mode torch export folds each BatchNorm into the Conv before it, and
 * such a model trains without normalisation. The heuristic (no BatchNormalization node, a Conv reading an
 * exporter-computed 'onnx::' weight and bias) must flag that shape, and must not flag a model that never
 * had BatchNorm (module-named Conv parameters) or one that kept its BatchNorm.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runFedgateInProcess } from '../../support/cli-in-process.js';
import { buildTrainingPlan, forwardModelWarnings } from '../../../model/index.js';
import { importForwardModel } from '../../../model/import.js';
import { GraphBuilder, attr } from '../../../model/graph/builder.js';
import { modelFromGraph } from '../../../model/graph/model.js';
import { encodeModel } from '../../../model/onnx/codec.js';
import { DataType } from '../../../model/onnx/schema.js';
import { makeTensor } from '../../../model/onnx/tensor.js';
import { onnxTask } from '../../support/model/fixtures.js';
import { pseudoRandom } from '../../support/model/ort.js';

/** Conv(3x3, with bias) -> [BatchNormalization] -> Relu -> GlobalAveragePool -> Flatten -> Gemm. */
function convNet(weightName: string, biasName: string, withBatchNorm: boolean): Uint8Array {
  const b = new GraphBuilder('conv_net');
  b.addInput('input', DataType.FLOAT, ['batch', 1, 6, 6]);
  b.addInitializer(makeTensor(weightName, DataType.FLOAT, [4, 1, 3, 3], pseudoRandom(36, 1)));
  b.addInitializer(makeTensor(biasName, DataType.FLOAT, [4], pseudoRandom(4, 2)));
  b.addInitializer(makeTensor('fc.weight', DataType.FLOAT, [3, 4], pseudoRandom(12, 3)));
  b.addInitializer(makeTensor('fc.bias', DataType.FLOAT, [3], pseudoRandom(3, 4)));
  let h = b.op('Conv', ['input', weightName, biasName], { pads: attr.ints([1, 1, 1, 1]) });
  if (withBatchNorm) {
    for (const [name, values] of [['bn.weight', [1, 1, 1, 1]], ['bn.bias', [0, 0, 0, 0]], ['bn.running_mean', [0, 0, 0, 0]], ['bn.running_var', [1, 1, 1, 1]]] as const) {
      b.addInitializer(makeTensor(name, DataType.FLOAT, [4], values));
    }
    h = b.op('BatchNormalization', [h, 'bn.weight', 'bn.bias', 'bn.running_mean', 'bn.running_var']);
  }
  const pooled = b.op('Flatten', [b.op('GlobalAveragePool', [b.op('Relu', [h])])]);
  b.appendNode('Gemm', [pooled, 'fc.weight', 'fc.bias'], ['logits'], { transB: attr.int(1) });
  b.addOutput('logits', DataType.FLOAT, ['batch', 3]);
  return encodeModel(modelFromGraph(b.build()));
}

describe('BatchNorm-fused warning on import', () => {
  it('flags an eval-mode export whose Conv reads exporter-computed weight and bias and has no BatchNorm', () => {
    const bytes = convNet('onnx::Conv_193', 'onnx::Conv_194', false);
    const warnings = forwardModelWarnings(bytes);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/BatchNorm-fused/);
    expect(warnings[0]).toMatch(/training=torch\.onnx\.TrainingMode\.TRAINING/);
    // The import returns it too, and the model still imports and builds a plan (a warning, not a refusal).
    const task = onnxTask(bytes, [1, 6, 6], ['a', 'b', 'c']);
    expect(importForwardModel(bytes, task).warnings).toEqual(warnings);
    expect(buildTrainingPlan(task, bytes).parameters.length).toBe(4);
  });

  it('does not flag a CNN that never had BatchNorm (module-named Conv parameters, like the PyTorch tutorial CNN)', () => {
    expect(forwardModelWarnings(convNet('conv1.weight', 'conv1.bias', false))).toEqual([]);
  });

  it('does not flag a model that kept its BatchNormalization', () => {
    expect(forwardModelWarnings(convNet('onnx::Conv_193', 'onnx::Conv_194', true))).toEqual([]);
  });
});

describe('the operator sees the warning when writing the task', () => {
  it.each([['hash'], ['check']])('`fedgate task %s --json` lists it under warnings', async (command) => {
    const directory = await mkdtemp(join(tmpdir(), 'fedgate-fused-'));
    try {
      const bytes = convNet('onnx::Conv_193', 'onnx::Conv_194', false);
      const modelFile = join(directory, 'fused.onnx');
      const taskFile = join(directory, 'task.json');
      await writeFile(modelFile, bytes);
      await writeFile(taskFile, JSON.stringify(onnxTask(bytes, [1, 6, 6], ['a', 'b', 'c'])));
      const { code, stdout } = await runFedgateInProcess(['task', command as string, taskFile, '--model', modelFile, '--json']);
      expect(code).toBe(0);
      const result = JSON.parse(stdout) as { warnings?: string[] };
      expect(result.warnings).toHaveLength(1);
      expect(result.warnings?.[0]).toMatch(/BatchNorm-fused/);
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  }, 60_000);
});
