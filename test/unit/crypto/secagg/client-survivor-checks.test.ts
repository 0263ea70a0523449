/**
 * A site's checks of the ConsistencyCheck request before it signs U3 (client-survivors.ts): U3 itself
 * and the signed MaskedInput closings of its neighbours in U3. Honest stages run with the simulation
 * harness up to the request; then one thing in it is changed and the victim must refuse with that
 * check's reason, say what was wrong, and sign nothing.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { NeighbourGraph } from '../../../../crypto/graph.js';
import { SecAggError } from '../../../../crypto/secagg/errors.js';
import type { ConsistencyRequestMessage, UnmaskRequestMessage } from '../../../../crypto/secagg/messages.js';
import { RoundDriver, cachedFederation, stagesSent, testPolicy, testRoundConfig, type DropPoint, type TestFederation } from '../../../support/secagg-sim.js';

let federation: TestFederation;
const ids = (): string[] => federation.sites.map((site) => site.siteId);
// Generating every site's RSA key is slow on a busy machine: allow it time, once per file.
beforeAll(() => {
  federation = cachedFederation(8, 'sv-');
}, 300_000);

const victim = 'sv-04';

interface AtConsistency {
  readonly round: RoundDriver;
  readonly request: ConsistencyRequestMessage;
  readonly neighbours: readonly string[];
  readonly outsiders: readonly string[];
}

/** k = 4 ring over 8 sites, t = 3, up to the ConsistencyCheck request. */
function atConsistency(options: { victimMinimum?: number; drops?: ReadonlyMap<string, DropPoint> } = {}): AtConsistency {
  const config = testRoundConfig({ participants: ids(), degree: 4, threshold: 3, parameters: 64 });
  const round = new RoundDriver({
    federation,
    config,
    policy: (siteId) => testPolicy(siteId === victim && options.victimMinimum !== undefined ? { minParticipants: options.victimMinimum } : {}),
    ...(options.drops === undefined ? {} : { drops: options.drops }),
  });
  const request = round.maskInputs(round.dealShares(round.revealNonces(round.advertise())));
  expect(request.survivors).toContain(victim);
  const graph = round.server.neighbourGraph as NeighbourGraph;
  const neighbours = graph.neighbours(victim);
  const outsiders = ids().filter((siteId) => siteId !== victim && !neighbours.includes(siteId));
  return { round, request, neighbours, outsiders };
}

function refusedRequest(round: RoundDriver, forged: unknown): SecAggError {
  let error: unknown;
  try {
    round.client(victim).consistencyCheck(forged as ConsistencyRequestMessage);
  } catch (caught) {
    error = caught;
  }
  expect(error).toBeInstanceOf(SecAggError);
  expect((error as SecAggError).stage).toBe('consistency_check');
  expect(round.client(victim).phase).toBe('failed');
  expect(stagesSent(round.sent.get(victim))).not.toContain('consistency_check');
  return error as SecAggError;
}

describe('the U3 of a ConsistencyCheck request', () => {
  it('is refused when it leaves this site out', () => {
    const { round, request } = atConsistency();
    const error = refusedRequest(round, { ...request, survivors: request.survivors.filter((siteId) => siteId !== victim) });
    expect(error).toMatchObject({ code: 'FAILED_PRECONDITION', reason: 'NOT_IN_SURVIVOR_SET' });
    expect(error.message).toContain('this site is not in U3');
  });

  it('is refused when it names a site that is in U1 but not in U2', () => {
    // sv-07 advertised keys and revealed its nonce, then dropped before ShareKeys: in U1, not in U2.
    const late = 'sv-07';
    const { round, request } = atConsistency({ drops: new Map([[late, 'share_keys']]) });
    expect(request.survivors).not.toContain(late);
    const error = refusedRequest(round, { ...request, survivors: [...request.survivors, late].sort() });
    expect(error).toMatchObject({ code: 'FAILED_PRECONDITION', reason: 'SURVIVOR_SET_NOT_SUBSET' });
    expect(error.message).toContain('consistency_request.survivors (U3) names a site outside U2');
  });

  it('is refused when it is not an array, naming the field', () => {
    const { round, request } = atConsistency();
    const error = refusedRequest(round, { ...request, survivors: 'all of them' });
    expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', reason: 'MALFORMED_MESSAGE' });
    expect(error.message).toContain('consistency_request.survivors must be an array of site ids');
  });

  it("is signed when it is exactly the site's minimum", () => {
    const { round, request } = atConsistency({ victimMinimum: 8 });
    expect(request.survivors).toHaveLength(8);
    expect(round.client(victim).consistencyCheck(request).stage).toBe('consistency_check');
  });

  it("is refused when it is below the site's minimum (a site that is not a neighbour left out)", () => {
    const { round, request, outsiders } = atConsistency({ victimMinimum: 8 });
    const left = outsiders[0] as string;
    const forged = { ...request, survivors: request.survivors.filter((siteId) => siteId !== left), closings: request.closings.filter((closing) => closing.siteId !== left) };
    const error = refusedRequest(round, forged);
    expect(error).toMatchObject({ code: 'FAILED_PRECONDITION', reason: 'TOO_FEW_SURVIVORS' });
    expect(error.message).toContain("|U3| = 7 is below this site's minimum of 8");
  });
});

