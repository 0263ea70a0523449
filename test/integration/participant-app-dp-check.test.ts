/**
 * The participant daemon's own check of a round's distributed DP (participant-app.ts checkRound:
 * checkRoundDistributedDp against the task document's privacy.participantLevel), against a lying
 * coordinator over real gRPC and mutual TLS (test/support/malicious-coordinator.ts): a RoundConfig whose
 * distributedDp gives less noise or another clip norm, ring, scale or rotation than the task pins, one that
 * drops the DP of a DP task, and one that adds DP to a task that asks for none. Each is refused with its
 * reason code before the site makes or sends any key: no AdvertiseKeys reaches the coordinator for that
 * round.
 *
 * The attacked sites have no privacy budget in their site.yaml (no `privacy` option, so nothing is
 * charged before training): this check is the only one that stands. Without it a DP site would advertise
 * keys and go on to upload an update with less noise than its task asks, or none at all.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRoundConfig, type RoundConfig } from '../../crypto/secagg/config.js';
import type { DistributedDpRequirement } from '../../crypto/secagg/dp-fields.js';
import { STAGE } from '../../crypto/secagg/stages.js';
import { parseTaskDocument } from '../../model/task.js';
import { openAttack, type Attack } from '../support/attacked-sites.js';
import { digitsTask } from '../support/digits-task.js';
import { withDistributedDp } from '../support/distributed-dp-round.js';
import type { MaliciousCoordinator } from '../support/malicious-coordinator.js';
import { createTestPki, type TestPki } from '../support/pki.js';

const SITES = ['site-1', 'site-2', 'site-3', 'site-4'];
const REQUIREMENT: DistributedDpRequirement = { mechanism: 'discrete_gaussian', clipNorm: 1, noiseMultiplier: 0.5, toleratedColluders: 1, ringBits: 32 };
const PLAIN_TASK = digitsTask();
const DP_TASK = parseTaskDocument({ ...PLAIN_TASK, privacy: { participantLevel: REQUIREMENT } });
/** Long enough for every site to refuse (or, without the check, to advertise its keys) on a loaded machine. */
const REFUSAL_WAIT_MS = 10_000;

let pki: TestPki;

beforeAll(async () => {
  pki = await createTestPki('fedgate participant-app dp check CA');
});

interface Outcome {
  /** [site, reason] of each refusal of the round, sorted by site. */
  readonly refusals: [string, string][];
  /** Sites that sent AdvertiseKeys for the round. */
  readonly advertised: string[];
}

/** Starts `config` on every site, waits for their refusals, then ends the round; what the coordinator got. */
async function play(coordinator: MaliciousCoordinator, config: RoundConfig): Promise<Outcome> {
  const round = coordinator.round(config);
  round.start();
  const refusals = await coordinator.waitForRefusals(config.roundId, SITES, REFUSAL_WAIT_MS);
  round.abort();
  const label = round.label;
  const advertised = coordinator.received.filter((stage) => stage.roundId === label && stage.stage === STAGE.advertiseKeys).map((stage) => stage.siteId);
  return { refusals: refusals.map((refusal): [string, string] => [refusal.siteId, refusal.reason]).sort(([a], [b]) => a.localeCompare(b)), advertised: [...new Set(advertised)].sort() };
}

function refusedBy(reason: string): Outcome {
  return { refusals: SITES.map((siteId): [string, string] => [siteId, reason]), advertised: [] };
}

/** The honest RoundConfig of round `counter` over every site, without distributedDp. */
function base(coordinator: MaliciousCoordinator, counter: number): RoundConfig {
  return coordinator.roundConfig({ counter, participants: SITES });
}

describe('a DP task: RoundConfig.distributedDp other than the task pins is refused before any key', () => {
  let attack: Attack;
  let counter = 0;

  beforeAll(async () => {
    attack = await openAttack({ pki, task: DP_TASK, federationId: 'participant-app-dp-check', siteIds: SITES });
  }, 60_000);

  afterAll(async () => {
    await attack.close();
  });

  const next = (): RoundConfig => base(attack.coordinator, ++counter);

  it.each([
    ['a lower noise multiplier', { noiseMultiplier: 0.1 }],
    ['a larger clip norm', { clipNorm: 4 }],
    ['fewer ring bits', { ringBits: 24 }],
    ['fewer tolerated colluders', { toleratedColluders: 0 }],
  ] as const)('%s than the task pins: DP_PARAMETERS_MISMATCH, no AdvertiseKeys', async (_name, change) => {
    const config = withDistributedDp(next(), { ...REQUIREMENT, ...change });
    expect(await play(attack.coordinator, config)).toEqual(refusedBy('DP_PARAMETERS_MISMATCH'));
  });

  it('a scale other than the round derives (twice the honest one): DP_SCALE_MISMATCH, no AdvertiseKeys', async () => {
    const honest = withDistributedDp(next(), REQUIREMENT);
    const dp = honest.distributedDp!;
    const config = createRoundConfig({ ...honest, distributedDp: { ...dp, scale: dp.scale * 2 } });
    expect(await play(attack.coordinator, config)).toEqual(refusedBy('DP_SCALE_MISMATCH'));
  });

  it('a rotation seed the coordinator chose: DP_ROTATION_SEED_MISMATCH, no AdvertiseKeys', async () => {
    const honest = withDistributedDp(next(), REQUIREMENT);
    const config = createRoundConfig({ ...honest, distributedDp: { ...honest.distributedDp!, rotationSeed: new Uint8Array(randomBytes(32)) } });
    expect(await play(attack.coordinator, config)).toEqual(refusedBy('DP_ROTATION_SEED_MISMATCH'));
  });

  it('a round of the DP task without distributedDp: DP_REQUIRED, no AdvertiseKeys', async () => {
    expect(await play(attack.coordinator, next())).toEqual(refusedBy('DP_REQUIRED'));
  });

  it('the honest round (the DP the task pins) is taken: every site advertises its keys, none refuses', async () => {
    const config = withDistributedDp(next(), REQUIREMENT);
    const round = attack.coordinator.round(config);
    round.start();
    const { coordinator } = attack;
    await coordinator.until(
      () => SITES.every((siteId) => coordinator.received.some((stage) => stage.roundId === round.label && stage.siteId === siteId && stage.stage === STAGE.advertiseKeys)),
      REFUSAL_WAIT_MS,
      () => 'AdvertiseKeys of every site',
    );
    round.abort();
    expect(coordinator.refusalsOf(config.roundId)).toEqual([]);
  });
});

describe('a task without DP: a RoundConfig that adds distributedDp is refused before any key', () => {
  let attack: Attack;

  beforeAll(async () => {
    attack = await openAttack({ pki, task: PLAIN_TASK, federationId: 'participant-app-dp-check-plain', siteIds: SITES });
  }, 60_000);

  afterAll(async () => {
    await attack.close();
  });

  it('distributedDp in a round of a task that asks for none: DP_NOT_IN_TASK, no AdvertiseKeys', async () => {
    const config = withDistributedDp(base(attack.coordinator, 1), REQUIREMENT);
    expect(await play(attack.coordinator, config)).toEqual(refusedBy('DP_NOT_IN_TASK'));
  });
});
