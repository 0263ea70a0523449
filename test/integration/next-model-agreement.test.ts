/**
 * One model r+1 (DESIGN.md steps 6-7): the coordinator's finalizer, a committing site and `fedgate verify`
 * must compute bit-identical next models and optimiser states, or honest sites refuse to sign and the
 * verifier rejects honest ledgers. For random models, random aggregates built through the real
 * quantization path and random optimiser states of every server optimiser kind, the three real code
 * paths run on the same stored artefacts and must return the same bytes and hashes; the result must
 * also be the documented formula, computed here independently of the aggregate's byte encoding.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recomputeRound } from '../../coordinator/audit/verify-ledger.js';
import { finalizeRound } from '../../coordinator/federation/round-finalizer.js';
import { ModelStore } from '../../coordinator/state/model-store.js';
import { fromHex, toHex, utf8 } from '../../crypto/bytes.js';
import { sha256, sha256Hex } from '../../crypto/hash.js';
import { RandomSource, dequantizeSum } from '../../crypto/quantize.js';
import { dequantizeAggregate } from '../../crypto/secagg/aggregate-codec.js';
import { DEFAULT_DEADLINES, createRoundConfig, makeRoundId, roundScale, roundSegments, vectorLength, type RoundConfig } from '../../crypto/secagg/config.js';
import type { CommitRequestMessage } from '../../crypto/secagg/messages.js';
import type { AggregateResult } from '../../crypto/secagg/server-unmask.js';
import { quantizeUpdate, updateWeight } from '../../crypto/secagg/update-vector.js';
import { encodeServerOptimizerState, type ServerOptimizerSpec, type ServerOptimizerState } from '../../model/server-optimizer.js';
import { parseTaskDocument } from '../../model/task.js';
import { decodeWeights, encodeWeights } from '../../model/weight-codec.js';
import { parameterCount, type ParameterLayout } from '../../model/weights.js';
import type { Dataset } from '../../participant/data/dataset.js';
import { SiteTraining } from '../../participant/daemon/site-training.js';
import type { Trainer } from '../../participant/trainer/index.js';

/** Deterministic uniform doubles in [0, 1) from the project's seeded test randomness. */
class Draws {
  private readonly source: RandomSource;
  private readonly word = new Uint32Array(1);

  constructor(label: string) {
    this.source = RandomSource.seeded(sha256(utf8(label)));
  }

  uniform(): number {
    this.source.fill(this.word);
    return (this.word[0] as number) / 2 ** 32;
  }

  integer(min: number, max: number): number {
    return min + Math.floor(this.uniform() * (max - min + 1));
  }

  /** Signed values spread over many binary orders of magnitude, with the odd exact zero and -0. */
  floats(count: number, maxExponent: number): Float32Array {
    const out = new Float32Array(count);
    for (let i = 0; i < count; i++) {
      const kind = this.uniform();
      out[i] = kind < 0.02 ? 0 : kind < 0.04 ? -0 : (this.uniform() * 2 - 1) * 2 ** this.integer(-24, maxExponent);
    }
    return out;
  }
}

/** Every server optimiser kind, with a random spec and state; the Record fails to compile when a kind is added and not covered here. */
const OPTIMIZERS: Record<ServerOptimizerSpec['kind'], (draws: Draws, parameters: number) => { spec: ServerOptimizerSpec; state: ServerOptimizerState }> = {
  fedavg: (draws) => ({ spec: { kind: 'fedavg', learningRate: 0.05 + draws.uniform() * 2 }, state: { velocity: new Float32Array(0) } }),
  fedavgm: (draws, parameters) => ({
    spec: { kind: 'fedavgm', learningRate: 0.05 + draws.uniform() * 2, momentum: draws.uniform() * 0.99 },
    state: { velocity: draws.floats(parameters, 2) },
  }),
};

