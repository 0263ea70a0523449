import { describe, expect, it } from 'vitest';
import { DashboardState, MAX_DASHBOARD_ROUNDS, evaluationFigure, roundKey } from '../../../../cli/dashboard/dashboard-state.js';
import type { CommittedRound, GetStatusResponse, Participant, RoundEventMessage } from '../../../../proto/admin-messages.js';

const hash = (byte: number): Buffer => Buffer.alloc(32, byte);
const roundId = (counter: number): { counter: number; nonce: Buffer } => ({ counter, nonce: Buffer.alloc(16, counter) });
const metrics = (loss: number, accuracy: number): CommittedRound['metrics'] => ({
  participants: 2,
  survivors: 2,
  evalLossSum: loss * 100,
  evalCorrect: accuracy * 100,
  evalExamples: 100,
  evalLoss: loss,
  evalAccuracy: accuracy,
  weightSum: 1,
});

/** Round `sequence` of a chain whose model after round n is hash(n). */
function committed(sequence: number, overrides: Partial<CommittedRound> = {}): CommittedRound {
  return {
    sequence,
    roundId: roundId(sequence + 10),
    participants: ['site-1', 'site-2', 'site-3'],
    survivors: ['site-1', 'site-2'],
    signers: ['site-1', 'site-2'],
    previousModelHash: hash(sequence - 1),
    modelHash: hash(sequence),
    onnxSha256: hash(100 + sequence),
    aggregateHash: hash(200),
    optimizerStateHash: hash(201),
    recordHash: hash(150 + sequence),
    committedAtUnixMs: 1_000_000 + sequence,
    metrics: metrics(2 / sequence, sequence / 10),
    ...overrides,
  };
}

function event(type: RoundEventMessage['type'], counter: number, extra: Partial<RoundEventMessage> = {}): RoundEventMessage {
  return {
    type,
    roundId: roundId(counter),
    participants: ['site-1', 'site-2', 'site-3'],
    survivors: [],
    sequence: 0,
    modelHash: Buffer.alloc(0),
    abortReason: '',
    metrics: null,
    stageSeconds: {},
    seconds: 0,
    atUnixMs: 5_000,
    purpose: '',
    distributedDp: null,
    ...extra,
  };
}

const participant = (siteId: string, serial: string): Participant => ({ siteId, certificateSerial: serial, connectedAtUnixMs: 10, device: 'cpu', fedgateVersion: '0.1.0', certificateNotAfterUnixMs: 99 });

function status(overrides: Partial<GetStatusResponse> = {}): GetStatusResponse {
  return {
    federationId: 'fed',
    taskHash: hash(7),
    committedRounds: 2,
    roundsConfigured: 10,
    currentModelHash: hash(2),
    currentModelOnnxSha256: hash(102),
    connectedParticipants: 2,
    minParticipants: 2,
    secureAggregation: true,
    openRound: null,
    fedgateVersion: '0.1.0',
    startedAtUnixMs: 1,
    revokedCertificates: 0,
    revokedCertificateSerials: [],
    finalEvaluation: null,
    recordLevelPrivacy: null,
    participantLevelPrivacy: null,
    ...overrides,
  };
}

