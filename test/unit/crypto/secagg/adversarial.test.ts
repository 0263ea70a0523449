/**
 * A hostile coordinator drives honest sites with forged or manipulated messages. Each time the site
 * refuses with a typed error, nothing secret leaves it, and no individual input becomes unmaskable.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { utf8 } from '../../../../crypto/bytes.js';
import { sha256 } from '../../../../crypto/hash.js';
import type { NeighbourGraph } from '../../../../crypto/graph.js';
import { SecAggClient } from '../../../../crypto/secagg/client.js';
import { roundConfigHash } from '../../../../crypto/secagg/config-codec.js';
import { SecAggError } from '../../../../crypto/secagg/errors.js';
import type { SitePolicy } from '../../../../crypto/secagg/policy.js';
import type {
  AdvertiseKeysMessage,
  ConsistencyRequestMessage,
  ConsistencySignature,
  NonceRevealMessage,
  ShareDeliveryMessage,
  UnmaskRequestMessage,
  UnmaskResponseMessage,
} from '../../../../crypto/secagg/messages.js';
import {
  RoundDriver,
  TEST_TASK_HASH,
  cachedFederation,
  expectedSum,
  stagesSent,
  testPolicy,
  testRoundConfig,
  uncheckedGraphMessage,
  uncheckedKeyList,
  type TestFederation,
} from '../../../support/secagg-sim.js';

let federation: TestFederation;
const ids = () => federation.sites.map((site) => site.siteId);
// Generating every site's RSA key is slow on a busy machine: allow it time, once per file.
beforeAll(() => {
  federation = cachedFederation(8, 'adv-');
}, 300_000);

/** k = 4 ring over 8 sites, t = 3. */
function config(counter = 1, overrides: { plaintext?: boolean; threshold?: number } = {}) {
  return testRoundConfig({ participants: ids(), degree: 4, threshold: overrides.threshold ?? 3, counter, parameters: 64, ...(overrides.plaintext === undefined ? {} : { plaintext: overrides.plaintext }) });
}

function refusalOf(action: () => unknown): SecAggError {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(SecAggError);
    return error as SecAggError;
  }
  throw new Error('expected the site to refuse');
}

function client(siteId: string, overrides: Parameters<typeof testPolicy>[0] = {}): SecAggClient {
  const site = federation.site(siteId);
  return new SecAggClient({ siteId, signingKey: site.privateKey, policy: testPolicy(overrides), trust: federation.trust });
}

/**
 * A client whose policy is what site.yaml's defaults build: no margin key given, so every collusion
 * margin rule applies with its default (testPolicy turns them off for the protocol tests).
 */
function defaultSite(overrides: Partial<SitePolicy> = {}, siteId = 'adv-00'): SecAggClient {
  return new SecAggClient({
    siteId,
    signingKey: federation.site(siteId).privateKey,
    policy: { pinnedTaskHashes: [TEST_TASK_HASH], minParticipants: 3, minThreshold: 2, ...overrides },
    trust: federation.trust,
  });
}

/**
 * (n, k, t) = (501, 20, 11), with this federation's sites among the 501: structurally valid
 * (t > (k+1)/2), yet min(2t - (k+1), k) = 1, so a coordinator that places one colluding neighbour next
 * to a site exposes it.
 */
function thinRound() {
  const strangers = Array.from({ length: 493 }, (_, index) => `zz-${String(index).padStart(3, '0')}`);
  return testRoundConfig({ participants: [...ids(), ...strangers], degree: 20, threshold: 11, parameters: 8 });
}

/** Runs the honest stages up to (and including) MaskedInput; returns the driver, graph and U3 request. */
function upToConsistency(driver: RoundDriver): { graph: NeighbourGraph; request: ConsistencyRequestMessage } {
  const request = driver.maskInputs(driver.dealShares(driver.revealNonces(driver.advertise())));
  return { graph: driver.server.neighbourGraph as NeighbourGraph, request };
}

