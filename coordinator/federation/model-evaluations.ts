/**
 * The federated evaluations of committed models that evaluation-only rounds produced (RoundConfig
 * purpose 'evaluate'): the metric sums of the final model, which no training round reports because the
 * accuracy a round shows is of the model it started from. Kept in state/evaluations.json, one entry per
 * model hash, written atomically; like a round's metrics in the ledger they are the coordinator's record
 * of unmasked sums, not something the sites signed.
 *
 * The file also tells the coordinator that a model's metrics were spent: sites report a model's metrics
 * once (participant/round/round-guard.ts), so a later round on that model trains without evaluation.
 */
import { join } from 'node:path';
import { readFileIfExists, writeFileAtomic } from '../../platform/index.js';
import type { RoundMetrics } from '../../crypto/secagg/commit-record-codec.js';
import { StateError } from '../state/state-error.js';

export const EVALUATIONS_FORMAT_VERSION = 1;
const FILE_NAME = 'evaluations.json';

export interface ModelEvaluation {
  /** Hex model hash of the committed model evaluated. */
  readonly modelHash: string;
  /** The model's round number: ledger records when it was evaluated (0 = the initial model). */
  readonly sequence: number;
  /** Hex id and decimal counter of the evaluation-only round. */
  readonly roundId: string;
  readonly roundCounter: string;
  readonly participants: readonly string[];
  /** U3: the sites whose evaluation is in the sums. */
  readonly survivors: readonly string[];
  readonly metrics: RoundMetrics;
  /** ISO 8601. */
  readonly evaluatedAt: string;
}

export class ModelEvaluations {
  private constructor(
    private readonly path: string,
    private readonly entries: ModelEvaluation[],
  ) {}

  static async open(stateDirectory: string): Promise<ModelEvaluations> {
    const path = join(stateDirectory, FILE_NAME);
    const raw = await readFileIfExists(path);
    return new ModelEvaluations(path, raw === undefined ? [] : parseEvaluations(raw.toString('utf8'), path));
  }

  /** The evaluation of `modelHash`, if an evaluation-only round completed on it. */
  of(modelHash: string): ModelEvaluation | undefined {
    return this.entries.find((entry) => entry.modelHash === modelHash);
  }

  /** The newest evaluation. */
  get latest(): ModelEvaluation | undefined {
    return this.entries.at(-1);
  }

  get all(): readonly ModelEvaluation[] {
    return this.entries;
  }

  /** Adds (persisted before it resolves) the evaluation of a model; a model is evaluated once. */
  async add(evaluation: ModelEvaluation): Promise<void> {
    if (this.of(evaluation.modelHash) !== undefined) throw new StateError('CORRUPT', `model ${evaluation.modelHash} already has an evaluation in ${this.path}`);
    const next = [...this.entries, evaluation];
    await writeFileAtomic(this.path, `${JSON.stringify({ formatVersion: EVALUATIONS_FORMAT_VERSION, evaluations: next }, null, 1)}\n`);
    this.entries.push(evaluation);
  }
}

function parseEvaluations(text: string, path: string): ModelEvaluation[] {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new StateError('CORRUPT', `${path} is not valid JSON; restore it from a backup or delete it (it only records final evaluations)`, { cause: error });
  }
  const document = value as { formatVersion?: unknown; evaluations?: unknown } | null;
  if (document === null || typeof document !== 'object') throw new StateError('CORRUPT', `${path} is not a JSON object`);
  if (document.formatVersion !== EVALUATIONS_FORMAT_VERSION) {
    throw new StateError('UNSUPPORTED_VERSION', `${path}: format version ${String(document.formatVersion)}, this fedgate reads ${EVALUATIONS_FORMAT_VERSION}`);
  }
  if (!Array.isArray(document.evaluations)) throw new StateError('CORRUPT', `${path}: "evaluations" must be a list`);
  return document.evaluations.map((entry: unknown, index: number) => {
    const item = entry as Partial<ModelEvaluation> | null;
    const ok =
      item !== null &&
      typeof item === 'object' &&
      typeof item.modelHash === 'string' &&
      /^[0-9a-f]{64}$/.test(item.modelHash) &&
      Number.isSafeInteger(item.sequence) &&
      typeof item.roundId === 'string' &&
      typeof item.roundCounter === 'string' &&
      Array.isArray(item.participants) &&
      Array.isArray(item.survivors) &&
      typeof item.metrics === 'object' &&
      item.metrics !== null &&
      typeof item.evaluatedAt === 'string';
    if (!ok) throw new StateError('CORRUPT', `${path}: evaluations[${index}] is malformed; restore it from a backup or delete the file`);
    return item as ModelEvaluation;
  });
}
