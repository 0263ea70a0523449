/**
 * coordinator.yaml: schema (snake_case keys, unknown keys rejected so a typo never silently falls back to a
 * default) and the compiled, path-resolved object the coordinator runs on.
 */
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { MAX_DEADLINE_MS } from '../../crypto/secagg/config.js';
import { duration } from './units.js';
import { readConfigFile, validateConfig } from './load.js';

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
  advertise_keys: deadline.default(30_000),
  share_keys: deadline.default(30_000),
  masked_input: deadline.default(600_000),
  consistency_check: deadline.default(30_000),
  unmask: deadline.default(30_000),
  commit: deadline.default(30_000),
});

export const coordinatorConfigSchema = z.strictObject({
  federation_id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'expected 1-63 letters, digits, ".", "_" or "-"'),
  listen: hostPort.default('0.0.0.0:7443'),
  tls: tlsSchema,
  state_dir: z.string().min(1).default('state'),
  task: z.string().min(1, 'path to the task document (YAML or JSON)'),
  /** Forward ONNX model for a task whose model kind is "onnx". */
  model: z.string().min(1).optional(),
  rounds: z.number().int().positive().max(1_000_000),
  participants: z.strictObject({
    min: z.number().int().min(2, 'secure aggregation needs at least 2 participants').default(3),
    sample_fraction: z.number().gt(0).max(1).default(1),
    allow: z.array(z.string().min(1)).optional(),
    /** How long to wait for `min` participants before a round starts. */
    wait_timeout: duration.default(300_000),
  }).prefault({}),
  secure_aggregation: z.boolean().default(true),
  secagg: z.strictObject({
    /** Neighbours per site (even); omitted = complete graph (classic SecAgg). */
    degree: z.number().int().positive().optional(),
    /** Shamir threshold t; omitted = ceil(2(k+1)/3). */
    threshold: z.number().int().positive().optional(),
    /** Bound c on each coordinate of a site's update (delta); larger values are clipped. */
    clip: z.number().positive().default(1),
    /** W: examples at which a site's weight saturates at 1. */
    max_weight: z.number().int().positive().default(10_000),
    /** E_max: most evaluation examples a site reports per round. */
    max_eval_examples: z.number().int().positive().default(100_000),
    /** L_max: largest per-example evaluation loss counted. */
    max_eval_loss: z.number().positive().default(50),
  }).prefault({}),
  deadlines: deadlinesSchema.prefault({}),
  server_optimizer: z.strictObject({
    kind: z.enum(['fedavg', 'fedavgm']).default('fedavg'),
    learning_rate: z.number().positive().default(1),
    momentum: z.number().min(0).lt(1).default(0.9),
  }).prefault({}),
  admin: z.strictObject({
    /** Operator API on the same port (default) - served only to operator certificates. */
    enabled: z.boolean().default(true),
  }).prefault({}),
}).superRefine((config, context) => {
  if (config.secagg.degree !== undefined && config.secagg.degree % 2 !== 0) {
    context.addIssue({ code: 'custom', path: ['secagg', 'degree'], message: 'must be even (k/2 neighbours on each side of the ring); omit it for the complete graph' });
  }
});

export type CoordinatorConfigFile = z.output<typeof coordinatorConfigSchema>;

export interface CoordinatorConfig extends Omit<CoordinatorConfigFile, 'tls' | 'state_dir' | 'task' | 'model'> {
  readonly tls: { ca: string; cert: string; key: string; crl?: string; caDir?: string };
  readonly stateDir: string;
  readonly taskPath: string;
  readonly modelPath?: string;
  /** The file it came from, for messages. */
  readonly source: string;
}

/** Validates a parsed coordinator.yaml and resolves its paths against `baseDirectory`. */
export function compileCoordinatorConfig(value: unknown, source: string, baseDirectory: string): CoordinatorConfig {
  const file = validateConfig(coordinatorConfigSchema, value, source);
  const at = (path: string): string => resolve(baseDirectory, path);
  const { tls, state_dir, task, model, ...rest } = file;
  return {
    ...rest,
    tls: {
      ca: at(tls.ca),
      cert: at(tls.cert),
      key: at(tls.key),
      ...(tls.crl === undefined ? {} : { crl: at(tls.crl) }),
      ...(tls.ca_dir === undefined ? {} : { caDir: at(tls.ca_dir) }),
    },
    stateDir: at(state_dir),
    taskPath: at(task),
    ...(model === undefined ? {} : { modelPath: at(model) }),
    source,
  };
}

export async function loadCoordinatorConfig(path: string): Promise<CoordinatorConfig> {
  return compileCoordinatorConfig(await readConfigFile(path), path, dirname(resolve(path)));
}