describe('a hostile coordinator', () => {
  it('cannot obtain both shares of one neighbour by showing different survivor sets over time', () => {
    const driver = new RoundDriver({ federation, config: config() });
    const { graph, request } = upToConsistency(driver);
    const victim = 'adv-00';
    const target = graph.neighbours(victim)[0] as string;
    // First it claims `target` dropped: every other site signs U3 without it.
    const withoutTarget: ConsistencyRequestMessage = {
      ...request,
      survivors: request.survivors.filter((siteId) => siteId !== target),
      closings: request.closings.filter((closing) => closing.siteId !== target),
    };
    const signatures: ConsistencySignature[] = withoutTarget.survivors.map((siteId) => ({
      siteId,
      signature: driver.client(siteId).consistencyCheck(withoutTarget).signature,
    }));
    const unmaskRequest: UnmaskRequestMessage = { stage: 'unmask_request', roundId: driver.config.roundId, signatures };
    const outputs: UnmaskResponseMessage[] = [driver.client(victim).unmask(unmaskRequest)];
    expect(outputs[0]?.shares.find((share) => share.dealer === target)?.secret).toBe('mask_key');
    // Then it claims `target` survived, to get its b-share as well.
    expect(refusalOf(() => driver.client(victim).consistencyCheck(request))).toMatchObject({ code: 'FAILED_PRECONDITION', reason: 'CONFLICTING_SURVIVOR_SET' });
    const targetSignature = driver.client(target).consistencyCheck(request).signature;
    outputs.push(driver.client(victim).unmask({ ...unmaskRequest, signatures: [...signatures, { siteId: target, signature: targetSignature }] }));
    expect(outputs[1]).toBe(outputs[0]);
    const revealedForTarget = new Set(outputs.flatMap((output) => output.shares.filter((share) => share.dealer === target).map((share) => share.secret)));
    expect([...revealedForTarget]).toEqual(['mask_key']);
  });

  it('gets no share from a site when fewer than t of its closed neighbourhood signed its view', () => {
    const driver = new RoundDriver({ federation, config: config() });
    const { graph, request } = upToConsistency(driver);
    const honest = driver.signConsistency(request);
    const victim = 'adv-03';
    const closed = new Set(graph.closedNeighbourhood(victim));
    // Keep the victim's own signature and one neighbour's; claim the other neighbours signed with garbage.
    const keptNeighbour = graph.neighbours(victim)[0] as string;
    const signatures = honest.signatures.map((entry) =>
      closed.has(entry.siteId) && entry.siteId !== victim && entry.siteId !== keptNeighbour ? { siteId: entry.siteId, signature: new Uint8Array(randomBytes(256)) } : entry,
    );
    const before = driver.client(victim).phase;
    expect(before).toBe('consistency_signed');
    const error = refusalOf(() => driver.client(victim).unmask({ ...honest, signatures }));
    expect(error).toMatchObject({ code: 'FAILED_PRECONDITION', reason: 'INSUFFICIENT_CONSISTENCY_SIGNATURES' });
    // The site has left the round: asking again with the honest signatures gets the same refusal, no shares.
    expect(refusalOf(() => driver.client(victim).unmask(honest)).reason).toBe('INSUFFICIENT_CONSISTENCY_SIGNATURES');
    expect(driver.client(victim).phase).toBe('failed');
  });

  // Covers stage messages replayed into a round's state machines (clients and server). A replayed
  // RoundStart - an earlier round's RoundConfig sent again, to a site whose client is fresh - is not
  // covered here: refusing it takes the site's persisted round counter (test/integration/malicious-coordinator-defences.test.ts replays whole RoundStarts against real daemons).
  it('cannot replay a message of an earlier round', () => {
    const first = new RoundDriver({ federation, config: config(1) });
    const oldKeyList = first.advertise();
    const oldGraphs = first.revealNonces(oldKeyList);
    const second = new RoundDriver({ federation, config: config(2) });
    const keyList = second.advertise();
    const siteId = 'adv-01';
    expect(refusalOf(() => second.client(siteId).revealNonce(oldKeyList))).toMatchObject({ code: 'INVALID_ARGUMENT', reason: 'WRONG_ROUND' });
    expect(second.client(siteId).phase).toBe('advertised');
    const graphs = second.revealNonces(keyList);
    expect(refusalOf(() => second.client(siteId).shareKeys(oldGraphs.get(siteId)!, second.now))).toMatchObject({ code: 'INVALID_ARGUMENT', reason: 'WRONG_ROUND' });
    // The refused replay changed nothing: the genuine message still works.
    expect(second.client(siteId).shareKeys(graphs.get(siteId)!, second.now).stage).toBe('share_keys');
    // And the server refuses the replayed site message too.
    const replayed = first.sent.get(siteId)?.find((message) => message.stage === 'nonce_reveal');
    expect(() => second.server.receive(siteId, replayed!)).toThrow(expect.objectContaining({ reason: 'WRONG_ROUND' }));
  });


  it('cannot show one site a different RoundConfig than its neighbours', () => {
    const roundConfig = config();
    const forged = { ...roundConfig, modelHash: sha256(utf8('a model only the victim is shown')) };
    const victim = 'adv-02';
    const clients = new Map(ids().map((siteId) => [siteId, client(siteId)]));
    const adverts = new Map<string, AdvertiseKeysMessage>(ids().map((siteId) => [siteId, clients.get(siteId)!.advertiseKeys(siteId === victim ? forged : roundConfig)]));
    const keyList = uncheckedKeyList(roundConfig.roundId, adverts);
    const reveals = new Map<string, NonceRevealMessage>(ids().map((siteId) => [siteId, clients.get(siteId)!.revealNonce(keyList)]));
    const base = { federation, roundId: roundConfig.roundId, degree: 4, keyList, adverts, reveals };
    // The victim is even given the graph of its own (forged) view, so only the signatures can tell.
    const victimGraph = uncheckedGraphMessage(victim, { ...base, roundConfigHash: roundConfigHash(forged) });
    expect(refusalOf(() => clients.get(victim)!.shareKeys(victimGraph, new Date()))).toMatchObject({ code: 'PERMISSION_DENIED', reason: 'NEIGHBOUR_SIGNATURE_INVALID' });
    expect(clients.get(victim)!.phase).toBe('failed');
    // Its neighbours see its advert signed over another H(RoundConfig) and refuse as well.
    const honestGraph = (siteId: string) => uncheckedGraphMessage(siteId, { ...base, roundConfigHash: roundConfigHash(roundConfig) });
    const neighbours = honestGraph(victim).neighbours.map((record) => record.siteId);
    for (const siteId of neighbours) {
      expect(refusalOf(() => clients.get(siteId)!.shareKeys(honestGraph(siteId), new Date())).reason).toBe('NEIGHBOUR_SIGNATURE_INVALID');
    }
  });

  it('cannot show one site a different list L than its neighbours', () => {
    const roundConfig = config();
    const victim = 'adv-04';
    const clients = new Map(ids().map((siteId) => [siteId, client(siteId)]));
    const adverts = new Map<string, AdvertiseKeysMessage>(ids().map((siteId) => [siteId, clients.get(siteId)!.advertiseKeys(roundConfig)]));
    const keyList = uncheckedKeyList(roundConfig.roundId, adverts);
    // The victim's L leaves out one site that is not its neighbour under the honest graph.
    const honestReveals = new Map<string, NonceRevealMessage>();
    for (const siteId of ids()) if (siteId !== victim) honestReveals.set(siteId, clients.get(siteId)!.revealNonce(keyList));
    const omitted = 'adv-07';
    const victimList = { ...keyList, entries: keyList.entries.filter((entry) => entry.siteId !== omitted) };
    const victimReveal = clients.get(victim)!.revealNonce(victimList);
    const reveals = new Map([...honestReveals, [victim, victimReveal]]);
    const victimAdverts = new Map([...adverts].filter(([siteId]) => siteId !== omitted));
    const graph = uncheckedGraphMessage(victim, { federation, roundId: roundConfig.roundId, roundConfigHash: roundConfigHash(roundConfig), degree: 4, keyList: victimList, adverts: victimAdverts, reveals });
    expect(refusalOf(() => clients.get(victim)!.shareKeys(graph, new Date()))).toMatchObject({ code: 'PERMISSION_DENIED', reason: 'NEIGHBOUR_SIGNATURE_INVALID' });
  });

  it.each([
    ['a graph that does not match the seed', 'GRAPH_MISMATCH'],
    ['a withheld nonce', 'NONCE_WITHHELD'],
    ['a nonce that does not match its commitment in L', 'NONCE_MISMATCH'],
  ] as const)('cannot hand a site %s', (_name, reason) => {
    const driver = new RoundDriver({ federation, config: config() });
    const graphs = driver.revealNonces(driver.advertise());
    const victim = 'adv-05';
    const genuine = graphs.get(victim)!;
    const graph = driver.server.neighbourGraph!;
    let forged = genuine;
    if (reason === 'GRAPH_MISMATCH') {
      // Swap one neighbour for a non-neighbour (with its genuine, signed records).
      const outsider = ids().find((siteId) => siteId !== victim && !graph.isNeighbour(victim, siteId))!;
      const holder = graph.neighbours(outsider)[0]!;
      const outsiderRecord = graphs.get(holder)!.neighbours.find((record) => record.siteId === outsider)!;
      forged = { ...genuine, neighbours: [...genuine.neighbours.slice(1), outsiderRecord] };
    } else if (reason === 'NONCE_WITHHELD') {
      forged = { ...genuine, nonces: genuine.nonces.filter((entry) => entry.siteId !== 'adv-06') };
    } else {
      forged = { ...genuine, nonces: genuine.nonces.map((entry) => (entry.siteId === 'adv-06' ? { ...entry, nonce: new Uint8Array(randomBytes(32)) } : entry)) };
    }
    expect(refusalOf(() => driver.client(victim).shareKeys(forged, driver.now))).toMatchObject({ code: 'FAILED_PRECONDITION', reason });
    expect(stagesSent(driver.sent.get(victim))).toEqual(['advertise_keys', 'nonce_reveal']);
    expect(driver.client(victim).phase).toBe('failed');
  });

  it('cannot make a site mask with b alone by withholding a neighbour\'s shares (the round goes on without it)', () => {
    const victim = 'adv-06';
    let withheldFrom: string | undefined;
    const result = new RoundDriver({
      federation,
      config: config(),
      inbox: {
        shareDelivery: (siteId, message) => {
          if (siteId !== victim) return message;
          withheldFrom = message.shares[0]?.sender;
          return { ...message, shares: message.shares.slice(1) };
        },
      },
    }).run();
    expect(withheldFrom).toBeDefined();
    expect(result.refusals.get(victim)).toMatchObject({ code: 'FAILED_PRECONDITION', reason: 'SHARE_MISSING' });
    expect(stagesSent(result.sent.get(victim))).toEqual(['advertise_keys', 'nonce_reveal', 'share_keys']);
    // Its shares were delivered onward, but it never uploaded; the others' masks with it are removed via s_sk.
    expect(result.outcome).toBe('aggregated');
    expect(result.aggregate?.maskedSurvivors).not.toContain(victim);
    expect(result.aggregate?.sum).toEqual(expectedSum(result));
  });

  it('cannot show sites disagreeing survivor sets U2', () => {
    const victim = 'adv-01';
    const driver: RoundDriver = new RoundDriver({
      federation,
      config: config(),
      inbox: {
        // The victim is told a non-neighbour dropped; everyone else sees the true U2.
        shareDelivery: (siteId, message): ShareDeliveryMessage => {
          if (siteId !== victim) return message;
          const graph: NeighbourGraph = driver.server.neighbourGraph!;
          const outsider: string = message.survivors.find((member) => member !== victim && !graph.isNeighbour(victim, member))!;
          return { ...message, survivors: message.survivors.filter((member) => member !== outsider) };
        },
      },
    });
    const request = driver.maskInputs(driver.dealShares(driver.revealNonces(driver.advertise())));
    // The honest server already rejects the victim's upload (its H(U2) differs) ...
    expect(driver.rejections).toEqual([expect.objectContaining({ siteId: victim, error: expect.objectContaining({ reason: 'SURVIVOR_SET_MISMATCH' }) })]);
    // ... so the hostile coordinator forwards it anyway, with the victim's signed closing.
    const victimUpload = driver.sent.get(victim)!.find((message) => message.stage === 'masked_input')!;
    if (victimUpload.stage !== 'masked_input') throw new Error('unreachable');
    const forged: ConsistencyRequestMessage = {
      ...request,
      survivors: [...request.survivors, victim].sort(),
      closings: [...request.closings, { siteId: victim, survivorDigest: victimUpload.survivorDigest, uploadHash: victimUpload.uploadHash, signature: victimUpload.signature }],
    };
    // The victim refuses to sign a U3 holding a site its U2 lacks ...
    expect(refusalOf(() => driver.client(victim).consistencyCheck(forged))).toMatchObject({ code: 'FAILED_PRECONDITION', reason: 'SURVIVOR_SET_NOT_SUBSET' });
    // ... the others sign, and the victim, having left the round, reveals nothing when asked to unmask.
    const signatures = forged.survivors.filter((siteId) => siteId !== victim).map((siteId) => ({ siteId, signature: driver.client(siteId).consistencyCheck(forged).signature }));
    const unmaskRequest: UnmaskRequestMessage = { stage: 'unmask_request', roundId: driver.config.roundId, signatures };
    expect(refusalOf(() => driver.client(victim).unmask(unmaskRequest))).toMatchObject({ reason: 'SURVIVOR_SET_NOT_SUBSET' });
    // Its neighbours reveal, but never its b-share: its upload cannot be unmasked.
    const graph = driver.server.neighbourGraph!;
    for (const neighbour of graph.neighbours(victim)) {
      const response = driver.client(neighbour).unmask(unmaskRequest);
      expect(response.shares.some((share) => share.dealer === victim)).toBe(false);
    }
  });

  it('cannot switch a site to plaintext, nor run a weak threshold or a small round past it', () => {
    const siteId = 'adv-00';
    const plaintext = config(1, { plaintext: true });
    expect(refusalOf(() => client(siteId).advertiseKeys(plaintext))).toMatchObject({ code: 'FAILED_PRECONDITION', reason: 'PLAINTEXT_NOT_ALLOWED' });
    const weak = { ...config(), reconstructionThreshold: 2 };
    expect(refusalOf(() => client(siteId, { minThreshold: 1 }).advertiseKeys(weak))).toMatchObject({ reason: 'THRESHOLD_TOO_LOW' });
    // t > (k+1)/2 is not enough: a round without collusion margin is refused by a site with the defaults.
    const thinning = defaultSite();
    expect(refusalOf(() => thinning.advertiseKeys(thinRound()))).toMatchObject({ code: 'FAILED_PRECONDITION', reason: 'NEIGHBOUR_DEGREE_TOO_LOW' });
    expect(thinning.phase).toBe('idle');
    expect(refusalOf(() => client(siteId, { minParticipants: 9 }).advertiseKeys(config()))).toMatchObject({ reason: 'TOO_FEW_PARTICIPANTS' });
    // Refused before any key was made: the site is still idle and has produced nothing.
    const refusing = client(siteId, { minParticipants: 9 });
    refusalOf(() => refusing.advertiseKeys(config()));
    expect(refusing.phase).toBe('idle');
  });

  it('cannot run a round without collusion margin past a site that keeps the default policy', () => {
    const thin = thinRound();
    expect(refusalOf(() => defaultSite().advertiseKeys(thin))).toMatchObject({ code: 'FAILED_PRECONDITION', reason: 'NEIGHBOUR_DEGREE_TOO_LOW' });
    // Each rule refuses it on its own: a site that accepts k = 20 still wants t >= ceil(2 * 21 / 3) = 14,
    // and one that waives the two-thirds rule still counts zero tolerated colluders.
    expect(refusalOf(() => defaultSite({ minNeighbourDegree: 20 }).advertiseKeys(thin)).reason).toBe('THRESHOLD_WITHOUT_MARGIN');
    expect(refusalOf(() => defaultSite({ minNeighbourDegree: 20, requireTwoThirdsThreshold: false }).advertiseKeys(thin)).reason).toBe('TOO_FEW_TOLERATED_COLLUDERS');
    // This federation's own rounds: the k = 4 ring of 8 the other tests use needs the complete graph ...
    expect(refusalOf(() => defaultSite().advertiseKeys(testRoundConfig({ participants: ids(), degree: 4, threshold: 4, parameters: 8 }))).reason).toBe('COMPLETE_GRAPH_REQUIRED');
    // ... and three sites at t = 2 are refused: two-thirds holds, but the coordinator can claim the third
    // site dropped and read the victim's update off its sum with one colluder.
    const trio = testRoundConfig({ participants: ids().slice(0, 3), degree: 2, threshold: 2, parameters: 8 });
    const refusing = defaultSite();
    expect(refusalOf(() => refusing.advertiseKeys(trio)).reason).toBe('TOO_FEW_TOLERATED_COLLUDERS');
    expect(refusing.phase).toBe('idle');
    // The coordinator's automatic round (complete graph, default t) is accepted.
    const automatic = testRoundConfig({ participants: ids(), degree: ids().length - 1, parameters: 8 });
    expect(automatic.reconstructionThreshold).toBe(6);
    expect(defaultSite().advertiseKeys(automatic).stage).toBe('advertise_keys');
  });
});