describe('the MaskedInput closings of a ConsistencyCheck request', () => {
  it("is refused when a U3 neighbour's closing is missing, naming it", () => {
    const { round, request, neighbours } = atConsistency();
    const missing = neighbours[1] as string;
    const error = refusedRequest(round, { ...request, closings: request.closings.filter((closing) => closing.siteId !== missing) });
    expect(error).toMatchObject({ code: 'FAILED_PRECONDITION', reason: 'CLOSING_MISSING' });
    expect(error.message).toContain(`U3 member and neighbour ${JSON.stringify(missing)} has no signed MaskedInput closing`);
  });

  it('is refused when the closings are not an array: no closing is given for any neighbour', () => {
    const { round, request, neighbours } = atConsistency();
    const error = refusedRequest(round, { ...request, closings: { length: request.closings.length } });
    const first = request.survivors.find((siteId) => neighbours.includes(siteId)) as string;
    expect(error).toMatchObject({ code: 'FAILED_PRECONDITION', reason: 'CLOSING_MISSING' });
    expect(error.message).toContain(`U3 member and neighbour ${JSON.stringify(first)} has no signed MaskedInput closing`);
  });

  it("is refused when a neighbour's closing is replaced by null, naming the neighbour", () => {
    const { round, request, neighbours } = atConsistency();
    const target = neighbours[0] as string;
    const closings = request.closings.map((closing) => (closing.siteId === target ? null : closing));
    const error = refusedRequest(round, { ...request, closings });
    expect(error).toMatchObject({ code: 'FAILED_PRECONDITION', reason: 'CLOSING_MISSING' });
    expect(error.message).toContain(`U3 member and neighbour ${JSON.stringify(target)} has no signed MaskedInput closing`);
  });

  it.each(['survivorDigest', 'uploadHash', 'signature'] as const)("is refused when a neighbour's closing has a %s that is not bytes", (field) => {
    const { round, request, neighbours } = atConsistency();
    const target = neighbours[2] as string;
    const closings = request.closings.map((closing) => (closing.siteId === target ? { ...closing, [field]: [...closing[field]] } : closing));
    const error = refusedRequest(round, { ...request, closings });
    expect(error).toMatchObject({ code: 'PERMISSION_DENIED', reason: 'CLOSING_SIGNATURE_INVALID' });
    expect(error.message).toContain(`the MaskedInput closing of neighbour ${JSON.stringify(target)} does not verify`);
  });

  it('the genuine request is signed', () => {
    const { round, request } = atConsistency();
    expect(round.client(victim).consistencyCheck(request).stage).toBe('consistency_check');
  });
});

describe('the consistency signatures of an Unmask request', () => {
  /** The round up to the Unmask request, the victim having signed U3. */
  function atUnmask(): { round: RoundDriver; request: UnmaskRequestMessage } {
    const { round, request } = atConsistency();
    return { round, request: round.signConsistency(request) };
  }

  function refusedUnmask(round: RoundDriver, forged: unknown): SecAggError {
    let error: unknown;
    try {
      round.client(victim).unmask(forged as UnmaskRequestMessage);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(SecAggError);
    expect(round.client(victim).phase).toBe('failed');
    expect(stagesSent(round.sent.get(victim))).not.toContain('unmask');
    return error as SecAggError;
  }

  it('count only the site itself when they are not an array: too few signed, nothing revealed', () => {
    const { round, request } = atUnmask();
    const error = refusedUnmask(round, { ...request, signatures: { length: request.signatures.length } });
    expect(error).toMatchObject({ code: 'FAILED_PRECONDITION', reason: 'INSUFFICIENT_CONSISTENCY_SIGNATURES', stage: 'unmask' });
    expect(error.message).toContain("1 members of this site's closed neighbourhood signed");
  });

  it('do not count null entries: with every other signature replaced by null, nothing is revealed', () => {
    const { round, request } = atUnmask();
    const signatures = request.signatures.map((entry) => (entry.siteId === victim ? entry : null));
    const error = refusedUnmask(round, { ...request, signatures });
    expect(error).toMatchObject({ code: 'FAILED_PRECONDITION', reason: 'INSUFFICIENT_CONSISTENCY_SIGNATURES', stage: 'unmask' });
    expect(error.message).toContain("1 members of this site's closed neighbourhood signed");
  });

  it('the genuine request with junk entries added (null, a number for a site id) is answered', () => {
    const { round, request } = atUnmask();
    const junk = [null, { siteId: 7, signature: new Uint8Array(64) }] as unknown as UnmaskRequestMessage['signatures'];
    expect(round.client(victim).unmask({ ...request, signatures: [...junk, ...request.signatures] }).stage).toBe('unmask');
  });
});
