/**
 * Reverse-mode autodiff over an ONNX graph, in three passes:
 * 1. `checkSupported`: every op has a rule, and no op without a gradient rule sits on a path from a
 *    value being differentiated (all offenders are reported in one error);
 * 2. `inferFacts`: static shapes and known integer values, node by node;
 * 3. `lowerForward` emits the forward nodes (training or inference form) and records a tape, and
 *    `backpropagate` walks the tape backwards emitting each op's vector-Jacobian product, summing the
 *    contributions a value receives from its several consumers.
 */
import { ModelError } from '../errors.js';
import { isFloatType, type NodeIR, type TensorIR } from '../onnx/ir.js';
import { DIFFERENTIABLE_OPS, isDifferentiableInput, ruleFor } from './registry.js';
import { describeNode, type ValueFacts } from './facts.js';
import { tensorFacts } from './ops/plumbing.js';
import type { EmitContext, GradContext, OpCall } from './rule.js';

/** Names of values that depend, through differentiable inputs, on one of `sources`. */
export function valuesRequiringGrad(nodes: readonly NodeIR[], sources: Iterable<string>): Set<string> {
  const requires = new Set(sources);
  for (const node of nodes) {
    const rule = ruleFor(node);
    const reached = node.inputs.some(
      (input, i) => input !== '' && requires.has(input) && (rule === undefined || isDifferentiableInput(rule, i)),
    );
    if (reached) for (const output of node.outputs) if (output !== '') requires.add(output);
  }
  return requires;
}

/**
 * Throws one ModelError (UNIMPLEMENTED, UNSUPPORTED_OPS) naming every node whose op fedgate cannot run
 * or cannot differentiate where a gradient must flow through it.
 */
export function checkSupported(nodes: readonly NodeIR[], gradientSources: Iterable<string>): void {
  const requires = valuesRequiringGrad(nodes, gradientSources);
  const unknown: string[] = [];
  const nonDifferentiable: string[] = [];
  for (const node of nodes) {
    const rule = ruleFor(node);
    const label = `${node.domain === '' ? '' : `${node.domain}.`}${node.opType} (node '${node.name}')`;
    if (rule === undefined) {
      unknown.push(label);
    } else if (
      rule.backward === undefined &&
      node.inputs.some((input, i) => input !== '' && requires.has(input) && isDifferentiableInput(rule, i))
    ) {
      nonDifferentiable.push(label);
    }
  }
  if (unknown.length === 0 && nonDifferentiable.length === 0) return;
  const parts: string[] = [];
  if (unknown.length > 0) parts.push(`unsupported ONNX ops: ${unknown.join(', ')}`);
  if (nonDifferentiable.length > 0) {
    parts.push(`ops without a gradient on a path from a trainable parameter: ${nonDifferentiable.join(', ')}`);
  }
  throw new ModelError(
    'UNIMPLEMENTED',
    'UNSUPPORTED_OPS',
    `${parts.join('; ')}. fedgate differentiates ${DIFFERENTIABLE_OPS.join(', ')} (default ONNX domain, opset 13..17)`,
  );
}

/** Runs every op's shape inference in graph order, starting from the facts of inputs and constants. */
export function inferFacts(nodes: readonly NodeIR[], seed: ReadonlyMap<string, ValueFacts>): Map<string, ValueFacts> {
  const facts = new Map(seed);
  for (const node of nodes) {
    const rule = ruleFor(node);
    if (rule === undefined) throw new ModelError('UNIMPLEMENTED', 'UNSUPPORTED_OPS', `${describeNode(node)} is not supported`);
    for (const input of node.inputs) {
      if (input !== '' && !facts.has(input)) {
        throw new ModelError(
          'INVALID_ARGUMENT',
          'GRAPH_INVALID',
          `${describeNode(node)} reads '${input}' before any node, input or initializer defines it (ONNX graphs must be topologically sorted)`,
        );
      }
    }
    const outputs = rule.infer(node, node.inputs.map((input) => (input === '' ? undefined : facts.get(input))));
    node.outputs.forEach((output, i) => {
      const outputFacts = outputs[i];
      if (output !== '' && outputFacts !== undefined) facts.set(output, outputFacts);
    });
  }
  return facts;
}

export function constantFacts(constants: readonly TensorIR[]): Map<string, ValueFacts> {
  return new Map(constants.map((tensor) => [tensor.name, tensorFacts(tensor)]));
}

export interface ForwardPass {
  /** Source value name -> emitted value name. */
  readonly values: ReadonlyMap<string, string>;
  readonly tape: readonly OpCall[];
  /** Source name of a state input (BatchNorm running statistic) -> emitted updated value. */
  readonly stateUpdates: ReadonlyMap<string, string>;
}

