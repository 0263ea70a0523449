/**
 * Import of a user's forward ONNX model (e.g. torch.onnx.export in eval mode, opset 13..17, weights as
 * initializers) as a ForwardModel, from which buildTrainingPlan derives the training graphs.
 *
 * - input: the one graph input that is not an initializer, float32, [batch, ...task.input.shape]; or,
 *   when the task names several inputs or int64 ids (task `inputs`), one graph input per task input, by
 *   name, of its dtype and shape [batch, ...shape];
 * - output: the one graph output; if a Softmax produces it, training uses the Softmax's input (logits);
 * - parameters: float32 initializers that reach the logits through differentiable inputs are trainable;
 *   BatchNormalization's running mean/var are parameters too (updated by the step, no gradient);
 *   everything else (shape constants, a Dropout ratio, int64 indices) stays a constant.
 */
import { ModelError, describeValue } from './errors.js';
import { decodeModel } from './onnx/codec.js';
import type { GraphIR, NodeIR, TensorIR } from './onnx/ir.js';
import { dataTypeName } from './onnx/ir.js';
import { DataType, type DataTypeCode } from './onnx/schema.js';
import { readFloat32 } from './onnx/tensor.js';
import { isDifferentiableInput, ruleFor } from './autodiff/registry.js';
import { intAttr } from './autodiff/facts.js';
import { checkSupported } from './autodiff/tape.js';
import { untieDeduplicatedInitializers } from './deduplicated-initializers.js';
import { namedInputsOf, type InputSpec, type TaskDocument } from './task.js';
import type { ForwardModel, NamedInput, ParameterRole, ParameterSpec } from './train/forward-model.js';

export const MIN_IMPORT_OPSET = 13;
export const MAX_IMPORT_OPSET = 17;

function unsupported(message: string): ModelError {
  return new ModelError('INVALID_ARGUMENT', 'UNSUPPORTED_MODEL', `forward ONNX model: ${message}`);
}

function checkOpset(opsets: readonly { domain: string; version: number }[]): number {
  const main = opsets.find((o) => o.domain === '' || o.domain === 'ai.onnx');
  if (main === undefined || main.version < MIN_IMPORT_OPSET || main.version > MAX_IMPORT_OPSET) {
    throw unsupported(
      `default-domain opset ${main === undefined ? 'missing' : main.version}; expected ${MIN_IMPORT_OPSET}..${MAX_IMPORT_OPSET} (re-export with e.g. torch.onnx.export(..., opset_version=17))`,
    );
  }
  return main.version;
}

/** Gives unnamed nodes a name (errors must be able to point at them) and normalises the domain. */
function nameNodes(nodes: readonly NodeIR[]): NodeIR[] {
  return nodes.map((node, index) => ({
    ...node,
    name: node.name === '' ? `${node.opType}_${index}` : node.name,
    domain: node.domain === 'ai.onnx' ? '' : node.domain,
  }));
}

/** Nodes needed to compute `target`, in their original (topological) order. */
function prune(nodes: readonly NodeIR[], target: string): NodeIR[] {
  const needed = new Set([target]);
  const kept: NodeIR[] = [];
  for (let i = nodes.length - 1; i >= 0; i--) {
    const node = nodes[i] as NodeIR;
    if (!node.outputs.some((o) => needed.has(o))) continue;
    kept.push(node);
    for (const input of node.inputs) if (input !== '') needed.add(input);
  }
  return kept.reverse();
}

/** Strips a final Softmax (possibly behind Identity nodes): cross-entropy wants the logits it normalises. */
function findLogits(nodes: readonly NodeIR[], output: string): string {
  let producer = nodes.find((node) => node.outputs.includes(output));
  while (producer?.opType === 'Identity') {
    const source = producer.inputs[0];
    producer = nodes.find((node) => source !== undefined && node.outputs.includes(source));
  }
  if (producer?.opType !== 'Softmax') return output;
  const axis = intAttr(producer, 'axis', -1);
  if (axis !== 1 && axis !== -1) {
    throw unsupported(`final Softmax '${producer.name}' normalises axis ${axis}; expected the class axis (1 or -1)`);
  }
  return producer.inputs[0] as string;
}

