import { describe, expect, it } from 'vitest';
import { SiteMetrics } from '../../../../participant/metrics/site-metrics.js';

const training = { seconds: 2, trainingExamples: 1437, evalLossSum: 90, evalExamples: 360 };

function exercise(metrics: SiteMetrics): void {
  metrics.connection(true);
  metrics.roundJoined();
  metrics.trained(training);
  metrics.uploaded(2600);
  metrics.downloaded(2600);
  metrics.roundEnded('committed');
  metrics.roundJoined();
  metrics.refusalSent('TASK_NOT_PINNED');
  metrics.roundEnded('aborted', 'NONCE_WITHHELD');
  metrics.roundEnded('left', 'connection lost');
}

describe('SiteMetrics', () => {
  it('exports round outcomes, refusals by reason code, training time, bytes and connection state', async () => {
    const metrics = new SiteMetrics({ processMetrics: false });
    exercise(metrics);
    const text = await metrics.registry.metrics();
    expect(text).toContain('fedgate_site_rounds_joined_total 2');
    expect(text).toContain('fedgate_site_rounds_committed_total 1');
    expect(text).toContain('fedgate_site_rounds_refused_total{reason="TASK_NOT_PINNED"} 1');
    expect(text).toContain('fedgate_site_rounds_ended_total{outcome="aborted",reason="NONCE_WITHHELD"} 1');
    // A reason that is not a code (here a local text) is never a label value.
    expect(text).toContain('fedgate_site_rounds_ended_total{outcome="left",reason="OTHER"} 1');
    expect(text).toContain('fedgate_site_training_duration_seconds_count 1');
    expect(text).toContain('fedgate_site_upload_bytes_total 2600');
    expect(text).toContain('fedgate_site_download_bytes_total 2600');
    expect(text).toContain('fedgate_site_connected 1');
    expect(text).toContain('fedgate_site_sessions_established_total 1');
    metrics.connection(false);
    expect(await metrics.registry.metrics()).toContain('fedgate_site_connected 0');
  });

  it('exports nothing that depends on the data unless the site opts in', async () => {
    const metrics = new SiteMetrics({ processMetrics: false });
    exercise(metrics);
    const text = await metrics.registry.metrics();
    expect(text).not.toMatch(/example|loss|per_second/);
    const values = [...text.matchAll(/^\S+ (\S+)$/gm)].map((match) => Number(match[1]));
    for (const dataValue of [training.trainingExamples, training.evalExamples, training.evalLossSum / training.evalExamples, training.trainingExamples / training.seconds]) expect(values).not.toContain(dataValue);
  });

  it('exports example count, local loss and throughput when the site opts in (metrics.data_dependent)', async () => {
    const metrics = new SiteMetrics({ dataDependent: true, processMetrics: false });
    exercise(metrics);
    const text = await metrics.registry.metrics();
    expect(text).toContain('fedgate_site_training_examples 1437');
    expect(text).toContain('fedgate_site_training_examples_per_second 718.5');
    expect(text).toContain('fedgate_site_eval_loss 0.25');
    expect(text).toContain('# HELP fedgate_site_training_examples DATA-DEPENDENT');
  });

  it('bounds the reason labels: at most 64 distinct codes, the rest counted as OTHER', async () => {
    const metrics = new SiteMetrics({ processMetrics: false });
    for (let index = 0; index < 100; index++) metrics.refusalSent(`REASON_${index}`);
    const text = await metrics.registry.metrics();
    expect([...text.matchAll(/^fedgate_site_rounds_refused_total\{/gm)]).toHaveLength(65);
    expect(text).toContain('fedgate_site_rounds_refused_total{reason="OTHER"} 36');
  });
});