/**
 * Emits `nodes` into `ctx.builder`. `bindings` maps source names of graph inputs and parameters to the
 * emitted names that hold them; constants are added as initializers of the target graph.
 */
export function lowerForward(
  nodes: readonly NodeIR[],
  constants: readonly TensorIR[],
  facts: ReadonlyMap<string, ValueFacts>,
  bindings: ReadonlyMap<string, string>,
  ctx: EmitContext,
): ForwardPass {
  const values = new Map(bindings);
  for (const tensor of constants) values.set(tensor.name, ctx.builder.addFreshInitializer(tensor));
  const tape: OpCall[] = [];
  const stateUpdates = new Map<string, string>();
  for (const node of nodes) {
    const rule = ruleFor(node);
    if (rule === undefined) throw new ModelError('UNIMPLEMENTED', 'UNSUPPORTED_OPS', `${describeNode(node)} is not supported`);
    const inputs = node.inputs.map((input) => {
      if (input === '') return '';
      const emitted = values.get(input);
      if (emitted === undefined) {
        throw new ModelError('INVALID_ARGUMENT', 'GRAPH_INVALID', `${describeNode(node)} reads undefined value '${input}'`);
      }
      return emitted;
    });
    const inputFacts = node.inputs.map((input) => (input === '' ? undefined : facts.get(input)));
    let outputs: readonly string[];
    let saved: Readonly<Record<string, string>> = {};
    if (rule.emit !== undefined) {
      const dataType = inputFacts[0]?.elemType;
      const nodeCtx = dataType !== undefined && isFloatType(dataType) ? { ...ctx, floatType: dataType } : ctx;
      const result = rule.emit(node, inputs, inputFacts, nodeCtx);
      outputs = result.outputs;
      saved = result.saved ?? {};
      for (const update of result.stateUpdates ?? []) {
        const source = node.inputs[update.inputIndex] ?? '';
        if (stateUpdates.has(source)) {
          throw new ModelError('INVALID_ARGUMENT', 'UNSUPPORTED_MODEL', `${describeNode(node)}: state '${source}' is updated by two nodes`);
        }
        stateUpdates.set(source, update.value);
      }
    } else {
      outputs = node.outputs.map((output) => (output === '' ? '' : ctx.builder.fresh(output)));
      ctx.builder.appendNode(node.opType, inputs, outputs, node.attributes, node.domain);
    }
    node.outputs.forEach((output, i) => {
      if (output !== '') values.set(output, outputs[i] as string);
    });
    tape.push({
      node,
      inputs,
      outputs,
      inputFacts,
      outputFacts: node.outputs.map((output) => facts.get(output) as ValueFacts),
      saved,
    });
  }
  return { values, tape, stateUpdates };
}

/**
 * Emits the backward pass. `seeds` maps emitted values to the emitted gradients flowing into them;
 * `requiresGrad` holds source names on a path from the values being differentiated. Returns the
 * accumulated gradient of every emitted value that received one.
 */
export function backpropagate(
  tape: readonly OpCall[],
  seeds: ReadonlyMap<string, string>,
  requiresGrad: ReadonlySet<string>,
  ctx: GradContext,
): Map<string, string> {
  const contributions = new Map<string, string[]>();
  const add = (name: string, grad: string): void => {
    const list = contributions.get(name);
    if (list === undefined) contributions.set(name, [grad]);
    else list.push(grad);
  };
  for (const [name, grad] of seeds) add(name, grad);
  const total = (name: string): string | undefined => {
    const list = contributions.get(name);
    if (list === undefined) return undefined;
    const sum = ctx.accumulate(list);
    contributions.set(name, [sum]);
    return sum;
  };
  for (let index = tape.length - 1; index >= 0; index--) {
    const call = tape[index] as OpCall;
    const rule = ruleFor(call.node);
    if (rule?.backward === undefined) continue;
    const grads = call.outputs.map((output) => (output === '' ? undefined : total(output)));
    if (grads.every((grad) => grad === undefined)) continue;
    const needs = call.node.inputs.map(
      (input, i) => input !== '' && requiresGrad.has(input) && isDifferentiableInput(rule, i),
    );
    if (!needs.some(Boolean)) continue;
    const outputType = call.outputFacts[0]?.elemType;
    if (outputType !== undefined && isFloatType(outputType)) ctx.floatType = outputType;
    const inputGrads = rule.backward(call, grads, needs, ctx);
    inputGrads.forEach((grad, i) => {
      if (grad !== undefined && needs[i]) add(call.inputs[i] as string, grad);
    });
  }
  const result = new Map<string, string>();
  for (const name of contributions.keys()) {
    const grad = total(name);
    if (grad !== undefined) result.set(name, grad);
  }
  return result;
}
