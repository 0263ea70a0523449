/**
 * GetStatus reports a task's record-level DP from its public parameters (coordinator/admin/task-privacy.ts
 * through adminHandlers): the epsilon of the committed rounds, at the delta the operator asks for, exactly
 * what a site charges (crypto/dp dpSgdRoundsEpsilon); nothing for a task without DP. And its
 * participant-level DP (coordinator/admin/participant-level-privacy.ts): the committed rounds' curves from
 * their RoundConfigs, composed as a site composes its charges; the round events' distributed-DP facts.
 */
import type { ServerUnaryCall, ServiceError, sendUnaryData } from '@grpc/grpc-js';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { dpSgdRoundsEpsilon } from '../../../../crypto/dp/dp-sgd-round.js';
import { adminHandlers, type AdminServiceContext } from '../../../../coordinator/admin/admin-service.js';
import type { TaskPrivacy } from '../../../../coordinator/admin/task-privacy.js';
import type { GetStatusRequest, GetStatusResponse } from '../../../../proto/admin-messages.js';
import type { GetStatusResponse as GetStatusResponseSent } from '../../../../proto/generated/fedgate/v1/GetStatusResponse.js';
import { eventText, statusText } from '../../../../cli/commands/admin-format.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { roundEventMessage } from '../../../../coordinator/admin/admin-wire.js';
import { ParticipantLevelAccount } from '../../../../coordinator/admin/participant-level-privacy.js';
import type { LedgerRecord } from '../../../../coordinator/state/ledger.js';
import { toHex } from '../../../../crypto/bytes.js';
import { composeCurves, rdpToEpsilon } from '../../../../crypto/dp/rdp.js';
import { commitBody } from '../../../../crypto/secagg/commit-record-codec.js';
import type { RoundConfig } from '../../../../crypto/secagg/config.js';
import { roundConfigHash } from '../../../../crypto/secagg/config-codec.js';
import { distributedDpReport, participantLevelRoundCurve } from '../../../../crypto/secagg/distributed-dp-round.js';
import type { DistributedDpRequirement } from '../../../../crypto/secagg/dp-fields.js';
import type { CommitRecord } from '../../../../crypto/secagg/server-commit.js';
import { SitePrivacy } from '../../../../participant/round/site-privacy.js';
import { PrivacyBudgetStore } from '../../../../participant/state/index.js';
import { dpRoundConfig } from '../../../support/distributed-dp-round.js';
import { siteIds } from '../../../support/secagg-sim.js';

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

/** A ledger record of a committed round of `config` (what the coordinator appends; only the config matters here). */
function ledgerRecord(config: RoundConfig, sequence: number): LedgerRecord {
  const zero = new Uint8Array(32);
  const record: CommitRecord = {
    config,
    roundConfigHash: roundConfigHash(config),
    keyList: [],
    keyListHash: zero,
    maskedSurvivors: [...config.participants],
    hashes: { previousModelHash: zero, aggregateHash: zero, newModelHash: zero, optimizerStateHash: zero },
    signatures: [],
  };
  const metrics = { participants: config.participants.length, survivors: config.participants.length, evalLossSum: 0, evalCorrect: 0, evalExamples: 0, weightSum: 1 };
  return { formatVersion: 1, sequence, previousRecordHash: '00'.repeat(32), body: commitBody(record, new Date(1000), metrics), recordHash: '11'.repeat(32) };
}

/** A growing ledger the account reads records from. */
class FakeLedger {
  readonly records: LedgerRecord[] = [];
  reads = 0;
  get length(): number {
    return this.records.length;
  }
  append(config: RoundConfig): void {
    this.records.push(ledgerRecord(config, this.records.length + 1));
  }
  async read(sequence: number): Promise<LedgerRecord> {
    this.reads += 1;
    return this.records[sequence - 1] as LedgerRecord;
  }
}

const PARTICIPANT_LEVEL: DistributedDpRequirement = { mechanism: 'discrete_gaussian', clipNorm: 1, noiseMultiplier: 5, toleratedColluders: 1, ringBits: 24 };
let counter = 0;
const dpRound = (sites: number): RoundConfig => dpRoundConfig({ participants: siteIds(sites), degree: sites - 1, parameters: 650, counter: ++counter }, PARTICIPANT_LEVEL);
const byHand = (configs: readonly RoundConfig[], delta: number): number =>
  rdpToEpsilon(
    composeCurves(configs.map((config) => participantLevelRoundCurve(config, config.reconstructionThreshold))),
    delta,
  ).epsilon;

