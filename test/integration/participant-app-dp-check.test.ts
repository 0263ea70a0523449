/**
 * The participant daemon's own check of a round's distributed DP (participant-app.ts checkRound:
 * checkRoundDistributedDp against the task document's privacy.participantLevel), against a lying
 * coordinator over real gRPC and mutual TLS (test/support/malicious-coordinator.ts): a RoundConfig whose
 * distributedDp gives less noise or another clip norm, ring, scale or rotation than the task pins, one that
 * drops the DP of a DP task, and one that adds DP to a task that asks for none. Each is refused with its
 * reason code before the site makes or sends any key: no AdvertiseKeys reaches the coordinator for that
 * round.
 *
 * No site requires DP in its site.yaml. site-1 and site-2 have no privacy section at all (nothing is
 * charged before training): this check is the only one that stands, and without it they advertise keys and
 * go on to upload an update with less noise than the task asks, or none. site-3 and site-4 count their
 * epsilon (a privacy section without require_dp or a budget): they check the round's DP again when they
 * charge it, before training, but by then their keys are out - so each case also asserts that no site
 * sent AdvertiseKeys, which only the check at round start ensures.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRoundConfig, type RoundConfig } from '../../crypto/secagg/config.js';
import type { DistributedDpRequirement } from '../../crypto/secagg/dp-fields.js';
import { STAGE } from '../../crypto/secagg/stages.js';
import { utf8 } from '../../crypto/bytes.js';
import { sha256 } from '../../crypto/hash.js';
import { parseTaskDocument } from '../../model/task.js';
import { SitePrivacy } from '../../participant/round/site-privacy.js';
import { PrivacyBudgetStore } from '../../participant/state/index.js';
import { openAttack, type Attack } from '../support/attacked-sites.js';
import { digitsTask } from '../support/digits-task.js';
import { withDistributedDp } from '../support/distributed-dp-round.js';
import type { MaliciousCoordinator } from '../support/malicious-coordinator.js';
import { createTempDirectory, createTestPki, type TempDirectory, type TestPki } from '../support/pki.js';

const SITES = ['site-1', 'site-2', 'site-3', 'site-4'];
const REQUIREMENT: DistributedDpRequirement = { mechanism: 'discrete_gaussian', clipNorm: 1, noiseMultiplier: 0.5, toleratedColluders: 1, ringBits: 32 };
const PLAIN_TASK = digitsTask();
const DP_TASK = parseTaskDocument({ ...PLAIN_TASK, privacy: { participantLevel: REQUIREMENT } });
/** Long enough for every site to refuse (or, without the check, to advertise its keys) on a loaded machine. */
const REFUSAL_WAIT_MS = 10_000;

/** Sites whose site.yaml has a privacy section that does not require DP (no require_dp, no budget). */
const COUNTING_SITES = ['site-3', 'site-4'];

let pki: TestPki;
let budgets: TempDirectory;

beforeAll(async () => {
  pki = await createTestPki('fedgate participant-app dp check CA');
  budgets = await createTempDirectory('fedgate-dp-check-budgets-');
});

afterAll(async () => {
  await budgets.remove();
});

/** The daemons of `task`: COUNTING_SITES with a SitePrivacy that does not require DP, the others with none. */
async function openSites(task: typeof PLAIN_TASK, federationId: string): Promise<Attack> {
  const privacy = new Map<string, SitePrivacy>();
  for (const siteId of COUNTING_SITES) {
    const store = await PrivacyBudgetStore.open(join(budgets.path, federationId, siteId));
    privacy.set(siteId, new SitePrivacy({ requireDp: false, datasetId: sha256(utf8(`${siteId} records`)) }, store, pino({ level: 'silent' })));
  }
  return openAttack({ pki, task, federationId, siteIds: SITES, setup: (siteId) => (privacy.has(siteId) ? { privacy: privacy.get(siteId) as SitePrivacy } : {}) });
}

interface Outcome {
  /** [site, reason] of each refusal of the round, sorted by site. */
  readonly refusals: [string, string][];
  /** Sites that sent AdvertiseKeys for the round. */
  readonly advertised: string[];
}

/**
 * Runs `config` on every site as far as the sites take it (a site that accepts it trains and uploads; one
 * that charges its privacy budget checks the DP again then), then ends the round; what the coordinator got.
 */
async function play(coordinator: MaliciousCoordinator, config: RoundConfig): Promise<Outcome> {
  const round = coordinator.round(config);
  round.start();
  const end = await round.aggregate();
  if (end.status === 'aggregated') round.abort();
  const refusals = await coordinator.waitForRefusals(config.roundId, SITES, REFUSAL_WAIT_MS);
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
    attack = await openSites(DP_TASK, 'participant-app-dp-check');
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
    attack = await openSites(PLAIN_TASK, 'participant-app-dp-check-plain');
  }, 60_000);

  afterAll(async () => {
    await attack.close();
  });

  it('distributedDp in a round of a task that asks for none: DP_NOT_IN_TASK, no AdvertiseKeys', async () => {
    const config = withDistributedDp(base(attack.coordinator, 1), REQUIREMENT);
    expect(await play(attack.coordinator, config)).toEqual(refusedBy('DP_NOT_IN_TASK'));
  });
});
