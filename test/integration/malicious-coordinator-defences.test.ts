/**
 * A malicious coordinator tries each attack of the privacy issue against real participant daemons over
 * mutual TLS (test/support/malicious-coordinator.ts), and reads every refusal. For each attack: every
 * site refuses with the attack's reason code (crypto/secagg/site-refusals.ts), and the subtraction of any
 * two aggregates the coordinator obtained recovers no single site's update, weight or metrics
 * (test/support/subtraction.ts; malicious-coordinator.test.ts shows the same check recovering a site
 * that cannot see the attack).
 *
 * Each attack plays out whole: where a site accepts the lie, the coordinator goes on to the second
 * aggregate that the lie was for, so a missing defence shows both as a missing refusal and as a site
 * recovered.
 *
 * The sites keep their defaults (ATTACKED_SITE_POLICY: site.yaml defaults, min_threshold 2) and their
 * own state directory, which survives a restart.
 */
import { writeFileSync } from 'node:fs';
import { unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SITE_DEFENCE_REASONS } from '../../crypto/secagg/site-refusals.js';
import { encodeServerOptimizerState } from '../../model/server-optimizer.js';
import { openAttack, SiteEvaluator, type Attack, type AttackedSiteSetup } from '../support/attacked-sites.js';
import { digitsTask } from '../support/digits-task.js';
import { digitsShare } from '../support/grpc-federation.js';
import type { MaliciousCoordinator, RecordedRefusal, RoundInput } from '../support/malicious-coordinator.js';
import { createTestPki, type TestPki } from '../support/pki.js';
import { recoveredSites, type Recovery } from '../support/subtraction.js';
import type { ScriptedRound } from '../support/scripted-round.js';

const TASK = digitsTask({ kind: 'mlp', hidden: [16] });
const FEDERATION = 'malicious-coordinator-defences';
const SITES = ['site-1', 'site-2', 'site-3', 'site-4'];
/** Left out of the second aggregate of each subtraction attack: the site the coordinator is after. */
const OTHERS = ['site-1', 'site-2', 'site-3'];
const {
  ROUND_NOT_FRESH,
  MODEL_ALREADY_CONTRIBUTED,
  MODEL_NOT_CHAIN_HEAD,
  OPTIMIZER_STATE_NOT_CHAIN_HEAD,
  COMMIT_RECORD_INVALID,
  STAGE_DEADLINE_PASSED,
  SITE_DATA_INVALID,
} = SITE_DEFENCE_REASONS;
/** How long a site may take to refuse a RoundCommitted (nothing else of the round is pending then). */
const COMMIT_REFUSAL_WAIT_MS = 5000;

let pki: TestPki;
let evaluator: SiteEvaluator;
let attack: Attack | undefined;

beforeAll(async () => {
  pki = await createTestPki();
  evaluator = await SiteEvaluator.create(TASK);
});

afterEach(async () => {
  await attack?.close();
  attack = undefined;
});

afterAll(async () => {
  await evaluator.close();
});

async function open(siteIds: readonly string[] = SITES, setup?: (siteId: string, index: number, directory: string) => AttackedSiteSetup): Promise<Attack> {
  attack = await openAttack({ pki, task: TASK, federationId: FEDERATION, siteIds, ...(setup === undefined ? {} : { setup }) });
  return attack;
}

/** Every single site the coordinator's aggregates give away (subtraction.ts). */
async function recovered(opened: Attack): Promise<Recovery[]> {
  return recoveredSites(opened.coordinator.aggregates, await opened.sites.contributions(opened.coordinator, evaluator));
}

/** [site, reason] of each refusal, sorted by site. */
function reasons(refusals: readonly RecordedRefusal[]): [string, string][] {
  return refusals.map((refusal): [string, string] => [refusal.siteId, refusal.reason]).sort(([a], [b]) => a.localeCompare(b));
}

function each(siteIds: readonly string[], reason: string): [string, string][] {
  return siteIds.map((siteId) => [siteId, reason]);
}

/** Round `counter` on `participants`, started, driven to its aggregate (or its abort). */
async function runRound(coordinator: MaliciousCoordinator, counter: number, participants: readonly string[], choices: Partial<RoundInput> = {}, label = `round ${counter}`): Promise<ScriptedRound> {
  const round = coordinator.round(coordinator.roundConfig({ counter, participants, ...choices }), { label });
  round.start();
  await round.aggregate();
  return round;
}

/** The first round of every subtraction attack: all four sites on the initial model, unmasked, then ended. */
async function firstAggregate(coordinator: MaliciousCoordinator, counter = 1): Promise<ScriptedRound> {
  const round = coordinator.round(coordinator.roundConfig({ counter, participants: SITES }), { label: `round ${counter}` });
  round.start();
  const end = await round.aggregate();
  if (end.status !== 'aggregated') throw new Error(`the honest first round aborted: ${end.reason} ${end.message}`);
  round.abort();
  return round;
}

