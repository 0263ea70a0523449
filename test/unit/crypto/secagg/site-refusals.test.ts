/**
 * A refusal's text is fixed per reason code: the site's own codes have their sentence, any other code
 * (a SecAggError reason) one generic sentence naming only the code. Nothing else can reach the text, so
 * a lying coordinator learns the code and nothing local.
 */
import { describe, expect, it } from 'vitest';
import { SITE_DEFENCE_REASONS, refusalText } from '../../../../crypto/secagg/site-refusals.js';

describe('refusalText', () => {
  it('gives each of the site defence codes its own fixed sentence', () => {
    const codes = Object.values(SITE_DEFENCE_REASONS);
    const texts = codes.map(refusalText);
    expect(new Set(texts).size).toBe(codes.length);
    for (const [index, text] of texts.entries()) {
      expect(text.length).toBeGreaterThan(20);
      expect(text).not.toContain(`(${codes[index] as string})`);
    }
    expect(refusalText('ROUND_NOT_FRESH')).toContain('replayed or stale round');
    expect(refusalText('SITE_ERROR')).toContain("the site's own log");
  });

  it("gives a protocol check's code the generic sentence, naming the code only", () => {
    expect(refusalText('THRESHOLD_TOO_LOW')).toBe("this site left the round (THRESHOLD_TOO_LOW); the details are in the site's own log");
  });

  it('treats inherited property names as protocol codes, never as a defence code', () => {
    for (const name of ['toString', 'constructor', '__proto__', 'hasOwnProperty']) {
      expect(refusalText(name)).toBe(`this site left the round (${name}); the details are in the site's own log`);
    }
  });
});
