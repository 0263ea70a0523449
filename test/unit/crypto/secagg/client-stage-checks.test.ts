/**
 * The SecAgg+ client's own stage checks against a lying coordinator (crypto/secagg/client.ts): what a
 * coordinator gains by sending a site a message twice, late, out of order, of another stage, for another
 * round, or after the site's round is over. Each case drives a real round to the stage, sends the one
 * tampered or replayed message, and expects the exact reason code, that nothing is returned, and (for
 * envelope and order checks) that the refusal changed nothing: the genuine message still works after it.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { createPublicKey, type KeyObject } from 'node:crypto';
import { utf8 } from '../../../../crypto/bytes.js';
import { CryptoError } from '../../../../crypto/errors.js';
import { sha256 } from '../../../../crypto/hash.js';
import { encodeAggregate } from '../../../../crypto/secagg/aggregate-codec.js';
import { SecAggClient, type SecAggClientOptions } from '../../../../crypto/secagg/client.js';
import { makeRoundId } from '../../../../crypto/secagg/config.js';
import { SecAggError } from '../../../../crypto/secagg/errors.js';
import type {
  AdvertiseKeysMessage,
  CommitHashes,
  CommitRequestMessage,
  ConsistencyRequestMessage,
  GraphMessage,
  KeyListMessage,
  ServerMessage,
  ShareDeliveryMessage,
  UnmaskRequestMessage,
} from '../../../../crypto/secagg/messages.js';
import type { AggregateResult } from '../../../../crypto/secagg/server-unmask.js';
import { RoundDriver, cachedFederation, stagesSent, testPolicy, testRoundConfig, testUpdate, uncheckedKeyList, type TestFederation } from '../../../support/secagg-sim.js';

let federation: TestFederation;
const ids = (): string[] => federation.sites.map((site) => site.siteId);
// Generating every site's RSA key is slow on a busy machine: allow it time, once per file.
beforeAll(() => {
  federation = cachedFederation(8, 'stg-');
}, 300_000);

/** k = 4 ring over 8 sites, t = 3. */
function driver(options: { drops?: ReadonlyMap<string, 'masked_input' | 'unmask'> } = {}): RoundDriver {
  const config = testRoundConfig({ participants: ids(), degree: 4, threshold: 3, parameters: 16 });
  return new RoundDriver({ federation, config, ...(options.drops === undefined ? {} : { drops: options.drops }) });
}

function refusalOf(action: () => unknown): SecAggError {
  let returned: unknown;
  try {
    returned = action();
  } catch (error) {
    expect(error).toBeInstanceOf(SecAggError);
    return error as SecAggError;
  }
  throw new Error(`expected the site to refuse, it returned ${typeof returned === 'object' && returned !== null && 'stage' in returned ? String(returned.stage) : typeof returned}`);
}

/** The hashes an honest site computes after the aggregate (as RoundDriver.commit does). */
function computedHashes(round: RoundDriver, aggregate: AggregateResult): CommitHashes {
  return {
    previousModelHash: round.config.modelHash,
    aggregateHash: sha256(encodeAggregate(aggregate.sum)),
    newModelHash: sha256(utf8('fedgate test model r+1')),
    optimizerStateHash: sha256(utf8('fedgate test optimiser state r+1')),
  };
}

function commitRequest(round: RoundDriver, hashes: CommitHashes): CommitRequestMessage {
  return { stage: 'commit_request', roundId: round.config.roundId, ...hashes };
}

type Step = 'key_list' | 'graph' | 'share_delivery' | 'consistency_request' | 'unmask_request' | 'commit_request';

/** Calls the client method that takes a message of `step` (commit with honest-looking hashes). */
function deliver(round: RoundDriver, client: SecAggClient, step: Step, message: unknown): unknown {
  switch (step) {
    case 'key_list':
      return client.revealNonce(message as KeyListMessage);
    case 'graph':
      return client.shareKeys(message as GraphMessage, round.now);
    case 'share_delivery':
      return client.acceptShares(message as ShareDeliveryMessage);
    case 'consistency_request':
      return client.consistencyCheck(message as ConsistencyRequestMessage);
    case 'unmask_request':
      return client.unmask(message as UnmaskRequestMessage);
    case 'commit_request':
      return client.commit(message as CommitRequestMessage, {
        previousModelHash: round.config.modelHash,
        aggregateHash: sha256(utf8('a')),
        newModelHash: sha256(utf8('b')),
        optimizerStateHash: sha256(utf8('c')),
      });
  }
}

