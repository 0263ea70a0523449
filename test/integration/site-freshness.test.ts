/**
 * Real participant daemons over gRPC and mutual TLS against a coordinator that lies after an honest
 * round (issue: "Replay", "Two rounds on one model", "Secrets outlive the round"): it replays the
 * RoundStart of the committed round, sends an older counter, a second round on the model the sites'
 * inputs were unmasked on, the replay again to a site restarted from its state_dir, and a round it never
 * continues. Each site refuses with its reason code on its own, and leaves the stalled round at the
 * RoundConfig's deadline.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toHex, utf8 } from '../../crypto/bytes.js';
import { sha256 } from '../../crypto/hash.js';
import { decodeRoundConfig, encodeRoundConfig } from '../../crypto/secagg/config-codec.js';
import { makeRoundId, roundCounter, type RoundConfig, type StageDeadlines } from '../../crypto/secagg/config.js';
import type { SiteToCoordinator } from '../../crypto/secagg/round-envelope.js';
import { refusalText } from '../../crypto/secagg/site-refusals.js';
import { SiteStateStore } from '../../participant/state/index.js';
import { FEDERATION_ID, GrpcFederation } from '../support/grpc-federation.js';
import { createTestPki, type TestPki } from '../support/pki.js';

const GRACE_MS = 300;

let pki: TestPki;
let harness: GrpcFederation;
/** Round 1's RoundStart bytes, as every site received them. */
let roundOne: Uint8Array;
let roundOneConfig: RoundConfig;
/** Every refusal the sites sent, whatever the coordinator made of it. */
const refusals: { siteId: string; roundId: string; reason: string; message: string }[] = [];
/** Every advert the sites sent, by round id. */
const adverts: { siteId: string; roundId: string }[] = [];

beforeAll(async () => {
  pki = await createTestPki('fedgate site freshness CA');
  harness = await GrpcFederation.start({ pki, sites: 3, rounds: 1, siteOptions: () => ({ deadlineGraceMs: GRACE_MS }) });
  harness.rewriteToSite = (_siteId, message) => {
    if (message.kind === 'round_start' && roundOne === undefined) roundOne = message.roundConfig;
    return message;
  };
  const federation = harness.coordinator.federation;
  const receive = federation.receive.bind(federation);
  federation.receive = (siteId: string, message: SiteToCoordinator): void => {
    if (message.kind === 'refusal') refusals.push({ siteId, roundId: toHex(message.roundId), reason: message.reason, message: message.message });
    if (message.kind === 'stage' && message.message.stage === 'advertise_keys') adverts.push({ siteId, roundId: toHex(message.message.roundId) });
    receive(siteId, message);
  };
  await harness.waitUntilDone(60_000);
  roundOneConfig = decodeRoundConfig(roundOne);
}, 120_000);

afterAll(async () => {
  await harness?.close();
});

/** The coordinator (lying) sends `config` to `siteId` as a RoundStart. */
function sendRoundStart(siteId: string, config: RoundConfig | Uint8Array): Uint8Array {
  const bytes = config instanceof Uint8Array ? config : encodeRoundConfig(config);
  const roundId = decodeRoundConfig(bytes).roundId;
  harness.coordinator.registry.send(siteId, { kind: 'round_start', roundId, roundConfig: bytes });
  return roundId;
}

