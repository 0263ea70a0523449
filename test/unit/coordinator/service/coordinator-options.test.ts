import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { compileCoordinatorConfig } from '../../../../cli/config/index.js';
import { compileCoordinatorOptions, type CoordinatorOptions } from '../../../../coordinator/service/coordinator-options.js';
import { FedgateError } from '../../../../proto/errors.js';
import { DIGITS_MLP_TASK } from '../../../support/in-memory-federation.js';

const required: CoordinatorOptions = {
  federationId: 'options-test',
  tls: { caPem: 'ca', certPem: 'cert', keyPem: 'key' },
  stateDirectory: '/var/lib/fedgate',
  task: DIGITS_MLP_TASK,
  rounds: 5,
  logger: pino({ level: 'silent' }),
};

describe('compileCoordinatorOptions (options -> defaults -> validated, once)', () => {
  it('applies every documented default', () => {
    const compiled = compileCoordinatorOptions(required);
    expect(compiled).toMatchObject({
      listen: '0.0.0.0:7443',
      revokedSerials: [],
      admin: { enabled: true },
      participants: { minimum: 3, sampleFraction: 1, waitTimeoutMs: 300_000 },
      secureAggregation: true,
      secagg: { clipBound: 1, maxWeight: 10_000, maxEvalExamples: 100_000, maxLossPerExample: 50 },
      deadlines: { advertiseKeysMs: 30_000, shareKeysMs: 30_000, maskedInputMs: 600_000, consistencyCheckMs: 30_000, unmaskMs: 30_000, commitMs: 30_000 },
      serverOptimizer: { kind: 'fedavg', learningRate: 1 },
      heartbeatIntervalMs: 10_000,
    });
    expect(compiled.secagg.neighbourDegree).toBeUndefined();
    expect(compiled.participants.allowList).toBeUndefined();
    expect(compiled.faultPoint).toBeUndefined();
    expect(Object.isFrozen(compiled)).toBe(true);
  });

  it('keeps what the caller set, stage by stage', () => {
    const compiled = compileCoordinatorOptions({ ...required, participants: { minimum: 2 }, secagg: { neighbourDegree: 4 }, deadlines: { unmaskMs: 5_000 } });
    expect(compiled.participants).toEqual({ minimum: 2, sampleFraction: 1, waitTimeoutMs: 300_000, siteBackoff: { afterFailures: 3, initialMs: 30_000, maxMs: 600_000 } });
    expect(compiled.secagg.neighbourDegree).toBe(4);
    expect(compiled.secagg.clipBound).toBe(1);
    expect(compiled.deadlines.unmaskMs).toBe(5_000);
    expect(compiled.deadlines.commitMs).toBe(30_000);
  });

  it('compiling a compiled object changes nothing', () => {
    const compiled = compileCoordinatorOptions({ ...required, secagg: { reconstructionThreshold: 3 } });
    expect(compileCoordinatorOptions(compiled)).toEqual(compiled);
  });

  it('has the defaults coordinator.yaml documents: a minimal file compiles to the same settings', () => {
    const config = compileCoordinatorConfig({ federation_id: 'options-test', tls: { ca: 'ca.pem', cert: 'c.pem', key: 'k.pem' }, task: 'task.yaml', rounds: 5, state_dir: '/var/lib/fedgate' }, 'coordinator.yaml', '/etc/fedgate');
    const { admin, ...settings } = config.coordinator;
    expect(admin).toEqual({ enabled: true });
    const compiled = compileCoordinatorOptions(required);
    for (const [key, value] of Object.entries(settings)) expect(compiled[key as keyof typeof settings], key).toEqual(value);
  });

  it.each([
    [{ rounds: 0 }, 'rounds must be a positive integer, got 0'],
    [{ federationId: 'has space' }, 'federationId must be 1-63 letters'],
    [{ listen: 'localhost' }, 'listen must be host:port'],
    [{ participants: { minimum: 1 } }, 'participants.minimum must be an integer of at least 2'],
    [{ participants: { sampleFraction: 0 } }, 'participants.sampleFraction must be in (0, 1]'],
    [{ secagg: { neighbourDegree: 3 } }, 'secagg.neighbourDegree must be a positive even integer'],
    [{ secagg: { reconstructionThreshold: 1.5 } }, 'secagg.reconstructionThreshold must be a positive integer'],
    [{ secagg: { clipBound: -1 } }, 'secagg.clipBound must be a positive number'],
    [{ secagg: { maxWeight: 0 } }, 'secagg.maxWeight must be a positive integer'],
    [{ deadlines: { commitMs: 25 * 3_600_000 } }, 'deadlines.commitMs must be a whole number of milliseconds in [1, 86400000], got 90000000'],
    [{ serverOptimizer: { kind: 'fedavgm', learningRate: 1, momentum: 1 } }, 'serverOptimizer.momentum must be in [0, 1), got 1'],
    [{ heartbeatIntervalMs: 0 }, 'heartbeatIntervalMs must be a positive whole number of milliseconds'],
  ] as const)('refuses bad option %#, naming it', (change, message) => {
    const compile = (): unknown => compileCoordinatorOptions({ ...required, ...change } as CoordinatorOptions);
    expect(compile).toThrow(FedgateError);
    expect(compile).toThrow(message);
  });

  it('reports every bad option at once', () => {
    expect(() => compileCoordinatorOptions({ ...required, rounds: -1, participants: { minimum: 0 } })).toThrow(/rounds must .*; participants\.minimum must/);
  });
});
