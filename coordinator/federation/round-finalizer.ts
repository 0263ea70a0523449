/**
 * Step 6-7 on the coordinator: model r+1 = model r + serverOptimizer(sum(w * delta) / sum(w)). The
 * aggregate bytes (the unmasked sum, little-endian uint32) and the new model and optimiser state are
 * stored by hash so every site can fetch them and recompute the same model before it signs. The model
 * is computed from the aggregate bytes as stored, with the same decodeAggregate and nextModel the sites
 * and `fedgate verify` use.
 */
import { fromHex } from '../../crypto/bytes.js';
import { decodeAggregate, encodeAggregate } from '../../crypto/secagg/aggregate-codec.js';
import type { RoundConfig } from '../../crypto/secagg/config.js';
import type { CommitHashes } from '../../crypto/secagg/messages.js';
import type { AggregateResult } from '../../crypto/secagg/server-unmask.js';
import { nextModel } from '../../model/next-model.js';
import type { ServerOptimizerSpec, ServerOptimizerState } from '../../model/server-optimizer.js';
import type { ParameterLayout } from '../../model/weights.js';
import type { ModelStore } from '../state/model-store.js';

export interface FinalizedRound {
  readonly model: Float32Array;
  readonly optimizerState: ServerOptimizerState;
  readonly hashes: CommitHashes;
  readonly modelHash: string;
  readonly optimizerStateHash: string;
  readonly aggregateHash: string;
}

export interface FinalizeInput {
  /** The round's RoundConfig: its bounds read the aggregate back. */
  readonly config: RoundConfig;
  readonly result: AggregateResult;
  readonly layout: ParameterLayout;
  readonly model: Float32Array;
  readonly modelHash: string;
  readonly optimizer: ServerOptimizerSpec;
  readonly optimizerState: ServerOptimizerState;
  readonly store: ModelStore;
}

export async function finalizeRound(input: FinalizeInput): Promise<FinalizedRound> {
  const aggregateBytes = encodeAggregate(input.result.sum);
  const next = nextModel({
    layout: input.layout,
    model: input.model,
    optimizer: input.optimizer,
    optimizerState: input.optimizerState,
    aggregate: decodeAggregate(input.config, aggregateBytes),
  });
  const aggregateHash = await input.store.put(aggregateBytes);
  const modelHash = await input.store.put(next.modelBytes);
  const optimizerStateHash = await input.store.put(next.optimizerStateBytes);
  return {
    model: next.model,
    optimizerState: next.optimizerState,
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