async function refusalOf(siteId: string, roundId: Uint8Array, timeoutMs = 10_000): Promise<{ reason: string; message: string }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = refusals.find((refusal) => refusal.siteId === siteId && refusal.roundId === toHex(roundId));
    if (found !== undefined) return { reason: found.reason, message: found.message };
    if (Date.now() > deadline) throw new Error(`${siteId} sent no refusal for round ${toHex(roundId)} within ${timeoutMs} ms; refusals: ${JSON.stringify(refusals)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function advertsFor(siteId: string, roundId: Uint8Array): number {
  return adverts.filter((advert) => advert.siteId === siteId && advert.roundId === toHex(roundId)).length;
}

/** A RoundStart the coordinator never had: round 1's config with another id and whatever else is given. */
function forged(counter: bigint, overrides: Partial<RoundConfig> = {}): RoundConfig {
  return { ...roundOneConfig, roundId: makeRoundId(counter, new Uint8Array(randomBytes(16))), ...overrides };
}

const OTHER_MODEL = sha256(utf8('a model no site contributed to'));

describe('a site refuses what a lying coordinator replays', () => {
  it('took part in the honest round once', () => {
    expect(harness.committed()).toHaveLength(1);
    for (const siteId of harness.siteIds) expect(advertsFor(siteId, roundOneConfig.roundId)).toBe(1);
  });

  it('refuses the same RoundStart again (ROUND_NOT_FRESH) and makes no key for it', async () => {
    const roundId = sendRoundStart('site-1', roundOne);
    expect(await refusalOf('site-1', roundId)).toEqual({ reason: 'ROUND_NOT_FRESH', message: refusalText('ROUND_NOT_FRESH') });
    expect(advertsFor('site-1', roundId)).toBe(1);
  });

  it('refuses a new round id with an older counter (ROUND_NOT_FRESH), even on a model it never contributed to', async () => {
    const roundId = sendRoundStart('site-1', forged(0n, { modelHash: OTHER_MODEL }));
    expect((await refusalOf('site-1', roundId)).reason).toBe('ROUND_NOT_FRESH');
    expect(advertsFor('site-1', roundId)).toBe(0);
  });

  it('refuses a fresh round on the model its input was unmasked on (MODEL_ALREADY_CONTRIBUTED), moving no counter', async () => {
    const counter = roundCounter(roundOneConfig.roundId) + 10n;
    const roundId = sendRoundStart('site-1', forged(counter));
    expect(await refusalOf('site-1', roundId)).toEqual({ reason: 'MODEL_ALREADY_CONTRIBUTED', message: refusalText('MODEL_ALREADY_CONTRIBUTED') });
    expect(advertsFor('site-1', roundId)).toBe(0);
    const onDisk = await SiteStateStore.open(harness.siteStateDirectory('site-1'));
    expect(onDisk.highestRoundCounter(FEDERATION_ID)).toBe(roundCounter(roundOneConfig.roundId));
    expect(onDisk.hasContributed(FEDERATION_ID, roundOneConfig.modelHash)).toBe(true);
  });

  it('refuses the replay after the daemon restarted on the same state_dir', async () => {
    await harness.stopSite('site-2');
    harness.startSite('site-2', { state: await SiteStateStore.open(harness.siteStateDirectory('site-2')), deadlineGraceMs: GRACE_MS });
    const deadline = Date.now() + 20_000;
    while (harness.coordinator.registry.get('site-2') === undefined) {
      if (Date.now() > deadline) throw new Error('site-2 did not reconnect');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const roundId = sendRoundStart('site-2', roundOne);
    expect((await refusalOf('site-2', roundId)).reason).toBe('ROUND_NOT_FRESH');
    expect(advertsFor('site-2', roundId)).toBe(1);
  }, 30_000);
});

describe('a round the coordinator never continues', () => {
  it('leaves it at its own deadline; meanwhile a repeated id is ignored and another round refused as concurrent', async () => {
    const counter = roundCounter(roundOneConfig.roundId) + 20n;
    const short: StageDeadlines = { ...roundOneConfig.deadlines, advertiseKeysMs: 1500 };
    // A round the site accepts: it starts from the head of the site's verified chain (round one's result).
    const head = (await SiteStateStore.open(harness.siteStateDirectory('site-3'))).chainHead(FEDERATION_ID);
    if (head === undefined) throw new Error('site-3 has no verified chain head after round one');
    const onHead = { modelHash: head.modelHash, optimizerStateHash: head.optimizerStateHash };
    const stalled = forged(counter, { ...onHead, deadlines: short });
    const startedAt = Date.now();
    const roundId = sendRoundStart('site-3', stalled);

    // While it runs: the same RoundStart again changes nothing; another round is refused.
    sendRoundStart('site-3', stalled);
    const concurrent = sendRoundStart('site-3', forged(counter + 1n, onHead));
    expect((await refusalOf('site-3', concurrent)).reason).toBe('ROUND_CONCURRENT');

    const left = await refusalOf('site-3', roundId, 15_000);
    expect(left).toEqual({ reason: 'STAGE_DEADLINE_PASSED', message: refusalText('STAGE_DEADLINE_PASSED') });
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(1500 + GRACE_MS - 50);
    expect(advertsFor('site-3', roundId)).toBe(1);
    expect(refusals.filter((refusal) => refusal.siteId === 'site-3' && refusal.roundId === toHex(roundId))).toHaveLength(1);
    expect(harness.siteLog.some((entry) => entry.msg === 'a RoundStart repeats the id of a round this site is running; ignoring it')).toBe(true);
    expect(harness.siteLog.filter((entry) => entry.msg?.startsWith('the coordinator did not open the next stage within the RoundConfig deadline') === true && entry['openedBy'] === 'round_start')).toHaveLength(1);

    // The round is over for the site: the next fresh round is taken, not refused as concurrent.
    const next = sendRoundStart('site-3', forged(counter + 2n, { ...onHead, deadlines: short }));
    const deadline = Date.now() + 10_000;
    while (advertsFor('site-3', next) === 0) {
      if (Date.now() > deadline) throw new Error(`site-3 did not advertise for the next round; refusals: ${JSON.stringify(refusals)}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect((await refusalOf('site-3', next, 15_000)).reason).toBe('STAGE_DEADLINE_PASSED');
  }, 40_000);
});
