/**
 * Serves a daemon's metrics registry as its `metrics:` section says (cli/config/metrics-config.ts), and
 * logs where. Started before the daemon so that a port already taken fails the command at once.
 */
import type { Logger } from 'pino';
import { startMetricsEndpoint, type MetricsEndpoint, type MetricsSource } from '../platform/index.js';
import { ConfigError } from './config/config-error.js';
import { metricsListenOptions, type MetricsConfig } from './config/metrics-config.js';

export async function serveMetrics(config: MetricsConfig, source: string, registry: MetricsSource, logger: Logger): Promise<MetricsEndpoint> {
  const options = await metricsListenOptions(config, source);
  let endpoint: MetricsEndpoint;
  try {
    endpoint = await startMetricsEndpoint(options, registry);
  } catch (error) {
    throw new ConfigError(`${source}: ${(error as Error).message}`, { cause: error });
  }
  const tls = options.tls === undefined ? 'plain HTTP' : options.tls.clientCaPem === undefined ? 'HTTPS' : 'HTTPS, client certificate required';
  logger.info({ url: endpoint.url, tls }, 'metrics listening');
  return endpoint;
}
