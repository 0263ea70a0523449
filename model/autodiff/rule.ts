/**
 * The contract every op implementation fulfils: static facts (shape inference), forward emission for
 * the training or inference graph, and the vector-Jacobian product that reverse-mode autodiff needs.
 */
import type { GraphBuilder } from '../graph/builder.js';
import { attr } from '../graph/builder.js';
import type { NodeIR } from '../onnx/ir.js';
import type { DataTypeCode } from '../onnx/schema.js';
import { isBatchDim, type ValueFacts } from './facts.js';

export type Mode = 'train' | 'eval';

export interface EmitContext {
  readonly builder: GraphBuilder;
  readonly mode: Mode;
  /** Element type of the differentiable values (FLOAT in fedgate's graphs, DOUBLE in gradient checks). */
  readonly floatType: DataTypeCode;
  /**
   * Secret seed material for random ops in the training graph (Dropout). Each random node gets its own
   * seed derived from it and the node's emitted name; absent, ONNX Runtime seeds them itself.
   */
  readonly randomSeed?: Uint8Array;
}

export interface EmitResult {
  readonly outputs: readonly string[];
  /** Intermediate values the backward rule reuses (e.g. BatchNorm's normalised input). */
  readonly saved?: Readonly<Record<string, string>>;
  /** New values for state inputs the step updates outside the optimiser (BatchNorm running statistics). */
  readonly stateUpdates?: readonly { readonly inputIndex: number; readonly value: string }[];
}

/** One executed node as the backward pass sees it: source node, emitted names, facts. */
export interface OpCall {
  readonly node: NodeIR;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly inputFacts: readonly (ValueFacts | undefined)[];
  readonly outputFacts: readonly ValueFacts[];
  readonly saved: Readonly<Record<string, string>>;
}

export interface OpRule {
  /** Inputs a gradient flows into ('all' for variadic ops); the others (axes, shapes, ratios) are constants. */
  readonly differentiableInputs: readonly number[] | 'all';
  /** Facts of the outputs; throws ModelError SHAPE_MISMATCH naming the node on inconsistent inputs. */
  infer(node: NodeIR, inputs: readonly (ValueFacts | undefined)[]): ValueFacts[];
  /** Emits the forward computation for `ctx.mode`; absent = copy the node unchanged. */
  emit?(node: NodeIR, inputs: readonly string[], inputFacts: readonly (ValueFacts | undefined)[], ctx: EmitContext): EmitResult;
  /**
   * Vector-Jacobian product: given the gradients of the outputs (undefined = zero), returns the gradient
   * of each input for which `needs[i]` is true. Absent = the op is not differentiable.
   */
  backward?(call: OpCall, grads: readonly (string | undefined)[], needs: readonly boolean[], ctx: GradContext): (string | undefined)[];
}

/** Emission helpers shared by gradient rules. */
export class GradContext implements EmitContext {
  readonly mode: Mode = 'train';
  private readonly shapes = new Map<string, string>();

  /**
   * @param floatType element type of the scalars rules create; backpropagate sets it to the type of the
   *   op being differentiated, so mixed-precision graphs (a Cast between float types) stay well-typed
   */
  constructor(
    readonly builder: GraphBuilder,
    public floatType: DataTypeCode,
  ) {}

  scalar(value: number): string {
    return this.builder.scalar(value, this.floatType);
  }

  op(opType: string, inputs: readonly string[], attributes: Parameters<GraphBuilder['op']>[2] = {}, base = 'grad'): string {
    return this.builder.op(opType, inputs, attributes, base);
  }

  /** Run-time shape of an emitted value (one Shape node per value). */
  shapeOf(name: string): string {
    let shape = this.shapes.get(name);
    if (shape === undefined) {
      shape = this.builder.op('Shape', [name], {}, 'shape');
      this.shapes.set(name, shape);
    }
    return shape;
  }

  /** Reshape of `grad` to the run-time shape of `like`. */
  reshapeLike(grad: string, like: string): string {
    return this.op('Reshape', [grad, this.shapeOf(like)]);
  }

  /** Static shape as a Reshape target (the batch dimension, or a multiple of it, becomes -1, "infer"). */
  shapeConstant(shape: readonly number[]): string {
    return this.builder.int64s(shape.map((dim) => (isBatchDim(dim) ? -1 : dim)));
  }

  sumAxes(value: string, axes: readonly number[], keepDims: boolean): string {
    return this.op('ReduceSum', [value, this.builder.int64s(axes)], { keepdims: attr.int(keepDims ? 1 : 0) });
  }

  /**
   * Sums a gradient of a broadcast result back to the shape of the operand that was broadcast: the
   * leading axes the operand lacked, and the axes where it had size 1 (the adjoint of broadcasting).
   */
  reduceTo(grad: string, gradShape: readonly number[], targetShape: readonly number[]): string {
    const lead = gradShape.length - targetShape.length;
    const axes: number[] = [];
    let keptAxis = false;
    for (let i = 0; i < gradShape.length; i++) {
      if (i < lead) axes.push(i);
      else if (targetShape[i - lead] === 1 && gradShape[i] !== 1) {
        axes.push(i);
        keptAxis = true;
      }
    }
    if (axes.length === 0) return grad;
    if (!keptAxis) return this.sumAxes(grad, axes, false);
    const summed = this.sumAxes(grad, axes, true);
    return lead === 0 ? summed : this.op('Reshape', [summed, this.shapeConstant(targetShape)]);
  }

  /**
   * `grad` where the bool `mask` holds, 0 elsewhere, as grad * Cast(mask): in ONNX Runtime's CPU kernels
   * Cast + Mul measured about 30 % faster than Where(mask, grad, 0).
   */
  masked(grad: string, mask: string): string {
    return this.op('Mul', [grad, this.op('Cast', [mask], { to: attr.int(this.floatType) })]);
  }

  /** Sum of gradient contributions (Add for two, Sum for more). */
  accumulate(terms: readonly string[]): string {
    if (terms.length === 1) return terms[0] as string;
    if (terms.length === 2) return this.op('Add', terms, {}, 'grad_sum');
    return this.op('Sum', terms, {}, 'grad_sum');
  }
}
