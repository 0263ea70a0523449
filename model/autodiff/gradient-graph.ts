/**
 * A general vector-Jacobian-product graph for any forward graph in fedgate's op set: the same inputs
 * plus one seed gradient 'grad.<output>' per output; outputs are the forward outputs and
 * 'grad.<name>' for every requested input. Gradient checks and tools use it; training plans build their
 * step graphs from the same passes (tape.ts).
 */
import { ModelError } from '../errors.js';
import { GraphBuilder } from '../graph/builder.js';
import type { GraphIR } from '../onnx/ir.js';
import { DataType } from '../onnx/schema.js';
import { BATCH, type ValueFacts } from './facts.js';
import { GradContext } from './rule.js';
import { backpropagate, checkSupported, constantFacts, inferFacts, lowerForward, valuesRequiringGrad } from './tape.js';

export const GRADIENT_PREFIX = 'grad.';

/** Gradients of the training form of `forward` (BatchNorm on batch statistics, Dropout active). */
export function buildGradientGraph(forward: GraphIR, wrt: readonly string[]): GraphIR {
  const inputNames = new Set(forward.inputs.map((input) => input.name));
  for (const name of wrt) {
    if (!inputNames.has(name)) {
      throw new ModelError(
        'INVALID_ARGUMENT',
        'GRAPH_INVALID',
        `gradient requested for '${name}', which is not a graph input; inputs are ${[...inputNames].join(', ')}`,
      );
    }
  }
  checkSupported(forward.nodes, wrt);
  const seed = constantFacts(forward.initializers);
  for (const input of forward.inputs) {
    seed.set(input.name, {
      elemType: input.elemType,
      shape: (input.shape ?? []).map((dim) => (typeof dim === 'number' ? dim : BATCH)),
    } satisfies ValueFacts);
  }
  const facts = inferFacts(forward.nodes, seed);
  const requiresGrad = valuesRequiringGrad(forward.nodes, wrt);
  const floatType = forward.inputs.find((input) => input.name === wrt[0])?.elemType ?? DataType.FLOAT;

  const builder = new GraphBuilder(`${forward.name}_vjp`);
  builder.reserve(forward.outputs.map((output) => output.name));
  builder.reserve(wrt.map((name) => `${GRADIENT_PREFIX}${name}`));
  const bindings = new Map<string, string>();
  for (const input of forward.inputs) bindings.set(input.name, builder.addInput(input.name, input.elemType, input.shape));
  const ctx = new GradContext(builder, floatType);
  const pass = lowerForward(forward.nodes, forward.initializers, facts, bindings, { builder, mode: 'train', floatType });

  const seeds = new Map<string, string>();
  for (const output of forward.outputs) {
    const emitted = pass.values.get(output.name) as string;
    builder.appendNode('Identity', [emitted], [output.name], {});
    builder.addOutput(output.name, output.elemType, output.shape);
    const seedName = `${GRADIENT_PREFIX}${output.name}`;
    builder.addInput(seedName, output.elemType, output.shape);
    seeds.set(emitted, seedName);
  }
  const grads = backpropagate(pass.tape, seeds, requiresGrad, ctx);
  for (const name of wrt) {
    const info = forward.inputs.find((input) => input.name === name);
    const grad = grads.get(bindings.get(name) as string);
    const outputName = `${GRADIENT_PREFIX}${name}`;
    if (grad === undefined) {
      // The output does not depend on this input: its gradient is zero.
      const zeros = builder.op('Mul', [name, builder.scalar(0, floatType)]);
      builder.appendNode('Identity', [zeros], [outputName], {});
    } else {
      builder.appendNode('Identity', [grad], [outputName], {});
    }
    builder.addOutput(outputName, info?.elemType ?? floatType, info?.shape);
  }
  return builder.build();
}
