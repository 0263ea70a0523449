/**
 * torch.onnx.export (1.13) stores initializers with equal contents once and recreates the others as
 * `Identity(first)` nodes. A freshly built nn.TransformerEncoder (its layers are deep copies) or any two
 * LayerNorms still at ones/zeros come out that way: separate PyTorch parameters sharing one ONNX tensor.
 * Trained as exported, they would be tied (one tensor receiving the sum of their gradients). This gives
 * each `Identity(float initializer)` output its own initializer with the same values, under the name the
 * exporter gave it (the PyTorch state_dict key), and drops the Identity node. Weights a model really
 * shares (the same nn.Parameter used twice) are exported as one initializer read directly by both
 * consumers, without an Identity, and stay shared.
 */
import type { GraphIR } from './onnx/ir.js';
import { DataType } from './onnx/schema.js';

export function untieDeduplicatedInitializers(graph: GraphIR): GraphIR {
  const initializers = new Map(graph.initializers.map((t) => [t.name, t]));
  const outputs = new Set(graph.outputs.map((o) => o.name));
  const copies = graph.nodes.flatMap((node) => {
    const source = initializers.get(node.inputs[0] ?? '');
    const target = node.outputs[0];
    const isCopy =
      node.opType === 'Identity' &&
      (node.domain === '' || node.domain === 'ai.onnx') &&
      source?.dataType === DataType.FLOAT &&
      target !== undefined &&
      !outputs.has(target) &&
      !initializers.has(target);
    return isCopy ? [{ node, tensor: { ...source, name: target } }] : [];
  });
  if (copies.length === 0) return graph;
  const dropped = new Set(copies.map((c) => c.node));
  return {
    ...graph,
    nodes: graph.nodes.filter((node) => !dropped.has(node)),
    initializers: [...graph.initializers, ...copies.map((c) => c.tensor)],
  };
}
