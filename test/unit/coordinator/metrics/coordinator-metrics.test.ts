import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import type { Federation, RoundEvent } from '../../../../coordinator/federation/federation.js';
import { CoordinatorMetrics } from '../../../../coordinator/metrics/coordinator-metrics.js';

/** The parts of a Federation the metrics read: its round events, its ledger head and length. */
function fakeFederation(committedRounds = 0): Federation & EventEmitter {
  const emitter = new EventEmitter() as Federation & EventEmitter;
  Object.defineProperty(emitter, 'committedRounds', { get: () => committedRounds });
  Object.defineProperty(emitter, 'ledgerRecords', { get: () => ({ head: undefined, length: committedRounds }) });
  return emitter;
}

const base = { roundId: 'ab'.repeat(24), roundCounter: '1', participants: ['site-1', 'site-2', 'site-3'], at: '2026-01-02T03:04:05.000Z' };
const stageSeconds = { advertise_keys: 0.2, nonce_reveal: 0.1, share_keys: 0.3, masked_input: 4, consistency_check: 0.1, unmask: 0.2, commit: 0.5 };

describe('CoordinatorMetrics', () => {
  it('follows round events: started, committed, aborted by reason, stage and compute durations, last round figures', async () => {
    const metrics = new CoordinatorMetrics({ processMetrics: false });
    const federation = fakeFederation(4);
    metrics.attach({ federation, connectedSites: () => 3, revokedCertificates: () => 2, roundsConfigured: 10 });
    const events: RoundEvent[] = [
      { ...base, type: 'round_started' },
      {
        ...base,
        type: 'round_committed',
        sequence: 4,
        survivors: ['site-1', 'site-2'],
        metrics: { participants: 3, survivors: 2, evalLossSum: 50, evalCorrect: 80, evalExamples: 100, weightSum: 1.5 },
        stageSeconds,
        computeSeconds: { unmask: 0.01, aggregation: 0.02 },
        seconds: 5.4,
      },
      { ...base, type: 'round_started' },
      { ...base, type: 'round_aborted', reason: 'NONCE_WITHHELD', stageSeconds: { advertise_keys: 0.2, nonce_reveal: 30 }, computeSeconds: {}, seconds: 30.2 },
    ];
    for (const event of events.slice(0, 3)) federation.emit('round', event);
    expect(await metrics.registry.metrics()).toContain('fedgate_coordinator_participants_in_round 3');
    federation.emit('round', events[3] as RoundEvent);
    const text = await metrics.registry.metrics();
    expect(text).toContain('fedgate_coordinator_rounds_started_total 2');
    expect(text).toContain('fedgate_coordinator_rounds_committed_total 1');
    expect(text).toContain('fedgate_coordinator_rounds_aborted_total{reason="NONCE_WITHHELD"} 1');
    expect(text).toContain('fedgate_coordinator_stage_duration_seconds_count{stage="masked_input"} 1');
    expect(text).toContain('fedgate_coordinator_stage_duration_seconds_count{stage="nonce_reveal"} 2');
    expect(text).toContain('fedgate_coordinator_stage_duration_seconds_bucket{le="5",stage="masked_input"} 1');
    expect(text).toContain('fedgate_coordinator_round_duration_seconds_count{outcome="committed"} 1');
    expect(text).toContain('fedgate_coordinator_round_duration_seconds_count{outcome="aborted"} 1');
    expect(text).toContain('fedgate_coordinator_unmask_duration_seconds_count 1');
    expect(text).toContain('fedgate_coordinator_aggregation_duration_seconds_sum 0.02');
    expect(text).toContain('fedgate_coordinator_participants_in_round 0');
    expect(text).toContain('fedgate_coordinator_participants_connected 3');
    expect(text).toContain('fedgate_coordinator_certificates_revoked 2');
    expect(text).toContain('fedgate_coordinator_ledger_height 4');
    expect(text).toContain('fedgate_coordinator_rounds_configured 10');
    expect(text).toContain('fedgate_coordinator_last_round_eval_loss 0.5');
    expect(text).toContain('fedgate_coordinator_last_round_eval_accuracy 0.8');
    expect(text).toContain('fedgate_coordinator_last_round_survivors 2');
    expect(text).toContain(`fedgate_coordinator_last_commit_timestamp_seconds ${Date.parse(base.at) / 1000}`);
    // Process metrics were not asked for.
    expect(text).not.toContain('process_cpu_seconds_total');
  });

  it('counts bytes by direction and RPC, and stops following a detached federation', async () => {
    const metrics = new CoordinatorMetrics({ processMetrics: false });
    const federation = fakeFederation();
    metrics.attach({ federation, connectedSites: () => 0, revokedCertificates: () => 0, roundsConfigured: 1 });
    metrics.transferred('received', 'UploadMaskedInput', 1000);
    metrics.transferred('received', 'UploadMaskedInput', 24);
    metrics.transferred('sent', 'DownloadModel', 4096);
    metrics.detach();
    federation.emit('round', { ...base, type: 'round_started' });
    const text = await metrics.registry.metrics();
    expect(text).toContain('fedgate_coordinator_received_bytes_total{rpc="UploadMaskedInput"} 1024');
    expect(text).toContain('fedgate_coordinator_sent_bytes_total{rpc="DownloadModel"} 4096');
    expect(text).toContain('fedgate_coordinator_rounds_started_total 0');
    expect(federation.listenerCount('round')).toBe(0);
  });

  it('keeps abort reasons to reason codes: anything else is OTHER', async () => {
    const metrics = new CoordinatorMetrics({ processMetrics: false });
    const federation = fakeFederation();
    metrics.attach({ federation, connectedSites: () => 0, revokedCertificates: () => 0, roundsConfigured: 1 });
    for (const reason of ['not a code', 'x'.repeat(100), undefined]) federation.emit('round', { ...base, type: 'round_aborted', ...(reason === undefined ? {} : { reason }) });
    expect(await metrics.registry.metrics()).toContain('fedgate_coordinator_rounds_aborted_total{reason="OTHER"} 3');
  });

  it('uses a registry of its own: two coordinators in one process keep separate series, process metrics included', async () => {
    const first = new CoordinatorMetrics();
    const second = new CoordinatorMetrics();
    first.transferred('sent', 'DownloadModel', 10);
    expect(await first.registry.metrics()).toContain('fedgate_coordinator_sent_bytes_total{rpc="DownloadModel"} 10');
    expect(await second.registry.metrics()).not.toContain('fedgate_coordinator_sent_bytes_total{rpc="DownloadModel"}');
    expect(await second.registry.metrics()).toContain('process_cpu_seconds_total');
  });
});