/**
 * The initial model with one weight moved by one float32 ulp: weights the coordinator made up, off the
 * verified chain, that train and evaluate like the head - a second aggregate on them is as good as a
 * second aggregate on the head.
 */
function publishTwinModel(coordinator: MaliciousCoordinator): Uint8Array {
  const values = new Float32Array(coordinator.plan.initialParameters);
  const bits = new Int32Array(values.buffer, 0, 1);
  bits[0] = (bits[0] as number) + 1;
  return coordinator.publishModel(values);
}

describe('replays of a RoundStart', () => {
  it('a RoundStart replayed with the same id is refused (ROUND_NOT_FRESH), and the subtraction recovers nothing', async () => {
    const opened = await open();
    const { coordinator } = opened;
    const first = await firstAggregate(coordinator);
    const mark = coordinator.refusals.length;
    const replay = coordinator.round(first.config, { label: 'round 1 replayed' });
    replay.start(OTHERS);
    await replay.aggregate();
    expect({ refusals: reasons(coordinator.refusals.slice(mark)), recovered: await recovered(opened) }).toEqual({ refusals: each(OTHERS, ROUND_NOT_FRESH), recovered: [] });
  });

  it('a RoundStart with a lower counter than one the site accepted is refused (ROUND_NOT_FRESH), and the subtraction recovers nothing', async () => {
    const opened = await open();
    const { coordinator } = opened;
    await firstAggregate(coordinator, 5);
    const stale = await runRound(coordinator, 3, OTHERS);
    expect({ refusals: reasons(coordinator.refusalsOf(stale.roundId)), recovered: await recovered(opened) }).toEqual({ refusals: each(OTHERS, ROUND_NOT_FRESH), recovered: [] });
  });

  it('a RoundStart replayed after a site restarted on its state directory is refused (ROUND_NOT_FRESH), and the subtraction recovers nothing', async () => {
    const opened = await open();
    const { coordinator, sites } = opened;
    const first = await firstAggregate(coordinator);
    await sites.restart('site-1', 'keep');
    const mark = coordinator.refusals.length;
    const replay = coordinator.round(first.config, { label: 'round 1 replayed after a restart' });
    replay.start(OTHERS);
    await replay.aggregate();
    expect({ refusals: reasons(coordinator.refusals.slice(mark)), recovered: await recovered(opened) }).toEqual({ refusals: each(OTHERS, ROUND_NOT_FRESH), recovered: [] });
  });
});

describe('a second aggregate on one model', () => {
  it('a second round on the same model with U minus one site is refused (MODEL_ALREADY_CONTRIBUTED), and the subtraction recovers nothing', async () => {
    const opened = await open();
    const { coordinator } = opened;
    await firstAggregate(coordinator);
    const second = await runRound(coordinator, 2, OTHERS);
    expect({ refusals: reasons(coordinator.refusalsOf(second.roundId)), recovered: await recovered(opened) }).toEqual({ refusals: each(OTHERS, MODEL_ALREADY_CONTRIBUTED), recovered: [] });
  });
});

describe('models and optimiser states off the verified chain', () => {
  it('a RoundConfig naming weights off the chain (a made-up twin of the head) is refused (MODEL_NOT_CHAIN_HEAD), and the subtraction recovers nothing', async () => {
    const opened = await open();
    const { coordinator } = opened;
    const offChain = await runRound(coordinator, 1, SITES, { modelHash: publishTwinModel(coordinator) }, 'round 1 on made-up weights');
    const refusals = reasons(coordinator.refusalsOf(offChain.roundId));
    // The head itself, without the target: what the made-up round was to be subtracted from.
    await runRound(coordinator, 2, OTHERS);
    expect({ refusals, recovered: await recovered(opened) }).toEqual({ refusals: each(SITES, MODEL_NOT_CHAIN_HEAD), recovered: [] });
  });

  it('a RoundConfig naming an optimiser state off the chain (another learning rate and velocity) is refused (OPTIMIZER_STATE_NOT_CHAIN_HEAD), and the subtraction recovers nothing', async () => {
    const opened = await open();
    const { coordinator } = opened;
    const parameters = coordinator.plan.initialParameters.length;
    const madeUp = coordinator.publish(encodeServerOptimizerState({ kind: 'fedavgm', learningRate: 3, momentum: 0.9 }, { velocity: new Float32Array(parameters).fill(0.01) }));
    const offChain = await runRound(coordinator, 1, SITES, { optimizerStateHash: madeUp }, 'round 1 with a made-up optimiser state');
    const refusals = reasons(coordinator.refusalsOf(offChain.roundId));
    await runRound(coordinator, 2, OTHERS);
    expect({ refusals, recovered: await recovered(opened) }).toEqual({ refusals: each(SITES, OPTIMIZER_STATE_NOT_CHAIN_HEAD), recovered: [] });
  });
});

