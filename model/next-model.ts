/**
 * Model r+1 (DESIGN.md steps 6-7): model r + serverOptimizer(sum(w * delta) / sum(w)), with the new
 * server-optimiser state, as canonical bytes. The coordinator's finalizer, every committing site and
 * `fedgate verify` call this one function on the same inputs and hash what it returns, so the hashes
 * they sign and check agree bit for bit; nobody combines applyServerStep and the encoders on their own.
 */
import { applyServerStep, encodeServerOptimizerState, type ServerOptimizerSpec, type ServerOptimizerState } from './server-optimizer.js';
import { encodeWeights } from './weight-codec.js';
import type { ParameterLayout } from './weights.js';

/** The dequantized aggregate as far as the model needs it (crypto/secagg/aggregate-codec.ts decodes it). */
export interface WeightedDeltaAggregate {
  /** sum over U3 of w * delta, one value per parameter. */
  readonly weightedDeltaSum: Float64Array;
  /** sum over U3 of w; must be positive. */
  readonly weightSum: number;
}

export interface NextModelInput {
  /** Model r: names and shapes, and its values in layout order. */
  readonly layout: ParameterLayout;
  readonly model: Float32Array;
  /** The server optimiser and its state after round r - 1 (the state RoundConfig names by hash). */
  readonly optimizer: ServerOptimizerSpec;
  readonly optimizerState: ServerOptimizerState;
  readonly aggregate: WeightedDeltaAggregate;
}

export interface NextModel {
  /** Model r+1 in layout order. */
  readonly model: Float32Array;
  /** Canonical bytes of model r+1 (weight-codec.ts): their SHA-256 is the new model hash. */
  readonly modelBytes: Uint8Array;
  readonly optimizerState: ServerOptimizerState;
  /** Canonical bytes of the new optimiser state: their SHA-256 is the optimiser state hash. */
  readonly optimizerStateBytes: Uint8Array;
}

/** Computes model r+1; throws ServerOptimizerError or ModelError when the inputs do not fit together. */
export function nextModel(input: NextModelInput): NextModel {
  const { layout, optimizer, aggregate } = input;
  const next = applyServerStep(optimizer, input.model, input.optimizerState, aggregate.weightedDeltaSum, aggregate.weightSum);
  return {
    model: next.model,
    modelBytes: encodeWeights(layout, next.model),
    optimizerState: next.state,
    optimizerStateBytes: encodeServerOptimizerState(optimizer, next.state),
  };
}
