/**
 * A real Prometheus server (Debian's `prometheus` package) for tests: a temporary prometheus.yml with a
 * 1 s scrape interval, a TSDB in a temporary directory, the web API on a free 127.0.0.1 port, and a
 * small client for its HTTP query API (https://prometheus.io/docs/prometheus/latest/querying/api/).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { PROMETHEUS_BINARY } from './system-deps.js';

export interface ScrapeJob {
  readonly name: string;
  readonly targets: readonly string[];
  /** For an HTTPS endpoint: Prometheus's tls_config file paths. */
  readonly tls?: { readonly caFile: string; readonly certFile?: string; readonly keyFile?: string };
}

export interface Sample {
  readonly metric: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface RunningPrometheus {
  readonly url: string;
  /** Instant query; the samples of the resulting vector. */
  query(expression: string): Promise<Sample[]>;
  /** Polls `query` until `accept` says yes or `timeoutMs` passes (then rejects with the last result). */
  waitFor(expression: string, accept: (samples: Sample[]) => boolean, timeoutMs?: number): Promise<Sample[]>;
  /** Alerting rules loaded from rule_files, with their health and state (api/v1/rules). */
  rules(): Promise<{ name: string; health: string; state: string; lastError: string }[]>;
  /** The scrape targets and their health (api/v1/targets). */
  targets(): Promise<{ job: string; url: string; health: string; lastError: string }[]>;
  stop(): Promise<void>;
}

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function scrapeConfig(jobs: readonly ScrapeJob[], ruleFiles: readonly string[]): string {
  // JSON is YAML: no quoting rules to get wrong.
  return JSON.stringify({
    global: { scrape_interval: '1s', scrape_timeout: '900ms', evaluation_interval: '1s' },
    rule_files: ruleFiles,
    scrape_configs: jobs.map((job) => ({
      job_name: job.name,
      static_configs: [{ targets: job.targets }],
      ...(job.tls === undefined
        ? {}
        : { scheme: 'https', tls_config: { ca_file: job.tls.caFile, ...(job.tls.certFile === undefined ? {} : { cert_file: job.tls.certFile, key_file: job.tls.keyFile }) } }),
    })),
  });
}

export async function startPrometheus(directory: string, jobs: readonly ScrapeJob[], ruleFiles: readonly string[] = []): Promise<RunningPrometheus> {
  const configFile = join(directory, 'prometheus.yml');
  await writeFile(configFile, scrapeConfig(jobs, ruleFiles));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const output: string[] = [];
  const child: ChildProcess = spawn(
    PROMETHEUS_BINARY,
    [`--config.file=${configFile}`, `--storage.tsdb.path=${join(directory, 'tsdb')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.stdout?.on('data', (chunk: Buffer) => output.push(chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => output.push(chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const api = async <T>(path: string): Promise<T> => {
    const response = await fetch(`${url}${path}`);
    const body = (await response.json()) as { status: string; data: T; error?: string };
    if (body.status !== 'success') throw new Error(`Prometheus ${path}: ${body.error ?? response.status}`);
    return body.data;
  };
  const query = async (expression: string): Promise<Sample[]> => {
    const data = await api<{ resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] }>(`/api/v1/query?query=${encodeURIComponent(expression)}`);
    return data.result.map((entry) => ({ metric: entry.metric, value: Number(entry.value[1]) }));
  };
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  };
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`prometheus exited with ${child.exitCode}: ${output.join('')}`);
    const ready = await fetch(`${url}/-/ready`).then((response) => response.ok, () => false);
    if (ready) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`prometheus did not become ready within 30 s: ${output.join('')}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return {
    url,
    query,
    async waitFor(expression, accept, timeoutMs = 20_000) {
      const end = Date.now() + timeoutMs;
      let last: Sample[] = [];
      while (Date.now() < end) {
        last = await query(expression);
        if (accept(last)) return last;
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
      throw new Error(`Prometheus query ${expression} did not reach the expected value within ${timeoutMs} ms; last result ${JSON.stringify(last)}`);
    },
    async rules() {
      const data = await api<{ groups: { rules: { name: string; health: string; state?: string; lastError?: string }[] }[] }>('/api/v1/rules?type=alert');
      return data.groups.flatMap((group) => group.rules.map((rule) => ({ name: rule.name, health: rule.health, state: rule.state ?? '', lastError: rule.lastError ?? '' })));
    },
    async targets() {
      const data = await api<{ activeTargets: { labels: Record<string, string>; scrapeUrl: string; health: string; lastError: string }[] }>('/api/v1/targets');
      return data.activeTargets.map((target) => ({ job: target.labels['job'] ?? '', url: target.scrapeUrl, health: target.health, lastError: target.lastError }));
    },
    stop,
  };
}
