/**
 * The site's own privacy accounting (participant/round/site-privacy.ts): the tasks it accepts, the round
 * it refuses with a budget, the charge before training, persisted, and charged once per round id.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { dpSgdRoundRdp, dpSgdRoundsEpsilon } from '../../../../crypto/dp/dp-sgd-round.js';
import { composeCurves, curveOnOrders, DEFAULT_ORDERS, rdpToEpsilon } from '../../../../crypto/dp/rdp.js';
import { createRoundConfig, type RoundConfig } from '../../../../crypto/secagg/config.js';
import { participantLevelRoundCurve } from '../../../../crypto/secagg/distributed-dp-round.js';
import type { RoundDistributedDp } from '../../../../crypto/secagg/dp-fields.js';
import { dpRoundConfig } from '../../../support/distributed-dp-round.js';
import { siteIds } from '../../../support/secagg-sim.js';
import { PRIVACY_BUDGET_FILE, PrivacyBudgetStore } from '../../../../participant/state/index.js';
import { SitePrivacy, type SitePrivacyPolicy, type TaskPrivacyFacts } from '../../../../participant/round/site-privacy.js';
import { FedgateError } from '../../../../platform/index.js';

const digest = (byte: number): Uint8Array => new Uint8Array(32).fill(byte);
const roundId = (n: number): Uint8Array => Uint8Array.of(0, 0, 0, 0, 0, 0, 0, n, ...new Uint8Array(16).fill(n));
const DATASET = digest(0xd1);
const TASK = digest(0x7a);
const RECORD_LEVEL = { clipNorm: 1, noiseMultiplier: 1.1, samplingRate: 0.01, stepsPerRound: 100 };
const DP_TASK: TaskPrivacyFacts = { task: { privacy: { recordLevel: RECORD_LEVEL } }, dimension: 1000, trainingExamples: 600 };
const PLAIN_TASK: TaskPrivacyFacts = { task: {}, dimension: 1000, trainingExamples: 600 };
const DELTA = 1e-5;
/** Two rounds of DP_TASK fit (epsilon ~1.44), a third does not (~1.52). */
const BUDGET = { epsilon: 1.48, delta: DELTA };

/** Participant-level DP whose one round costs ~0.98 at t = 7 of 10 (two ~1.40, three ~1.72). */
const PARTICIPANT_LEVEL = { mechanism: 'discrete_gaussian' as const, clipNorm: 1, noiseMultiplier: 5, toleratedColluders: 1, ringBits: 32 };
const PL_TASK: TaskPrivacyFacts = { task: { privacy: { participantLevel: PARTICIPANT_LEVEL } }, dimension: 1000, trainingExamples: 600 };
const BOTH_TASK: TaskPrivacyFacts = { task: { privacy: { recordLevel: RECORD_LEVEL, participantLevel: PARTICIPANT_LEVEL } }, dimension: 1000, trainingExamples: 600 };
let plCounter = 0;
/** A fresh round of 10 sites (t = 7) with the distributedDp an honest coordinator derives from PARTICIPANT_LEVEL. */
const plRound = (): RoundConfig => dpRoundConfig({ participants: siteIds(10), degree: 9, parameters: 1000, counter: ++plCounter }, PARTICIPANT_LEVEL);
const lying = (config: RoundConfig, change: Partial<RoundDistributedDp>): RoundConfig => createRoundConfig({ ...config, distributedDp: { ...(config.distributedDp as RoundDistributedDp), ...change } });
/** Epsilon at DELTA of curves composed on the store's grid (what a site's total must be). */
const composedEpsilon = (curves: readonly { orders: readonly number[]; rdp: readonly number[] }[]): number =>
  rdpToEpsilon(composeCurves(curves.map((curve) => curveOnOrders(curve, DEFAULT_ORDERS)), DEFAULT_ORDERS), DELTA).epsilon;

/** The reason of any error with one (a SecAggError of the config check or a FedgateError). */
async function reasonOfRejection(work: () => Promise<unknown> | unknown): Promise<string | undefined> {
  try {
    await work();
  } catch (error) {
    return (error as { reason?: string }).reason;
  }
  throw new Error('expected a refusal');
}

type LogLine = Record<string, unknown> & { msg?: string };

function reasonOf(error: unknown): string | undefined {
  return error instanceof FedgateError ? error.reason : undefined;
}

async function rejection(work: () => Promise<unknown> | unknown): Promise<FedgateError> {
  try {
    await work();
  } catch (error) {
    expect(error).toBeInstanceOf(FedgateError);
    return error as FedgateError;
  }
  throw new Error('expected a refusal');
}

