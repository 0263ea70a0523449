/**
 * The `metrics:` section of coordinator.yaml and site.yaml: Prometheus metrics on a listener of their
 * own, off unless the section is present.
 *
 *   metrics:
 *     listen: 127.0.0.1:9464      # host:port; port 0 picks a free one
 *     tls:                         # optional: HTTPS only (plain HTTP is refused)
 *       cert: metrics.pem
 *       key: metrics.key.pem
 *       client_ca: ca.pem          # optional: scrapers must present a certificate issued by this CA
 *     data_dependent: false        # site.yaml only: see participant/metrics/site-metrics.ts
 */
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import type { MetricsListenOptions } from '../../platform/index.js';
import { ConfigError } from './config-error.js';

/** @see coordinator.yaml metrics.listen */
export const DEFAULT_COORDINATOR_METRICS_LISTEN = '127.0.0.1:9464';
/** @see site.yaml metrics.listen */
export const DEFAULT_SITE_METRICS_LISTEN = '127.0.0.1:9465';

const hostPort = z.string().regex(/^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'expected host:port such as "127.0.0.1:9464" (port 0 picks a free port)');

const metricsTlsSchema = z.strictObject({
  cert: z.string().min(1, 'path to the certificate the metrics listener presents (PEM)'),
  key: z.string().min(1, 'path to its private key (PEM)'),
  client_ca: z.string().min(1).optional(),
});

export function metricsSchema(defaultListen: string) {
  return z.strictObject({
    listen: hostPort.default(defaultListen),
    tls: metricsTlsSchema.optional(),
  });
}

export const siteMetricsSchema = metricsSchema(DEFAULT_SITE_METRICS_LISTEN).extend({
  /** Export example counts, local loss and examples per second (they describe the site's data). */
  data_dependent: z.boolean().default(false),
});

export type MetricsFile = z.output<ReturnType<typeof metricsSchema>>;

/** The section compiled: paths resolved against the config's directory. */
export interface MetricsConfig {
  readonly listen: string;
  readonly tls?: { readonly cert: string; readonly key: string; readonly clientCa?: string };
}

export function compileMetricsConfig(file: MetricsFile, at: (path: string) => string): MetricsConfig {
  const { tls } = file;
  return {
    listen: file.listen,
    ...(tls === undefined ? {} : { tls: { cert: at(tls.cert), key: at(tls.key), ...(tls.client_ca === undefined ? {} : { clientCa: at(tls.client_ca) }) } }),
  };
}

/** Reads the PEM files the section names into listener options; errors name the file and the key. */
export async function metricsListenOptions(config: MetricsConfig, source: string): Promise<MetricsListenOptions> {
  const { tls } = config;
  if (tls === undefined) return { listen: config.listen };
  return {
    listen: config.listen,
    tls: {
      certPem: await readPem(tls.cert, 'metrics.tls.cert', source, 'CERTIFICATE'),
      keyPem: await readPem(tls.key, 'metrics.tls.key', source, 'PRIVATE KEY'),
      ...(tls.clientCa === undefined ? {} : { clientCaPem: await readPem(tls.clientCa, 'metrics.tls.client_ca', source, 'CERTIFICATE') }),
    },
  };
}

async function readPem(path: string, key: string, source: string, label: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ConfigError(`${source}: ${key} names ${path}, which ${code === 'ENOENT' ? 'does not exist' : `cannot be read (${code ?? String(error)})`}`, { cause: error });
  }
  if (!text.includes('-----BEGIN ') || !text.includes(label)) throw new ConfigError(`${source}: ${key} (${path}) is not a PEM file holding a ${label}`);
  return text;
}