const TASK = parseTaskDocument({
  formatVersion: 1,
  model: { kind: 'logreg', inputShape: [2], classes: 2 },
  loss: 'cross_entropy',
  input: { shape: [2], dtype: 'float32' },
  normalization: { scale: 1, offset: 0 },
  labels: ['no', 'yes'],
  optimizer: { kind: 'sgd', learningRate: 0.1 },
  training: { epochs: 1, batchSize: 1, proximalMu: 0, seed: 1 },
});
const EMPTY: Dataset = { features: new Float32Array(0), labels: new Int32Array(0), exampleShape: [2], classes: 2, count: 0 };
/** computeCommit never trains: any use of the trainer fails the test. */
const NO_TRAINER = new Proxy({}, {
  get: (_target, property) => {
    throw new Error(`computeCommit used the trainer (${String(property)})`);
  },
}) as unknown as Trainer;

interface Scenario {
  readonly layout: ParameterLayout;
  readonly model: Float32Array;
  readonly modelHash: string;
  readonly optimizer: ServerOptimizerSpec;
  readonly optimizerState: ServerOptimizerState;
  readonly config: RoundConfig;
  readonly result: AggregateResult;
}

let directory: string;
let store: ModelStore;

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'fedgate-next-model-'));
  store = await ModelStore.open(directory);
});

afterAll(async () => {
  await rm(directory, { recursive: true, force: true });
});

/** A random round: model r and the optimiser state stored as the coordinator stores them, and an unmasked aggregate. */
async function scenario(kind: ServerOptimizerSpec['kind'], trial: number): Promise<Scenario> {
  const draws = new Draws(`next model ${kind} ${trial}`);
  const rows = draws.integer(1, 9);
  const columns = draws.integer(1, 7);
  const layout: ParameterLayout = { parameters: [{ name: 'dense.weight', shape: [rows, columns] }, { name: 'dense.bias', shape: [columns] }, { name: 'scale', shape: [] }] };
  const d = parameterCount(layout);
  const model = draws.floats(d, 4);
  const { spec, state } = OPTIMIZERS[kind](draws, d);
  const modelHash = await store.put(encodeWeights(layout, model));
  const optimizerStateHash = await store.put(encodeServerOptimizerState(spec, state));
  const participants = Array.from({ length: draws.integer(2, 6) }, (_, i) => `site-${i}`);
  const config = createRoundConfig({
    federationId: 'next-model-agreement',
    roundId: makeRoundId(BigInt(trial + 1), sha256(utf8(`round ${kind} ${trial}`)).subarray(0, 16)),
    participants,
    taskHash: sha256(utf8('task')),
    modelHash: fromHex(modelHash),
    optimizerStateHash: fromHex(optimizerStateHash),
    hyperParameters: {},
    neighbourDegree: participants.length - 1,
    layout: { parameterSegments: [{ length: d, bound: 0.05 + draws.uniform() * 4 }], maxLossPerExample: 10, maxEvalExamples: 100 },
    maxWeight: 50,
    deadlines: DEFAULT_DEADLINES,
    plaintext: false,
  });
  // Each site's vector goes through the real quantization; their sum wraps mod 2^32 as SecAgg's does.
  const sum = new Uint32Array(vectorLength(config));
  const vector = new Uint32Array(vectorLength(config));
  for (const siteId of participants) {
    const evalExamples = draws.integer(0, 100);
    quantizeUpdate(
      config,
      {
        delta: draws.floats(d, 3),
        weight: updateWeight(draws.integer(1, 80), config.maxWeight),
        evalLossSum: draws.uniform() * evalExamples * 10,
        evalCorrect: draws.integer(0, evalExamples),
        evalExamples,
      },
      vector,
      RandomSource.seeded(sha256(utf8(`${siteId} ${trial}`))),
    );
    for (let i = 0; i < sum.length; i++) sum[i] = ((sum[i] as number) + (vector[i] as number)) >>> 0;
  }
  const result: AggregateResult = { ...dequantizeAggregate(config, sum), maskedSurvivors: participants, inconsistentShares: [] };
  return { layout, model, modelHash, optimizer: spec, optimizerState: state, config, result };
}

