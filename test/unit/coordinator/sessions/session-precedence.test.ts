/**
 * Which of two sessions with the same site id keeps the slot (coordinator/sessions/session-precedence.ts),
 * each case decided by one clause of the rule: same certificate, issued later or not, live site in the
 * open round or not.
 */
import { X509Certificate } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { sessionPrecedence, type SessionCertificate } from '../../../../coordinator/sessions/session-precedence.js';
import { createTestPki, type TestPki } from '../../../support/pki.js';

let pki: TestPki;
let first: SessionCertificate;
let later: SessionCertificate;
let earlier: SessionCertificate;

async function issued(notBefore: Date): Promise<SessionCertificate> {
  const certificate = await pki.issue({ commonName: 'site-1', role: 'participant', notBefore });
  return { siteId: 'site-1', serial: certificate.serial, certificate: Buffer.from(new X509Certificate(certificate.certificatePem).raw) };
}

beforeAll(async () => {
  pki = await createTestPki('session precedence CA');
  const now = Date.now();
  [first, later, earlier] = await Promise.all([issued(new Date(now - 120_000)), issued(new Date(now - 60_000)), issued(new Date(now - 180_000))]);
}, 60_000);

describe('sessionPrecedence', () => {
  it.each([true, false])('lets the same certificate replace the live session (a reconnect), in a round or not (%s)', (inRound) => {
    expect(sessionPrecedence(first, { ...first }, inRound)).toEqual({ kind: 'replace', why: 'reconnect' });
  });

  it('lets a certificate issued later replace the live session between rounds (a renewal)', () => {
    expect(sessionPrecedence(first, later, false)).toEqual({ kind: 'replace', why: 'renewal' });
  });

  it('keeps a live session that is in the open round against a certificate issued later, retryable', () => {
    const decision = sessionPrecedence(first, later, true);
    expect(decision).toMatchObject({ kind: 'refuse', why: 'in_round', error: { code: 'ALREADY_EXISTS', reason: 'SITE_IN_ROUND' } });
  });

  it.each([true, false])('keeps the live session against a certificate issued earlier (in a round: %s), and says to revoke it', (inRound) => {
    const decision = sessionPrecedence(first, earlier, inRound);
    expect(decision).toMatchObject({ kind: 'refuse', why: 'not_newer', error: { code: 'ALREADY_EXISTS', reason: 'SITE_ALREADY_CONNECTED' } });
    expect(decision.kind === 'refuse' ? decision.error.message : '').toContain(`certificate serial ${earlier.serial}`);
  });
});
