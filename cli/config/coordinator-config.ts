/**
 * coordinator.yaml: schema (snake_case keys, unknown keys rejected so a typo never silently falls back to a
 * default) and its compilation into the coordinator's own options (coordinator/service/coordinator-options.ts),
 * paths resolved. The defaults are the coordinator's documented ones; this is the one place where YAML
 * keys become option names.
 */
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import {
  DEFAULT_DEADLINES,
  DEFAULT_LISTEN,
  DEFAULT_PARTICIPANTS,
  DEFAULT_SECAGG,
  type CompiledCoordinatorOptions,
} from '../../coordinator/index.js';
import { MAX_DEADLINE_MS } from '../../crypto/secagg/config.js';
import { duration } from './units.js';
import { readConfigFile, validateConfig } from './load.js';
import { compileMetricsConfig, DEFAULT_COORDINATOR_METRICS_LISTEN, metricsSchema, type MetricsConfig } from './metrics-config.js';

const hostPort = z.string().regex(/^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'expected host:port such as "0.0.0.0:7443" (port 0 picks a free port)');

const tlsSchema = z.strictObject({
  ca: z.string().min(1, 'path to the federation CA certificate (ca.pem)'),
  cert: z.string().min(1, "path to the coordinator's certificate"),
  key: z.string().min(1, "path to the coordinator's private key"),
  crl: z.string().min(1).optional(),
  /** Where `fedgate certs` keeps the CA; lets the Admin API revoke certificates. */
  ca_dir: z.string().min(1).optional(),
});

/** A stage deadline: whole milliseconds, at most 24 h (what a RoundConfig can carry). */
const deadline = duration.refine((ms) => Number.isInteger(ms) && ms <= MAX_DEADLINE_MS, {
  message: `expected a whole number of milliseconds up to 24h (${MAX_DEADLINE_MS} ms): a stage that needs longer should be split over rounds`,
});

const deadlinesSchema = z.strictObject({
  advertise_keys: deadline.default(DEFAULT_DEADLINES.advertiseKeysMs),
  share_keys: deadline.default(DEFAULT_DEADLINES.shareKeysMs),
  masked_input: deadline.default(DEFAULT_DEADLINES.maskedInputMs),
  consistency_check: deadline.default(DEFAULT_DEADLINES.consistencyCheckMs),
  unmask: deadline.default(DEFAULT_DEADLINES.unmaskMs),
  commit: deadline.default(DEFAULT_DEADLINES.commitMs),
});

export const coordinatorConfigSchema = z.strictObject({
  federation_id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'expected 1-63 letters, digits, ".", "_" or "-"'),
  listen: hostPort.default(DEFAULT_LISTEN),
  tls: tlsSchema,
  state_dir: z.string().min(1).default('state'),
  task: z.string().min(1, 'path to the task document (YAML or JSON)'),
  /** Forward ONNX model for a task whose model kind is "onnx". */
  model: z.string().min(1).optional(),
  /** The model a warm-start task starts from (its initialModel.warmStart): a fedgate ONNX export or a models/<hash>.bin. */
  initial_model: z.string().min(1).optional(),
  rounds: z.number().int().positive().max(1_000_000),
  participants: z.strictObject({
    min: z.number().int().min(2, 'secure aggregation needs at least 2 participants').default(DEFAULT_PARTICIPANTS.minimum),
    sample_fraction: z.number().gt(0).max(1).default(DEFAULT_PARTICIPANTS.sampleFraction),
    allow: z.array(z.string().min(1)).optional(),
    /** How long to wait for `min` participants before a round starts. */
    wait_timeout: duration.default(DEFAULT_PARTICIPANTS.waitTimeoutMs),
    /** A site that refuses or fails this many rounds in a row is left out of selection for a while. */
    site_backoff: z.strictObject({
      after_failures: z.number().int().min(1).default(DEFAULT_PARTICIPANTS.siteBackoff.afterFailures),
      initial: duration.default(DEFAULT_PARTICIPANTS.siteBackoff.initialMs),
      max: duration.default(DEFAULT_PARTICIPANTS.siteBackoff.maxMs),
    }).prefault({}),
  }).prefault({}),
  secure_aggregation: z.boolean().default(true),
  secagg: z.strictObject({
    /** Neighbours per site (even); omitted = complete graph (classic SecAgg). */
    degree: z.number().int().positive().optional(),
    /** Shamir threshold t; omitted = ceil(2(k+1)/3). */
    threshold: z.number().int().positive().optional(),
    /** Bound c on each coordinate of a site's update (delta); larger values are clipped. */
    clip: z.number().positive().default(DEFAULT_SECAGG.clipBound),
    /** W: examples at which a site's weight saturates at 1. */
    max_weight: z.number().int().positive().default(DEFAULT_SECAGG.maxWeight),
    /** E_max: most evaluation examples a site reports per round. */
    max_eval_examples: z.number().int().positive().default(DEFAULT_SECAGG.maxEvalExamples),
    /** L_max: largest per-example evaluation loss counted. */
    max_eval_loss: z.number().positive().default(DEFAULT_SECAGG.maxLossPerExample),
    /** Y_max: largest |target| per element the regression metric slots hold (regression tasks only). */
    max_eval_target: z.number().positive().default(DEFAULT_SECAGG.maxEvalTarget ?? 1000),
    /** R_max: largest |prediction - target| per element the regression metric slots hold. */
    max_eval_error: z.number().positive().default(DEFAULT_SECAGG.maxEvalError ?? 1000),
  }).prefault({}),
  deadlines: deadlinesSchema.prefault({}),
  /** One evaluation-only round on the final model once `rounds` have committed (its federated accuracy). */
  final_evaluation: z.boolean().default(true),
  /** Moved into the task document (serverOptimizer): accepted here only to say so. */
  server_optimizer: z.unknown().optional(),
  admin: z.strictObject({
    /** Operator API on the same port (default) - served only to operator certificates. */
    enabled: z.boolean().default(true),
  }).prefault({}),
  /** Prometheus metrics on their own listener (cli/config/metrics-config.ts); off when absent. */
  metrics: metricsSchema(DEFAULT_COORDINATOR_METRICS_LISTEN).optional(),
}).superRefine((config, context) => {
  if (config.server_optimizer !== undefined) {
    context.addIssue({
      code: 'custom',
      path: ['server_optimizer'],
      message:
        'has moved into the task document as serverOptimizer ({ kind: fedavg | fedavgm, learningRate, momentum }), so the task hash pins it and every site checks it: remove it here, add it to the task, run `fedgate task hash` and re-pin the new hash in accepted_tasks',
    });
  }
  const backoff = config.participants.site_backoff;
  if (backoff.max < backoff.initial) {
    context.addIssue({ code: 'custom', path: ['participants', 'site_backoff', 'max'], message: `must be at least site_backoff.initial (${backoff.initial} ms)` });
  }
  if (config.secagg.degree !== undefined && config.secagg.degree % 2 !== 0) {
    context.addIssue({ code: 'custom', path: ['secagg', 'degree'], message: 'must be even (k/2 neighbours on each side of the ring); omit it for the complete graph' });
  }
});

