/**
 * The reveal rule's refusals read as an operator reads them, and its boundaries (client-reveal.ts): the
 * detail names who is missing and which counts fell short, |U3| equal to the site's minimum is enough,
 * and a dealer whose share of the same secret was revealed before may be answered again (only the
 * other secret is refused). reveal.test.ts and reveal-exhaustive.test.ts cover the decisions themselves.
 */
import { describe, expect, it } from 'vitest';
import { decideReveals, type RevealDecision, type RevealView } from '../../../../crypto/secagg/client-reveal.js';

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

function refusal(decision: RevealDecision): { reason: string; detail: string } {
  if (decision.action !== 'refuse') throw new Error(`expected a refusal, got ${JSON.stringify(decision)}`);
  return { reason: decision.reason, detail: decision.detail };
}

describe('decideReveals: what a refusal says', () => {
  it('a site outside U3 says so', () => {
    expect(refusal(decideReveals(view({ maskedSurvivors: new Set(['a', 'b', 'd']) })))).toEqual({
      reason: 'NOT_IN_SURVIVOR_SET',
      detail: 'this site is not in the survivor set U3',
    });
  });

  it('a U3 member outside U2 is named', () => {
    const { reason, detail } = refusal(decideReveals(view({ shareSurvivors: new Set(['a', 'c', 'd', 'e']) })));
    expect(reason).toBe('SURVIVOR_SET_NOT_SUBSET');
    expect(detail).toBe('U3 member "b" is not in U2');
  });

  it('|U3| below the minimum gives both numbers', () => {
    const { reason, detail } = refusal(decideReveals(view({ minParticipants: 5 })));
    expect(reason).toBe('TOO_FEW_SURVIVORS');
    expect(detail).toBe("|U3| = 4 is below this site's minimum of 5");
  });

  it('too few consistency signers gives the count and t', () => {
    const { reason, detail } = refusal(decideReveals(view({ consistencySigners: new Set(['c', 'd']) })));
    expect(reason).toBe('INSUFFICIENT_CONSISTENCY_SIGNATURES');
    expect(detail).toContain("2 members of this site's closed neighbourhood signed");
    expect(detail).toContain('t = 3 are required');
  });

  it('a conflicting earlier reveal names the dealer and both secrets', () => {
    const { reason, detail } = refusal(decideReveals(view({ alreadyRevealed: new Map([['e', 'self_mask']]) })));
    expect(reason).toBe('CONFLICTING_REVEAL');
    expect(detail).toBe('the self_mask share of "e" was revealed before; its mask_key share never will be');
  });
});

describe('decideReveals: boundaries', () => {
  it('|U3| equal to the minimum is enough', () => {
    const decision = decideReveals(view({ minParticipants: 4 }));
    expect(decision.action).toBe('reveal');
  });

  it('the share of the same secret revealed before may be revealed again', () => {
    const earlier = new Map([
      ['a', 'self_mask'],
      ['e', 'mask_key'],
    ] as const);
    const decision = decideReveals(view({ alreadyRevealed: earlier }));
    expect(decision.action === 'reveal' && decision.reveals).toEqual([
      { dealer: 'a', secret: 'self_mask' },
      { dealer: 'b', secret: 'self_mask' },
      { dealer: 'c', secret: 'self_mask' },
      { dealer: 'd', secret: 'self_mask' },
      { dealer: 'e', secret: 'mask_key' },
    ]);
  });
});