/** A well-formed message of `step` for this round (right stage and round id, content irrelevant). */
function shellOf(round: RoundDriver, step: Step): ServerMessage {
  const roundId = round.config.roundId;
  const digest = sha256(utf8('shell'));
  switch (step) {
    case 'key_list':
      return { stage: 'key_list', roundId, entries: [] };
    case 'graph':
      return { stage: 'graph', roundId, nonces: [], neighbours: [], revokedSerials: [] };
    case 'share_delivery':
      return { stage: 'share_delivery', roundId, survivors: [], shares: [] } as unknown as ShareDeliveryMessage;
    case 'consistency_request':
      return { stage: 'consistency_request', roundId, survivors: [], closings: [] };
    case 'unmask_request':
      return { stage: 'unmask_request', roundId, signatures: [] };
    case 'commit_request':
      return { stage: 'commit_request', roundId, previousModelHash: digest, aggregateHash: digest, newModelHash: digest, optimizerStateHash: digest };
  }
}

const STEPS: readonly Step[] = ['key_list', 'graph', 'share_delivery', 'consistency_request', 'unmask_request', 'commit_request'];
const OTHER_ROUND_ID = makeRoundId(1n, sha256(utf8('another round')).subarray(0, 16));

/**
 * Sends `victim` (in phase `phase`, next expecting `genuine` of `step`) every envelope forgery and every
 * out-of-order message; each must be refused with its code and leave the site as it was.
 */
function probe(round: RoundDriver, victim: string, step: Step, genuine: ServerMessage): void {
  const client = round.client(victim);
  const phase = client.phase;
  const sentBefore = stagesSent(round.sent.get(victim));
  const other = STEPS.find((candidate) => candidate !== step) as Step;
  const where = { stage: step, site: victim };
  const unexpected: readonly [unknown, string][] = [
    [{ ...genuine, stage: other }, `got stage ${JSON.stringify(other)}`],
    [{ ...genuine, stage: undefined }, 'got stage undefined'],
    [null, 'got stage object'],
    [undefined, 'got stage undefined'],
    [42, 'got stage number'],
    ['key_list', 'got stage string'],
  ];
  for (const [message, got] of unexpected) {
    const error = refusalOf(() => deliver(round, client, step, message));
    expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', reason: 'UNEXPECTED_STAGE', ...where });
    expect(error.message).toContain(`expected a ${step} message, ${got}`);
  }
  const { roundId: _roundId, ...withoutRoundId } = genuine;
  const wrongRound: readonly unknown[] = [
    { ...genuine, roundId: OTHER_ROUND_ID },
    { ...genuine, roundId: round.config.roundId.subarray(1) },
    withoutRoundId,
    { ...genuine, roundId: Buffer.from(round.config.roundId).toString('hex') },
    { ...genuine, roundId: [...round.config.roundId] },
  ];
  for (const message of wrongRound) {
    const error = refusalOf(() => deliver(round, client, step, message));
    expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', reason: 'WRONG_ROUND', ...where });
    expect(error.message).toContain(`the ${step} message is for another round than the one this site is in`);
  }
  // Every other stage's message, well-formed and for this round, is out of order here (earlier ones are
  // replays, later ones skip a step). The answered-once stages (U3, Unmask, Commit) have their own rules
  // once answered; before that they are out of order like the rest.
  for (const out of STEPS) {
    // A site that signed U3 may commit without being asked to unmask (a test below): not out of order.
    if (out === step || (out === 'commit_request' && phase === 'consistency_signed')) continue;
    const message = shellOf(round, out);
    if (out === 'consistency_request' && phase === 'consistency_signed') {
      // Once signed, another U3 is a conflict, not a step out of order (see the answered-once tests).
      expect(refusalOf(() => deliver(round, client, out, message))).toMatchObject({ reason: 'CONFLICTING_SURVIVOR_SET' });
      continue;
    }
    const error = refusalOf(() => deliver(round, client, out, message));
    const needs = { key_list: 'advertised', graph: 'nonce_revealed', share_delivery: 'shares_sent', consistency_request: 'masked', unmask_request: 'consistency_signed', commit_request: 'unmasked' }[out];
    const stage = out === 'commit_request' ? 'commit' : out;
    expect(error).toMatchObject({ code: 'FAILED_PRECONDITION', reason: 'OUT_OF_ORDER', stage, site: victim });
    expect(error.message).toContain(`a ${stage} step needs phase ${needs}, the site is in phase ${phase}`);
  }
  const again = refusalOf(() => client.advertiseKeys(round.config));
  expect(again).toMatchObject({ reason: 'OUT_OF_ORDER', stage: 'advertise_keys', site: victim });
  // Before its shares are accepted the site has nothing to mask with (after masking it resends its upload).
  if (phase === 'advertised' || phase === 'nonce_revealed' || phase === 'shares_sent') {
    expect(refusalOf(() => client.maskedInput(testUpdate(round.config, victim)))).toMatchObject({ reason: 'OUT_OF_ORDER', stage: 'masked_input', site: victim });
  }
  // Nothing changed and nothing left the site.
  expect(client.phase).toBe(phase);
  expect(client.failureReason).toBeUndefined();
  expect(stagesSent(round.sent.get(victim))).toEqual(sentBefore);
}

