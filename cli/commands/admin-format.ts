/**
 * How the operator commands print Admin API answers: a few aligned lines for people, and for --json the
 * message itself with every digest as lower-case hex and every round id as { counter, nonce (hex) }.
 * Every string the coordinator sends (names, versions, devices, reasons) is printed through
 * terminalSafe (`safe`): neither a site nor a compromised coordinator can write to the operator's terminal.
 */
import type { CommittedRound, GetStatusResponse, Participant, RevokeParticipantResponse, RoundEventMessage, RoundMetricsMessage } from '../../proto/admin-messages.js';
import { terminalSafe as safe } from '../terminal-text.js';

/** A JSON-ready copy of an Admin message: Buffers become hex strings. */
export function jsonView(value: unknown): unknown {
  if (Buffer.isBuffer(value)) return value.toString('hex');
  if (Array.isArray(value)) return value.map(jsonView);
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, jsonView(item)]));
  return value;
}

export function hex(hash: Buffer, length = 16): string {
  return hash.length === 0 ? '-' : `${hash.toString('hex').slice(0, length)}...`;
}

function when(unixMs: number): string {
  return unixMs > 0 ? new Date(unixMs).toISOString().replace(/\.\d{3}Z$/, 'Z') : '-';
}

function percent(value: number): string {
  return `${(value * 100).toFixed(1)}%`;
}

function figure(value: number | string | undefined, format: (number: number) => string): string {
  return value === undefined ? '-' : format(Number(value));
}

/**
 * The figures of the task's kind from the secure sum (admin.proto RoundMetrics): micro-F1, precision and
 * recall for multi-label, R^2, RMSE, MSE and MAE for regression; '' for a class-index task.
 */
function kindText(metrics: RoundMetricsMessage): string {
  switch (metrics.evalKind) {
    case 'multi_label':
      return `micro-F1 ${figure(metrics.evalF1, percent)}, precision ${figure(metrics.evalPrecision, percent)}, recall ${figure(metrics.evalRecall, percent)}`;
    case 'regression':
      return `R^2 ${figure(metrics.evalR2, (n) => n.toFixed(4))}, RMSE ${figure(metrics.evalRmse, (n) => n.toPrecision(5))}, MSE ${figure(metrics.evalMse, (n) => n.toPrecision(5))}, MAE ${figure(metrics.evalMae, (n) => n.toPrecision(5))}`;
    default:
      return '';
  }
}

function metricsText(metrics: RoundMetricsMessage | null): string {
  if (metrics === null || metrics.evalExamples === 0) return 'no evaluation';
  const examples = `loss ${metrics.evalLoss.toFixed(4)} on ${metrics.evalExamples} examples`;
  switch (metrics.evalKind) {
    case 'multi_label':
      return `${kindText(metrics)}, exact-match accuracy ${percent(metrics.evalAccuracy)}, ${examples}`;
    case 'regression':
      return `${kindText(metrics)}, ${examples}`;
    default:
      return `accuracy ${percent(metrics.evalAccuracy)}, ${examples}`;
  }
}

export function statusText(status: GetStatusResponse): string {
  const open = status.openRound;
  return [
    `federation    ${safe(status.federationId)} (coordinator fedgate ${safe(status.fedgateVersion)}, serving since ${when(status.startedAtUnixMs)})`,
    `task          ${status.taskHash.toString('hex')}`,
    `rounds        ${status.committedRounds} of ${status.roundsConfigured} committed`,
    `model         ${status.currentModelHash.toString('hex')}`,
    `  as ONNX     sha256 ${status.currentModelOnnxSha256.toString('hex')}`,
    `aggregation   ${status.secureAggregation ? 'secure (SecAgg+)' : 'PLAINTEXT: the coordinator sees each update'}`,
    `participants  ${status.connectedParticipants} connected, rounds start with ${status.minParticipants}`,
    `open round    ${open === null ? 'none' : `counter ${open.roundId?.counter ?? '?'} with ${open.participants.length} participants since ${when(open.startedAtUnixMs)}`}`,
    `revoked       ${status.revokedCertificates} certificate(s)`,
    `final model   ${finalEvaluationText(status)}`,
    `privacy       ${privacyText(status)}`,
  ].join('\n');
}

/** The task's record-level and participant-level DP and the epsilon its committed rounds spent, or that it has none. */
function privacyText(status: GetStatusResponse): string {
  const privacy = status.recordLevelPrivacy;
  // Absent from an older coordinator's answer.
  const participant = status.participantLevelPrivacy ?? null;
  const lines: string[] = [];
  if (privacy !== null && privacy !== undefined) {
    lines.push(
      `record-level DP: epsilon ${privacy.epsilonSpent.toFixed(3)} spent in ${privacy.roundsCounted} committed round(s) (${privacy.epsilonPerRound.toFixed(3)} per round) at delta ${privacy.delta}`,
      `              clip norm ${privacy.clipNorm}, noise multiplier ${privacy.noiseMultiplier}, sampling rate ${privacy.samplingRate}, ${privacy.stepsPerRound} steps a round; each site enforces its own budget`,
    );
  }
  if (participant !== null) {
    lines.push(
      `${lines.length === 0 ? '' : '              '}participant-level DP: epsilon ${participant.epsilonSpent.toFixed(3)} spent in ${participant.roundsCounted} committed round(s) (${participant.epsilonLastRound.toFixed(3)} the last one) at delta ${participant.delta}, with at most ${participant.toleratedColluders} site(s) colluding`,
      `              ${safe(participant.mechanism)}, clip norm ${participant.clipNorm}, noise multiplier ${participant.noiseMultiplier}, ${participant.ringBits}-bit ring; each site charges it to its own budget`,
    );
  }
  if (lines.length === 0) return 'no record-level DP (the task has no privacy.recordLevel)';
  return lines.join('\n');
}

