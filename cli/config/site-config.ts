/**
 * site.yaml: a data site's participant daemon. The site's own policy lives here and is enforced by the
 * site whatever the coordinator asks (pinned task hashes, minimum participants and threshold, the
 * collusion margin of crypto/secagg/margin.ts, plaintext refused unless allowed).
 */
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { fromHex } from '../../crypto/bytes.js';
import type { SitePolicy } from '../../crypto/secagg/policy.js';
import { DEFAULT_COMPLETE_GRAPH_UP_TO, DEFAULT_MIN_NEIGHBOUR_DEGREE, DEFAULT_MIN_TOLERATED_COLLUDERS } from '../../crypto/secagg/margin.js';
import { duration, size } from './units.js';
import { readConfigFile, validateConfig } from './load.js';
import { ConfigError } from './config-error.js';
import { siteMetricsSchema } from './metrics-config.js';
import { privacySchema } from './privacy-config.js';
import { TABLE_FORMATS, datasetId, type SitePrivacyPolicy } from '../../participant/index.js';

const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'expected a task hash: 64 lower-case hex characters (`fedgate task hash task.yaml` prints it)');

const partitionSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('iid'), count: z.number().int().positive(), index: z.number().int().min(0), seed: z.number().int().default(1) }),
  z.strictObject({ kind: z.literal('dirichlet'), alpha: z.number().positive(), count: z.number().int().positive(), index: z.number().int().min(0), seed: z.number().int().default(1) }),
  z.strictObject({ kind: z.literal('shards'), shards_per_site: z.number().int().positive(), count: z.number().int().positive(), index: z.number().int().min(0), seed: z.number().int().default(1) }),
]).refine((partition) => partition.index < partition.count, { message: 'index must be smaller than count', path: ['index'] });

const dataSchema = z.discriminatedUnion('format', [
  z.strictObject({
    format: z.literal('csv'),
    path: z.string().min(1),
    label_column: z.union([z.string().min(1), z.number().int().min(0)]).default('label'),
    header: z.enum(['auto', 'yes', 'no']).default('auto'),
    test_fraction: z.number().min(0).lt(1).default(0.2),
    split_seed: z.number().int().default(1),
    partition: partitionSchema.optional(),
  }),
  z.strictObject({
    format: z.literal('idx'),
    images: z.string().min(1),
    labels: z.string().min(1),
    test_images: z.string().min(1).optional(),
    test_labels: z.string().min(1).optional(),
    test_fraction: z.number().min(0).lt(1).default(0.2),
    split_seed: z.number().int().default(1),
    partition: partitionSchema.optional(),
  }).superRefine((idx, context) => {
    // Half a pair used to be ignored: the site held out test_fraction of the training files instead,
    // evaluating on other records than the operator named.
    if ((idx.test_images === undefined) === (idx.test_labels === undefined)) return;
    const [given, missing] = idx.test_images === undefined ? ['test_labels', 'test_images'] : ['test_images', 'test_labels'];
    context.addIssue({
      code: 'custom',
      path: [missing],
      message: `${given} is set but ${missing} is not: give both files of the held-out test split, or neither (then test_fraction of the training files is held out)`,
    });
  }),
  z.strictObject({
    /**
     * A column-format file: .npy, .npz, .parquet, .csv/.tsv (named columns, string columns mapped by the
     * task's vocabularies) or a folder of class folders of PNG/JPEG images; the task's inputs/target say
     * which columns the model reads.
     */
    format: z.literal('table'),
    path: z.string().min(1),
    file_format: z.enum(TABLE_FORMATS).optional(),
    header: z.enum(['auto', 'yes', 'no']).default('auto'),
    image_shape: z.tuple([z.number().int().min(1), z.number().int().min(1), z.number().int().min(1)]).optional(),
    test_path: z.string().min(1).optional(),
    test_fraction: z.number().min(0).lt(1).default(0.2),
    split_seed: z.number().int().default(1),
    partition: partitionSchema.optional(),
  }),
  z.strictObject({
    /** The UCI digits copy shipped in data/ (demo and tests). */
    format: z.literal('digits'),
    test_fraction: z.number().min(0).lt(1).default(0.2),
    split_seed: z.number().int().default(1),
    partition: partitionSchema.optional(),
  }),
]);