describe('SecAggClient envelope and stage order', () => {
  it('refuses a message of another stage, for another round or out of order at every stage, and the round goes on', () => {
    const round = driver();
    const victim = 'stg-02';
    const idle = new SecAggClient({ siteId: 'stg-05', signingKey: federation.site('stg-05').privateKey, policy: testPolicy(), trust: federation.trust });
    // Before RoundConfig the site is in no round: any stage message is for another round.
    for (const step of STEPS) {
      expect(refusalOf(() => deliver(round, idle, step, shellOf(round, step)))).toMatchObject({ code: 'INVALID_ARGUMENT', reason: 'WRONG_ROUND', stage: step });
    }
    expect(idle.phase).toBe('idle');

    const keyList = round.advertise();
    probe(round, victim, 'key_list', keyList);
    const graphs = round.revealNonces(keyList);
    probe(round, victim, 'graph', graphs.get(victim) as GraphMessage);
    const deliveries = round.dealShares(graphs);
    probe(round, victim, 'share_delivery', deliveries.get(victim) as ShareDeliveryMessage);
    const consistency = round.maskInputs(deliveries);
    probe(round, victim, 'consistency_request', consistency);
    const unmaskRequest = round.signConsistency(consistency);
    probe(round, victim, 'unmask_request', unmaskRequest);
    const aggregate = round.unmask(unmaskRequest);
    // Every probe left the victim in the round: it answered every stage, and the round closed.
    expect(round.refusals.size).toBe(0);
    expect(stagesSent(round.sent.get(victim))).toEqual(['advertise_keys', 'nonce_reveal', 'share_keys', 'masked_input', 'consistency_check', 'unmask']);
    const status = round.commit(aggregate);
    expect(round.refusals.size).toBe(0);
    expect(status).toBeDefined();
    expect(round.client(victim).phase).toBe('committed');
  });

  it('refuses a commit before the site signed U3, and keeps the site in the round', () => {
    const round = driver();
    const consistency = round.maskInputs(round.dealShares(round.revealNonces(round.advertise())));
    const victim = 'stg-03';
    const client = round.client(victim);
    const request = commitRequest(round, { previousModelHash: round.config.modelHash, aggregateHash: sha256(utf8('x')), newModelHash: sha256(utf8('y')), optimizerStateHash: sha256(utf8('z')) });
    const error = refusalOf(() => client.commit(request, request));
    expect(error).toMatchObject({ code: 'FAILED_PRECONDITION', reason: 'OUT_OF_ORDER', stage: 'commit', site: victim });
    expect(error.message).toContain('a commit step needs phase unmasked, the site is in phase masked');
    expect(client.phase).toBe('masked');
    expect(client.consistencyCheck(consistency).stage).toBe('consistency_check');
  });

  it('signs the commit of a site that signed U3 but was not asked to unmask', () => {
    const bystander = 'stg-06';
    const round = driver({ drops: new Map([[bystander, 'unmask']]) });
    const aggregate = round.unmask(round.signConsistency(round.maskInputs(round.dealShares(round.revealNonces(round.advertise())))));
    expect(aggregate.maskedSurvivors).toContain(bystander);
    const client = round.client(bystander);
    expect(client.phase).toBe('consistency_signed');
    const hashes = computedHashes(round, aggregate);
    const signature = client.commit(round.server.beginCommit(hashes), hashes);
    expect(signature).toMatchObject({ stage: 'commit', ...hashes });
    expect(client.phase).toBe('committed');
    expect(() => round.server.receive(bystander, signature)).not.toThrow();
  });
});

