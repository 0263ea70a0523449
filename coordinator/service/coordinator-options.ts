/**
 * The coordinator's options pipeline (temporal's worker-options.ts: options -> defaults -> validate ->
 * compiled): `CoordinatorOptions` is what a caller writes, with documented defaults; `compileCoordinatorOptions`
 * applies them and checks every value once; the app keeps the `CompiledCoordinatorOptions` it returns and
 * hands its parts on as they are (the Federation keeps the same object as its FederationSettings).
 * cli/config/coordinator-config.ts compiles coordinator.yaml into the settings part with these defaults.
 */
import type { Logger } from 'pino';
import { DEFAULT_DEADLINES, MAX_DEADLINE_MS, type StageDeadlines } from '../../crypto/secagg/config.js';
import type { ServerOptimizerSpec } from '../../model/server-optimizer.js';
import type { PinnedTaskDocument, TaskDocument } from '../../model/task.js';
import { DEFAULT_TASK_SERVER_OPTIMIZER, pinTask } from '../../model/task-pin.js';
import { FedgateError } from '../../proto/errors.js';
import type { RevocationAuthority } from '../admin/revocation-authority.js';
import type { FederationSettings, ParticipantSettings, SecAggSettings } from '../federation/federation-settings.js';
import type { CoordinatorMetrics } from '../metrics/coordinator-metrics.js';
import type { FaultPoint, PausePoint } from '../state/fault-injection.js';

/** @see CoordinatorOptions.listen */
export const DEFAULT_LISTEN = '0.0.0.0:7443';
/** @see CoordinatorOptions.participants */
export const DEFAULT_PARTICIPANTS: Readonly<Omit<ParticipantSettings, 'allowList'>> = Object.freeze({
  minimum: 3,
  sampleFraction: 1,
  waitTimeoutMs: 300_000,
  // Three failed rounds in a row (not one: a site may drop out once for a passing reason), then 30 s, doubling to 10 min.
  siteBackoff: Object.freeze({ afterFailures: 3, initialMs: 30_000, maxMs: 600_000 }),
});
/** @see CoordinatorOptions.secagg */
export const DEFAULT_SECAGG: Readonly<Omit<SecAggSettings, 'neighbourDegree' | 'reconstructionThreshold'>> = Object.freeze({
  clipBound: 1,
  maxWeight: 10_000,
  maxEvalExamples: 100_000,
  maxLossPerExample: 50,
  maxEvalTarget: 1000,
  maxEvalError: 1000,
});
/** The server optimiser of a task document that names none (model/task-pin.ts). */
export const DEFAULT_SERVER_OPTIMIZER: ServerOptimizerSpec = DEFAULT_TASK_SERVER_OPTIMIZER;
/** @see CoordinatorOptions.heartbeatIntervalMs */
export const DEFAULT_HEARTBEAT_INTERVAL_MS = 10_000;
export { DEFAULT_DEADLINES };

export interface CoordinatorTls {
  readonly caPem: string;
  readonly certPem: string;
  readonly keyPem: string;
}

export interface CoordinatorAdminOptions {
  /** The operator API on the same port (operator certificates only). @default true */
  readonly enabled?: boolean;
  /** The CA that Admin.RevokeParticipant revokes through; without it live revocation is refused. */
  readonly revocationAuthority?: RevocationAuthority;
}

export interface CoordinatorOptions {
  readonly federationId: string;
  /** host:port; port 0 picks a free port (see RunningCoordinator.port). @default '0.0.0.0:7443' */
  readonly listen?: string;
  readonly tls: CoordinatorTls;
  /** Serials of the CA-verified CRL; merged with revocations recorded in the state directory. @default none */
  readonly revokedSerials?: Iterable<string>;
  /** @default enabled, no revocation authority */
  readonly admin?: CoordinatorAdminOptions;
  readonly stateDirectory: string;
  /**
   * What the federation trains. A draft document is pinned here (model/task-pin.ts): its initial model
   * hash and server optimiser are filled in, and a pinned initial model the task does not build is refused.
   */
  readonly task: TaskDocument;
  /** The forward ONNX model of a task whose model kind is "onnx". */
  readonly forwardModel?: Uint8Array;
  /**
   * The file a warm-start task starts from (task initialModel.warmStart): an ONNX model exported by
   * fedgate or a committed model's weight file; its model hash must be the one the task pins.
   */
  readonly initialModelFile?: Uint8Array;
  /** Rounds to commit before the federation stops. */
  readonly rounds: number;
  /**
   * @default { minimum: 3, sampleFraction: 1, waitTimeoutMs: 300 s, siteBackoff: { afterFailures: 3, initialMs: 30 s, maxMs: 10 min } },
   * every participant certificate allowed
   */
  readonly participants?: Partial<ParticipantSettings>;
  /** @default true */
  readonly secureAggregation?: boolean;
  /** @default the complete graph, t = ceil(2(k+1)/3), { clipBound: 1, maxWeight: 10000, maxEvalExamples: 100000, maxLossPerExample: 50 } */
  readonly secagg?: Partial<SecAggSettings>;
  /** Per stage. @default 30 s each, 600 s for MaskedInput (training included) */
  readonly deadlines?: Partial<StageDeadlines>;
  /**
   * @deprecated The task document pins the server optimiser (`serverOptimizer`), so every site checks the
   * one it signs for; when given, this must equal the task's.
   */
  readonly serverOptimizer?: ServerOptimizerSpec;
  /**
   * After the last round commits, one evaluation-only round measures the final model (its federated
   * accuracy, which no training round reports). @default true
   */
  readonly finalEvaluation?: boolean;
  /** How often a connected site hears from the coordinator. @default 10 s */
  readonly heartbeatIntervalMs?: number;
  /**
   * Called at named points of durable writes ("ledger_write"); crash-recovery tests kill the process
   * there. @default none
   */
  readonly faultPoint?: FaultPoint;
  /** Prometheus metrics to keep up to date (the caller serves its registry, platform/metrics-endpoint.ts). @default none */
  readonly metrics?: CoordinatorMetrics;
  /**
   * Awaited at named points of a round ("before_commit_append"); tests run code there, e.g. revoke a
   * certificate between the last commit signature and the ledger append. @default none
   */
  readonly pausePoint?: PausePoint;
  readonly logger: Logger;
}

