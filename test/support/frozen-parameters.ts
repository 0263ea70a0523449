/**
 * A test-only way to cripple a model: freeze some parameters of a training plan so they keep their
 * initial values however long it trains. Accuracy tests use it to check that their floors mean what
 * they say (a CNN whose convolutions never learn must stay below the CNN's floor).
 *
 * The trainStep graph computes 'updated.<name>' from '<name>' and its gradient; for a frozen parameter
 * that output is rewired to an Identity of the input and the gradient's result is left unused. The
 * trainBlock graph does the same inside its Loop body, whose carried values are 'block/in/<name>' and
 * 'block/out/<name>' (model/train/block.ts); a body that no longer follows that naming is an error here
 * rather than a silently unfrozen parameter.
 */
import type { TrainingPlan } from '../../model/index.js';
import { decodeModel, encodeModel } from '../../model/onnx/codec.js';
import type { GraphIR, NodeIR } from '../../model/onnx/ir.js';

/** Rewires each `output(name)` of `graph` to Identity(`input(name)`). */
function rewire(graph: GraphIR, frozen: readonly string[], input: (name: string) => string, output: (name: string) => string): GraphIR {
  const targets = new Map(frozen.map((name) => [output(name), name] as const));
  const found = new Set<string>();
  const nodes: NodeIR[] = graph.nodes.map((node) => ({
    ...node,
    outputs: node.outputs.map((value) => {
      if (!targets.has(value)) return value;
      found.add(value);
      return `frozen_discarded/${value}`;
    }),
  }));
  for (const [value, name] of targets) {
    if (!found.has(value)) throw new Error(`freezeParameters: no node of graph ${graph.name} computes ${value}`);
    nodes.push({ name: `freeze/${value}`, opType: 'Identity', domain: '', inputs: [input(name)], outputs: [value], attributes: {} });
  }
  return { ...graph, nodes };
}

function freezeBlock(bytes: Uint8Array, frozen: readonly string[]): Uint8Array {
  const model = decodeModel(bytes);
  const nodes = model.graph.nodes.map((node) => {
    const body = node.attributes['body'];
    if (node.opType !== 'Loop' || body?.kind !== 'graph') return node;
    const graph = rewire(body.value, frozen, (name) => `block/in/${name}`, (name) => `block/out/${name}`);
    return { ...node, attributes: { ...node.attributes, body: { kind: 'graph' as const, value: graph } } };
  });
  if (!nodes.some((node) => node.opType === 'Loop')) throw new Error('freezeParameters: the trainBlock graph has no Loop');
  return encodeModel({ ...model, graph: { ...model.graph, nodes } });
}

export function freezeParameters(plan: TrainingPlan, frozen: readonly string[]): TrainingPlan {
  const known = new Set(plan.parameters.map((parameter) => parameter.name));
  for (const name of frozen) if (!known.has(name)) throw new Error(`freezeParameters: the plan has no parameter ${name}`);
  const stepModel = decodeModel(plan.trainStep);
  const trainStep = encodeModel({ ...stepModel, graph: rewire(stepModel.graph, frozen, (name) => name, (name) => `updated.${name}`) });
  const base = { parameters: plan.parameters, optimizerState: plan.optimizerState, trainStep, evalStep: plan.evalStep, initialParameters: plan.initialParameters };
  return plan.trainBlock === undefined ? base : { ...base, trainBlock: freezeBlock(plan.trainBlock, frozen) };
}
