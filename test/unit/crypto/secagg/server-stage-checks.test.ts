/**
 * The coordinator's own stage checks (crypto/secagg/server.ts): who may send what when, the survivor and
 * holder bounds at each close, where an abort says it happened, the caller's buffers, and what pending()
 * and summary() report. Each test drives a real round and names the exact reason, stage and site.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { CryptoError } from '../../../../crypto/errors.js';
import { sha256 } from '../../../../crypto/hash.js';
import { SecAggError } from '../../../../crypto/secagg/errors.js';
import type { ClientMessage, GraphMessage, UnmaskResponseMessage } from '../../../../crypto/secagg/messages.js';
import { vectorLength } from '../../../../crypto/secagg/config.js';
import type { ClientStage } from '../../../../crypto/secagg/stages.js';
import { RoundDriver, cachedFederation, expectedSum, simulateRound, testPolicy, testRoundConfig, wrappedSum, type SimulationOptions, type TestFederation } from '../../../support/secagg-sim.js';
import { secaggRefusal as thrown } from '../../../support/secagg-refusal.js';

let federation: TestFederation;
beforeAll(() => {
  federation = cachedFederation(6, 'srv-');
}, 300_000);

const ids = (): string[] => federation.sites.map((site) => site.siteId);

interface RoundShape {
  readonly degree?: number;
  readonly threshold?: number;
  readonly plaintext?: boolean;
}

function config({ degree = 4, threshold = 3, plaintext = false }: RoundShape = {}) {
  return testRoundConfig({ participants: ids(), degree, threshold, parameters: 32, plaintext });
}

function driver(shape: RoundShape = {}, extra: Partial<SimulationOptions> = {}): RoundDriver {
  return new RoundDriver({ federation, config: config(shape), ...(shape.plaintext === true ? { policy: () => testPolicy({ allowPlaintext: true }) } : {}), ...extra });
}

function drops(stage: ClientStage, ...siteIds: string[]): ReadonlyMap<string, ClientStage> {
  return new Map(siteIds.map((siteId) => [siteId, stage]));
}

describe('SecAggServer construction', () => {
  it('refuses a minSurvivors that is not a positive integer', () => {
    for (const minSurvivors of [0, -1, 1.5]) {
      const error = thrown(() => driver({}, { serverOptions: { minSurvivors } }));
      expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', reason: 'INVALID_ARGUMENT' });
      expect(error.message).toMatch(/options\.minSurvivors must be a positive integer, got/);
    }
  });

  it('accepts the smallest minSurvivors, 1', () => {
    expect(driver({}, { serverOptions: { minSurvivors: 1 } }).server.phase).toBe('advertise_keys');
  });
});

describe('SecAggServer message intake context', () => {
  it('names the sender (and stage) on every refusal of a message that is not for the open stage', () => {
    const run = driver();
    const sender = 'srv-00';
    const advert = run.client(sender).advertiseKeys(run.config);
    const unknown = thrown(() => run.server.receive(sender, { ...advert, stage: 'exfiltrate' } as unknown as ClientMessage));
    expect(unknown).toMatchObject({ reason: 'UNKNOWN_STAGE', site: sender });
    expect(unknown.message).toMatch(/message stage "exfiltrate" is not one of advertise_keys, /);
    for (const message of [null, undefined]) {
      expect(thrown(() => run.server.receive(sender, message as unknown as ClientMessage))).toMatchObject({ code: 'INVALID_ARGUMENT', reason: 'UNKNOWN_STAGE', site: sender });
    }
    const wrongRound = thrown(() => run.server.receive(sender, { ...advert, roundId: new Uint8Array(advert.roundId.length) }));
    expect(wrongRound).toMatchObject({ reason: 'WRONG_ROUND', stage: 'advertise_keys', site: sender });
    expect(wrongRound.message).toMatch(/another round/);
    const closed = thrown(() => run.server.receive(sender, { ...advert, stage: 'unmask' } as unknown as ClientMessage));
    expect(closed).toMatchObject({ reason: 'STAGE_CLOSED', stage: 'unmask', site: sender });
    expect(closed.message).toMatch(/^a unmask message arrived while the round accepts advertise_keys/);
    const stranger = thrown(() => run.server.receive('intruder', advert));
    expect(stranger).toMatchObject({ reason: 'UNEXPECTED_SENDER', stage: 'advertise_keys', site: 'intruder' });
    expect(stranger.message).toMatch(/^site "intruder" is not expected to send advertise_keys/);
    run.server.receive(sender, advert);
    const again = thrown(() => run.server.receive(sender, advert));
    expect(again).toMatchObject({ reason: 'DUPLICATE_MESSAGE', stage: 'advertise_keys', site: sender });
    expect(again.message).toMatch(/^site "srv-00" already sent its advertise_keys message/);
    // A SecAggError from an intake check is passed on as it is, not wrapped.
    const forged = thrown(() => run.server.receive('srv-01', advert));
    expect(forged).toMatchObject({ reason: 'BAD_SIGNATURE', stage: 'advertise_keys', site: 'srv-01' });
    expect(forged.cause).toBeUndefined();
    expect(forged.message).not.toMatch(/\(stage advertise_keys, site "srv-01"\).*\(stage/);
  });

  it('wraps a primitive CryptoError (a share at x = 0) with its stage and sender, keeping code and reason', () => {
    const run = driver();
    const request = run.signConsistency(run.maskInputs(run.dealShares(run.revealNonces(run.advertise()))));
    const sender = request.signatures[0]!.siteId;
    const reveal = run.client(sender).unmask(request) as UnmaskResponseMessage;
    expect(reveal.shares.length).toBeGreaterThan(0);
    const zeroed = { ...reveal, shares: reveal.shares.map((share) => ({ ...share, share: new Uint8Array(share.share.length) })) };
    const error = thrown(() => run.server.receive(sender, zeroed));
    expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', reason: 'INVALID_SHARE_X', stage: 'unmask', site: sender });
    expect(error.cause).toBeInstanceOf(CryptoError);
    expect(error.cause).not.toBeInstanceOf(SecAggError);
    // The Unmask stage takes one answer per revealer: a second one is a duplicate, not a replacement.
    run.server.receive(sender, reveal);
    expect(thrown(() => run.server.receive(sender, reveal))).toMatchObject({ reason: 'DUPLICATE_MESSAGE', stage: 'unmask', site: sender });
  });

  it('accepts no message once the aggregate is out (before Commit opens), and none after an abort', () => {
    const run = driver();
    run.unmask(run.signConsistency(run.maskInputs(run.dealShares(run.revealNonces(run.advertise())))));
    expect(run.server.phase).toBe('aggregated');
    expect(run.server.pending()).toEqual([]);
    const late = run.sent.get('srv-00')![0]!;
    const closed = thrown(() => run.server.receive('srv-00', late));
    expect(closed).toMatchObject({ reason: 'STAGE_CLOSED', site: 'srv-00' });
    expect(closed.message).toMatch(/while the round accepts no messages/);
    expect(thrown(() => run.server.abort('DEADLINE_EXCEEDED', 'test deadline'))).toMatchObject({ code: 'ABORTED', reason: 'DEADLINE_EXCEEDED' });
    expect(run.server.pending()).toEqual([]);
    const after = thrown(() => run.server.receive('srv-00', late));
    expect(after).toMatchObject({ code: 'ABORTED', reason: 'DEADLINE_EXCEEDED' });
    expect(after.message).toMatch(/^the round was aborted \(DEADLINE_EXCEEDED\); no further messages are accepted/);
  });
});

describe('SecAggServer pending()', () => {
  it('lists who has not answered the open stage, sorted, through to Commit', () => {
    const run = driver();
    expect(run.server.pending()).toEqual(ids());
    run.server.receive('srv-03', run.client('srv-03').advertiseKeys(run.config));
    expect(run.server.pending()).toEqual(ids().filter((siteId) => siteId !== 'srv-03'));
    for (const siteId of ids()) if (siteId !== 'srv-03') run.server.receive(siteId, run.client(siteId).advertiseKeys(run.config));
    expect(run.server.pending()).toEqual([]);
    const keyList = run.server.closeAdvertiseKeys();
    run.keyList = keyList;
    expect(run.server.summary().commitSigned).toEqual([]);
    const aggregate = run.unmask(run.signConsistency(run.maskInputs(run.dealShares(run.revealNonces(keyList)))));
    run.commit(aggregate);
    const signers = run.server.commitStatus().signers;
    expect(signers.length).toBeGreaterThan(0);
    expect(run.server.summary().commitSigned).toEqual([...signers]);
    expect(run.server.pending()).toEqual([...aggregate.maskedSurvivors].filter((siteId) => !signers.includes(siteId)).sort());
  });
});

describe('SecAggServer nonce reveal', () => {
  it('pending() lists who has yet to reveal, and a second reveal from the same site is DUPLICATE_MESSAGE', () => {
    const run = driver();
    const keyList = run.advertise();
    const sender = 'srv-01';
    const reveal = run.client(sender).revealNonce(keyList);
    run.server.receive(sender, reveal);
    expect(run.server.pending()).toEqual(ids().filter((siteId) => siteId !== sender));
    const again = thrown(() => run.server.receive(sender, reveal));
    expect(again).toMatchObject({ code: 'FAILED_PRECONDITION', reason: 'DUPLICATE_MESSAGE', stage: 'nonce_reveal', site: sender });
    expect(run.server.summary().noncesRevealed).toEqual([sender]);
  });
});

describe('SecAggServer graph messages: the CRL', () => {
  /**
   * A site revoked after it advertised keys: the coordinator's CRL has its serial, the sites' own copies
   * do not yet. The graph message carries the coordinator's CRL to every site (sorted, the same list for
   * all), so the revoked site's neighbours refuse it before they seal it a share.
   */
  it("hands every site the coordinator's CRL, sorted, so a site revoked mid-round is refused by its neighbours", () => {
    const revoked = new Set(['7F01', '1A02']);
    const trust = { caCertificate: federation.trust.caCertificate, revokedSerials: revoked };
    const run = driver({}, { serverOptions: { trust } });
    const keyList = run.advertise();
    const target = 'srv-02';
    revoked.add(federation.site(target).serial);
    const graphs = run.revealNonces(keyList);
    const expected = [...revoked].sort();
    expect(expected).not.toEqual([...revoked]); // inserted out of order: the list is sorted, not copied
    for (const message of graphs.values()) expect(message.revokedSerials).toEqual(expected);
    const neighbour = run.server.neighbourGraph?.neighbours(target)[0] as string;
    const error = thrown(() => run.client(neighbour).shareKeys(graphs.get(neighbour) as GraphMessage, run.now));
    expect(error).toMatchObject({ code: 'PERMISSION_DENIED', reason: 'CERTIFICATE_REVOKED', stage: 'graph', site: neighbour });
    expect(error.message).toContain(`the certificate of neighbour ${JSON.stringify(target)} was rejected`);
  });
});

