/**
 * GetStatus reports a task's record-level DP from its public parameters (coordinator/admin/task-privacy.ts
 * through adminHandlers): the epsilon of the committed rounds, at the delta the operator asks for, exactly
 * what a site charges (crypto/dp dpSgdRoundsEpsilon); nothing for a task without DP.
 */
import type { ServerUnaryCall, ServiceError, sendUnaryData } from '@grpc/grpc-js';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { dpSgdRoundsEpsilon } from '../../../../crypto/dp/dp-sgd-round.js';
import { adminHandlers, type AdminServiceContext } from '../../../../coordinator/admin/admin-service.js';
import type { TaskPrivacy } from '../../../../coordinator/admin/task-privacy.js';
import type { GetStatusRequest, GetStatusResponse } from '../../../../proto/admin-messages.js';
import type { GetStatusResponse as GetStatusResponseSent } from '../../../../proto/generated/fedgate/v1/GetStatusResponse.js';
import { statusText } from '../../../../cli/commands/admin-format.js';

const RECORD_LEVEL = { clipNorm: 1.5, noiseMultiplier: 1.2, samplingRate: 0.02, stepsPerRound: 50 };
const PRIVACY: TaskPrivacy = { recordLevel: RECORD_LEVEL, dimension: 650 };

/** The parts of the coordinator GetStatus reads, standing still at `committedRounds`. */
function context(committedRounds: number, privacy: TaskPrivacy | undefined): AdminServiceContext {
  const fake = {
    federationId: 'fed',
    fedgateVersion: '0.1.0',
    taskHash: 'ab'.repeat(32),
    roundsConfigured: 10,
    minParticipants: 3,
    secureAggregation: true,
    startedAt: new Date(1000),
    federation: { currentModelHash: 'cd'.repeat(32), committedRounds, finalEvaluation: undefined },
    sessions: { connected: () => [] },
    exports: { onnxSha256: async () => 'ef'.repeat(32) },
    watch: { openRound: undefined },
    revocations: { serials: new Set<string>() },
    logger: pino({ level: 'silent' }),
    ...(privacy === undefined ? {} : { privacy }),
  };
  return fake as unknown as AdminServiceContext;
}

function getStatus(admin: AdminServiceContext, request: GetStatusRequest): Promise<GetStatusResponse> {
  return new Promise((resolve, reject) => {
    // The service fills every field (admin-service.ts status), so what it sends reads as the __Output shape.
    const callback: sendUnaryData<GetStatusResponseSent> = (error, response) => (error === null ? resolve(response as GetStatusResponse) : reject(error as ServiceError));
    adminHandlers(admin).GetStatus({ request } as ServerUnaryCall<GetStatusRequest, GetStatusResponseSent>, callback);
  });
}

describe('GetStatus: the epsilon of a task with record-level DP', () => {
  it('reports the public parameters and the epsilon of the committed rounds at delta 1e-5 by default', async () => {
    const status = await getStatus(context(7, PRIVACY), { privacyDelta: 0 });
    const params = { ...RECORD_LEVEL, dimension: 650 };
    expect(status.recordLevelPrivacy).toEqual({
      clipNorm: 1.5,
      noiseMultiplier: 1.2,
      samplingRate: 0.02,
      stepsPerRound: 50,
      modelParameters: 650,
      roundsCounted: 7,
      delta: 1e-5,
      epsilonPerRound: dpSgdRoundsEpsilon(params, 1, 1e-5),
      epsilonSpent: dpSgdRoundsEpsilon(params, 7, 1e-5),
    });
    expect(status.recordLevelPrivacy?.epsilonSpent).toBeGreaterThan(status.recordLevelPrivacy?.epsilonPerRound ?? Infinity);
    expect(statusText(status)).toMatch(/privacy {7}record-level DP: epsilon \d+\.\d{3} spent in 7 committed round\(s\) \(\d+\.\d{3} per round\) at delta 0\.00001\n {14}clip norm 1\.5, noise multiplier 1\.2, sampling rate 0\.02, 50 steps a round/);
  });

  it('reads the epsilon at the delta the operator asks for, and 0 before any round', async () => {
    const status = await getStatus(context(7, PRIVACY), { privacyDelta: 1e-8 });
    expect(status.recordLevelPrivacy?.delta).toBe(1e-8);
    expect(status.recordLevelPrivacy?.epsilonSpent).toBeCloseTo(dpSgdRoundsEpsilon({ ...RECORD_LEVEL, dimension: 650 }, 7, 1e-8), 12);
    expect(status.recordLevelPrivacy?.epsilonSpent).toBeGreaterThan((await getStatus(context(7, PRIVACY), { privacyDelta: 0 })).recordLevelPrivacy?.epsilonSpent ?? Infinity);
    expect((await getStatus(context(0, PRIVACY), { privacyDelta: 0 })).recordLevelPrivacy?.epsilonSpent).toBe(0);
  });

  it('reports none for a task without DP', async () => {
    const status = await getStatus(context(7, undefined), { privacyDelta: 0 });
    expect(status.recordLevelPrivacy).toBeNull();
    expect(statusText(status)).toContain('privacy       no record-level DP (the task has no privacy.recordLevel)');
  });

  it.each([1, 1.5, -1e-5, Number.NaN])('refuses privacy_delta %s with INVALID_ARGUMENT, naming the range', async (privacyDelta) => {
    const error = await getStatus(context(7, PRIVACY), { privacyDelta }).then(
      () => undefined,
      (caught: unknown) => caught as ServiceError,
    );
    expect(error?.code).toBe(3);
    expect(error?.details).toMatch(/privacy_delta must be in \(0, 1\)/);
  });
});
