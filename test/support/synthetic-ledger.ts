/**
 * A coordinator state directory with an honest ledger, written without running rounds: a pinned task (a
 * six-parameter logistic regression) stored in models/, its initial model and server-optimiser state,
 * and per round a real quantized aggregate, model r+1 and optimiser state computed with the shared
 * nextModel, and a commit record signed by every survivor with the test federation's keys. What
 * `fedgate verify` reads, in milliseconds instead of the seconds a trained federation takes, so the
 * verifier's own checks can be tested one forgery at a time (and mutation-tested).
 */
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fromHex, utf8 } from '../../crypto/bytes.js';
import { sha256 } from '../../crypto/hash.js';
import { RandomSource } from '../../crypto/quantize.js';
import { decodeAggregate, encodeAggregate } from '../../crypto/secagg/aggregate-codec.js';
import { commitBody, type CommitBody } from '../../crypto/secagg/commit-record-codec.js';
import { roundConfigHash } from '../../crypto/secagg/config-codec.js';
import { createRoundConfig, makeRoundId, vectorLength, type RoundConfig } from '../../crypto/secagg/config.js';
import type { CommitRecord } from '../../crypto/secagg/server-commit.js';
import { commitmentOf, keyListHash } from '../../crypto/secagg/transcript.js';
import { quantizeUpdate, updateWeight } from '../../crypto/secagg/update-vector.js';
import { ModelStore } from '../../coordinator/state/model-store.js';
import { nextModel } from '../../model/next-model.js';
import { prepareTask } from '../../model/plan.js';
import { encodeServerOptimizerState, initialServerOptimizerState, type ServerOptimizerSpec } from '../../model/server-optimizer.js';
import { pinTask } from '../../model/task-pin.js';
import { canonicalTaskBytes, parseTaskDocument, type PinnedTaskDocument } from '../../model/task.js';
import { parameterInfo } from '../../model/train/graphs.js';
import { encodeWeights } from '../../model/weight-codec.js';
import type { ParameterLayout } from '../../model/weights.js';
import { COMMITTED_AT, signRecord } from './commit-records.js';
import { writeLedger } from './ledger-forge.js';
import type { TestFederation } from './secagg-sim.js';

export const SYNTHETIC_FEDERATION_ID = 'fedgate-synthetic';

/** The task of a synthetic ledger, pinned, with `serverOptimizer` as its server optimiser; `seed` draws its initial model. */
export function syntheticTask(serverOptimizer: ServerOptimizerSpec, seed = 1): PinnedTaskDocument {
  return pinTask(
    parseTaskDocument({
      formatVersion: 1,
      model: { kind: 'logreg', inputShape: [2], classes: 2 },
      loss: 'cross_entropy',
      input: { shape: [2], dtype: 'float32' },
      normalization: { scale: 1, offset: 0 },
      labels: ['no', 'yes'],
      optimizer: { kind: 'sgd', learningRate: 0.1 },
      training: { epochs: 1, batchSize: 1, proximalMu: 0, seed },
      serverOptimizer,
    }),
  );
}

export interface SyntheticLedgerOptions {
  readonly federation: TestFederation;
  readonly rounds: number;
  /** @default FedAvgM (learning rate 1, momentum 0.5): its optimiser state changes every round */
  readonly serverOptimizer?: ServerOptimizerSpec;
  /** U = U3 of every round. @default every site of the federation */
  readonly participants?: readonly string[];
}

export interface SyntheticLedger {
  readonly stateDirectory: string;
  readonly task: PinnedTaskDocument;
  /** Hex SHA-256 of the canonical task document (the RoundConfigs' task hash). */
  readonly taskHash: string;
  /** The commit bodies, in ledger order (what writeLedger wrote). */
  readonly bodies: readonly CommitBody[];
  /** The signed commit records behind `bodies`. */
  readonly records: readonly CommitRecord[];
}