describe('SitePrivacy', () => {
  let directory: string;
  let log: LogLine[];
  const open = async (policy: Partial<SitePrivacyPolicy> = {}): Promise<SitePrivacy> =>
    new SitePrivacy({ budget: BUDGET, requireDp: true, datasetId: DATASET, ...policy }, await PrivacyBudgetStore.open(directory), pino({ level: 'debug' }, { write: (line: string) => log.push(JSON.parse(line) as LogLine) }));

  beforeEach(async () => {
    directory = await mkdtemp(join(tmpdir(), 'fedgate-site-privacy-'));
    log = [];
  });
  afterEach(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  describe('task acceptance', () => {
    it('a site with a budget refuses a task without recordLevel (DP_REQUIRED): an undefended round spends unbounded epsilon', async () => {
      const privacy = await open();
      expect(reasonOf(await rejection(() => privacy.account(PLAIN_TASK)))).toBe('DP_REQUIRED');
      expect(reasonOf(await rejection(() => privacy.checkRound(PLAIN_TASK, true)))).toBe('DP_REQUIRED');
      // Even an evaluation-only round of it: the site does not take part in a task it does not accept.
      expect(reasonOf(await rejection(() => privacy.checkRound(PLAIN_TASK, false)))).toBe('DP_REQUIRED');
    });

    it('a site with require_dp and no budget refuses it too; a site with neither trains it and counts nothing', async () => {
      const strict = new SitePrivacy({ requireDp: true, datasetId: DATASET }, await PrivacyBudgetStore.open(directory), pino({ level: 'silent' }));
      expect((await rejection(() => strict.account(PLAIN_TASK))).message).toMatch(/requires DP \(site\.yaml privacy\.require_dp\)/);
      const lenient = new SitePrivacy({ requireDp: false, datasetId: DATASET }, await PrivacyBudgetStore.open(directory), pino({ level: 'silent' }));
      expect(lenient.account(PLAIN_TASK)).toBeUndefined();
      await lenient.chargeRound(TASK, roundId(1), PLAIN_TASK);
      expect(lenient.epsilonSpent()).toBe(0);
    });

    it('refuses a sampling rate whose expected batch q N is below one record (DP_UNACCOUNTABLE), and accepts q N = 1', async () => {
      const privacy = await open();
      const tiny = { ...DP_TASK, trainingExamples: 99 };
      const error = await rejection(() => privacy.account(tiny));
      expect(error.reason).toBe('DP_UNACCOUNTABLE');
      expect(error.message).toMatch(/expected batch of 0\.990 < 1 record/);
      expect(privacy.account({ ...DP_TASK, trainingExamples: 100 })).toBeDefined();
    });

    it('accounts a round from the public parameters alone: dpSgdRoundRdp of recordLevel and the model dimension', async () => {
      const account = (await open()).account(DP_TASK);
      expect(account?.curve).toEqual(dpSgdRoundRdp({ ...RECORD_LEVEL, dimension: 1000 }));
      expect(account?.epsilon).toBeCloseTo(dpSgdRoundsEpsilon({ ...RECORD_LEVEL, dimension: 1000 }, 1, DELTA), 12);
    });
  });

  describe('charging rounds', () => {
    it('charges what the accountant says, logs epsilon spent, this round and remaining, and refuses the round that would exceed the budget without charging it', async () => {
      const privacy = await open();
      await privacy.chargeRound(TASK, roundId(1), DP_TASK);
      await privacy.chargeRound(TASK, roundId(2), DP_TASK);
      const twoRounds = dpSgdRoundsEpsilon({ ...RECORD_LEVEL, dimension: 1000 }, 2, DELTA);
      expect(privacy.epsilonSpent()).toBeCloseTo(twoRounds, 10);
      const charged = log.filter((line) => line.msg === 'charged this round to the privacy budget before training');
      expect(charged).toHaveLength(2);
      expect(charged[1]).toMatchObject({ budgetEpsilon: 1.48, delta: DELTA });
      expect(charged[1]?.epsilonSpent).toBeCloseTo(twoRounds, 10);
      expect(charged[1]?.epsilonRemaining).toBeCloseTo(1.48 - twoRounds, 10);
      expect(charged[1]?.epsilonThisRound).toBeCloseTo(twoRounds - dpSgdRoundsEpsilon({ ...RECORD_LEVEL, dimension: 1000 }, 1, DELTA), 10);

      const before = await readFile(join(directory, PRIVACY_BUDGET_FILE), 'utf8');
      // At round start (no charge) and at the charge itself: the same refusal, with the figures for the log.
      const atStart = await rejection(() => privacy.checkRound(DP_TASK, true));
      expect(atStart.reason).toBe('PRIVACY_BUDGET_EXCEEDED');
      const atCharge = await rejection(() => privacy.chargeRound(TASK, roundId(3), DP_TASK));
      expect(atCharge.reason).toBe('PRIVACY_BUDGET_EXCEEDED');
      expect(atCharge.message).toMatch(/epsilon spent on this site's data 1\.44\d\d, this round would cost 0\.08\d\d more .* for a total of 1\.52\d\d, above the budget epsilon 1\.48 at delta 0\.00001; nothing was charged/);
      expect(await readFile(join(directory, PRIVACY_BUDGET_FILE), 'utf8')).toBe(before);
      expect(privacy.epsilonSpent()).toBeCloseTo(twoRounds, 10);
      // An evaluation-only round trains nothing: the exhausted budget does not refuse it.
      expect(() => privacy.checkRound(DP_TASK, false)).not.toThrow();
    });

    it('keeps the charge across a crash-restart (the store reopened from state_dir)', async () => {
      await (await open()).chargeRound(TASK, roundId(1), DP_TASK);
      const restarted = await open();
      expect(restarted.epsilonSpent()).toBeCloseTo(dpSgdRoundsEpsilon({ ...RECORD_LEVEL, dimension: 1000 }, 1, DELTA), 10);
      // ... and the round it charged before the crash is not charged, nor trained, again.
      expect(reasonOf(await rejection(() => restarted.chargeRound(TASK, roundId(1), DP_TASK)))).toBe('ROUND_ALREADY_CHARGED');
    });

    it('charges a round id once: the same round again, or re-sent with another task hash, is refused and charges nothing', async () => {
      const privacy = await open({ budget: { epsilon: 100, delta: DELTA } });
      await privacy.chargeRound(TASK, roundId(7), DP_TASK);
      const once = privacy.epsilonSpent();
      expect(reasonOf(await rejection(() => privacy.chargeRound(TASK, roundId(7), DP_TASK)))).toBe('ROUND_ALREADY_CHARGED');
      expect(reasonOf(await rejection(() => privacy.chargeRound(digest(0x7b), roundId(7), DP_TASK)))).toBe('ROUND_ALREADY_CHARGED');
      expect(privacy.epsilonSpent()).toBe(once);
    });

    it('a site without a budget still counts DP rounds (at delta 1e-5), once each', async () => {
      const privacy = new SitePrivacy({ requireDp: false, datasetId: DATASET }, await PrivacyBudgetStore.open(directory), pino({ level: 'silent' }));
      for (let round = 1; round <= 30; round++) await privacy.chargeRound(TASK, roundId(round), DP_TASK);
      expect(privacy.epsilonSpent()).toBeCloseTo(dpSgdRoundsEpsilon({ ...RECORD_LEVEL, dimension: 1000 }, 30, 1e-5), 10);
      expect(reasonOf(await rejection(() => privacy.chargeRound(TASK, roundId(30), DP_TASK)))).toBe('ROUND_ALREADY_CHARGED');
    });
  });

  describe('participant-level DP', () => {
    it('a site requiring DP accepts a task with participant-level DP alone (it bounds each of its records too); neither kind is still DP_REQUIRED', async () => {
      const privacy = await open();
      expect(privacy.account(PL_TASK)).toBeUndefined();
      expect(() => privacy.checkRound(PL_TASK, true, plRound())).not.toThrow();
      expect(() => privacy.checkRound(PL_TASK, false)).not.toThrow();
      expect((await rejection(() => privacy.account(PLAIN_TASK))).message).toMatch(/neither privacy\.recordLevel nor privacy\.participantLevel/);
    });

    it('charges the round curve at t survivors (participantLevelRoundCurve of its RoundConfig), once per round id, and refuses the round over budget at round start and at the charge, charging nothing', async () => {
      const privacy = await open({ budget: { epsilon: 1.5, delta: DELTA } });
      const first = plRound();
      const t = first.reconstructionThreshold;
      await privacy.chargeRound(TASK, first.roundId, PL_TASK, first);
      const curve = participantLevelRoundCurve(first, t);
      expect(privacy.epsilonSpent()).toBeCloseTo(composedEpsilon([curve]), 10);
      // The worst case, not the round's actual |U| survivors (more noise shares, less epsilon).
      expect(privacy.epsilonSpent()).toBeGreaterThan(composedEpsilon([participantLevelRoundCurve(first, first.participants.length)]) + 0.01);
      const log1 = log.find((line) => line.msg === 'charged this round to the privacy budget before training');
      expect(log1?.participantLevelEpsilonOfRound).toBeCloseTo(composedEpsilon([curve]), 10);
      expect(log1?.recordLevelEpsilonOfRound).toBeUndefined();

      // Re-sent (same round, or its id under another task hash): refused, not charged again.
      const once = privacy.epsilonSpent();
      expect(await reasonOfRejection(() => privacy.chargeRound(TASK, first.roundId, PL_TASK, first))).toBe('ROUND_ALREADY_CHARGED');
      expect(await reasonOfRejection(() => privacy.chargeRound(digest(0x7b), first.roundId, PL_TASK, first))).toBe('ROUND_ALREADY_CHARGED');
      expect(privacy.epsilonSpent()).toBe(once);

      const second = plRound();
      await privacy.chargeRound(TASK, second.roundId, PL_TASK, second);
      expect(privacy.epsilonSpent()).toBeCloseTo(composedEpsilon([curve, participantLevelRoundCurve(second, t)]), 10);
      const before = await readFile(join(directory, PRIVACY_BUDGET_FILE), 'utf8');
      const third = plRound();
      expect(await reasonOfRejection(() => privacy.checkRound(PL_TASK, true, third))).toBe('PRIVACY_BUDGET_EXCEEDED');
      expect(await reasonOfRejection(() => privacy.chargeRound(TASK, third.roundId, PL_TASK, third))).toBe('PRIVACY_BUDGET_EXCEEDED');
      expect(await readFile(join(directory, PRIVACY_BUDGET_FILE), 'utf8')).toBe(before);
      // An evaluation-only round adds no noise and trains nothing: not refused for the budget.
      expect(() => privacy.checkRound(PL_TASK, false)).not.toThrow();
    });

    it('a RoundConfig whose distributedDp is not what the task asks is refused with its code at round start and at the charge, and charges nothing', async () => {
      const privacy = await open({ budget: { epsilon: 100, delta: DELTA } });
      const honest = plRound();
      const { distributedDp: _dropped, ...withoutDp } = honest;
      for (const [config, reason] of [
        [lying(honest, { noiseMultiplier: 0.5 }), 'DP_PARAMETERS_MISMATCH'],
        [lying(honest, { scale: (honest.distributedDp as RoundDistributedDp).scale * 2 }), 'DP_SCALE_MISMATCH'],
        [createRoundConfig(withoutDp), 'DP_REQUIRED'],
      ] as const) {
        expect(await reasonOfRejection(() => privacy.checkRound(PL_TASK, true, config))).toBe(reason);
        expect(await reasonOfRejection(() => privacy.chargeRound(TASK, config.roundId, PL_TASK, config))).toBe(reason);
      }
      expect(privacy.epsilonSpent()).toBe(0);
      expect(await readFile(join(directory, PRIVACY_BUDGET_FILE), 'utf8').catch(() => 'none')).toBe('none');
      // The honest round of the same id is still chargeable: a refused config used nothing up.
      await privacy.chargeRound(TASK, honest.roundId, PL_TASK, honest);
      expect(privacy.epsilonSpent()).toBeGreaterThan(0);
    });

    it('a task with record-level and participant-level DP charges both curves composed, on one dataset with record-level rounds of another task', async () => {
      const privacy = await open({ budget: { epsilon: 100, delta: DELTA } });
      const round = plRound();
      await privacy.chargeRound(TASK, round.roundId, BOTH_TASK, round);
      const recordCurve = dpSgdRoundRdp({ ...RECORD_LEVEL, dimension: 1000 });
      const participantCurve = participantLevelRoundCurve(round, round.reconstructionThreshold);
      expect(privacy.epsilonSpent()).toBeCloseTo(composedEpsilon([recordCurve, participantCurve]), 10);
      expect(privacy.epsilonSpent()).toBeGreaterThan(Math.max(composedEpsilon([recordCurve]), composedEpsilon([participantCurve])) + 0.01);
      const line = log.find((entry) => entry.msg === 'charged this round to the privacy budget before training');
      expect(line?.recordLevelEpsilonOfRound).toBeCloseTo(composedEpsilon([recordCurve]), 10);
      expect(line?.participantLevelEpsilonOfRound).toBeCloseTo(composedEpsilon([participantCurve]), 10);
      // A record-level round of another task on the same records adds to the same total.
      await privacy.chargeRound(digest(0x7c), roundId(9), DP_TASK);
      expect(privacy.epsilonSpent()).toBeCloseTo(composedEpsilon([recordCurve, participantCurve, recordCurve]), 10);
    });

    it('will not account a participant-level round without its RoundConfig', async () => {
      const privacy = await open();
      await expect(privacy.chargeRound(TASK, roundId(1), PL_TASK)).rejects.toThrow(/pass the RoundConfig/);
      expect(privacy.epsilonSpent()).toBe(0);
    });
  });
});
