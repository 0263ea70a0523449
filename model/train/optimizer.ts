/**
 * Local optimisers as graph fragments, matching PyTorch's torch.optim update rules so that results can
 * be compared against the reference most users know:
 * - SGD:   g' = g + wd * w;  with momentum mu: v' = mu * v + g', w' = w - lr * v' (dampening 0,
 *          v starts at 0 so the first step is v' = g'); without momentum w' = w - lr * g'.
 * - Adam (Kingma & Ba 2015, Algorithm 1, PyTorch form): t' = t + 1, m' = b1 m + (1 - b1) g,
 *          v' = b2 v + (1 - b2) g^2, w' = w - (lr / (1 - b1^t')) * m' / (sqrt(v') / sqrt(1 - b2^t') + eps).
 * - FedProx (Li et al. 2020, eq. 2): the local objective adds (mu / 2) ||w - w_global||^2, so every
 *          trainable gradient gains mu (w - w_global) before the optimiser sees it.
 * Every optimiser state starts at zero (Adam's step counter included).
 */
import type { GraphBuilder } from '../graph/builder.js';
import type { OptimizerSpec } from '../task.js';
import type { ParameterSpec } from './forward-model.js';

export interface TensorInfo {
  readonly name: string;
  /** -1 = symbolic batch dimension. */
  readonly shape: readonly number[];
}

export const ADAM_STEP = 'adam.step';
export const momentumName = (parameter: string): string => `momentum.${parameter}`;
export const adamFirstMomentName = (parameter: string): string => `adam.m.${parameter}`;
export const adamSecondMomentName = (parameter: string): string => `adam.v.${parameter}`;

/** Optimiser state tensors for the trainable parameters, in a stable order. */
export function optimizerStateInfo(optimizer: OptimizerSpec, trainable: readonly ParameterSpec[]): TensorInfo[] {
  if (optimizer.kind === 'sgd') {
    return (optimizer.momentum ?? 0) > 0 ? trainable.map((p) => ({ name: momentumName(p.name), shape: p.shape })) : [];
  }
  return [
    ...trainable.flatMap((p) => [
      { name: adamFirstMomentName(p.name), shape: p.shape },
      { name: adamSecondMomentName(p.name), shape: p.shape },
    ]),
    { name: ADAM_STEP, shape: [] },
  ];
}

/**
 * Plain SGD (no momentum) seeds the backward pass with -lr * dL/dlogits: every gradient then arrives
 * already as its descent step -lr * g, and w' = w + step needs no separate scaling pass; for Gemm
 * weights the addition is folded into the gradient GEMM itself (C input, beta = 1).
 */
export function seedsDescent(optimizer: OptimizerSpec): boolean {
  return optimizer.kind === 'sgd' && (optimizer.momentum ?? 0) === 0;
}

export interface UpdateBindings {
  readonly learningRate: string;
  /** Present when the task's proximalMu > 0. */
  readonly proximalMu?: string;
  /** Emitted value of a parameter, of its global copy (FedProx) and of an optimiser state. */
  readonly parameter: (name: string) => string;
  readonly global: (name: string) => string;
  readonly state: (name: string) => string;
  /** Backward-pass result for a parameter (already times -lr when seedsDescent); undefined = zero. */
  readonly gradient: (name: string) => string | undefined;
  /** Output name for the updated value of a parameter or state. */
  readonly updatedName: (name: string) => string;
}

/** w' = w + step - lr * wd * w - lr * mu * (w - w_global), the plain-SGD update on a descent step. */
function emitDescentUpdates(b: GraphBuilder, weightDecay: number, trainable: readonly ParameterSpec[], io: UpdateBindings): void {
  const lrDecay = weightDecay > 0 ? b.op('Mul', [io.learningRate, b.scalar(weightDecay)], {}, 'sgd/lr_decay') : undefined;
  const lrMu = io.proximalMu === undefined ? undefined : b.op('Mul', [io.learningRate, io.proximalMu], {}, 'sgd/lr_mu');
  for (const p of trainable) {
    const w = io.parameter(p.name);
    const corrections: string[] = [];
    if (lrDecay !== undefined) corrections.push(b.op('Mul', [w, lrDecay], {}, `decay/${p.name}`));
    if (lrMu !== undefined) {
      const drift = b.op('Sub', [w, io.global(p.name)], {}, `prox/${p.name}/drift`);
      corrections.push(b.op('Mul', [drift, lrMu], {}, `prox/${p.name}`));
    }
    const step = io.gradient(p.name);
    const finalName = io.updatedName(p.name);
    let value = w;
    if (step !== undefined) {
      const target = corrections.length === 0 ? finalName : b.fresh(`descended/${p.name}`);
      if (!b.fuseGemmAddend(step, w, target)) b.appendNode('Add', [w, step], [target], {});
      value = target;
    }
    corrections.forEach((correction, i) => {
      const target = i === corrections.length - 1 ? finalName : b.fresh(`corrected/${p.name}`);
      b.appendNode('Sub', [value, correction], [target], {});
      value = target;
    });
    if (value === w) b.appendNode('Identity', [w], [finalName], {});
  }
}