describe('SecAggServer closes: survivors, holders and where an abort happened', () => {
  it('a close out of order, or Commit read before it begins, is OUT_OF_ORDER', () => {
    const run = driver();
    const early = thrown(() => run.server.closeNonceReveal());
    expect(early).toMatchObject({ code: 'FAILED_PRECONDITION', reason: 'OUT_OF_ORDER' });
    expect(early.message).toMatch(/^closing nonce_reveal needs phase nonce_reveal, the round is in phase advertise_keys/);
    for (const read of [() => run.server.commitStatus(), () => run.server.commitRecord(), () => run.server.commitProgress()]) {
      const error = thrown(read);
      expect(error).toMatchObject({ code: 'FAILED_PRECONDITION', reason: 'OUT_OF_ORDER', stage: 'commit' });
      expect(error.message).toMatch(/^Commit has not begun/);
    }
  });

  for (const [stage, set, dropAt] of [
    ['advertise_keys', 'U1', 'advertise_keys'],
    ['share_keys', 'U2', 'share_keys'],
    ['masked_input', 'U3', 'masked_input'],
  ] as const) {
    it(`too few survivors at ${stage} aborts there, naming ${set}`, () => {
      const result = simulateRound({ federation, config: config(), drops: drops(dropAt, 'srv-05'), serverOptions: { minSurvivors: 6 } });
      expect(result.outcome).toBe('aborted');
      expect(result.abort).toMatchObject({ code: 'ABORTED', reason: 'TOO_FEW_SURVIVORS', stage });
      expect(result.abort?.message).toMatch(new RegExp(`^round aborted: \\|${set}\\| = 5 is below the minimum of 6 survivors`));
      expect(result.server.summary()).toMatchObject({ phase: 'aborted', abortReason: 'TOO_FEW_SURVIVORS' });
    });
  }

  it('U1 smaller than t aborts at advertise_keys with INSUFFICIENT_SHARE_HOLDERS', () => {
    const result = simulateRound({ federation, config: config(), drops: drops('advertise_keys', 'srv-02', 'srv-03', 'srv-04', 'srv-05'), serverOptions: { minSurvivors: 2 } });
    expect(result.abort).toMatchObject({ reason: 'INSUFFICIENT_SHARE_HOLDERS', stage: 'advertise_keys' });
    expect(result.abort?.message).toMatch(/closed neighbourhoods over \|U1\| = 2 sites have 2 members, fewer than t = 3/);
  });

  it('t = k + 1 with no dropout aggregates the exact sum (the bounds are strict)', () => {
    const result = simulateRound({ federation, config: config({ degree: 2, threshold: 3 }) });
    expect(result.rejections).toEqual([]);
    expect(result.refusals.size).toBe(0);
    expect(result.outcome).toBe('aggregated');
    expect(result.aggregate?.sum).toEqual(expectedSum(result));
  });

  it('a U2 member left with fewer than t live holders aborts at share_keys', () => {
    const result = simulateRound({ federation, config: config({ degree: 2, threshold: 3 }), drops: drops('share_keys', 'srv-05') });
    expect(result.abort).toMatchObject({ reason: 'INSUFFICIENT_SHARE_HOLDERS', stage: 'share_keys' });
    expect(result.abort?.message).toMatch(/member\(s\) of U2 have fewer than t = 3 of their closed neighbourhood in U2/);
  });

  it('a dropped U2 member whose mask key U3 cannot recover aborts at masked_input', () => {
    const result = simulateRound({ federation, config: config({ degree: 2, threshold: 3 }), drops: drops('masked_input', 'srv-05'), serverOptions: { minSurvivors: 2 } });
    expect(result.abort).toMatchObject({ reason: 'INSUFFICIENT_SHARE_HOLDERS', stage: 'masked_input' });
  });

  it('revealers too few for a needed secret abort at consistency_check, before any share is asked for', () => {
    const result = simulateRound({ federation, config: config(), drops: drops('consistency_check', 'srv-02', 'srv-03', 'srv-04', 'srv-05') });
    expect(result.abort).toMatchObject({ reason: 'INSUFFICIENT_SHARE_HOLDERS', stage: 'consistency_check' });
    expect(result.reveals.size).toBe(0);
  });

  it('a plaintext round needs no holders: dropouts at masked_input and consistency_check still aggregate', () => {
    for (const [stage, dropped] of [
      ['masked_input', ['srv-03', 'srv-04', 'srv-05']],
      ['consistency_check', ['srv-02', 'srv-03', 'srv-04', 'srv-05']],
    ] as const) {
      const run = driver({ plaintext: true, degree: 2, threshold: 3 }, { drops: drops(stage, ...dropped), serverOptions: { minSurvivors: 2 } });
      const result = run.run();
      expect(result.abort, stage).toBeUndefined();
      expect(result.outcome).toBe('aggregated');
      expect(result.aggregate?.sum).toEqual(expectedSum(result));
    }
  });

  it('a withheld nonce aborts at nonce_reveal', () => {
    const result = simulateRound({ federation, config: config(), drops: drops('nonce_reveal', 'srv-04') });
    expect(result.abort).toMatchObject({ reason: 'NONCE_WITHHELD', stage: 'nonce_reveal' });
    expect(result.abort?.message).toMatch(/1 member\(s\) of U1 did not reveal their nonce r_u, e\.g\. "srv-04"/);
  });
});

