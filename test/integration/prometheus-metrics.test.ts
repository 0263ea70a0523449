/**
 * A real Prometheus (Debian's `prometheus`) scrapes a running coordinator and two sites during a short
 * federation (three secure rounds of logistic regression on the shipped digits), and the test reads what
 * it stored through its HTTP query API:
 * - the committed-rounds counter equals the rounds the ledger holds, for the coordinator and each site;
 * - the stage-duration histogram has samples for every stage of a round;
 * - every target is up, the coordinator's over HTTPS with a client certificate (tls_config), which its
 *   endpoint requires: plain HTTP and a TLS client without a certificate get nothing;
 * - the sites export nothing data-dependent by default (no example count, loss or throughput series, and
 *   no sample whose value is the site's example count);
 * - the sample alert rules of docs/operations.md load and evaluate against the real series, and
 *   `promtool test rules` shows the no-commit alert firing after 30 minutes without a commit, and not once
 *   the configured rounds are done.
 */
import { spawnSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { get as httpGet } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CoordinatorMetrics } from '../../coordinator/metrics/coordinator-metrics.js';
import { SiteMetrics } from '../../participant/metrics/site-metrics.js';
import { startMetricsEndpoint, type MetricsEndpoint } from '../../platform/index.js';
import { loadSiteData } from '../../participant/daemon/site-data.js';
import { createAdminFederation, LOGREG_DIGITS_TASK, type AdminFederation } from '../support/admin-federation.js';
import { startPrometheus, type RunningPrometheus, type Sample } from '../support/prometheus.js';
import { checkSystemDependency, PROMTOOL_BINARY, systemDependencies } from '../support/system-deps.js';

const prometheus = checkSystemDependency(systemDependencies.prometheus);
const ROUNDS = 3;
const OPERATIONS_GUIDE = join(import.meta.dirname, '..', '..', 'docs', 'operations.md');

/** The sample alert rules as docs/operations.md prints them. */
async function documentedAlertRules(): Promise<string> {
  const guide = await readFile(OPERATIONS_GUIDE, 'utf8');
  const block = [...guide.matchAll(/```yaml\n([\s\S]*?)```/g)].map((match) => match[1] ?? '').find((text) => text.includes('alert: FedgateNoRoundCommitted'));
  if (block === undefined) throw new Error('docs/operations.md has no alert rule block with FedgateNoRoundCommitted');
  return block;
}

/** promtool unit tests of the no-commit alert: a stalled federation, a finished one, a recent commit. */
const ALERT_RULE_TESTS = {
  rule_files: ['rules.yml'],
  evaluation_interval: '1m',
  tests: [
    {
      interval: '1m',
      input_series: [
        // Stalled: 2 of 10 rounds, the last commit at t = 0 (the process started then too).
        { series: 'fedgate_coordinator_ledger_height{instance="stalled:9464",job="fedgate-coordinator"}', values: '2x60' },
        { series: 'fedgate_coordinator_rounds_configured{instance="stalled:9464",job="fedgate-coordinator"}', values: '10x60' },
        { series: 'fedgate_coordinator_last_commit_timestamp_seconds{instance="stalled:9464",job="fedgate-coordinator"}', values: '0x60' },
        { series: 'process_start_time_seconds{instance="stalled:9464",job="fedgate-coordinator"}', values: '0x60' },
        // Done: every configured round committed long ago.
        { series: 'fedgate_coordinator_ledger_height{instance="done:9464",job="fedgate-coordinator"}', values: '10x60' },
        { series: 'fedgate_coordinator_rounds_configured{instance="done:9464",job="fedgate-coordinator"}', values: '10x60' },
        { series: 'fedgate_coordinator_last_commit_timestamp_seconds{instance="done:9464",job="fedgate-coordinator"}', values: '0x60' },
        { series: 'process_start_time_seconds{instance="done:9464",job="fedgate-coordinator"}', values: '0x60' },
        // Busy: a commit every 10 minutes (timestamps in seconds).
        { series: 'fedgate_coordinator_ledger_height{instance="busy:9464",job="fedgate-coordinator"}', values: '1x9 2x9 3x9 4x9 5x9 6x9' },
        { series: 'fedgate_coordinator_rounds_configured{instance="busy:9464",job="fedgate-coordinator"}', values: '100x60' },
        { series: 'fedgate_coordinator_last_commit_timestamp_seconds{instance="busy:9464",job="fedgate-coordinator"}', values: '0x9 600x9 1200x9 1800x9 2400x9 3000x9' },
        { series: 'process_start_time_seconds{instance="busy:9464",job="fedgate-coordinator"}', values: '0x60' },
      ],
      alert_rule_test: [
        { eval_time: '20m', alertname: 'FedgateNoRoundCommitted', exp_alerts: [] },
        {
          eval_time: '40m',
          alertname: 'FedgateNoRoundCommitted',
          exp_alerts: [
            {
              exp_labels: { severity: 'warning', instance: 'stalled:9464', job: 'fedgate-coordinator' },
              exp_annotations: {
                summary: 'fedgate: no round committed on stalled:9464 in 30 minutes',
                description: 'See fedgate_coordinator_rounds_aborted_total by reason, fedgate_coordinator_participants_connected and the coordinator log (round aborted).',
              },
            },
          ],
        },
      ],
    },
  ],
};