/** DESIGN.md step 6 as model/server-optimizer.ts documents it, from the in-memory sum (no byte codec). */
function documentedNextModel(s: Scenario): { model: Float32Array; velocity: Float32Array } {
  const values = new Float64Array(s.result.sum.length);
  dequantizeSum(s.result.sum, roundSegments(s.config), roundScale(s.config), values);
  const d = s.model.length;
  const inverse = 1 / (values[d] as number);
  const model = new Float32Array(d);
  const velocity = new Float32Array(s.optimizer.kind === 'fedavgm' ? d : 0);
  for (let i = 0; i < d; i++) {
    const mean = (values[i] as number) * inverse;
    if (s.optimizer.kind === 'fedavg') {
      model[i] = (s.model[i] as number) + s.optimizer.learningRate * mean;
    } else {
      velocity[i] = s.optimizer.momentum * (s.optimizerState.velocity[i] as number) + mean;
      model[i] = (s.model[i] as number) + s.optimizer.learningRate * (velocity[i] as number);
    }
  }
  return { model, velocity };
}

const bits = (values: Float32Array): string => toHex(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));

describe.each(Object.keys(OPTIMIZERS) as ServerOptimizerSpec['kind'][])('model r+1 with %s', (kind) => {
  it.each([0, 1, 2, 3])('is bit-identical at the coordinator, the site and fedgate verify (random round %i)', async (trial) => {
    const s = await scenario(kind, trial);

    const coordinator = await finalizeRound({
      config: s.config,
      result: s.result,
      layout: s.layout,
      model: s.model,
      modelHash: s.modelHash,
      optimizer: s.optimizer,
      optimizerState: s.optimizerState,
      store,
    });
    const storedModel = await store.get(coordinator.modelHash);
    const storedState = await store.get(coordinator.optimizerStateHash);

    const site = new SiteTraining({
      task: TASK,
      plan: s.layout,
      trainer: NO_TRAINER,
      train: EMPTY,
      test: EMPTY,
      randomness: { roundSeed: () => { throw new Error('computeCommit drew a local seed'); } },
      blobs: { fetch: async (hash) => store.get(toHex(hash)) },
    });
    const request: CommitRequestMessage = { stage: 'commit_request', roundId: s.config.roundId, ...coordinator.hashes };
    const computed = await site.computeCommit(s.config, request);

    const verifier = await recomputeRound(store, s.config, { previousModelHash: s.modelHash, aggregateHash: coordinator.aggregateHash });

    // The site signs exactly what the coordinator asks for.
    expect(computed.hashes).toEqual(coordinator.hashes);
    expect(Buffer.from(computed.newModel).equals(storedModel)).toBe(true);
    // The verifier finds the hashes the ledger would record, from the same bytes.
    expect(verifier.newModelHash).toBe(coordinator.modelHash);
    expect(verifier.optimizerStateHash).toBe(coordinator.optimizerStateHash);
    expect(Buffer.from(verifier.modelBytes).equals(storedModel)).toBe(true);
    expect(Buffer.from(verifier.optimizerStateBytes).equals(storedState)).toBe(true);
    expect(sha256Hex(verifier.modelBytes)).toBe(toHex(computed.hashes.newModelHash));
    expect(sha256Hex(verifier.optimizerStateBytes)).toBe(toHex(computed.hashes.optimizerStateHash));
    // The coordinator keeps in memory what it stored, and that is the documented formula, bit for bit.
    const expected = documentedNextModel(s);
    expect(bits(coordinator.model)).toBe(bits(expected.model));
    expect(bits(decodeWeights(s.layout, storedModel))).toBe(bits(expected.model));
    expect(bits(verifier.model)).toBe(bits(expected.model));
    expect(bits(coordinator.optimizerState.velocity)).toBe(bits(expected.velocity));
    expect(bits(verifier.optimizerState.velocity)).toBe(bits(expected.velocity));
    expect(toHex(coordinator.hashes.previousModelHash)).toBe(s.modelHash);
    expect(coordinator.aggregateHash).toBe(toHex(request.aggregateHash));
  });
});