export interface CompiledCoordinatorOptions extends FederationSettings {
  readonly listen: string;
  readonly tls: CoordinatorTls;
  readonly revokedSerials: readonly string[];
  readonly admin: { readonly enabled: boolean; readonly revocationAuthority?: RevocationAuthority };
  readonly task: PinnedTaskDocument;
  readonly forwardModel?: Uint8Array;
  readonly initialModelFile?: Uint8Array;
  readonly heartbeatIntervalMs: number;
  readonly faultPoint?: FaultPoint;
  readonly metrics?: CoordinatorMetrics;
  readonly pausePoint?: PausePoint;
  readonly logger: Logger;
}

const HOST_PORT = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$/;

/**
 * Applies the defaults and checks every value once; throws a FedgateError (INVALID_ARGUMENT) listing every
 * bad option by its name, the value and what is expected.
 */
export function compileCoordinatorOptions(options: CoordinatorOptions): CompiledCoordinatorOptions {
  const participants: ParticipantSettings = { ...DEFAULT_PARTICIPANTS, ...options.participants };
  const secagg: SecAggSettings = { ...DEFAULT_SECAGG, ...options.secagg };
  const admin = options.admin ?? {};
  const task = pinTask(options.task, options.forwardModel);
  const compiled: CompiledCoordinatorOptions = {
    federationId: options.federationId,
    listen: options.listen ?? DEFAULT_LISTEN,
    tls: options.tls,
    revokedSerials: [...(options.revokedSerials ?? [])],
    admin: { enabled: admin.enabled ?? true, ...(admin.revocationAuthority === undefined ? {} : { revocationAuthority: admin.revocationAuthority }) },
    stateDirectory: options.stateDirectory,
    task,
    ...(options.forwardModel === undefined ? {} : { forwardModel: options.forwardModel }),
    ...(options.initialModelFile === undefined ? {} : { initialModelFile: options.initialModelFile }),
    rounds: options.rounds,
    participants,
    secureAggregation: options.secureAggregation ?? true,
    secagg,
    deadlines: { ...DEFAULT_DEADLINES, ...options.deadlines },
    serverOptimizer: task.serverOptimizer,
    finalEvaluation: options.finalEvaluation ?? true,
    heartbeatIntervalMs: options.heartbeatIntervalMs ?? DEFAULT_HEARTBEAT_INTERVAL_MS,
    ...(options.faultPoint === undefined ? {} : { faultPoint: options.faultPoint }),
    ...(options.metrics === undefined ? {} : { metrics: options.metrics }),
    ...(options.pausePoint === undefined ? {} : { pausePoint: options.pausePoint }),
    logger: options.logger,
  };
  const problems = optionProblems(compiled);
  if (options.serverOptimizer !== undefined) problems.push(...serverOptimizerProblems(options.serverOptimizer, task.serverOptimizer));
  if (problems.length > 0) {
    throw new FedgateError('INVALID_ARGUMENT', `invalid coordinator options: ${problems.join('; ')}`, { reason: 'INVALID_OPTIONS' });
  }
  return Object.freeze(compiled);
}