/** The outcome of a plain-HTTP GET: a status code, or the network error's code. */
function plainGet(url: string): Promise<string> {
  return new Promise((resolve) => {
    const request = httpGet(url, { timeout: 5000 }, (response) => {
      response.resume();
      resolve(`HTTP ${response.statusCode ?? '?'}`);
    });
    request.on('timeout', () => request.destroy(new Error('timeout')));
    request.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
  });
}

function httpsGet(url: string, options: { ca: string; cert?: string; key?: string }): Promise<{ status?: number; body?: string; error?: string }> {
  return new Promise((resolve) => {
    const request = httpsRequest(url, { ...options, timeout: 5000 }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ ...(response.statusCode === undefined ? {} : { status: response.statusCode }), body }));
    });
    request.on('timeout', () => request.destroy(new Error('timeout')));
    request.on('error', (error: NodeJS.ErrnoException) => resolve({ error: error.code ?? error.message }));
    request.end();
  });
}

const valueOf = (samples: Sample[], label?: [string, string]): number[] =>
  samples.filter((sample) => label === undefined || sample.metric[label[0]] === label[1]).map((sample) => sample.value);

describe.skipIf(prometheus.skip)(`Prometheus scrapes a running federation ${prometheus.reason}`, () => {
  let h: AdminFederation;
  let server: RunningPrometheus;
  let coordinatorEndpoint: MetricsEndpoint;
  let coordinatorMetrics: CoordinatorMetrics;
  const siteMetrics = [new SiteMetrics(), new SiteMetrics()];
  const siteEndpoints: MetricsEndpoint[] = [];
  let tlsFiles: { ca: string; cert: string; key: string };
  let scrapeClient: { certPem: string; keyPem: string };

  beforeAll(async () => {
    h = await createAdminFederation(2);
    scrapeClient = await h.issue('operator', 'prometheus');
    tlsFiles = { ca: join(h.work.path, 'scrape-ca.pem'), cert: join(h.work.path, 'scrape.pem'), key: join(h.work.path, 'scrape.key.pem') };
    await writeFile(tlsFiles.ca, h.caPem);
    await writeFile(tlsFiles.cert, scrapeClient.certPem);
    await writeFile(tlsFiles.key, scrapeClient.keyPem, { mode: 0o600 });
    coordinatorMetrics = new CoordinatorMetrics();
    // As coordinator.yaml's metrics: {listen, tls: {cert, key, client_ca}} compiles: HTTPS, client certificates of the federation CA.
    coordinatorEndpoint = await startMetricsEndpoint(
      { listen: '127.0.0.1:0', tls: { certPem: h.coordinatorCredentials.certPem, keyPem: h.coordinatorCredentials.keyPem, clientCaPem: h.caPem } },
      coordinatorMetrics.registry,
    );
    for (const metrics of siteMetrics) siteEndpoints.push(await startMetricsEndpoint({ listen: '127.0.0.1:0' }, metrics.registry));
    await writeFile(join(h.work.path, 'rules.yml'), await documentedAlertRules());
    server = await startPrometheus(
      h.work.path,
      [
        { name: 'fedgate-coordinator', targets: [`127.0.0.1:${coordinatorEndpoint.port}`], tls: { caFile: tlsFiles.ca, certFile: tlsFiles.cert, keyFile: tlsFiles.key } },
        { name: 'fedgate-sites', targets: siteEndpoints.map((endpoint) => `127.0.0.1:${endpoint.port}`) },
      ],
      [join(h.work.path, 'rules.yml')],
    );
    await h.startCoordinator({ rounds: ROUNDS, minParticipants: 2, metrics: coordinatorMetrics });
    // Prometheus has scraped every target at least once before the first round starts.
    await server.waitFor('up', (samples) => samples.length === 3 && samples.every((sample) => sample.value === 1));
    h.startSite(0, undefined, { metrics: siteMetrics[0] as SiteMetrics });
    h.startSite(1, undefined, { metrics: siteMetrics[1] as SiteMetrics });
    await h.coordinator.done;
  }, 180_000);

  afterAll(async () => {
    await server?.stop();
    await coordinatorEndpoint?.close();
    for (const endpoint of siteEndpoints) await endpoint.close();
    await h?.close();
  });

  it('stores the committed-rounds counter of the coordinator and of each site equal to the rounds the ledger holds', async () => {
    const ledgerRounds = h.coordinator.federation.ledgerRecords.length;
    expect(ledgerRounds).toBe(ROUNDS);
    const listed = await h.operatorClient().rounds();
    expect(listed.map((round) => round.sequence)).toEqual([1, 2, 3]);
    const committed = await server.waitFor('fedgate_coordinator_rounds_committed_total', (samples) => valueOf(samples).includes(ledgerRounds));
    expect(valueOf(committed, ['job', 'fedgate-coordinator'])).toEqual([ledgerRounds]);
    expect(valueOf(await server.query('fedgate_coordinator_ledger_height'))).toEqual([ledgerRounds]);
    expect(valueOf(await server.query('fedgate_coordinator_rounds_started_total'))).toEqual([ledgerRounds]);
    // Sites count a commit once they have verified its record; Prometheus sees it on a later scrape.
    const sites = await server.waitFor('fedgate_site_rounds_committed_total', (samples) => samples.length === 2 && samples.every((sample) => sample.value === ledgerRounds));
    expect(sites.map((sample) => sample.metric['job'])).toEqual(['fedgate-sites', 'fedgate-sites']);
    expect(valueOf(await server.query('sum(fedgate_site_rounds_joined_total)'))).toEqual([2 * ledgerRounds]);
    const accuracy = valueOf(await server.query('fedgate_coordinator_last_round_eval_accuracy'));
    const lastRound = listed.at(-1);
    expect(accuracy).toEqual([lastRound?.metrics?.evalAccuracy]);
    console.log(
      `Prometheus: fedgate_coordinator_rounds_committed_total=${valueOf(committed).join(',')}, ledger rounds=${ledgerRounds}, ` +
        `fedgate_site_rounds_committed_total=${valueOf(sites).join(',')}, last_round_eval_accuracy=${accuracy.join(',')}`,
    );
  });

  it('stores a stage-duration histogram with samples for every stage of a round', async () => {
    const counts = await server.waitFor('fedgate_coordinator_stage_duration_seconds_count', (samples) => samples.length >= 7);
    const byStage = Object.fromEntries(counts.map((sample) => [sample.metric['stage'], sample.value]));
    expect(byStage).toEqual({ advertise_keys: ROUNDS, nonce_reveal: ROUNDS, share_keys: ROUNDS, masked_input: ROUNDS, consistency_check: ROUNDS, unmask: ROUNDS, commit: ROUNDS });
    const sums = await server.query('fedgate_coordinator_stage_duration_seconds_sum{stage="masked_input"}');
    expect(valueOf(sums)[0]).toBeGreaterThan(0);
    const buckets = await server.query('fedgate_coordinator_stage_duration_seconds_bucket{stage="masked_input",le="+Inf"}');
    expect(valueOf(buckets)).toEqual([ROUNDS]);
    const median = await server.query('histogram_quantile(0.5, sum by (le) (fedgate_coordinator_stage_duration_seconds_bucket{stage="masked_input"}))');
    expect(valueOf(median)[0]).toBeGreaterThan(0);
    expect(valueOf(await server.query('fedgate_coordinator_unmask_duration_seconds_count'))).toEqual([ROUNDS]);
    expect(valueOf(await server.query('fedgate_coordinator_aggregation_duration_seconds_count'))).toEqual([ROUNDS]);
    expect(valueOf(await server.query('fedgate_coordinator_received_bytes_total{rpc="UploadMaskedInput"}'))[0]).toBeGreaterThan(0);
    expect(valueOf(await server.query('sum(fedgate_site_training_duration_seconds_count)'))).toEqual([2 * ROUNDS]);
    expect(valueOf(await server.query('sum(fedgate_site_connected)'))).toEqual([2]);
    console.log(`Prometheus: fedgate_coordinator_stage_duration_seconds_count ${JSON.stringify(byStage)}, masked_input median ${valueOf(median)[0]?.toFixed(3)} s`);
  });

  it('scrapes every target, the coordinator over HTTPS with a client certificate; its endpoint refuses plain HTTP and a client without a certificate', async () => {
    const targets = await server.targets();
    expect(targets.map((target) => [target.job, target.url.split(':')[0], target.health]).sort()).toEqual([
      ['fedgate-coordinator', 'https', 'up'],
      ['fedgate-sites', 'http', 'up'],
      ['fedgate-sites', 'http', 'up'],
    ]);
    const httpsUrl = coordinatorEndpoint.url;
    expect(httpsUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/metrics$/);
    expect(await plainGet(httpsUrl.replace('https:', 'http:'))).toMatch(/ECONNRESET|EPIPE|HPE_|socket hang up|timeout/);
    const withoutCertificate = await httpsGet(httpsUrl, { ca: h.caPem });
    expect(withoutCertificate.status).toBeUndefined();
    expect(withoutCertificate.error).toBeDefined();
    const foreign = await h.issue('operator', 'not-prometheus');
    const withCertificate = await httpsGet(httpsUrl, { ca: h.caPem, cert: foreign.certPem, key: foreign.keyPem });
    expect(withCertificate.status).toBe(200);
    expect(withCertificate.body).toContain('fedgate_coordinator_rounds_committed_total 3');
  });

  it('exports no data-dependent site metric by default', async () => {
    const series = await server.query('{__name__=~"fedgate_site_.*(example|loss|per_second).*"}');
    expect(series).toEqual([]);
    for (const [index, metrics] of siteMetrics.entries()) {
      expect(metrics.dataDependent).toBe(false);
      const text = await metrics.registry.metrics();
      const names = new Set([...text.matchAll(/^(fedgate_site_\w+?)(?:_bucket|_sum|_count)?(?:\{| )/gm)].map((match) => match[1]));
      expect([...names].sort()).toEqual([
        'fedgate_site_connected',
        'fedgate_site_download_bytes_total',
        'fedgate_site_rounds_committed_total',
        'fedgate_site_rounds_joined_total',
        'fedgate_site_sessions_established_total',
        'fedgate_site_training_duration_seconds',
        'fedgate_site_upload_bytes_total',
      ]);
      // The site's example counts (its share of the digits, as the harness partitions them) appear in no sample.
      const data = await loadSiteData({ format: 'digits', test_fraction: 0.2, split_seed: 1, partition: { kind: 'iid', count: 2, index, seed: 1 } }, LOGREG_DIGITS_TASK);
      const values = [...text.matchAll(/^fedgate_site_\S+ (\S+)$/gm)].map((match) => Number(match[1]));
      expect(values.length).toBeGreaterThan(10);
      expect(values).not.toContain(data.train.count);
      expect(values).not.toContain(data.test.count);
    }
  });

  it('loads the alert rules of docs/operations.md; promtool shows the no-commit alert firing only when rounds stall', async () => {
    const rulesFile = join(h.work.path, 'rules.yml');
    const check = spawnSync(PROMTOOL_BINARY, ['check', 'rules', rulesFile], { encoding: 'utf8' });
    expect(check.status, check.stdout + check.stderr).toBe(0);
    await writeFile(join(h.work.path, 'rules.test.yml'), JSON.stringify(ALERT_RULE_TESTS));
    const unit = spawnSync(PROMTOOL_BINARY, ['test', 'rules', join(h.work.path, 'rules.test.yml')], { encoding: 'utf8', cwd: h.work.path });
    expect(unit.status, unit.stdout + unit.stderr).toBe(0);
    // Against the real series: evaluated without error, and quiet once the configured rounds are committed.
    const rules = await server.waitFor('fedgate_coordinator_rounds_configured', (samples) => valueOf(samples).includes(ROUNDS)).then(() => server.rules());
    expect(rules.map((rule) => [rule.name, rule.health, rule.state, rule.lastError])).toEqual([
      ['FedgateNoRoundCommitted', 'ok', 'inactive', ''],
      ['FedgateSiteDisconnected', 'ok', 'inactive', ''],
    ]);
  });
});