export const siteConfigSchema = z.strictObject({
  coordinator: z.string().regex(/^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'expected host:port of the coordinator'),
  /** TLS host name to check on the coordinator's certificate, when it differs from the host dialled. */
  server_name: z.string().min(1).optional(),
  tls: z.strictObject({ ca: z.string().min(1), cert: z.string().min(1), key: z.string().min(1), crl: z.string().min(1).optional() }),
  data: dataSchema,
  accepted_tasks: z.array(sha256Hex).min(1, 'pin at least one task hash: the site never trains a task it has not pinned'),
  /** The federation this site joins: rounds of any other federation id are refused. */
  federation_id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'expected 1-63 letters, digits, ".", "_" or "-"').optional(),
  policy: z.strictObject({
    min_participants: z.number().int().min(2).default(3),
    /** 3: the smallest t of any masked round that tolerates one colluder (k = 2 or 3, t = 3). */
    min_threshold: z.number().int().min(1).default(3),
    allow_plaintext: z.boolean().default(false),
    roster: z.array(z.string().min(1)).optional(),
    /** Colluding sites (besides the coordinator) a masked round must tolerate: min(2t - (k+1), k) - 1. */
    min_tolerated_colluders: z.number().int().min(0).default(DEFAULT_MIN_TOLERATED_COLLUDERS),
    /** Smallest neighbour degree k of a masked round (or |U| - 1 when smaller). */
    min_neighbour_degree: z.number().int().min(1).default(DEFAULT_MIN_NEIGHBOUR_DEGREE),
    /** Masked rounds of at most this many participants must use the complete graph; 0 never requires it. */
    complete_graph_up_to: z.number().int().min(0).default(DEFAULT_COMPLETE_GRAPH_UP_TO),
  }).prefault({}),
  device: z.string().regex(/^(auto|cpu|cuda(:\d+)?)$/, 'expected auto, cpu, cuda or cuda:N').default('auto'),
  intra_op_threads: z.number().int().min(1).max(256).default(1),
  max_model_bytes: size.default(1024 ** 3),
  reconnect: z.strictObject({ initial: duration.default(500), max: duration.default(30_000) }).prefault({}),
  /** Where the site keeps its round state (so a restart sits an interrupted round out). */
  state_dir: z.string().min(1).default('site-state'),
  /** Prometheus metrics on their own listener (cli/config/metrics-config.ts); off when absent. */
  metrics: siteMetricsSchema.optional(),
  /** The site's record-level DP budget on its data (cli/config/privacy-config.ts); none when absent. */
  privacy: privacySchema.optional(),
});

export type SiteConfigFile = z.output<typeof siteConfigSchema>;
export type SiteConfig = SiteConfigFile & { readonly source: string; readonly baseDirectory: string };