describe('SecAggClient answered-once stages', () => {
  it('returns the same masked input when asked again (a retry), never a second masking', () => {
    const round = driver();
    const deliveries = round.dealShares(round.revealNonces(round.advertise()));
    const siteId = 'stg-01';
    const client = round.client(siteId);
    client.acceptShares(deliveries.get(siteId) as ShareDeliveryMessage);
    const first = client.maskedInput(testUpdate(round.config, siteId));
    expect(client.maskedInput(testUpdate(round.config, 'stg-04'))).toBe(first);
    expect(client.phase).toBe('masked');
  });

  it('signs the same U3 again with the same signature, and refuses a different U3 in the same round', () => {
    const dropped = 'stg-07';
    const round = driver({ drops: new Map([[dropped, 'masked_input']]) });
    const request = round.maskInputs(round.dealShares(round.revealNonces(round.advertise())));
    expect(request.survivors).not.toContain(dropped);
    const victim = 'stg-01';
    const client = round.client(victim);
    const signed = client.consistencyCheck(request);
    expect(client.consistencyCheck({ ...request, survivors: [...request.survivors].reverse() })).toBe(signed);

    const someoneElse = request.survivors.find((siteId) => siteId !== victim) as string;
    const forgeries: readonly [string, readonly string[]][] = [
      // The coordinator claims a site dropped after all (to learn its mask key on top of its b).
      ['a subset of U3', request.survivors.filter((siteId) => siteId !== someoneElse)],
      // The same size, one member swapped for a site that never uploaded.
      ['U3 with one member swapped', [...request.survivors.filter((siteId) => siteId !== someoneElse), dropped]],
      ['a superset of U3', [...request.survivors, dropped]],
      ['an empty U3', []],
    ];
    for (const [name, survivors] of forgeries) {
      const error = refusalOf(() => client.consistencyCheck({ ...request, survivors }));
      expect(error, name).toMatchObject({ code: 'FAILED_PRECONDITION', reason: 'CONFLICTING_SURVIVOR_SET', stage: 'consistency_check', site: victim });
      expect(error.message).toContain('this site already signed a different U3 in this round');
    }
    expect(refusalOf(() => client.consistencyCheck({ ...request, survivors: 'all' as unknown as string[] })).reason).toBe('CONFLICTING_SURVIVOR_SET');
    // A replay for another round is refused as such, even after the site signed.
    expect(refusalOf(() => client.consistencyCheck({ ...request, roundId: OTHER_ROUND_ID })).reason).toBe('WRONG_ROUND');
    // The refusals did not end the site's round: it still has its one signature for the genuine U3.
    expect(client.phase).toBe('consistency_signed');
    expect(client.consistencyCheck(request)).toBe(signed);
  });

  it('answers a repeated Unmask request with the same answer, and a refusal says why', () => {
    const round = driver();
    const request = round.signConsistency(round.maskInputs(round.dealShares(round.revealNonces(round.advertise()))));
    const siteId = 'stg-02';
    const client = round.client(siteId);
    const answer = client.unmask(request);
    expect(client.unmask({ ...request, signatures: request.signatures.slice(0, 1) })).toBe(answer);
    expect(refusalOf(() => client.unmask({ ...request, roundId: OTHER_ROUND_ID })).reason).toBe('WRONG_ROUND');

    const victim = 'stg-05';
    const error = refusalOf(() => round.client(victim).unmask({ ...request, signatures: request.signatures.filter((entry) => entry.siteId === victim) }));
    expect(error).toMatchObject({ code: 'FAILED_PRECONDITION', reason: 'INSUFFICIENT_CONSISTENCY_SIGNATURES', stage: 'unmask', site: victim });
    expect(error.message).toMatch(/^refusing to unmask: /);
    expect(round.client(victim).failureReason).toBe(error);
  });

  it('signs the same commit again with the same signature, and refuses a different commit in the same round', () => {
    const round = driver();
    const aggregate = round.unmask(round.signConsistency(round.maskInputs(round.dealShares(round.revealNonces(round.advertise())))));
    const hashes = computedHashes(round, aggregate);
    const siteId = 'stg-04';
    const client = round.client(siteId);
    const signed = client.commit(commitRequest(round, hashes), hashes);
    expect(client.phase).toBe('committed');
    expect(client.commit(commitRequest(round, hashes), hashes)).toBe(signed);
    // Another model r+1 the site also "computed" (it recomputes from what the coordinator shows it): a
    // second signature would let the coordinator pick which model the quorum signed.
    const other = { ...hashes, newModelHash: sha256(utf8('another model r+1')) };
    const error = refusalOf(() => client.commit(commitRequest(round, other), other));
    expect(error).toMatchObject({ code: 'FAILED_PRECONDITION', reason: 'CONFLICTING_COMMIT', stage: 'commit', site: siteId });
    expect(error.message).toContain('this site already signed a different commit in this round');
    expect(client.phase).toBe('committed');
    expect(client.commit(commitRequest(round, hashes), hashes)).toBe(signed);
  });

  it('refuses a commit on another previous model or with malformed computed hashes, naming the field', () => {
    const round = driver();
    const aggregate = round.unmask(round.signConsistency(round.maskInputs(round.dealShares(round.revealNonces(round.advertise())))));
    const hashes = computedHashes(round, aggregate);
    const moved = { ...hashes, previousModelHash: sha256(utf8('another model r')) };
    const first = refusalOf(() => round.client('stg-00').commit(commitRequest(round, moved), moved));
    expect(first).toMatchObject({ reason: 'MODEL_HASH_MISMATCH', stage: 'commit', site: 'stg-00' });
    expect(first.message).toContain('commit_request.previousModelHash is not the model hash');
    const second = refusalOf(() => round.client('stg-01').commit(commitRequest(round, hashes), { ...hashes, newModelHash: new Uint8Array(31) }));
    expect(second).toMatchObject({ reason: 'MALFORMED_MESSAGE', stage: 'commit', site: 'stg-01' });
    expect(second.message).toContain('computed.newModelHash must be a 32-byte SHA-256 digest');
    const third = { ...hashes, aggregateHash: sha256(utf8('another aggregate')) };
    expect(refusalOf(() => round.client('stg-02').commit(commitRequest(round, third), hashes))).toMatchObject({ reason: 'COMMIT_MISMATCH', stage: 'commit', site: 'stg-02' });
    for (const siteId of ['stg-00', 'stg-01', 'stg-02']) expect(round.client(siteId).phase).toBe('failed');
  });
});