/** Emits the update of every trainable parameter and optimiser state. */
export function emitOptimizerUpdate(
  b: GraphBuilder,
  optimizer: OptimizerSpec,
  trainable: readonly ParameterSpec[],
  io: UpdateBindings,
): void {
  if (seedsDescent(optimizer)) {
    emitDescentUpdates(b, optimizer.kind === 'sgd' ? (optimizer.weightDecay ?? 0) : 0, trainable, io);
    return;
  }
  const effectiveGradient = (p: ParameterSpec): string => {
    const w = io.parameter(p.name);
    // A parameter the loss does not reach has a zero gradient (it still decays / feels the proximal term).
    let grad = io.gradient(p.name) ?? b.op('Mul', [w, b.scalar(0)], {}, `grad/${p.name}/zero`);
    if (optimizer.kind === 'sgd' && (optimizer.weightDecay ?? 0) > 0) {
      grad = b.op('Add', [grad, b.op('Mul', [w, b.scalar(optimizer.weightDecay ?? 0)])], {}, `grad/${p.name}/decayed`);
    }
    if (io.proximalMu !== undefined) {
      const drift = b.op('Sub', [w, io.global(p.name)], {}, `prox/${p.name}/drift`);
      grad = b.op('Add', [grad, b.op('Mul', [drift, io.proximalMu])], {}, `grad/${p.name}/proximal`);
    }
    return grad;
  };
  const descend = (p: ParameterSpec, direction: string, stepSize: string): void => {
    b.appendNode('Sub', [io.parameter(p.name), b.op('Mul', [direction, stepSize], {}, `step/${p.name}`)], [io.updatedName(p.name)], {});
  };

  if (optimizer.kind === 'sgd') {
    const momentum = optimizer.momentum ?? 0;
    for (const p of trainable) {
      const grad = effectiveGradient(p);
      const velocityName = momentumName(p.name);
      const velocity = io.updatedName(velocityName);
      b.appendNode('Add', [b.op('Mul', [io.state(velocityName), b.scalar(momentum)]), grad], [velocity], {});
      descend(p, velocity, io.learningRate);
    }
    return;
  }

  const beta1 = optimizer.beta1 ?? 0.9;
  const beta2 = optimizer.beta2 ?? 0.999;
  const epsilon = optimizer.epsilon ?? 1e-8;
  const step = io.updatedName(ADAM_STEP);
  b.appendNode('Add', [io.state(ADAM_STEP), b.scalar(1)], [step], {});
  const correction1 = b.op('Sub', [b.scalar(1), b.op('Pow', [b.scalar(beta1), step])], {}, 'adam/correction1');
  const correction2 = b.op('Sub', [b.scalar(1), b.op('Pow', [b.scalar(beta2), step])], {}, 'adam/correction2');
  const stepSize = b.op('Div', [io.learningRate, correction1], {}, 'adam/step_size');
  const invSqrtCorrection2 = b.op('Reciprocal', [b.op('Sqrt', [correction2])], {}, 'adam/inv_sqrt_correction2');
  for (const p of trainable) {
    const grad = effectiveGradient(p);
    const firstName = adamFirstMomentName(p.name);
    const secondName = adamSecondMomentName(p.name);
    const first = io.updatedName(firstName);
    const second = io.updatedName(secondName);
    b.appendNode('Add', [b.op('Mul', [io.state(firstName), b.scalar(beta1)]), b.op('Mul', [grad, b.scalar(1 - beta1)])], [first], {});
    const squared = b.op('Mul', [grad, grad], {}, `grad/${p.name}/squared`);
    b.appendNode('Add', [b.op('Mul', [io.state(secondName), b.scalar(beta2)]), b.op('Mul', [squared, b.scalar(1 - beta2)])], [second], {});
    const denominator = b.op('Add', [b.op('Mul', [b.op('Sqrt', [second]), invSqrtCorrection2]), b.scalar(epsilon)], {}, `adam/${p.name}/denominator`);
    descend(p, b.op('Div', [first, denominator], {}, `adam/${p.name}/direction`), stepSize);
  }
}