export function compileSiteConfig(value: unknown, source: string, baseDirectory: string): SiteConfig {
  const file = validateConfig(siteConfigSchema, value, source);
  const at = (path: string): string => resolve(baseDirectory, path);
  const data = file.data;
  const resolvedData =
    data.format === 'csv'
      ? { ...data, path: at(data.path) }
      : data.format === 'table'
        ? { ...data, path: at(data.path), ...(data.test_path === undefined ? {} : { test_path: at(data.test_path) }) }
      : data.format === 'idx'
        ? {
            ...data,
            images: at(data.images),
            labels: at(data.labels),
            ...(data.test_images === undefined ? {} : { test_images: at(data.test_images) }),
            ...(data.test_labels === undefined ? {} : { test_labels: at(data.test_labels) }),
          }
        : data;
  return {
    ...file,
    tls: { ...file.tls, ca: at(file.tls.ca), cert: at(file.tls.cert), key: at(file.tls.key), ...(file.tls.crl === undefined ? {} : { crl: at(file.tls.crl) }) },
    data: resolvedData,
    state_dir: at(file.state_dir),
    ...(file.metrics === undefined
      ? {}
      : {
          metrics: {
            ...file.metrics,
            ...(file.metrics.tls === undefined
              ? {}
              : { tls: { ...file.metrics.tls, cert: at(file.metrics.tls.cert), key: at(file.metrics.tls.key), ...(file.metrics.tls.client_ca === undefined ? {} : { client_ca: at(file.metrics.tls.client_ca) }) } }),
          },
        }),
    source,
    baseDirectory,
  };
}

/** site.yaml `privacy:` as the site enforces it (participant/round/site-privacy.ts); undefined when absent. */
export function sitePrivacyPolicy(config: Pick<SiteConfigFile, 'privacy' | 'data'>): SitePrivacyPolicy | undefined {
  const { privacy } = config;
  if (privacy === undefined) return undefined;
  const budget = privacy.epsilon === undefined || privacy.delta === undefined ? undefined : { epsilon: privacy.epsilon, delta: privacy.delta };
  return {
    ...(budget === undefined ? {} : { budget }),
    requireDp: budget !== undefined || privacy.require_dp === true,
    // Paths are already resolved against the directory of site.yaml (compileSiteConfig).
    datasetId: datasetId(config.data, privacy.dataset_id),
  };
}

/** The policy the site enforces on every RoundConfig (crypto/secagg/policy.ts), from site.yaml. */
export function sitePolicy(config: SiteConfigFile): SitePolicy {
  const { policy } = config;
  return {
    pinnedTaskHashes: config.accepted_tasks.map((hash) => fromHex(hash)),
    minParticipants: policy.min_participants,
    minThreshold: policy.min_threshold,
    allowPlaintext: policy.allow_plaintext,
    minToleratedColluders: policy.min_tolerated_colluders,
    minNeighbourDegree: policy.min_neighbour_degree,
    completeGraphUpTo: policy.complete_graph_up_to,
    ...(policy.roster === undefined ? {} : { roster: new Set(policy.roster) }),
    ...(config.federation_id === undefined ? {} : { federationId: config.federation_id }),
  };
}

export async function loadSiteConfig(path: string): Promise<SiteConfig> {
  return compileSiteConfig(await readConfigFile(path), path, dirname(resolve(path)));
}

/**
 * Checks at start that every data file site.yaml names can be read, so a wrong path fails the daemon
 * now rather than at its first round (the data itself is parsed once the task is known).
 */
export async function checkSiteDataFiles(config: SiteConfig): Promise<void> {
  const { data } = config;
  const files: [string, string | undefined][] =
    data.format === 'csv'
      ? [['data.path', data.path]]
      : data.format === 'table'
        ? [['data.path', data.path], ['data.test_path', data.test_path]]
      : data.format === 'idx'
        ? [['data.images', data.images], ['data.labels', data.labels], ['data.test_images', data.test_images], ['data.test_labels', data.test_labels]]
        : [];
  const problems: string[] = [];
  for (const [key, file] of files) {
    if (file === undefined) continue;
    try {
      await access(file, constants.R_OK);
      // A table may be a folder of class folders of images.
      if (!(await stat(file)).isFile() && !(data.format === 'table' && (await stat(file)).isDirectory())) problems.push(`${key}: ${file} is not a file`);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      problems.push(`${key}: cannot read ${file} (${code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : String(code)})`);
    }
  }
  if (problems.length > 0) throw new ConfigError(`${config.source}: ${problems.join('; ')}; paths are relative to the directory of site.yaml`);
}