/** Writes an honest ledger of `options.rounds` rounds, with every artefact the verifier reads, to `stateDirectory`. */
export async function writeSyntheticLedger(stateDirectory: string, options: SyntheticLedgerOptions): Promise<SyntheticLedger> {
  const spec = options.serverOptimizer ?? { kind: 'fedavgm', learningRate: 1, momentum: 0.5 };
  const task = syntheticTask(spec);
  const store = await ModelStore.open(stateDirectory);
  await mkdir(join(stateDirectory, 'ledger'), { recursive: true });
  const taskHash = await store.put(canonicalTaskBytes(task));
  const { prepared } = prepareTask(task);
  const layout: ParameterLayout = { parameters: parameterInfo(prepared) };
  let model = prepared.forward.initialParameters;
  let state = initialServerOptimizerState(spec, model.length);
  let modelHash = await store.put(encodeWeights(layout, model));
  let stateHash = await store.put(encodeServerOptimizerState(spec, state));
  if (modelHash !== task.initialModel.sha256) throw new Error('the synthetic task does not build the initial model it pins');
  const participants = options.participants ?? options.federation.sites.map((site) => site.siteId);
  const records: CommitRecord[] = [];
  const bodies: CommitBody[] = [];
  for (let round = 1; round <= options.rounds; round++) {
    const config = createRoundConfig({
      federationId: SYNTHETIC_FEDERATION_ID,
      roundId: makeRoundId(round, new Uint8Array(randomBytes(16))),
      participants,
      taskHash: fromHex(taskHash),
      modelHash: fromHex(modelHash),
      optimizerStateHash: fromHex(stateHash),
      neighbourDegree: participants.length - 1,
      layout: { parameterSegments: [{ length: model.length, bound: 1 }], maxLossPerExample: 10, maxEvalExamples: 100 },
      maxWeight: 50,
    });
    const aggregateBytes = encodeAggregate(aggregateOf(config, model.length, round));
    const aggregateHash = await store.put(aggregateBytes);
    const next = nextModel({ layout, model, optimizer: spec, optimizerState: state, aggregate: decodeAggregate(config, aggregateBytes) });
    const newModelHash = await store.put(next.modelBytes);
    const newStateHash = await store.put(next.optimizerStateBytes);
    const keyList = [...config.participants].map((siteId) => ({
      siteId,
      advertDigest: commitmentOf(utf8(`advert ${siteId} ${round}`)),
      nonceCommitment: commitmentOf(utf8(`nonce ${siteId} ${round}`)),
    }));
    const unsigned: CommitRecord = {
      config,
      roundConfigHash: roundConfigHash(config),
      keyList,
      keyListHash: keyListHash(keyList),
      maskedSurvivors: [...config.participants],
      hashes: { previousModelHash: fromHex(modelHash), aggregateHash: fromHex(aggregateHash), newModelHash: fromHex(newModelHash), optimizerStateHash: fromHex(newStateHash) },
      signatures: [],
    };
    const record = signRecord(unsigned, unsigned.maskedSurvivors.map((siteId) => options.federation.site(siteId)));
    records.push(record);
    bodies.push(commitBody(record, COMMITTED_AT, { participants: participants.length, survivors: participants.length, evalLossSum: 0, evalCorrect: 0, evalExamples: 0, weightSum: 1 }));
    model = next.model;
    state = next.optimizerState;
    modelHash = newModelHash;
    stateHash = newStateHash;
  }
  await writeLedger(stateDirectory, bodies);
  return { stateDirectory, task, taskHash, bodies, records };
}

/** The unmasked sum of one quantized update per participant (SecAgg's wrapping uint32 sum), seeded by the round. */
function aggregateOf(config: RoundConfig, parameters: number, round: number): Uint32Array {
  const sum = new Uint32Array(vectorLength(config));
  const vector = new Uint32Array(sum.length);
  for (const siteId of config.participants) {
    const seed = sha256(utf8(`synthetic update ${siteId} ${round}`));
    const delta = new Float32Array(parameters).map((_, index) => (((seed[index % seed.length] as number) / 255) * 2 - 1) * 0.1);
    quantizeUpdate(config, { delta, weight: updateWeight(20, config.maxWeight), evalLossSum: 1, evalCorrect: 5, evalExamples: 10 }, vector, RandomSource.seeded(seed));
    for (let i = 0; i < sum.length; i++) sum[i] = ((sum[i] as number) + (vector[i] as number)) >>> 0;
  }
  return sum;
}
