/**
 * Step 6-7 on the coordinator: model r+1 = model r + serverOptimizer(sum(w * delta) / sum(w)). The
 * aggregate bytes (the unmasked int sum, little-endian uint32) and the new optimiser state are stored by
 * hash so every site can fetch them and recompute the same model before it signs.
 */
import { endianness } from 'node:os';
import { fromHex } from '../../crypto/bytes.js';
import type { CommitHashes } from '../../crypto/secagg/messages.js';
import type { AggregateResult } from '../../crypto/secagg/server-unmask.js';
import {
  applyServerStep,
  encodeServerOptimizerState,
  type ServerOptimizerSpec,
  type ServerOptimizerState,
} from '../../model/server-optimizer.js';
import type { ModelStore } from '../state/model-store.js';

if (endianness() !== 'LE') throw new Error('fedgate stores aggregates as little-endian uint32 and runs on little-endian hosts only');

export interface FinalizedRound {
  readonly model: Float32Array;
  readonly optimizerState: ServerOptimizerState;
  readonly hashes: CommitHashes;
  readonly modelHash: string;
  readonly optimizerStateHash: string;
  readonly aggregateHash: string;
}

export interface FinalizeInput {
  readonly result: AggregateResult;
  readonly model: Float32Array;
  readonly modelHash: string;
  readonly optimizer: ServerOptimizerSpec;
  readonly optimizerState: ServerOptimizerState;
  readonly encodeModel: (flat: Float32Array) => Uint8Array;
  readonly store: ModelStore;
}

export async function finalizeRound(input: FinalizeInput): Promise<FinalizedRound> {
  const { result } = input;
  const parameterCount = input.model.length;
  const weightedDeltaSum = result.values.subarray(0, parameterCount);
  const next = applyServerStep(input.optimizer, input.model, input.optimizerState, weightedDeltaSum, result.weightSum);
  const aggregateBytes = new Uint8Array(result.sum.buffer, result.sum.byteOffset, result.sum.byteLength);
  const aggregateHash = await input.store.put(aggregateBytes);
  const modelHash = await input.store.put(input.encodeModel(next.model));
  const optimizerStateHash = await input.store.put(encodeServerOptimizerState(input.optimizer, next.state));
  return {
    model: next.model,
    optimizerState: next.state,
    modelHash,
    optimizerStateHash,
    aggregateHash,
    hashes: {
      previousModelHash: fromHex(input.modelHash),
      aggregateHash: fromHex(aggregateHash),
      newModelHash: fromHex(modelHash),
      optimizerStateHash: fromHex(optimizerStateHash),
    },
  };
}
