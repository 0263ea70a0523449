/**
 * Helpers for op rules that emit their own forward form (rule.emit): output names, copying the node
 * unchanged, binding chosen output names, and reading back what the forward saved for the backward.
 */
import type { GraphBuilder } from '../../graph/builder.js';
import type { NodeIR } from '../../onnx/ir.js';
import { ModelError } from '../../errors.js';

/** Emitted names for the outputs of a node: fresh names where the source names an output, else ''. */
export function outputNames(b: GraphBuilder, node: NodeIR): string[] {
  return node.outputs.map((output) => (output === '' ? '' : b.fresh(output)));
}

/** Copies the op unchanged (inference graphs): ONNX Runtime's own kernel. */
export function copyNode(b: GraphBuilder, node: NodeIR, inputs: readonly string[]): string[] {
  const outputs = outputNames(b, node);
  b.appendNode(node.opType, inputs, outputs, node.attributes, node.domain);
  return outputs;
}

/** Binds `value` to a pre-chosen output name (the op's emitted outputs), or drops it when unused. */
export function bindOutput(b: GraphBuilder, name: string, value: string): void {
  if (name !== '') b.appendNode('Identity', [value], [name], {});
}

/** A forward value the backward saved under `key` (an internal error when the emit did not save it). */
export function savedValue(opType: string, saved: Readonly<Record<string, string>>, key: string): string {
  const value = saved[key];
  if (value === undefined) throw new ModelError('INTERNAL', 'GRAPH_INVALID', `${opType} backward: forward value '${key}' was not saved`);
  return value;
}
