/**
 * coordinator.yaml keys of issue 11: how long a failing site is left out of selection
 * (participants.site_backoff), the evaluation-only round on the final model (final_evaluation) and the
 * model a warm-start task begins from (initial_model).
 */
import { describe, expect, it } from 'vitest';
import { ConfigError, compileCoordinatorConfig } from '../../../cli/config/index.js';

const base = { federation_id: 'demo', tls: { ca: 'ca.pem', cert: 'c.pem', key: 'c.key.pem' }, task: 'task.yaml', rounds: 3 };

describe('coordinator.yaml: site backoff, final evaluation, initial model', () => {
  it('defaults: a site is left out after 3 failed rounds in a row for 30 s, doubling to 10 min; the final model is evaluated; no initial model file', () => {
    const config = compileCoordinatorConfig(base, 'coordinator.yaml', '/etc/fedgate');
    expect(config.coordinator.participants.siteBackoff).toEqual({ afterFailures: 3, initialMs: 30_000, maxMs: 600_000 });
    expect(config.coordinator.finalEvaluation).toBe(true);
    expect(config.initialModelPath).toBeUndefined();
  });

  it('takes the keys as written, the initial model path resolved against the config directory', () => {
    const config = compileCoordinatorConfig(
      { ...base, participants: { site_backoff: { after_failures: 5, initial: '1m', max: '1h' } }, final_evaluation: false, initial_model: '../federation-a/model.onnx' },
      'coordinator.yaml',
      '/etc/fedgate',
    );
    expect(config.coordinator.participants.siteBackoff).toEqual({ afterFailures: 5, initialMs: 60_000, maxMs: 3_600_000 });
    expect(config.coordinator.finalEvaluation).toBe(false);
    expect(config.initialModelPath).toBe('/etc/federation-a/model.onnx');
  });

  it.each([
    [{ participants: { site_backoff: { after_failures: 0 } } }, /participants\.site_backoff\.after_failures/],
    [{ participants: { site_backoff: { initial: 'soon' } } }, /participants\.site_backoff\.initial: expected a positive duration/],
    [{ participants: { site_backoff: { initial: '10m', max: '1m' } } }, /participants\.site_backoff\.max: must be at least site_backoff\.initial \(600000 ms\)/],
    [{ participants: { site_backof: {} } }, /site_backof/],
    [{ final_evaluation: 'yes' }, /final_evaluation/],
  ])('refuses %j, naming the key', (extra, message) => {
    expect(() => compileCoordinatorConfig({ ...base, ...extra }, 'coordinator.yaml', '/x')).toThrow(ConfigError);
    expect(() => compileCoordinatorConfig({ ...base, ...extra }, 'coordinator.yaml', '/x')).toThrow(message);
  });
});
