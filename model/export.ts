/**
 * Export of a trained model as a plain inference ONNX model that any ONNX Runtime (any language) runs:
 * weights as initializers, input 'input' float32 [batch, ...input.shape] (a task with named inputs: one
 * input per entry of its `inputs`, by name, of its dtype and [batch, ...shape]), outputs 'logits' and
 * 'probabilities' (softmax over classes). By default the task's normalisation is applied inside the
 * model, so callers feed raw features exactly as the data loader reads them; labels, normalisation and
 * the task hash travel in metadata_props.
 */
import { ModelError } from './errors.js';
import { GraphBuilder, attr } from './graph/builder.js';
import { modelFromGraph } from './graph/model.js';
import { encodeModel } from './onnx/codec.js';
import { DataType } from './onnx/schema.js';
import { floatTensor } from './onnx/tensor.js';
import { lowerForward } from './autodiff/tape.js';
import { prepareTask } from './plan.js';
import { BATCH_DIM_PARAM, parameterInfo } from './train/graphs.js';
import { INPUT, LOGITS, PROBABILITIES } from './train/prepare.js';
import { targetKindOf, taskHash, type TaskDocument } from './task.js';
import { modelHash } from './weight-codec.js';
import { unflattenParameters } from './weights.js';

export interface ExportOptions {
  /**
   * Apply the task's normalisation inside the model (input = raw features).
   * @default true
   */
  readonly includeNormalization?: boolean;
}

/** Normalisation nodes: (x - mean) / std or x * scale + offset, broadcast per channel when given so. */
function emitNormalization(b: GraphBuilder, task: TaskDocument, input: string): string {
  const norm = task.normalization;
  const shape = task.input.shape;
  if ('scale' in norm) {
    if (norm.scale === 1 && norm.offset === 0) return input;
    const scaled = norm.scale === 1 ? input : b.op('Mul', [input, b.scalar(norm.scale)], {}, 'input/scaled');
    return norm.offset === 0 ? scaled : b.op('Add', [scaled, b.scalar(norm.offset)], {}, 'input/normalised');
  }
  const count = norm.mean.length;
  // One value: a scalar; one per channel: [C, 1, ..., 1]; one per element: the example shape.
  const dims = count === 1 ? [] : count === shape[0] ? [count, ...new Array<number>(shape.length - 1).fill(1)] : [...shape];
  const mean = b.constant(DataType.FLOAT, dims, norm.mean, 'normalization/mean');
  const std = b.constant(DataType.FLOAT, dims, norm.std, 'normalization/std');
  return b.op('Div', [b.op('Sub', [input, mean], {}, 'input/centred'), std], {}, 'input/normalised');
}

export function exportInferenceModel(
  task: TaskDocument,
  parameters: Float32Array,
  forwardModel?: Uint8Array,
  options: ExportOptions = {},
): Uint8Array {
  const { task: parsed, prepared } = prepareTask(task, forwardModel);
  const layout = { parameters: parameterInfo(prepared) };
  const tensors = unflattenParameters(layout, parameters);
  const b = new GraphBuilder('fedgate_inference');
  b.reserve([LOGITS, PROBABILITIES]);
  const { forward } = prepared;
  const bindings = new Map<string, string>();
  if (forward.namedInputs === undefined) {
    b.addInput(INPUT, DataType.FLOAT, [BATCH_DIM_PARAM, ...parsed.input.shape]);
    bindings.set(forward.input, options.includeNormalization === false ? INPUT : emitNormalization(b, parsed, INPUT));
  } else {
    // Named inputs keep the imported model's input names and types (a task with them has no normalisation).
    for (const input of forward.namedInputs) {
      b.addInput(input.name, input.dtype === 'int64' ? DataType.INT64 : DataType.FLOAT, [BATCH_DIM_PARAM, ...input.shape]);
      bindings.set(input.source, input.name);
    }
  }
  for (const p of forward.parameters) {
    const values = tensors.get(p.name) as Float32Array;
    for (let i = 0; i < values.length; i++) {
      if (!Number.isFinite(values[i] as number)) {
        throw new ModelError('INVALID_ARGUMENT', 'PARAMETERS_MISMATCH', `parameter '${p.name}' holds a non-finite value at index ${i}; refusing to export`);
      }
    }
    bindings.set(p.name, b.addFreshInitializer(floatTensor(p.name, p.shape, values)));
  }
  const pass = lowerForward(forward.nodes, forward.constants, prepared.facts, bindings, {
    builder: b,
    mode: 'eval',
    floatType: DataType.FLOAT,
  });
  const logits = pass.values.get(forward.logits) as string;
  b.appendNode('Identity', [logits], [LOGITS], {});
  b.addOutput(LOGITS, DataType.FLOAT, [BATCH_DIM_PARAM, forward.classes]);
  // Probabilities as the loss reads the outputs: softmax over classes, a sigmoid per label; a
  // regression model's outputs ('logits') are its predictions and have none.
  const kind = targetKindOf(prepared.loss.kind);
  if (kind !== 'regression') {
    if (kind === 'class') b.appendNode('Softmax', [LOGITS], [PROBABILITIES], { axis: attr.int(1) });
    else b.appendNode('Sigmoid', [LOGITS], [PROBABILITIES], {});
    b.addOutput(PROBABILITIES, DataType.FLOAT, [BATCH_DIM_PARAM, forward.classes]);
  }
  const graph = b.build(`fedgate inference model; classes: ${parsed.labels.join(', ')}`);
  return encodeModel(
    modelFromGraph(graph, {
      docString: 'Exported by fedgate: input -> logits, probabilities.',
      metadata: {
        'fedgate.task_hash': taskHash(parsed),
        'fedgate.model_hash': modelHash(layout, parameters),
        'fedgate.labels': JSON.stringify(parsed.labels),
        'fedgate.normalization': JSON.stringify(options.includeNormalization === false ? null : parsed.normalization),
      },
    }),
  );
}
