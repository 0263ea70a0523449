import { describe, expect, it } from 'vitest';
import { decideReveals, type RevealView } from '../../../../crypto/secagg/client-reveal.js';

const neighbourhood = ['a', 'b', 'c', 'd', 'e'];

function view(overrides: Partial<RevealView> = {}): RevealView {
  return {
    self: 'c',
    closedNeighbourhood: neighbourhood,
    shareSurvivors: new Set(neighbourhood),
    maskedSurvivors: new Set(['a', 'b', 'c', 'd']),
    consistencySigners: new Set(['a', 'b', 'c', 'd']),
    survivorDigestMatches: new Set(['a', 'b', 'd']),
    reconstructionThreshold: 3,
    minParticipants: 3,
    alreadyRevealed: new Map(),
    plaintext: false,
    ...overrides,
  };
}

describe('decideReveals', () => {
  it('reveals b-shares of U3 members and the s_sk-share of U2 members outside U3', () => {
    expect(decideReveals(view())).toEqual({
      action: 'reveal',
      reveals: [
        { dealer: 'a', secret: 'self_mask' },
        { dealer: 'b', secret: 'self_mask' },
        { dealer: 'c', secret: 'self_mask' },
        { dealer: 'd', secret: 'self_mask' },
        { dealer: 'e', secret: 'mask_key' },
      ],
      withheld: [],
    });
  });

  it('reveals nothing for dealers outside U2 (they never masked with anyone)', () => {
    const decision = decideReveals(view({ shareSurvivors: new Set(['a', 'b', 'c', 'd']) }));
    expect(decision.action === 'reveal' && decision.reveals.map((r) => r.dealer)).toEqual(['a', 'b', 'c', 'd']);
  });

  it('withholds the b-share of a U3 member whose signed H(U2) differs from its own', () => {
    const decision = decideReveals(view({ survivorDigestMatches: new Set(['a', 'd']) }));
    expect(decision).toMatchObject({ action: 'reveal', withheld: ['b'] });
    expect(decision.action === 'reveal' && decision.reveals.some((r) => r.dealer === 'b')).toBe(false);
  });

  it.each([
    ['NOT_IN_SURVIVOR_SET', { maskedSurvivors: new Set(['a', 'b', 'd']) }],
    ['SURVIVOR_SET_NOT_SUBSET', { maskedSurvivors: new Set(['a', 'b', 'c', 'x']) }],
    ['TOO_FEW_SURVIVORS', { minParticipants: 5 }],
    ['INSUFFICIENT_CONSISTENCY_SIGNATURES', { consistencySigners: new Set(['c', 'd']) }],
    // Signers outside the closed neighbourhood do not count.
    ['INSUFFICIENT_CONSISTENCY_SIGNATURES', { consistencySigners: new Set(['c', 'x', 'y', 'z']) }],
    ['CONFLICTING_REVEAL', { alreadyRevealed: new Map([['e', 'self_mask' as const]]) }],
    ['CONFLICTING_REVEAL', { alreadyRevealed: new Map([['a', 'mask_key' as const]]) }],
  ] as const)('refuses with %s', (reason, overrides) => {
    expect(decideReveals(view(overrides as Partial<RevealView>))).toMatchObject({ action: 'refuse', reason });
  });

  it('reveals nothing in a plaintext round, after the same membership checks', () => {
    expect(decideReveals(view({ plaintext: true }))).toEqual({ action: 'reveal', reveals: [], withheld: [] });
    expect(decideReveals(view({ plaintext: true, consistencySigners: new Set(['c']) }))).toMatchObject({ action: 'refuse' });
  });

  it('over every U2/U3/signer pattern of a 5-site neighbourhood: one secret per dealer, and only with t signers', () => {
    let reveals = 0;
    for (let u2 = 0; u2 < 32; u2++) {
      for (let u3 = 0; u3 < 32; u3++) {
        if ((u3 & ~u2) !== 0) continue;
        for (let signers = 0; signers < 32; signers++) {
          if ((signers & ~u3) !== 0) continue;
          const pick = (mask: number) => new Set(neighbourhood.filter((_, i) => (mask >> i) & 1));
          const decision = decideReveals(view({ shareSurvivors: pick(u2), maskedSurvivors: pick(u3), consistencySigners: pick(signers), survivorDigestMatches: pick(u3) }));
          if (decision.action === 'refuse') continue;
          reveals++;
          expect(pick(u3).has('c')).toBe(true);
          expect(pick(signers).size).toBeGreaterThanOrEqual(3);
          const dealers = decision.reveals.map((r) => r.dealer);
          expect(new Set(dealers).size).toBe(dealers.length);
          for (const { dealer, secret } of decision.reveals) {
            expect(pick(u2).has(dealer)).toBe(true);
            expect(secret).toBe(pick(u3).has(dealer) ? 'self_mask' : 'mask_key');
          }
        }
      }
    }
    expect(reveals).toBeGreaterThan(0);
  });
});