describe('SecAggClient after dispose', () => {
  it('refuses every call with CLIENT_DISPOSED, at every stage it can be disposed in', () => {
    const stop = (round: RoundDriver, siteId: string): SecAggClient => {
      const client = round.client(siteId);
      client.dispose();
      return client;
    };
    const expectDisposed = (action: () => unknown, stage: string, site: string): void => {
      const error = refusalOf(action);
      expect(error).toMatchObject({ code: 'FAILED_PRECONDITION', reason: 'CLIENT_DISPOSED', stage, site });
      expect(error.message).toContain('this round is over for the site: its secrets were zeroized');
    };
    const first = driver();
    const firstList = first.advertise();
    const early = stop(first, 'stg-00');
    expectDisposed(() => early.revealNonce(firstList), 'key_list', 'stg-00');
    expectDisposed(() => early.advertiseKeys(first.config), 'advertise_keys', 'stg-00');
    const idle = new SecAggClient({ siteId: 'stg-00', signingKey: federation.site('stg-00').privateKey, policy: testPolicy(), trust: federation.trust });
    idle.dispose();
    expectDisposed(() => idle.advertiseKeys(first.config), 'advertise_keys', 'stg-00');

    const round = driver();
    const keyList = round.advertise();
    const deliveries = round.dealShares(round.revealNonces(keyList));
    // A site whose deadline passed after it accepted its shares: it must not mask with zeroized seeds.
    const late = round.client('stg-01');
    late.acceptShares(deliveries.get('stg-01') as ShareDeliveryMessage);
    late.dispose();
    expectDisposed(() => late.maskedInput(testUpdate(round.config, 'stg-01')), 'masked_input', 'stg-01');
    const consistency = round.maskInputs(new Map([...deliveries].filter(([siteId]) => siteId !== 'stg-01')));
    const unmaskRequest = round.signConsistency(consistency);
    // Disposed after it answered: a repeated request gets no copy of the (now zeroized) answers.
    const signed = stop(round, 'stg-05');
    expectDisposed(() => signed.consistencyCheck(consistency), 'consistency_request', 'stg-05');
    expectDisposed(() => signed.unmask(unmaskRequest), 'unmask_request', 'stg-05');
    const aggregate = round.unmask(unmaskRequest);
    const answered = stop(round, 'stg-03');
    expect(round.reveals.has('stg-03')).toBe(true);
    expectDisposed(() => answered.unmask(unmaskRequest), 'unmask_request', 'stg-03');
    expectDisposed(() => answered.consistencyCheck(consistency), 'consistency_request', 'stg-03');
    const hashes = computedHashes(round, aggregate);
    const committed = round.client('stg-04');
    committed.commit(commitRequest(round, hashes), hashes);
    committed.dispose();
    expectDisposed(() => committed.commit(commitRequest(round, hashes), hashes), 'commit_request', 'stg-04');
    expectDisposed(() => round.client('stg-05').commit(commitRequest(round, hashes), hashes), 'commit_request', 'stg-05');
  });
});

