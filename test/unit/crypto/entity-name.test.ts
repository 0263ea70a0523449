/**
 * The one name rule for federation members (crypto/entity-name.ts), shared by the CA tooling and both
 * mTLS edges, and the quoting of untrusted names in messages: nothing outside printable ASCII is ever
 * echoed, and a long name is cut with its length said.
 */
import forge from 'node-forge';
import { describe, expect, it } from 'vitest';
import { createCertificateAuthority } from '../../../certs/index.js';
import { validateEntityName } from '../../../certs/validation.js';
import { ENTITY_NAME_RULE, isEntityName, quoteUntrusted } from '../../../crypto/entity-name.js';
import { commonNameProblem } from '../../../proto/identity.js';

describe('isEntityName', () => {
  it.each(['site-1', 'a', 'hospital.eu-west_2', 'A'.repeat(64), '0site'])('accepts %j', (name) => {
    expect(isEntityName(name)).toBe(true);
    expect(validateEntityName(name, 'name')).toBe(name);
    expect(commonNameProblem(name)).toBeUndefined();
  });

  it.each([
    ['empty', ''],
    ['65 characters', 'A'.repeat(65)],
    ['2 KB', 'x'.repeat(2048)],
    ['an escape sequence', 'site\x1b[2J'],
    ['a newline', 'site\nsite-2'],
    ['a C1 control (CSI)', 'site\u009b2J'],
    ['a right-to-left override', 'site\u202e1-etis'],
    ['a leading dot', '.hidden'],
    ['a slash', 'site/../x'],
    ['a comma and a plus (RFC 2253 specials)', 'a,b+c'],
    ['a space', 'site 1'],
  ])('refuses %s, in the CA tooling and at the edge alike', (_case, name) => {
    expect(isEntityName(name)).toBe(false);
    expect(() => validateEntityName(name, 'name')).toThrow(ENTITY_NAME_RULE);
    expect(commonNameProblem(name)).toContain('is not a federation name');
  });
});

describe('quoteUntrusted', () => {
  it('escapes every character outside printable ASCII and never echoes a control character', () => {
    const quoted = quoteUntrusted('a\x1b]0;t\x07\u009b\u202e"z');
    expect(quoted).toBe('"a\\u{1b}]0;t\\u{7}\\u{9b}\\u{202e}\\"z"');
    expect(/[^\x20-\x7e]/.test(quoted)).toBe(false);
  });

  it('cuts a long name and says how long it was', () => {
    expect(quoteUntrusted('x'.repeat(2048), 8)).toBe('"xxxxxxxx"... (2048 characters)');
  });
});

describe('the federation CA', () => {
  it('is created with basicConstraints cA TRUE and pathLenConstraint 0, critical: it can sign no intermediate', async () => {
    const ca = await createCertificateAuthority({ commonName: 'path length test CA', validDays: 1 });
    expect(forge.pki.certificateFromPem(ca.certificatePem).getExtension('basicConstraints')).toMatchObject({ cA: true, pathLenConstraint: 0, critical: true });
  });
});
