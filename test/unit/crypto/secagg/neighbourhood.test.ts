/**
 * The conventions both state machines apply identically: share x coordinates, the pairwise mask sign,
 * the live-holder count of the survivor rules, and the parsing of a survivor list (duplicates refused,
 * not deduplicated).
 */
import { describe, expect, it } from 'vitest';
import { buildNeighbourGraph } from '../../../../crypto/graph.js';
import { isSubset, liveHolders, pairwiseMaskSign, shareCoordinate, siteIdSet } from '../../../../crypto/secagg/neighbourhood.js';
import { secaggRefusal as refusal } from '../../../support/secagg-refusal.js';

const members = ['site-a', 'site-b', 'site-c', 'site-d', 'site-e'];

describe('shareCoordinate', () => {
  it('is 1 + the holder index in U1', () => {
    expect(members.map((member) => shareCoordinate(members, member))).toEqual([1, 2, 3, 4, 5]);
  });

  it('refuses a holder outside U1, naming it', () => {
    const error = refusal(() => shareCoordinate(members, 'site-z'));
    expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', reason: 'UNKNOWN_SITE' });
    expect(error.message).toContain('"site-z"');
  });
});

describe('pairwiseMaskSign', () => {
  it('is +1 for the smaller id by UTF-8 bytes and -1 for the other, so the two masks cancel', () => {
    expect(pairwiseMaskSign('site-a', 'site-b')).toBe(1);
    expect(pairwiseMaskSign('site-b', 'site-a')).toBe(-1);
    // U+FF21 comes after U+10000 in UTF-16 code units (0xFF21 > 0xD800, JavaScript's < order) but before it
    // in UTF-8 bytes (EF BC A1 < F0 90 80 80): the sign follows the bytes.
    const fullwidth = '\uFF21';
    const astral = '\u{10000}';
    expect(fullwidth < astral).toBe(false);
    expect(pairwiseMaskSign(fullwidth, astral)).toBe(1);
    expect(pairwiseMaskSign(astral, fullwidth)).toBe(-1);
  });
});

describe('liveHolders', () => {
  it('counts the present members of the closed neighbourhood, the site itself included', () => {
    const graph = buildNeighbourGraph(new Uint8Array(32).fill(3), members, 2);
    const site = 'site-c';
    const neighbourhood = graph.closedNeighbourhood(site);
    expect(neighbourhood).toHaveLength(3);
    expect(liveHolders(graph, site, new Set(members))).toBe(3);
    expect(liveHolders(graph, site, new Set())).toBe(0);
    const outsider = members.find((member) => !neighbourhood.includes(member)) as string;
    expect(liveHolders(graph, site, new Set([outsider]))).toBe(0);
    expect(liveHolders(graph, site, new Set([site, outsider]))).toBe(1);
    expect(liveHolders(graph, site, new Set(neighbourhood.filter((member) => member !== site)))).toBe(2);
  });
});

describe('isSubset', () => {
  it('holds only when every element is in the superset', () => {
    const superset = new Set(['site-a', 'site-b']);
    expect(isSubset([], superset)).toBe(true);
    expect(isSubset(['site-b', 'site-a'], superset)).toBe(true);
    expect(isSubset(['site-a', 'site-c'], superset)).toBe(false);
    expect(isSubset(['site-c', 'site-a'], superset)).toBe(false);
  });
});

describe('siteIdSet', () => {
  it('returns the ids as a set', () => {
    expect([...siteIdSet(['site-b', 'site-a'], 'survivors')]).toEqual(['site-b', 'site-a']);
    expect(siteIdSet([], 'survivors').size).toBe(0);
  });

  it.each([
    ['not an array', 'site-a', 'must be an array of site ids'],
    ['a duplicated id', ['site-a', 'site-b', 'site-a'], 'must list distinct non-empty site ids; "site-a" is not'],
    ['an empty id', ['site-a', ''], 'must list distinct non-empty site ids; "" is not'],
    ['a number', ['site-a', 7], 'must list distinct non-empty site ids; 7 is not'],
  ] as const)('refuses %s as a malformed message, naming the field and the stage', (_name, ids, text) => {
    const error = refusal(() => siteIdSet(ids, 'consistency_request.survivors', { stage: 'consistency_request', site: 'site-c' }));
    expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', reason: 'MALFORMED_MESSAGE', stage: 'consistency_request', site: 'site-c' });
    expect(error.message).toContain(`consistency_request.survivors ${text}`);
  });
});