describe('SecAggClient construction and failures', () => {
  const base = (): SecAggClientOptions => ({ siteId: 'stg-00', signingKey: federation.site('stg-00').privateKey, policy: testPolicy(), trust: federation.trust });

  it.each([
    ['an empty site id', ''],
    ['a number as the site id', 42],
    ['no site id', undefined],
  ])('refuses %s', (_name, siteId) => {
    const error = refusalOf(() => new SecAggClient({ ...base(), siteId: siteId as string }));
    expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', reason: 'INVALID_ARGUMENT' });
    expect(error.message).toContain('options.siteId must be a non-empty string');
  });

  /** A client whose signing key works for the advert and then fails as `fail` says (an HSM unplugged, a bad key). */
  function failingSigner(fail: (key: KeyObject) => KeyObject): SecAggClient {
    const options = base();
    let reads = 0;
    return new SecAggClient({
      ...options,
      get signingKey(): KeyObject {
        reads += 1;
        return reads === 1 ? options.signingKey : fail(options.signingKey);
      },
    });
  }

  /** Runs `client` (in stg-00's place) to its key list, where its signing key is read again and fails. */
  function failedAtKeyList(client: SecAggClient): SecAggError {
    const round = new RoundDriver({ federation, config: driver().config, drops: new Map([['stg-00', 'advertise_keys']]) });
    round.advertise();
    const adverts = new Map<string, AdvertiseKeysMessage>();
    for (const [siteId, sent] of round.sent) {
      const advert = sent.find((message) => message.stage === 'advertise_keys');
      if (advert !== undefined) adverts.set(siteId, advert);
    }
    adverts.set(client.siteId, client.advertiseKeys(round.config));
    const held = client.heldSecrets();
    expect(held.length).toBe(3);
    const list = uncheckedKeyList(round.config.roundId, adverts);
    const error = refusalOf(() => client.revealNonce(list));
    expect(client.phase).toBe('failed');
    expect(client.failureReason).toBe(error);
    // The failure ended the site's round: its secrets are zeroized and every later call repeats it.
    expect(held.every((buffer) => buffer.every((byte) => byte === 0))).toBe(true);
    expect(refusalOf(() => client.revealNonce(list))).toBe(error);
    expect(refusalOf(() => client.maskedInput(testUpdate(round.config, client.siteId)))).toBe(error);
    return error;
  }

  it('keeps the code and reason of a primitive CryptoError, and says which site failed', () => {
    const error = failedAtKeyList(failingSigner((key) => createPublicKey(key)));
    expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', reason: 'INVALID_KEY', site: 'stg-00' });
    expect(error.cause).toBeInstanceOf(CryptoError);
    expect(error.cause).not.toBeInstanceOf(SecAggError);
  });

  it('reports any other failure as INTERNAL, with its cause and the site', () => {
    const error = failedAtKeyList(
      failingSigner(() => {
        throw new Error('signing token removed');
      }),
    );
    expect(error).toMatchObject({ code: 'INTERNAL', reason: 'INTERNAL_ERROR', site: 'stg-00' });
    expect(error.message).toContain('unexpected failure: signing token removed');
    expect(error.cause).toBeInstanceOf(Error);
    expect((error.cause as Error).message).toBe('signing token removed');
  });
});
