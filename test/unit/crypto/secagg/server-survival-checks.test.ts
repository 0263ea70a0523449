/**
 * Which secrets the coordinator needs to unmask, which lack t live holders, and which signers will
 * reveal (crypto/secagg/server-survival.ts), on a sparse ring where one dropped site has no neighbour in
 * U3: its mask key is not needed (recovering it would expose a secret for nothing), its neighbours' are.
 */
import { describe, expect, it } from 'vitest';
import { utf8 } from '../../../../crypto/bytes.js';
import { buildNeighbourGraph } from '../../../../crypto/graph.js';
import { sha256 } from '../../../../crypto/hash.js';
import { describeShortfalls, neededSecrets, predictedRevealers, shortfalls, type Shortfall } from '../../../../crypto/secagg/server-survival.js';

const sites = ['s1', 's2', 's3', 's4', 's5', 's6', 's7', 's8'];
const graph = buildNeighbourGraph(sha256(utf8('server-survival ring')), sites, 2);
const ring = graph.ring;
const at = (index: number): string => ring[index] as string;

describe('neededSecrets', () => {
  it('asks for b of U3 and s_sk only of U2 \\ U3 sites with a neighbour in U3', () => {
    // ring[0] and both its neighbours (ring[1], ring[7]) missed the masked input; the rest are U3.
    const shareSurvivors = new Set(sites);
    const maskedSurvivors = new Set([2, 3, 4, 5, 6].map(at));
    const needed = neededSecrets(graph, shareSurvivors, maskedSurvivors);
    const expected = [
      ...[2, 3, 4, 5, 6].map((index) => ({ dealer: at(index), secret: 'self_mask' })),
      { dealer: at(1), secret: 'mask_key' },
      { dealer: at(7), secret: 'mask_key' },
    ];
    const byDealer = (a: { dealer: string }, b: { dealer: string }): number => (a.dealer < b.dealer ? -1 : a.dealer > b.dealer ? 1 : 0);
    expect(needed).toEqual(expected.sort(byDealer));
    expect(needed.map((item) => item.dealer)).not.toContain(at(0));
  });
});

describe('shortfalls', () => {
  it('lists each needed secret with fewer than t holders, with its live count', () => {
    const needed = [
      { dealer: at(0), secret: 'self_mask' as const },
      { dealer: at(4), secret: 'mask_key' as const },
    ];
    // Closed neighbourhood of ring[0] is ring[7], ring[0], ring[1]; of ring[4], ring[3..5].
    const holders = new Set([at(7), at(0), at(1), at(3)]);
    expect(shortfalls(graph, needed, holders, 3)).toEqual([{ dealer: at(4), secret: 'mask_key', live: 1 }]);
    expect(shortfalls(graph, needed, holders, 2)).toEqual([{ dealer: at(4), secret: 'mask_key', live: 1 }]);
    expect(shortfalls(graph, needed, holders, 1)).toEqual([]);
  });
});

describe('predictedRevealers', () => {
  it('keeps only the signers with at least t signers in their closed neighbourhood', () => {
    // ring[0] did not sign: ring[1] and ring[7] see two signers each (themselves and one neighbour).
    const signers = new Set([1, 2, 3, 4, 5, 6, 7].map(at));
    expect(predictedRevealers(graph, signers, 3)).toEqual(new Set([2, 3, 4, 5, 6].map(at)));
    expect(predictedRevealers(graph, signers, 2)).toEqual(signers);
  });
});

describe('describeShortfalls', () => {
  const item = (index: number): Shortfall => ({ dealer: `d${index}`, secret: 'self_mask', live: index });
  it('names at most five shortfalls and counts the rest', () => {
    expect(describeShortfalls([1, 2, 3, 4, 5, 6, 7].map(item), 3)).toBe(
      '7 needed secret(s) lack t = 3 live holders: self_mask of "d1" has 1; self_mask of "d2" has 2; self_mask of "d3" has 3; self_mask of "d4" has 4; self_mask of "d5" has 5 and 2 more',
    );
    expect(describeShortfalls([1, 2, 3, 4, 5].map(item), 6)).toBe(
      '5 needed secret(s) lack t = 6 live holders: self_mask of "d1" has 1; self_mask of "d2" has 2; self_mask of "d3" has 3; self_mask of "d4" has 4; self_mask of "d5" has 5',
    );
  });
});