/** The evaluation-only round's result for the current model, or why there is none yet. */
function finalEvaluationText(status: GetStatusResponse): string {
  const evaluation = status.finalEvaluation;
  if (evaluation === null) return status.committedRounds < status.roundsConfigured ? 'not evaluated yet (after the last round)' : 'not evaluated';
  return `round ${evaluation.sequence} model: ${metricsText(evaluation.metrics)} (evaluation-only round, ${evaluation.survivors.length}/${evaluation.participants.length} sites, ${when(evaluation.evaluatedAtUnixMs)})`;
}

function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)));
  const line = (cells: readonly string[]): string => cells.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join('  ').trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

export function participantsText(participants: readonly Participant[]): string {
  if (participants.length === 0) return 'no participant is connected';
  return table(
    ['SITE', 'SERIAL', 'CONNECTED', 'DEVICE', 'VERSION', 'CERT EXPIRES'],
    participants.map((site) => [safe(site.siteId), safe(site.certificateSerial), when(site.connectedAtUnixMs), safe(site.device), safe(site.fedgateVersion), when(site.certificateNotAfterUnixMs)]),
  );
}

/**
 * ACCURACY is the correct count over the examples (exact match for multi-label, '-' for regression); a
 * task with extra metric slots gets a last EVALUATION column with the figures of its kind.
 */
export function roundsText(rounds: readonly CommittedRound[]): string {
  if (rounds.length === 0) return 'no round has committed yet';
  const extra = rounds.some((round) => round.metrics?.evalKind !== undefined && round.metrics.evalKind !== '');
  const evaluated = (round: CommittedRound): RoundMetricsMessage | undefined => (round.metrics !== null && round.metrics.evalExamples > 0 ? round.metrics : undefined);
  return table(
    ['ROUND', 'COUNTER', 'SURVIVORS', 'ACCURACY', 'LOSS', 'MODEL', 'ONNX SHA-256', 'COMMITTED', ...(extra ? ['EVALUATION'] : [])],
    rounds.map((round) => {
      const metrics = evaluated(round);
      return [
        String(round.sequence),
        String(round.roundId?.counter ?? '-'),
        `${round.survivors.length}/${round.participants.length}`,
        metrics !== undefined && metrics.evalKind !== 'regression' ? percent(metrics.evalAccuracy) : '-',
        metrics !== undefined ? metrics.evalLoss.toFixed(4) : '-',
        hex(round.modelHash),
        hex(round.onnxSha256),
        when(round.committedAtUnixMs),
        ...(extra ? [metrics === undefined ? '-' : kindText(metrics)] : []),
      ];
    }),
  );
}

export function eventText(event: RoundEventMessage): string {
  const round = `round (counter ${event.roundId?.counter ?? '?'})`;
  const at = when(event.atUnixMs);
  switch (event.type) {
    case 'ROUND_EVENT_STARTED':
      return `${at}  ${round}${event.purpose === 'evaluate' ? ' (evaluation only, on the final model)' : ''} started with ${event.participants.length} participants: ${event.participants.map((name) => safe(name)).join(', ')}${distributedDpText(event)}`;
    case 'ROUND_EVENT_COMMITTED':
      return `${at}  ${round} committed as round ${event.sequence}: ${event.survivors.length}/${event.participants.length} survivors, ${metricsText(event.metrics)}, model ${hex(event.modelHash)}, ${event.seconds.toFixed(2)} s`;
    case 'ROUND_EVENT_EVALUATED':
      return `${at}  ${round} evaluated the round ${event.sequence} model (evaluation only, no training): ${event.survivors.length}/${event.participants.length} sites, ${metricsText(event.metrics)}, ${event.seconds.toFixed(2)} s`;
    case 'ROUND_EVENT_ABORTED':
      return `${at}  ${round} aborted (${safe(event.abortReason)}) after ${event.seconds.toFixed(2)} s; a new round starts under a new id`;
    default:
      return `${at}  ${round}: ${safe(String(event.type))}`;
  }
}

/** A STARTED event's distributed DP, or nothing (absent from an older coordinator's events). */
function distributedDpText(event: RoundEventMessage): string {
  const dp = event.distributedDp ?? null;
  if (dp === null) return '';
  return `; distributed DP: ${dp.bitsPerCoordinate} bits per coordinate (D = ${dp.paddedDimension}), wrap probability <= ${dp.wrapProbabilityBound.toExponential(1)}, noise std ${dp.noiseStd} in the sum`;
}

export function revocationText(response: RevokeParticipantResponse): string {
  const lines = response.revoked.map(
    (entry) => `${entry.alreadyRevoked ? 'already revoked' : 'revoked'} ${safe(entry.certificateSerial)} (${safe(entry.role)} ${safe(entry.commonName)})`,
  );
  lines.push(`CRL #${response.crlNumber} signed by the federation CA; the coordinator refuses these certificates from now on`);
  lines.push(response.closedSessions.length === 0 ? 'no open session was affected' : `closed the session of ${response.closedSessions.map((name) => safe(name)).join(', ')}`);
  return lines.join('\n');
}
