import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { utf8 } from '../../../crypto/bytes.js';
import { CryptoError } from '../../../crypto/errors.js';
import { GRAPH_NONCE_LENGTH, buildNeighbourGraph, graphSeed, sortSiteIds } from '../../../crypto/graph.js';
import { hmacSha256, sha256 } from '../../../crypto/hash.js';

const ids = Array.from({ length: 20 }, (_, i) => `site-${String(i).padStart(2, '0')}`);
const configHash = sha256(utf8('round config'));
const listHash = sha256(utf8('key list'));

function nonces(members: readonly string[]): Map<string, Uint8Array> {
  return new Map(members.map((siteId) => [siteId, new Uint8Array(randomBytes(GRAPH_NONCE_LENGTH))]));
}

describe('graphSeed', () => {
  it('is SHA-256(H(RoundConfig) || H(L) || every r_u in id order), whatever order the map has', () => {
    const revealed = nonces(ids);
    const reversed = new Map([...revealed].reverse());
    const expected = sha256(configHash, listHash, ...ids.map((siteId) => revealed.get(siteId) as Uint8Array));
    expect(graphSeed(configHash, listHash, revealed, ids)).toEqual(expected);
    expect(graphSeed(configHash, listHash, reversed, [...ids].reverse())).toEqual(expected);
  });

  it('changes when any single nonce changes (no site can be left out of the seed)', () => {
    const revealed = nonces(ids);
    const seed = graphSeed(configHash, listHash, revealed, ids);
    for (const siteId of [ids[0] as string, ids[19] as string]) {
      const changed = new Map(revealed);
      changed.set(siteId, new Uint8Array(GRAPH_NONCE_LENGTH));
      expect(graphSeed(configHash, listHash, changed, ids)).not.toEqual(seed);
    }
  });

  it('refuses a missing nonce with a typed error, and a nonce of a non-member', () => {
    const revealed = nonces(ids);
    revealed.delete('site-07');
    const missing = (() => {
      try {
        graphSeed(configHash, listHash, revealed, ids);
      } catch (error) {
        return error;
      }
      return undefined;
    })();
    expect(missing).toBeInstanceOf(CryptoError);
    expect(missing).toMatchObject({ code: 'FAILED_PRECONDITION', reason: 'GRAPH_NONCE_MISSING' });
    expect((missing as Error).message).toContain('site-07');
    const extra = nonces(ids);
    extra.set('intruder', new Uint8Array(GRAPH_NONCE_LENGTH));
    expect(() => graphSeed(configHash, listHash, extra, ids)).toThrow(expect.objectContaining({ reason: 'GRAPH_NONCE_UNEXPECTED' }));
    const short = nonces(ids);
    short.set('site-03', new Uint8Array(16));
    expect(() => graphSeed(configHash, listHash, short, ids)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});

describe('buildNeighbourGraph', () => {
  const seed = sha256(utf8('seed'));

  it('orders the ring by HMAC-SHA256(seed, id) and links k/2 on either side', () => {
    const graph = buildNeighbourGraph(seed, ids, 8);
    const expectedRing = [...ids].sort((a, b) => Buffer.compare(hmacSha256(seed, utf8(a)), hmacSha256(seed, utf8(b))));
    expect(graph.ring).toEqual(expectedRing);
    expect(graph.complete).toBe(false);
    for (const [position, siteId] of graph.ring.entries()) {
      const expected = [1, 2, 3, 4].flatMap((step) => [graph.ring[(position + step) % 20], graph.ring[(position - step + 20) % 20]]);
      expect(graph.neighbours(siteId)).toEqual(sortSiteIds(expected as string[]));
      expect(graph.neighbours(siteId)).toHaveLength(8);
      expect(graph.closedNeighbourhood(siteId)).toEqual(sortSiteIds([...(expected as string[]), siteId]));
      for (const neighbour of graph.neighbours(siteId)) expect(graph.isNeighbour(neighbour, siteId)).toBe(true);
    }
  });

  it('is the same for every party that knows the seed, and differs for another seed', () => {
    const a = buildNeighbourGraph(seed, ids, 4);
    const b = buildNeighbourGraph(seed, [...ids].reverse(), 4);
    expect(b.ring).toEqual(a.ring);
    for (const siteId of ids) expect(b.neighbours(siteId)).toEqual(a.neighbours(siteId));
    const other = buildNeighbourGraph(sha256(utf8('other seed')), ids, 4);
    expect(ids.some((siteId) => other.neighbours(siteId).join() !== a.neighbours(siteId).join())).toBe(true);
  });

  it('is the complete graph when k >= |U1| - 1 (classic SecAgg), odd k allowed there', () => {
    for (const degree of [19, 25]) {
      const graph = buildNeighbourGraph(seed, ids, degree);
      expect(graph.complete).toBe(true);
      for (const siteId of ids) expect(graph.neighbours(siteId)).toEqual(ids.filter((other) => other !== siteId));
    }
  });

  it('refuses an odd k below |U1| - 1, duplicate ids and unknown sites', () => {
    expect(() => buildNeighbourGraph(seed, ids, 7)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT', reason: 'INVALID_DEGREE' }));
    expect(() => buildNeighbourGraph(seed, [...ids, 'site-03'], 4)).toThrow(expect.objectContaining({ reason: 'DUPLICATE_SITE_ID' }));
    expect(() => buildNeighbourGraph(seed, ids, 4).neighbours('nobody')).toThrow(expect.objectContaining({ reason: 'UNKNOWN_SITE' }));
    expect(() => buildNeighbourGraph(new Uint8Array(8), ids, 4)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });

  it('orders ids by UTF-8 bytes, not UTF-16 code units', () => {
    // U+FF21 (3 UTF-8 bytes, EF BC A1) sorts before U+1F600 (4 bytes, F0 ...) in UTF-8 but after it in UTF-16.
    expect(sortSiteIds(['\u{1F600}', '\uFF21'])).toEqual(['\uFF21', '\u{1F600}']);
  });
});