/** Role of every initializer reached from the logits through differentiable inputs. */
function classifyInitializers(nodes: readonly NodeIR[], logits: string, initializers: ReadonlyMap<string, TensorIR>): Map<string, ParameterRole> {
  const roles = new Map<string, ParameterRole>();
  const setRole = (name: string, role: ParameterRole): void => {
    const previous = roles.get(name);
    if (previous !== undefined && previous !== role) {
      throw unsupported(`initializer '${name}' is used both as ${previous} and as ${role}`);
    }
    roles.set(name, role);
  };
  for (const node of nodes) {
    if (node.opType !== 'BatchNormalization') continue;
    const [, , , mean, variance] = node.inputs;
    if (mean !== undefined && initializers.has(mean)) setRole(mean, 'running_mean');
    if (variance !== undefined && initializers.has(variance)) setRole(variance, 'running_var');
  }
  // Walk backwards from the logits along differentiable edges only.
  const differentiable = new Set([logits]);
  for (let i = nodes.length - 1; i >= 0; i--) {
    const node = nodes[i] as NodeIR;
    if (!node.outputs.some((o) => differentiable.has(o))) continue;
    const rule = ruleFor(node);
    node.inputs.forEach((input, index) => {
      if (input !== '' && (rule === undefined || isDifferentiableInput(rule, index))) differentiable.add(input);
    });
  }
  for (const name of differentiable) {
    const tensor = initializers.get(name);
    if (tensor === undefined || roles.has(name)) continue;
    if (tensor.dataType !== DataType.FLOAT) {
      throw unsupported(`weight '${name}' is ${dataTypeName(tensor.dataType)}; fedgate trains float32 weights only`);
    }
    setRole(name, 'trainable');
  }
  return roles;
}

function checkInputShape(graph: GraphIR, initializers: ReadonlyMap<string, TensorIR>, task: TaskDocument): string {
  const inputs = graph.inputs.filter((input) => !initializers.has(input.name));
  if (inputs.length !== 1) {
    throw unsupported(`has ${inputs.length} inputs (${inputs.map((i) => `'${i.name}'`).join(', ')}); expected exactly one data input`);
  }
  const input = inputs[0] as (typeof inputs)[number];
  if (input.elemType !== DataType.FLOAT) {
    throw unsupported(`input '${input.name}' is ${dataTypeName(input.elemType)}; expected float32`);
  }
  const shape = input.shape;
  const perExample = shape?.slice(1);
  const matches =
    perExample !== undefined &&
    perExample.length === task.input.shape.length &&
    perExample.every((dim, i) => dim === task.input.shape[i]);
  if (!matches) {
    throw unsupported(
      `input '${input.name}' has shape ${describeValue(shape ?? 'unknown')}; expected [batch, ${task.input.shape.join(', ')}] (task input.shape with a leading batch dimension)`,
    );
  }
  return input.name;
}

/**
 * Warnings about a model that imports but will not train as its author expects. One today: an eval-mode
 * torch export folds every BatchNorm into the Conv before it (torch 1.13 does so even with
 * do_constant_folding=False), so the model trains without normalisation. Sign of it: no
 * BatchNormalization node, and a Conv whose weight and bias are initializers the exporter named itself
 * ('onnx::...': values it computed, not module parameters, which keep names like 'conv1.weight'). A
 * model that never had BatchNorm (the PyTorch tutorial CNN) keeps its parameter names and is not flagged.
 */
export function modelWarnings(graph: GraphIR): string[] {
  if (graph.nodes.some((node) => node.opType === 'BatchNormalization')) return [];
  const initializers = new Set(graph.initializers.map((t) => t.name));
  const exporterNamed = (name: string | undefined): boolean => name !== undefined && initializers.has(name) && name.startsWith('onnx::');
  const fused = graph.nodes.filter((node) => node.opType === 'Conv' && exporterNamed(node.inputs[1]) && exporterNamed(node.inputs[2]));
  if (fused.length === 0) return [];
  return [
    `the model looks BatchNorm-fused: no BatchNormalization node, and ${fused.length} Conv node(s) (first '${fused[0]?.name ?? ''}') read a weight and bias the exporter computed ('${fused[0]?.inputs[1] ?? ''}'), as an eval-mode torch.onnx.export does when it folds each BatchNorm into the Conv before it. Such a model trains without normalisation. If the PyTorch model has BatchNorm, re-export it with torch.onnx.export(model, x, path, opset_version=17, training=torch.onnx.TrainingMode.TRAINING, do_constant_folding=False) (docs/operations.md)`,
  ];
}

/** modelWarnings of a forward model file (e.g. for `fedgate task hash` to show the operator). */
export function forwardModelWarnings(bytes: Uint8Array): string[] {
  return modelWarnings(decodeModel(bytes).graph);
}

const DTYPES: Readonly<Record<InputSpec['dtype'], DataTypeCode>> = { float32: DataType.FLOAT, int64: DataType.INT64 };

/**
 * The graph's data inputs against the task's named inputs: the same names, each of the task's dtype and
 * [batch, ...shape] (a symbolic dimension, as a dynamic sequence axis exports, takes the task's size).
 */