describe('RoundCommitted without a valid quorum-signed record', () => {
  /**
   * Round 1 runs honestly through the commit signatures of all four sites; the coordinator then announces
   * `announce(...)` and, once the sites had their say, opens round 2 on the model it announced without the
   * target. Returns the refusals of round 1's RoundCommitted and the recoveries.
   */
  async function commitAttack(announce: (round: ScriptedRound, commit: Awaited<ReturnType<ScriptedRound['commit']>>, coordinator: MaliciousCoordinator) => Uint8Array): Promise<{ refusals: [string, string][]; recovered: Recovery[] }> {
    const opened = await open();
    const { coordinator } = opened;
    const first = coordinator.round(coordinator.roundConfig({ counter: 1, participants: SITES }), { label: 'round 1' });
    first.start();
    const end = await first.aggregate();
    if (end.status !== 'aggregated') throw new Error(`the honest first round aborted: ${end.reason}`);
    const commit = await first.commit(end.result);
    expect(commit.status.signers).toEqual(SITES);
    const announced = announce(first, commit, coordinator);
    const refusals = reasons(await coordinator.waitForRefusals(first.roundId, SITES, COMMIT_REFUSAL_WAIT_MS));
    await runRound(coordinator, 2, OTHERS, { modelHash: announced }, 'round 2 on the announced model');
    return { refusals, recovered: await recovered(opened) };
  }

  it('an unsigned RoundCommitted (no record) is refused (COMMIT_RECORD_INVALID), and the subtraction recovers nothing', async () => {
    const outcome = await commitAttack((round, _commit, coordinator) => {
      const twin = publishTwinModel(coordinator);
      round.announceCommitted({ sequence: 1, newModelHash: twin }, undefined);
      return twin;
    });
    expect(outcome).toEqual({ refusals: each(SITES, COMMIT_RECORD_INVALID), recovered: [] });
  });

  it('a forged RoundCommitted (the quorum\'s signatures moved onto a model nobody signed) is refused (COMMIT_RECORD_INVALID), and the subtraction recovers nothing', async () => {
    const outcome = await commitAttack((round, commit, coordinator) => {
      const twin = publishTwinModel(coordinator);
      const record = commit.record;
      if (record === undefined) throw new Error('round 1 reached no quorum');
      round.announceCommitted({ sequence: 1, newModelHash: twin }, { ...record, hashes: { ...record.hashes, newModelHash: twin } });
      return twin;
    });
    expect(outcome).toEqual({ refusals: each(SITES, COMMIT_RECORD_INVALID), recovered: [] });
  });

  it('a commit record below the quorum a site requires (2 genuine signatures of 4, t = 3) is refused (COMMIT_RECORD_INVALID), and the subtraction recovers nothing', async () => {
    const outcome = await commitAttack((round, commit) => {
      const record = commit.record;
      if (record === undefined) throw new Error('round 1 reached no quorum');
      round.announceCommitted({ sequence: 1, newModelHash: commit.hashes.newModelHash }, { ...record, signatures: record.signatures.slice(0, 2) });
      return commit.hashes.newModelHash;
    });
    expect(outcome).toEqual({ refusals: each(SITES, COMMIT_RECORD_INVALID), recovered: [] });
  });
});

describe('a round that never ends', () => {
  it('a site leaves a round whose next stage never comes by its own deadline (STAGE_DEADLINE_PASSED), answers nothing late, and the subtraction recovers nothing', async () => {
    const opened = await open();
    const { coordinator } = opened;
    const deadlines = { advertiseKeysMs: 2000, shareKeysMs: 2000, maskedInputMs: 5000, consistencyCheckMs: 1500, unmaskMs: 1500, commitMs: 1500 };
    const stalled = coordinator.round(coordinator.roundConfig({ counter: 1, participants: SITES, deadlines }), { label: 'round 1, stalled' });
    const startedAt = Date.now();
    stalled.start();
    await stalled.keyExchange();
    await stalled.maskedInputs();
    // The coordinator holds the masked inputs and never sends the ConsistencyRequest. However a site
    // counts its deadlines, the last one of this stage has passed by the sum of them all (AdvertiseKeys'
    // covers the nonce reveal too, hence twice).
    const lastDeadline = deadlines.advertiseKeysMs * 2 + deadlines.shareKeysMs + deadlines.maskedInputMs + deadlines.consistencyCheckMs;
    const refusals = reasons(await coordinator.waitForRefusals(stalled.roundId, SITES, Math.max(0, startedAt + lastDeadline + 2000 - Date.now())));
    // Then it goes on as if nothing had happened: a site that left answers nothing.
    const mark = coordinator.received.length;
    await stalled.unmask().catch(() => undefined);
    const lateAnswers = coordinator.received.slice(mark).filter((entry) => entry.roundId === stalled.label).map((entry) => [entry.siteId, entry.stage]);
    stalled.abort();
    await runRound(coordinator, 2, OTHERS);
    expect({ refusals, lateAnswers, recovered: await recovered(opened) }).toEqual({ refusals: each(SITES, STAGE_DEADLINE_PASSED), lateAnswers: [], recovered: [] });
  });
});