export type CoordinatorConfigFile = z.output<typeof coordinatorConfigSchema>;

/** The coordinator options a coordinator.yaml sets, compiled: every default applied, state_dir resolved. */
export type CoordinatorFileOptions = Pick<
  CompiledCoordinatorOptions,
  'federationId' | 'listen' | 'stateDirectory' | 'rounds' | 'participants' | 'secureAggregation' | 'secagg' | 'deadlines' | 'finalEvaluation'
> & { readonly admin: { readonly enabled: boolean } };

export interface CoordinatorConfig {
  /** What startCoordinator runs on, as far as the file sets it; cli/ adds TLS material, task and logger. */
  readonly coordinator: CoordinatorFileOptions;
  /** Files the coordinator reads at start, resolved against the config's directory. */
  readonly tls: { ca: string; cert: string; key: string; crl?: string; caDir?: string };
  readonly taskPath: string;
  readonly modelPath?: string;
  /** Prometheus metrics listener, paths resolved; undefined = no metrics. */
  readonly metrics?: MetricsConfig;
  readonly initialModelPath?: string;
  /** The file it came from, for messages. */
  readonly source: string;
}

/** Validates a parsed coordinator.yaml and compiles it into coordinator options, paths resolved against `baseDirectory`. */
export function compileCoordinatorConfig(value: unknown, source: string, baseDirectory: string): CoordinatorConfig {
  const file = validateConfig(coordinatorConfigSchema, value, source);
  const at = (path: string): string => resolve(baseDirectory, path);
  const { tls, participants, secagg, deadlines } = file;
  return {
    coordinator: {
      federationId: file.federation_id,
      listen: file.listen,
      stateDirectory: at(file.state_dir),
      rounds: file.rounds,
      participants: {
        minimum: participants.min,
        sampleFraction: participants.sample_fraction,
        waitTimeoutMs: participants.wait_timeout,
        siteBackoff: { afterFailures: participants.site_backoff.after_failures, initialMs: participants.site_backoff.initial, maxMs: participants.site_backoff.max },
        ...(participants.allow === undefined ? {} : { allowList: participants.allow }),
      },
      secureAggregation: file.secure_aggregation,
      secagg: {
        ...(secagg.degree === undefined ? {} : { neighbourDegree: secagg.degree }),
        ...(secagg.threshold === undefined ? {} : { reconstructionThreshold: secagg.threshold }),
        clipBound: secagg.clip,
        maxWeight: secagg.max_weight,
        maxEvalExamples: secagg.max_eval_examples,
        maxLossPerExample: secagg.max_eval_loss,
        maxEvalTarget: secagg.max_eval_target,
        maxEvalError: secagg.max_eval_error,
      },
      deadlines: {
        advertiseKeysMs: deadlines.advertise_keys,
        shareKeysMs: deadlines.share_keys,
        maskedInputMs: deadlines.masked_input,
        consistencyCheckMs: deadlines.consistency_check,
        unmaskMs: deadlines.unmask,
        commitMs: deadlines.commit,
      },
      finalEvaluation: file.final_evaluation,
      admin: { enabled: file.admin.enabled },
    },
    tls: {
      ca: at(tls.ca),
      cert: at(tls.cert),
      key: at(tls.key),
      ...(tls.crl === undefined ? {} : { crl: at(tls.crl) }),
      ...(tls.ca_dir === undefined ? {} : { caDir: at(tls.ca_dir) }),
    },
    taskPath: at(file.task),
    ...(file.model === undefined ? {} : { modelPath: at(file.model) }),
    ...(file.metrics === undefined ? {} : { metrics: compileMetricsConfig(file.metrics, at) }),
    ...(file.initial_model === undefined ? {} : { initialModelPath: at(file.initial_model) }),
    source,
  };
}

export async function loadCoordinatorConfig(path: string): Promise<CoordinatorConfig> {
  return compileCoordinatorConfig(await readConfigFile(path), path, dirname(resolve(path)));
}