describe('GetStatus: the epsilon of a task with participant-level DP', () => {
  it('composes the curves of the committed rounds from their RoundConfigs at t survivors, as by hand, reading each record once', async () => {
    const ledger = new FakeLedger();
    const account = new ParticipantLevelAccount(PARTICIPANT_LEVEL, ledger);
    expect(await account.message(1e-5)).toMatchObject({ roundsCounted: 0, epsilonSpent: 0, epsilonLastRound: 0 });
    // Rounds of different shapes (10 sites, then 6: another t and scale), each read from its own config.
    const rounds = [dpRound(10), dpRound(10), dpRound(6)];
    for (const round of rounds.slice(0, 2)) ledger.append(round);
    const two = await account.message(1e-5);
    expect(two.roundsCounted).toBe(2);
    expect(two.epsilonSpent).toBeCloseTo(byHand(rounds.slice(0, 2), 1e-5), 12);
    ledger.append(rounds[2] as RoundConfig);
    const three = await account.message(1e-5);
    expect(three).toEqual({ mechanism: 'discrete_gaussian', clipNorm: 1, noiseMultiplier: 5, toleratedColluders: 1, ringBits: 24, roundsCounted: 3, delta: 1e-5, epsilonLastRound: byHand(rounds.slice(2), 1e-5), epsilonSpent: byHand(rounds, 1e-5) });
    // Not the |U|-survivor figure (more noise shares than the guarantee may count on).
    const optimistic = rdpToEpsilon(composeCurves(rounds.map((config) => participantLevelRoundCurve(config, config.participants.length))), 1e-5).epsilon;
    expect(three.epsilonSpent).toBeGreaterThan(optimistic + 0.01);
    expect((await account.message(1e-8)).epsilonSpent).toBeCloseTo(byHand(rounds, 1e-8), 12);
    expect(ledger.reads).toBe(3);
  });

  it('is what a site that trained in every committed round charged to its own budget', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'fedgate-status-pl-'));
    try {
      const ledger = new FakeLedger();
      const site = new SitePrivacy({ requireDp: true, datasetId: new Uint8Array(32).fill(3) }, await PrivacyBudgetStore.open(directory), pino({ level: 'silent' }));
      const facts = { task: { privacy: { participantLevel: PARTICIPANT_LEVEL } }, dimension: 650, trainingExamples: 100 };
      for (const sites of [10, 7, 10]) {
        const round = dpRound(sites);
        await site.chargeRound(new Uint8Array(32).fill(1), round.roundId, facts, round);
        ledger.append(round);
      }
      expect((await new ParticipantLevelAccount(PARTICIPANT_LEVEL, ledger).message(1e-5)).epsilonSpent).toBeCloseTo(site.epsilonSpent(), 10);
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });

  it('GetStatus and `fedgate status` show it beside the record-level figure, and nothing for a task without it', async () => {
    const ledger = new FakeLedger();
    const rounds = [dpRound(10), dpRound(10)];
    for (const round of rounds) ledger.append(round);
    const admin = { ...context(2, PRIVACY), participantLevel: new ParticipantLevelAccount(PARTICIPANT_LEVEL, ledger) } as AdminServiceContext;
    const status = await getStatus(admin, { privacyDelta: 0 });
    expect(status.participantLevelPrivacy?.epsilonSpent).toBeCloseTo(byHand(rounds, 1e-5), 12);
    expect(status.participantLevelPrivacy?.delta).toBe(1e-5);
    expect(status.recordLevelPrivacy?.roundsCounted).toBe(2);
    const text = statusText(status);
    expect(text).toMatch(/privacy {7}record-level DP: epsilon \d+\.\d{3} spent in 2 committed round\(s\)/);
    expect(text).toMatch(/\n {14}participant-level DP: epsilon \d+\.\d{3} spent in 2 committed round\(s\) \(\d+\.\d{3} the last one\) at delta 0\.00001, with at most 1 site\(s\) colluding\n {14}discrete_gaussian, clip norm 1, noise multiplier 5, 24-bit ring/);
    // Participant-level alone: its line leads.
    const alone = statusText(await getStatus({ ...context(2, undefined), participantLevel: new ParticipantLevelAccount(PARTICIPANT_LEVEL, ledger) } as AdminServiceContext, { privacyDelta: 1e-8 }));
    expect(alone).toMatch(/privacy {7}participant-level DP: epsilon \d+\.\d{3} spent in 2 committed round\(s\) .* at delta 1e-8/);
    expect((await getStatus(context(2, PRIVACY), { privacyDelta: 0 })).participantLevelPrivacy).toBeNull();
    expect(statusText(await getStatus(context(2, PRIVACY), { privacyDelta: 0 }))).not.toContain('participant-level');
    // A bad delta is refused before any ledger read.
    const error = await getStatus(admin, { privacyDelta: 2 }).then(
      () => undefined,
      (caught: unknown) => caught as ServiceError,
    );
    expect(error?.code).toBe(3);
  });
});

describe('round events: the distributed DP of a started round', () => {
  it('carries bits per coordinate, D, the wrap bound and the noise to WatchRounds and `fedgate watch`; nothing for a round without', () => {
    const round = dpRound(10);
    const report = distributedDpReport(round);
    const base = { type: 'round_started' as const, roundId: toHex(round.roundId), roundCounter: '1', participants: [...round.participants], at: new Date(5000).toISOString() };
    const message = roundEventMessage({ ...base, distributedDp: report });
    expect(message.distributedDp).toEqual({ bitsPerCoordinate: 24, wrapProbabilityBound: report.wrapProbabilityBound, noiseStd: 5, paddedDimension: 1024 });
    expect(report.wrapProbabilityBound).toBeLessThanOrEqual(2 ** -30);
    expect(eventText(message)).toMatch(/started with 10 participants: .*; distributed DP: 24 bits per coordinate \(D = 1024\), wrap probability <= \d\.\de-\d+, noise std 5 in the sum$/);
    const plain = roundEventMessage(base);
    expect(plain.distributedDp).toBeNull();
    expect(eventText(plain)).not.toContain('distributed DP');
  });
});
