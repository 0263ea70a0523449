/**
 * Translation of the coordinator's own records (ledger summaries, Federation round events, the session
 * registry) into Admin messages (proto/admin-messages.ts): hex hashes become raw 32-byte digests, round
 * ids become { counter, nonce }, dates become Unix milliseconds, stored decimal metrics become numbers.
 */
import { X509Certificate } from 'node:crypto';
import type { RoundEvent } from '../federation/federation.js';
import type { ConnectedSite } from '../sessions/session-registry.js';
import type { CommittedRound, ModelEvaluationMessage, Participant, RoundEventMessage, RoundEventType, RoundMetricsMessage } from '../../proto/admin-messages.js';
import type { ModelEvaluation } from '../federation/model-evaluations.js';
import type { RoundId__Output } from '../../proto/messages.js';
import { roundIdToWire } from '../../proto/round-id.js';
import { evaluationFigures } from '../../crypto/secagg/metric-figures.js';
import type { RoundSummary } from './round-catalog.js';

export function hashBytes(hex: string | undefined): Buffer {
  return hex === undefined ? Buffer.alloc(0) : Buffer.from(hex, 'hex');
}

/** A round id given as 48 hex characters (Federation's RoundEvent) on the wire. */
export function roundIdFromHex(hex: string): RoundId__Output {
  return roundIdToWire(new Uint8Array(Buffer.from(hex, 'hex')));
}

/** Metrics from numbers or from the decimal strings the ledger stores. */
export function metricsMessage(metrics: Readonly<Record<string, string | number>> | undefined): RoundMetricsMessage | null {
  if (metrics === undefined) return null;
  const value = (key: string): number => {
    const number = Number(metrics[key] ?? 0);
    return Number.isFinite(number) ? number : 0;
  };
  const examples = value('evalExamples');
  return {
    participants: value('participants'),
    survivors: value('survivors'),
    evalLossSum: value('evalLossSum'),
    evalCorrect: value('evalCorrect'),
    evalExamples: examples,
    evalLoss: examples > 0 ? value('evalLossSum') / examples : 0,
    evalAccuracy: examples > 0 ? value('evalCorrect') / examples : 0,
    weightSum: value('weightSum'),
    ...extraMetricFields(metrics, value),
  };
}

/**
 * The fields of the task's extra metric slots and the figures of its kind (metric-figures.ts), set only
 * for a multi-label or regression task; a figure without a value (nothing evaluated, SST <= 0) is left out.
 */
function extraMetricFields(metrics: Readonly<Record<string, string | number>>, value: (key: string) => number): Partial<RoundMetricsMessage> {
  const figures = evaluationFigures(metrics);
  const figure = (key: string, number: number | null): Partial<RoundMetricsMessage> => (number !== null && Number.isFinite(number) ? { [key]: number } : {});
  switch (figures.kind) {
    case 'classification':
      return {};
    case 'multi_label':
      return {
        evalKind: figures.kind,
        evalOutputs: value('evalOutputs'),
        evalTruePositives: value('evalTruePositives'),
        evalFalsePositives: value('evalFalsePositives'),
        evalFalseNegatives: value('evalFalseNegatives'),
        ...figure('evalPrecision', figures.precision),
        ...figure('evalRecall', figures.recall),
        ...figure('evalF1', figures.f1),
      };
    case 'regression':
      return {
        evalKind: figures.kind,
        evalOutputs: value('evalOutputs'),
        evalSquaredErrorSum: value('evalSquaredErrorSum'),
        evalAbsoluteErrorSum: value('evalAbsoluteErrorSum'),
        evalTargetSum: value('evalTargetSum'),
        evalTargetSquareSum: value('evalTargetSquareSum'),
        ...figure('evalMse', figures.mse),
        ...figure('evalMae', figures.mae),
        ...figure('evalRmse', figures.rmse),
        ...figure('evalR2', figures.r2),
      };
  }
}

export function committedRoundMessage(summary: RoundSummary, onnxSha256: string | undefined): CommittedRound {
  return {
    sequence: summary.sequence,
    roundId: roundIdToWire(summary.roundId),
    participants: [...summary.participants],
    survivors: [...summary.survivors],
    signers: [...summary.signers],
    previousModelHash: hashBytes(summary.previousModelHash),
    modelHash: hashBytes(summary.modelHash),
    onnxSha256: hashBytes(onnxSha256),
    aggregateHash: hashBytes(summary.aggregateHash),
    optimizerStateHash: hashBytes(summary.optimizerStateHash),
    recordHash: hashBytes(summary.recordHash),
    committedAtUnixMs: summary.committedAt.getTime(),
    metrics: metricsMessage(summary.metrics),
  };
}

const EVENT_TYPES: Readonly<Record<RoundEvent['type'], RoundEventType>> = {
  round_started: 'ROUND_EVENT_STARTED',
  round_committed: 'ROUND_EVENT_COMMITTED',
  round_evaluated: 'ROUND_EVENT_EVALUATED',
  round_aborted: 'ROUND_EVENT_ABORTED',
};

export function roundEventMessage(event: RoundEvent): RoundEventMessage {
  const at = Date.parse(event.at);
  return {
    type: EVENT_TYPES[event.type],
    roundId: roundIdFromHex(event.roundId),
    participants: [...event.participants],
    survivors: [...(event.survivors ?? [])],
    sequence: event.sequence ?? 0,
    modelHash: hashBytes(event.modelHash),
    abortReason: event.reason ?? '',
    metrics: metricsMessage(event.metrics as Readonly<Record<string, number>> | undefined),
    stageSeconds: { ...event.stageSeconds },
    seconds: event.seconds ?? 0,
    atUnixMs: Number.isNaN(at) ? 0 : at,
    purpose: event.purpose ?? '',
    distributedDp:
      event.distributedDp === undefined
        ? null
        : {
            bitsPerCoordinate: event.distributedDp.bitsPerCoordinate,
            wrapProbabilityBound: event.distributedDp.wrapProbabilityBound,
            noiseStd: event.distributedDp.noiseStd,
            paddedDimension: event.distributedDp.paddedDimension,
          },
  };
}

/** An evaluation-only round's record (federation/model-evaluations.ts) as GetStatus reports it. */
export function modelEvaluationMessage(evaluation: ModelEvaluation): ModelEvaluationMessage {
  const at = Date.parse(evaluation.evaluatedAt);
  return {
    sequence: evaluation.sequence,
    modelHash: hashBytes(evaluation.modelHash),
    roundId: roundIdFromHex(evaluation.roundId),
    participants: [...evaluation.participants],
    survivors: [...evaluation.survivors],
    metrics: metricsMessage(evaluation.metrics as unknown as Readonly<Record<string, number>>),
    evaluatedAtUnixMs: Number.isNaN(at) ? 0 : at,
  };
}

export function participantMessage(site: ConnectedSite): Participant {
  return {
    siteId: site.siteId,
    certificateSerial: site.serial,
    connectedAtUnixMs: site.connectedAt.getTime(),
    device: site.hello.capabilities?.device ?? '',
    fedgateVersion: site.hello.fedgateVersion,
    certificateNotAfterUnixMs: certificateNotAfter(site.certificate),
  };
}

function certificateNotAfter(der: Buffer): number {
  if (der.length === 0) return 0;
  try {
    return Date.parse(new X509Certificate(der).validTo);
  } catch {
    return 0;
  }
}