function matchNamedInputs(graph: GraphIR, initializers: ReadonlyMap<string, TensorIR>, named: readonly InputSpec[]): NamedInput[] {
  const inputs = graph.inputs.filter((input) => !initializers.has(input.name));
  const wanted = new Set(named.map((input) => input.name));
  const extra = inputs.filter((input) => !wanted.has(input.name)).map((input) => `'${input.name}'`);
  const missing = named.filter((spec) => !inputs.some((input) => input.name === spec.name)).map((spec) => `'${spec.name}'`);
  if (extra.length > 0 || missing.length > 0) {
    throw unsupported(
      `has data inputs ${inputs.map((i) => `'${i.name}'`).join(', ')} but the task's inputs are ${named.map((i) => `'${i.name}'`).join(', ')}${missing.length > 0 ? `; missing ${missing.join(', ')}` : ''}${extra.length > 0 ? `; not in the task ${extra.join(', ')}` : ''}; expected one task input per graph input, by name`,
    );
  }
  return named.map((spec) => {
    const input = inputs.find((candidate) => candidate.name === spec.name) as (typeof inputs)[number];
    if (input.elemType !== DTYPES[spec.dtype]) {
      throw unsupported(`input '${input.name}' is ${dataTypeName(input.elemType)}; the task's inputs declare it ${spec.dtype}`);
    }
    const perExample = input.shape?.slice(1);
    const fits = perExample !== undefined && perExample.length === spec.shape.length && perExample.every((dim, i) => typeof dim !== 'number' || dim === spec.shape[i]);
    if (!fits) {
      throw unsupported(`input '${input.name}' has shape ${describeValue(input.shape ?? 'unknown')}; expected [batch, ${spec.shape.join(', ')}] (its shape in the task's inputs with a leading batch dimension)`);
    }
    return { name: spec.name, source: input.name, dtype: spec.dtype, shape: [...spec.shape] };
  });
}

/**
 * Rows of the smallest table an int64 input indexes, when every node reading it is a Gather of an
 * initializer by these ids (an embedding lookup): ids outside [0, rows) are then the data's fault, and
 * the trainer names them (ONNX Runtime would report a bare Gather failure, and take negative ids as
 * counting from the end where PyTorch refuses them).
 */
function idRangeOf(nodes: readonly NodeIR[], source: string, initializers: ReadonlyMap<string, TensorIR>): number | undefined {
  const readers = nodes.filter((node) => node.inputs.includes(source));
  let range: number | undefined;
  for (const node of readers) {
    const table = node.inputs[0] === undefined ? undefined : initializers.get(node.inputs[0]);
    if (node.opType !== 'Gather' || node.inputs[1] !== source || node.inputs[0] === source || table === undefined) return undefined;
    const axis = intAttr(node, 'axis', 0);
    const rows = table.dims[axis < 0 ? axis + table.dims.length : axis];
    if (rows === undefined) return undefined;
    range = Math.min(range ?? rows, rows);
  }
  return range;
}

export function importForwardModel(bytes: Uint8Array, task: TaskDocument): ForwardModel {
  const model = decodeModel(bytes);
  checkOpset(model.opsetImports);
  const graph = untieDeduplicatedInitializers(model.graph);
  const initializers = new Map(graph.initializers.map((t) => [t.name, t]));
  const named = namedInputsOf(task);
  const namedInputs = named === undefined ? undefined : matchNamedInputs(graph, initializers, named);
  const first = namedInputs?.[0];
  const input = first === undefined ? checkInputShape(graph, initializers, task) : first.source;
  if (graph.outputs.length !== 1) {
    throw unsupported(`has ${graph.outputs.length} outputs; expected one output (logits or probabilities)`);
  }
  const allNodes = nameNodes(graph.nodes);
  const logits = findLogits(allNodes, (graph.outputs[0] as GraphIR['outputs'][number]).name);
  const nodes = prune(allNodes, logits);
  const rangedInputs = namedInputs?.map((input) => {
    const idRange = input.dtype === 'int64' ? idRangeOf(nodes, input.source, initializers) : undefined;
    return idRange === undefined ? input : { ...input, idRange };
  });
  const roles = classifyInitializers(nodes, logits, initializers);
  // One error naming every op fedgate cannot run or differentiate.
  checkSupported(nodes, [...roles].filter(([, role]) => role === 'trainable').map(([name]) => name));
  const parameters: ParameterSpec[] = [];
  const values: Float32Array[] = [];
  const constants: TensorIR[] = [];
  const used = new Set(nodes.flatMap((node) => node.inputs));
  for (const tensor of graph.initializers) {
    if (!used.has(tensor.name)) continue;
    const role = roles.get(tensor.name);
    if (role === undefined) {
      constants.push(tensor);
      continue;
    }
    parameters.push({ name: tensor.name, shape: [...tensor.dims], role });
    values.push(readFloat32(tensor));
  }
  const initialParameters = new Float32Array(values.reduce((n, v) => n + v.length, 0));
  let offset = 0;
  for (const v of values) {
    initialParameters.set(v, offset);
    offset += v.length;
  }
  return {
    nodes,
    constants,
    parameters,
    input,
    inputShape: first === undefined ? [...task.input.shape] : [...first.shape],
    ...(rangedInputs === undefined ? {} : { namedInputs: rangedInputs }),
    logits,
    classes: task.labels.length,
    initialParameters,
    warnings: modelWarnings(graph),
  };
}