function optionProblems(options: CompiledCoordinatorOptions): string[] {
  const problems: string[] = [];
  const check = (ok: boolean, name: string, expected: string, value: unknown): void => {
    if (!ok) problems.push(`${name} must be ${expected}, got ${JSON.stringify(value)}`);
  };
  const isPositiveInteger = (value: number): boolean => Number.isSafeInteger(value) && value > 0;
  check(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(options.federationId), 'federationId', '1-63 letters, digits, ".", "_" or "-"', options.federationId);
  check(HOST_PORT.test(options.listen), 'listen', 'host:port such as "0.0.0.0:7443"', options.listen);
  check(options.stateDirectory.length > 0, 'stateDirectory', 'a directory path', options.stateDirectory);
  check(isPositiveInteger(options.rounds), 'rounds', 'a positive integer', options.rounds);
  const { participants, secagg, serverOptimizer } = options;
  check(Number.isSafeInteger(participants.minimum) && participants.minimum >= 2, 'participants.minimum', 'an integer of at least 2 (secure aggregation needs two sites)', participants.minimum);
  check(participants.sampleFraction > 0 && participants.sampleFraction <= 1, 'participants.sampleFraction', 'in (0, 1]', participants.sampleFraction);
  check(participants.waitTimeoutMs > 0, 'participants.waitTimeoutMs', 'a positive number of milliseconds', participants.waitTimeoutMs);
  const backoff = participants.siteBackoff;
  check(isPositiveInteger(backoff.afterFailures), 'participants.siteBackoff.afterFailures', 'a positive integer (failed rounds in a row before a site is left out)', backoff.afterFailures);
  check(backoff.initialMs > 0 && Number.isFinite(backoff.initialMs), 'participants.siteBackoff.initialMs', 'a positive number of milliseconds', backoff.initialMs);
  check(backoff.maxMs >= backoff.initialMs && Number.isFinite(backoff.maxMs), 'participants.siteBackoff.maxMs', `a number of milliseconds of at least initialMs (${backoff.initialMs})`, backoff.maxMs);
  if (secagg.neighbourDegree !== undefined) {
    check(isPositiveInteger(secagg.neighbourDegree) && secagg.neighbourDegree % 2 === 0, 'secagg.neighbourDegree', 'a positive even integer (omit it for the complete graph)', secagg.neighbourDegree);
  }
  if (secagg.reconstructionThreshold !== undefined) {
    check(isPositiveInteger(secagg.reconstructionThreshold), 'secagg.reconstructionThreshold', 'a positive integer', secagg.reconstructionThreshold);
  }
  check(secagg.clipBound > 0 && Number.isFinite(secagg.clipBound), 'secagg.clipBound', 'a positive number', secagg.clipBound);
  check(isPositiveInteger(secagg.maxWeight), 'secagg.maxWeight', 'a positive integer', secagg.maxWeight);
  check(isPositiveInteger(secagg.maxEvalExamples), 'secagg.maxEvalExamples', 'a positive integer', secagg.maxEvalExamples);
  check(secagg.maxLossPerExample > 0 && Number.isFinite(secagg.maxLossPerExample), 'secagg.maxLossPerExample', 'a positive number', secagg.maxLossPerExample);
  for (const key of ['maxEvalTarget', 'maxEvalError'] as const) {
    const value = secagg[key];
    if (value !== undefined) check(value > 0 && Number.isFinite(value), `secagg.${key}`, 'a positive number', value);
  }
  for (const [stage, ms] of Object.entries(options.deadlines)) {
    check(Number.isInteger(ms) && ms >= 1 && ms <= MAX_DEADLINE_MS, `deadlines.${stage}`, `a whole number of milliseconds in [1, ${MAX_DEADLINE_MS}]`, ms);
  }
  check(serverOptimizer.learningRate > 0, 'serverOptimizer.learningRate', 'positive', serverOptimizer.learningRate);
  check(isPositiveInteger(options.heartbeatIntervalMs), 'heartbeatIntervalMs', 'a positive whole number of milliseconds', options.heartbeatIntervalMs);
  return problems;
}

/** The deprecated serverOptimizer option: checked as before, and it must be the one the task pins. */
function serverOptimizerProblems(given: ServerOptimizerSpec, pinned: ServerOptimizerSpec): string[] {
  const problems: string[] = [];
  if (!(given.learningRate > 0)) problems.push(`serverOptimizer.learningRate must be positive, got ${JSON.stringify(given.learningRate)}`);
  if (given.kind === 'fedavgm' && !(given.momentum >= 0 && given.momentum < 1)) problems.push(`serverOptimizer.momentum must be in [0, 1), got ${JSON.stringify(given.momentum)}`);
  const same = given.kind === pinned.kind && given.learningRate === pinned.learningRate && (given.kind !== 'fedavgm' || (pinned.kind === 'fedavgm' && given.momentum === pinned.momentum));
  if (!same) {
    problems.push(
      `serverOptimizer ${JSON.stringify(given)} differs from the task's ${JSON.stringify(pinned)}: the task document pins the server optimiser (serverOptimizer) so that sites can check it; set it there and drop the option`,
    );
  }
  return problems;
}