describe('reading every refusal', () => {
  it('no refusal carries a local value (policy settings, digits of local data, paths): only reason codes, and the subtraction recovers nothing', async () => {
    // Each site has something of its own a careless refusal would tell: a stricter policy, a data file
    // that gets a bad row, a data file that goes missing. site-5 is an ordinary site that lets round 2 run.
    // A site checks its data at start and does not start on a bad file (site-data-grpc.test.ts): sites 3
    // and 4 start on good files, which turn bad while they run.
    const row = (label: number): string => [...Array.from({ length: 64 }, (_, i) => String(i % 17)), String(label)].join(',');
    const good = [row(3), row(4), row(5), row(1), row(2)].join('\n') + '\n';
    const local = new Map<string, string[]>();
    const dataFile = new Map<string, string>();
    const opened = await open(['site-1', 'site-2', 'site-3', 'site-4', 'site-5'], (siteId, index, directory) => {
      switch (siteId) {
        case 'site-1':
          local.set(siteId, ['9', directory]);
          return { policy: { minParticipants: 9 } };
        case 'site-2':
          local.set(siteId, ['7', directory]);
          return { policy: { minThreshold: 7 } };
        case 'site-3':
        case 'site-4': {
          const path = join(directory, siteId === 'site-3' ? 'ward-7-patients.csv' : 'missing-records.csv');
          dataFile.set(siteId, path);
          local.set(siteId, siteId === 'site-3' ? ['17', path, directory] : [path, directory]);
          writeFileSync(path, good);
          return { data: { format: 'csv', path, label_column: 64, header: 'no', test_fraction: 0.2, split_seed: 1 }, dataCheckIntervalMs: 100 };
        }
        default:
          local.set(siteId, [directory]);
          return { data: digitsShare(5, index) };
      }
    });
    const { coordinator, sites } = opened;

    const policyRound = await runRound(coordinator, 1, ['site-1', 'site-2', 'site-3', 'site-4'], {}, 'round 1: policies');
    // A label outside the ten classes on the second row (its digits are local data); a file that is gone.
    await writeFile(dataFile.get('site-3') as string, [row(3), row(17), row(5), row(1)].join('\n') + '\n');
    await unlink(dataFile.get('site-4') as string);
    const noticed = (siteId: string): boolean => sites.log.some((entry) => entry['site'] === siteId && entry['reason'] === SITE_DATA_INVALID && entry.msg !== 'leaving the round');
    await coordinator.until(() => noticed('site-3') && noticed('site-4'), 20_000, () => 'sites 3 and 4 to notice their data went bad');
    const dataRound = await runRound(coordinator, 2, ['site-3', 'site-4', 'site-5'], {}, 'round 2: local data');
    const refusals = [...coordinator.refusalsOf(policyRound.roundId), ...coordinator.refusalsOf(dataRound.roundId)];
    const leaks = refusals
      .filter((refusal) => (local.get(refusal.siteId) ?? []).some((value) => mentions(refusal.message, value)) || ABSOLUTE_PATH.test(refusal.message))
      .map((refusal) => ({ site: refusal.siteId, reason: refusal.reason, message: refusal.message }));
    expect({ refusals: reasons(refusals), leaks, recovered: await recovered(opened) }).toEqual({
      refusals: [
        ['site-1', 'TOO_FEW_PARTICIPANTS'],
        ['site-2', 'THRESHOLD_BELOW_SITE_MINIMUM'],
        ['site-3', SITE_DATA_INVALID],
        ['site-4', SITE_DATA_INVALID],
      ],
      leaks: [],
      recovered: [],
    });
  });
});

/** An absolute path in text (a directory followed by at least one more component). */
const ABSOLUTE_PATH = /(^|[\s"'(=:,])\/[\w.-]+\//;

/** `value` in `text` as a whole token (a number not inside a longer one, a path anywhere). */
function mentions(text: string, value: string): boolean {
  if (!/^\d+$/.test(value)) return text.includes(value);
  return new RegExp(`(^|[^\\d.])${value}($|[^\\d.])`).test(text);
}