describe('SecAggServer buffers, unmask failures and commit', () => {
  it('sums into the caller\'s buffer (zeroed first) and refuses one of the wrong length', () => {
    const length = vectorLength(config());
    const short = driver({}, { serverOptions: { sumBuffer: new Uint32Array(length - 1) } });
    const graphs = short.revealNonces(short.advertise());
    for (const [siteId, message] of graphs) short.step(siteId, () => short.client(siteId).shareKeys(message, short.now));
    const error = thrown(() => short.server.closeShareKeys());
    expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', reason: 'INVALID_ARGUMENT' });
    expect(error.message).toMatch(new RegExp(`^options\\.sumBuffer must have d \\+ 4 = ${length} elements, got ${length - 1}`));

    const sumBuffer = new Uint32Array(length).fill(0xdead_beef);
    const run = driver({}, { serverOptions: { sumBuffer } });
    const deliveries = run.dealShares(run.revealNonces(run.advertise()));
    expect(run.server.summary().sumDigest).toBe(Buffer.from(sha256(new Uint8Array(length * 4))).toString('hex'));
    const aggregate = run.unmask(run.signConsistency(run.maskInputs(deliveries)));
    expect(aggregate.sum).toEqual(wrappedSum(run.quantized.values(), length));
    expect(sumBuffer).toEqual(aggregate.sum);
  });

  it('a bad dequantized buffer fails closeUnmask without ending the round', () => {
    const run = driver({}, { serverOptions: { dequantizedBuffer: new Float64Array(3) } });
    const request = run.signConsistency(run.maskInputs(run.dealShares(run.revealNonces(run.advertise()))));
    for (const { siteId } of request.signatures) run.step(siteId, () => run.client(siteId).unmask(request));
    const error = thrown(() => run.server.closeUnmask());
    expect(error.code).not.toBe('ABORTED');
    expect(run.server.summary()).toMatchObject({ phase: 'unmask', abortReason: undefined });
  });

  it('beginCommit names the commit stage and field for hashes off the round; commitRecord names the quorum shortfall', () => {
    const run = driver();
    run.unmask(run.signConsistency(run.maskInputs(run.dealShares(run.revealNonces(run.advertise())))));
    const bad = { previousModelHash: new Uint8Array(32), aggregateHash: new Uint8Array(32), newModelHash: new Uint8Array(32), optimizerStateHash: new Uint8Array(32) };
    const error = thrown(() => run.server.beginCommit(bad));
    expect(error.stage).toBe('commit');
    expect(error.message).toMatch(/hashes/);
    expect(run.server.phase).toBe('aggregated');
    const good = { previousModelHash: run.config.modelHash, aggregateHash: new Uint8Array(32).fill(1), newModelHash: new Uint8Array(32).fill(2), optimizerStateHash: new Uint8Array(32).fill(3) };
    run.server.beginCommit(good);
    const short = thrown(() => run.server.commitRecord());
    expect(short).toMatchObject({ code: 'FAILED_PRECONDITION', reason: 'COMMIT_QUORUM_NOT_REACHED', stage: 'commit' });
    expect(short.message).toMatch(/^0 valid commit signatures, \d+ required/);
  });
});
