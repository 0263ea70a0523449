/**
 * The server optimiser of DESIGN.md step 6-7: model r+1 = model r + serverOptimizer(sum(w * delta) / sum(w)).
 * Both the coordinator and every committing site run this on the same inputs (model r, the broadcast
 * aggregate, the optimiser state of round r) and must get bit-identical results, so the arithmetic is fixed:
 * float64 for the mean, rounded to float32 on store, element by element in index order.
 *
 * FedAvg (McMahan et al. 2017): x += lr * mean. FedAvgM (Hsu et al. 2019): v = beta * v + mean; x += lr * v.
 * Callers do not combine these pieces themselves: next-model.ts does, once, for all of them.
 */
import { ModelError, type ModelErrorReason } from './errors.js';

export type ServerOptimizerSpec =
  | { readonly kind: 'fedavg'; readonly learningRate: number }
  | { readonly kind: 'fedavgm'; readonly learningRate: number; readonly momentum: number };

export interface ServerOptimizerState {
  /** FedAvgM velocity, one entry per parameter; empty for FedAvg. */
  readonly velocity: Float32Array;
}

export const SERVER_OPTIMIZER_STATE_FORMAT_VERSION = 1;

/** Inputs or a stored state the server step cannot use; always INVALID_ARGUMENT. */
export class ServerOptimizerError extends ModelError {
  constructor(reason: ModelErrorReason, message: string) {
    super('INVALID_ARGUMENT', reason, message);
    this.name = 'ServerOptimizerError';
  }
}

export function initialServerOptimizerState(spec: ServerOptimizerSpec, parameterCount: number): ServerOptimizerState {
  return { velocity: new Float32Array(spec.kind === 'fedavgm' ? parameterCount : 0) };
}

/**
 * Applies one server step. `weightedDeltaSum` is sum over survivors of w * delta (length = model length),
 * `weightSum` is sum(w) > 0. Returns fresh arrays; inputs are not modified.
 */
export function applyServerStep(
  spec: ServerOptimizerSpec,
  model: Float32Array,
  state: ServerOptimizerState,
  weightedDeltaSum: Float64Array | Float32Array,
  weightSum: number,
): { model: Float32Array; state: ServerOptimizerState } {
  if (weightedDeltaSum.length !== model.length) {
    throw new ServerOptimizerError('LENGTH_MISMATCH', `aggregate has ${weightedDeltaSum.length} entries, the model has ${model.length}`);
  }
  if (!(weightSum > 0) || !Number.isFinite(weightSum)) {
    throw new ServerOptimizerError('NO_WEIGHT', `the sum of participant weights must be a positive number, got ${weightSum}`);
  }
  const next = new Float32Array(model.length);
  const inverse = 1 / weightSum;
  if (spec.kind === 'fedavg') {
    for (let i = 0; i < model.length; i++) next[i] = model[i]! + spec.learningRate * (weightedDeltaSum[i]! * inverse);
    return { model: next, state: { velocity: new Float32Array(0) } };
  }
  if (state.velocity.length !== model.length) {
    throw new ServerOptimizerError('STATE_MISMATCH', `FedAvgM state has ${state.velocity.length} entries, the model has ${model.length}`);
  }
  const velocity = new Float32Array(model.length);
  for (let i = 0; i < model.length; i++) {
    velocity[i] = spec.momentum * state.velocity[i]! + weightedDeltaSum[i]! * inverse;
    next[i] = model[i]! + spec.learningRate * velocity[i]!;
  }
  return { model: next, state: { velocity } };
}

/** Canonical bytes of the optimiser state: version, kind, hyper-parameters, then little-endian float32s. */
export function encodeServerOptimizerState(spec: ServerOptimizerSpec, state: ServerOptimizerState): Uint8Array {
  const header = Buffer.from(JSON.stringify([SERVER_OPTIMIZER_STATE_FORMAT_VERSION, spec.kind, spec.learningRate, spec.kind === 'fedavgm' ? spec.momentum : 0, state.velocity.length]), 'utf8');
  const out = new Uint8Array(4 + header.length + state.velocity.length * 4);
  const view = new DataView(out.buffer);
  view.setUint32(0, header.length, false);
  out.set(header, 4);
  for (let i = 0; i < state.velocity.length; i++) view.setFloat32(4 + header.length + i * 4, state.velocity[i]!, true);
  return out;
}

export function decodeServerOptimizerState(bytes: Uint8Array): { spec: ServerOptimizerSpec; state: ServerOptimizerState } {
  if (bytes.length < 4) throw new ServerOptimizerError('TRUNCATED', `optimiser state is ${bytes.length} bytes, too short for its header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getUint32(0, false);
  if (4 + headerLength > bytes.length) throw new ServerOptimizerError('TRUNCATED', 'optimiser state header runs past the end of the data');
  let header: unknown;
  try {
    header = JSON.parse(Buffer.from(bytes.subarray(4, 4 + headerLength)).toString('utf8'));
  } catch {
    throw new ServerOptimizerError('MALFORMED', 'optimiser state header is not valid');
  }
  if (!Array.isArray(header) || header[0] !== SERVER_OPTIMIZER_STATE_FORMAT_VERSION) {
    throw new ServerOptimizerError('UNSUPPORTED_VERSION', `optimiser state format ${JSON.stringify(Array.isArray(header) ? header[0] : header)} is not supported (expected ${SERVER_OPTIMIZER_STATE_FORMAT_VERSION})`);
  }
  const [, kind, learningRate, momentum, count] = header as [number, unknown, unknown, unknown, unknown];
  if ((kind !== 'fedavg' && kind !== 'fedavgm') || typeof learningRate !== 'number' || typeof momentum !== 'number' || typeof count !== 'number') {
    throw new ServerOptimizerError('MALFORMED', 'optimiser state header has the wrong fields');
  }
  if (bytes.length !== 4 + headerLength + count * 4) {
    throw new ServerOptimizerError('TRUNCATED', `optimiser state should hold ${count} floats after its header, found ${(bytes.length - 4 - headerLength) / 4}`);
  }
  const velocity = new Float32Array(count);
  for (let i = 0; i < count; i++) velocity[i] = view.getFloat32(4 + headerLength + i * 4, true);
  const spec: ServerOptimizerSpec = kind === 'fedavg' ? { kind, learningRate } : { kind, learningRate, momentum };
  return { spec, state: { velocity } };
}