describe('DashboardState', () => {
  it("keeps a live round's stage durations when the ledger's record of it arrives, and takes the ledger's figures", () => {
    const state = new DashboardState('coordinator:7443', () => 9_000);
    state.applyEvent(event('ROUND_EVENT_STARTED', 11));
    expect(state.snapshot().rounds).toMatchObject([{ key: roundKey(roundId(11)), outcome: 'open', startedAtUnixMs: 5_000 }]);
    state.applyEvent(event('ROUND_EVENT_COMMITTED', 11, { sequence: 1, survivors: ['site-1', 'site-2'], stageSeconds: { masked_input: 1.5, commit: 0.2 }, seconds: 2, metrics: metrics(1.99, 0.5) }));
    const update = state.applyLedgerRounds([committed(1)]);
    expect(update.rounds).toHaveLength(1);
    const [round] = state.snapshot().rounds;
    expect(round).toMatchObject({ sequence: 1, outcome: 'committed', stageSeconds: { masked_input: 1.5, commit: 0.2 }, seconds: 2, evalLoss: 2, evalAccuracy: 0.1, onnxSha256: hash(101).toString('hex'), recordHash: hash(151).toString('hex') });
    expect(state.committedRound(1)?.onnxSha256).toBe(hash(101).toString('hex'));
    expect(state.committedRound(2)).toBeUndefined();
  });

  it('shows aborted rounds with their reason, and ledger rounds it did not see live without stage times', () => {
    const state = new DashboardState('coordinator:7443');
    state.applyLedgerRounds([committed(1), committed(2)]);
    state.applyEvent(event('ROUND_EVENT_ABORTED', 13, { abortReason: 'NONCE_WITHHELD', stageSeconds: { advertise_keys: 30 }, seconds: 30 }));
    const rounds = state.snapshot().rounds;
    expect(rounds.map((round) => [round.counter, round.outcome, round.abortReason])).toEqual([
      [11, 'committed', undefined],
      [12, 'committed', undefined],
      [13, 'aborted', 'NONCE_WITHHELD'],
    ]);
    expect(rounds[0]?.stageSeconds).toEqual({});
  });

  it('lists participants: connected now, last seen, rounds joined and contributed, revoked by serial', () => {
    let now = 20_000;
    const state = new DashboardState('coordinator:7443', () => now);
    state.applyLedgerRounds([committed(1), committed(2)]);
    state.applyParticipants([participant('site-1', 'AA'), participant('site-2', 'BB')]);
    now = 30_000;
    state.applyParticipants([participant('site-1', 'AA')]);
    state.applyStatus(status({ revokedCertificates: 1, revokedCertificateSerials: ['BB'] }));
    expect(state.snapshot().participants.map((site) => [site.siteId, site.connected, site.lastSeenUnixMs, site.roundsJoined, site.roundsContributed, site.revoked])).toEqual([
      ['site-1', true, 30_000, 2, 2, false],
      ['site-2', false, 20_000, 2, 2, true],
      // Known from the rounds only: never connected while the dashboard watched.
      ['site-3', false, 1_000_002, 2, 0, false],
    ]);
  });

  it('checks the chain of the rounds it holds: contiguous, each starting from the model of the round before', () => {
    const state = new DashboardState('coordinator:7443', () => 42);
    const ok = state.applyLedgerRounds([committed(1), committed(2), committed(3)]);
    expect(ok.ledger).toMatchObject({ headHash: hash(153).toString('hex'), verification: { ok: true, checkedAtUnixMs: 42, detail: expect.stringContaining('rounds 1..3: contiguous') } });
    const forked = new DashboardState('coordinator:7443');
    expect(forked.applyLedgerRounds([committed(1), committed(2, { previousModelHash: hash(9) })]).ledger?.verification).toMatchObject({ ok: false, detail: expect.stringContaining('round 2 starts from model 0909') });
    const gap = new DashboardState('coordinator:7443');
    expect(gap.applyLedgerRounds([committed(1), committed(3)]).ledger?.verification).toMatchObject({ ok: false, detail: expect.stringContaining('round 1 is followed by round 3') });
  });

  it('reports connection changes once, and keeps only the newest rounds', () => {
    const state = new DashboardState('coordinator:7443');
    expect(state.snapshot().connection).toMatchObject({ state: 'connecting', coordinator: 'coordinator:7443' });
    expect(state.applyConnection('live', 'live')).toBeDefined();
    expect(state.applyConnection('live', 'live')).toBeUndefined();
    const many = Array.from({ length: MAX_DASHBOARD_ROUNDS + 5 }, (_, index) => committed(index + 1));
    state.applyLedgerRounds(many);
    const rounds = state.snapshot().rounds;
    expect(rounds).toHaveLength(MAX_DASHBOARD_ROUNDS);
    expect(rounds[0]?.sequence).toBe(6);
  });
});

describe('the evaluation figure the dashboard charts fits the task', () => {
  const base = metrics(0.5, 0.8) as NonNullable<CommittedRound['metrics']>;

  it('is the accuracy for class labels (no evalKind), micro-F1 for multi-label, R^2 for regression', () => {
    expect(evaluationFigure(base)).toEqual({ name: 'accuracy', value: 0.8 });
    expect(evaluationFigure({ ...base, evalKind: 'multi_label', evalF1: 0.679 })).toEqual({ name: 'micro-F1', value: 0.679 });
    expect(evaluationFigure({ ...base, evalKind: 'regression', evalR2: -0.25 })).toEqual({ name: 'R^2', value: -0.25 });
  });

  it('is absent when the figure is (a regression round with no R^2, e.g. no target variance)', () => {
    expect(evaluationFigure({ ...base, evalKind: 'regression' })).toBeUndefined();
  });

  it('reaches the round views of the ledger', () => {
    const state = new DashboardState('coordinator:7443');
    state.applyLedgerRounds([committed(1, { metrics: { ...base, evalKind: 'regression', evalR2: 0.3515 } })]);
    expect(state.snapshot().rounds[0]?.evalFigure).toEqual({ name: 'R^2', value: 0.3515 });
  });
});
