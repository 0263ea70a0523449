import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compileCoordinatorConfig } from '../../../cli/config/coordinator-config.js';
import { compileMetricsConfig, metricsListenOptions } from '../../../cli/config/metrics-config.js';
import { compileSiteConfig } from '../../../cli/config/site-config.js';
import { ConfigError } from '../../../cli/config/config-error.js';

const coordinator = { federation_id: 'fed', tls: { ca: 'ca.pem', cert: 'c.pem', key: 'c.key.pem' }, task: 'task.yaml', rounds: 3 };
const site = { coordinator: 'coordinator.example:7443', tls: { ca: 'ca.pem', cert: 's.pem', key: 's.key.pem' }, data: { format: 'digits' }, accepted_tasks: ['a'.repeat(64)] };

describe('metrics: in coordinator.yaml and site.yaml', () => {
  it('is off unless the section is present', () => {
    expect(compileCoordinatorConfig(coordinator, 'coordinator.yaml', '/etc/fedgate').metrics).toBeUndefined();
    expect(compileSiteConfig(site, 'site.yaml', '/site').metrics).toBeUndefined();
  });

  it('defaults to loopback ports, plain HTTP and no data-dependent site series', () => {
    expect(compileCoordinatorConfig({ ...coordinator, metrics: {} }, 'coordinator.yaml', '/etc/fedgate').metrics).toEqual({ listen: '127.0.0.1:9464' });
    expect(compileSiteConfig({ ...site, metrics: {} }, 'site.yaml', '/site').metrics).toEqual({ listen: '127.0.0.1:9465', data_dependent: false });
  });

  it('resolves the TLS files against the config directory', () => {
    const tls = { cert: 'metrics.pem', key: 'metrics.key.pem', client_ca: 'ca.pem' };
    expect(compileCoordinatorConfig({ ...coordinator, metrics: { listen: '0.0.0.0:9464', tls } }, 'coordinator.yaml', '/etc/fedgate').metrics).toEqual({
      listen: '0.0.0.0:9464',
      tls: { cert: '/etc/fedgate/metrics.pem', key: '/etc/fedgate/metrics.key.pem', clientCa: '/etc/fedgate/ca.pem' },
    });
    const siteMetrics = compileSiteConfig({ ...site, metrics: { tls: { cert: 'm.pem', key: 'm.key.pem' }, data_dependent: true } }, 'site.yaml', '/site').metrics;
    expect(siteMetrics).toEqual({ listen: '127.0.0.1:9465', tls: { cert: '/site/m.pem', key: '/site/m.key.pem' }, data_dependent: true });
    expect(compileMetricsConfig(siteMetrics as NonNullable<typeof siteMetrics>, (path) => path)).toEqual({ listen: '127.0.0.1:9465', tls: { cert: '/site/m.pem', key: '/site/m.key.pem' } });
  });

  it.each([
    [{ ...coordinator, metrics: { listen: '9464' } }, /metrics\.listen: expected host:port/],
    [{ ...coordinator, metrics: { tls: { cert: 'c.pem' } } }, /metrics\.tls\.key/],
    [{ ...coordinator, metrics: { port: 9464 } }, /metrics.*(port|Unrecognized key)/],
    [{ ...coordinator, metrics: { data_dependent: true } }, /metrics.*(data_dependent|Unrecognized key)/],
  ])('rejects a bad coordinator section %#, naming the key', (value, message) => {
    expect(() => compileCoordinatorConfig(value, 'coordinator.yaml', '/x')).toThrow(message);
  });

  it('rejects a site section that is not a boolean opt-in', () => {
    expect(() => compileSiteConfig({ ...site, metrics: { data_dependent: 'yes' } }, 'site.yaml', '/x')).toThrow(/metrics\.data_dependent/);
  });

  it('reads the PEM files at start, naming the key of a missing or wrong one', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'fedgate-metrics-config-'));
    try {
      await writeFile(join(directory, 'cert.pem'), '-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n');
      await writeFile(join(directory, 'key.pem'), 'not a key');
      const config = { listen: '127.0.0.1:0', tls: { cert: join(directory, 'cert.pem'), key: join(directory, 'key.pem') } };
      await expect(metricsListenOptions(config, 'site.yaml')).rejects.toThrow(new ConfigError(`site.yaml: metrics.tls.key (${join(directory, 'key.pem')}) is not a PEM file holding a PRIVATE KEY`));
      await expect(metricsListenOptions({ ...config, tls: { ...config.tls, clientCa: join(directory, 'missing.pem') } }, 'site.yaml')).rejects.toThrow(/metrics\.tls\.(key|client_ca)/);
      await expect(metricsListenOptions({ listen: '127.0.0.1:0' }, 'site.yaml')).resolves.toEqual({ listen: '127.0.0.1:0' });
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });
});
