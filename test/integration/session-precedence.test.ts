/**
 * A second Session with a connected site's id (issue 11, item 10), against real daemons over mutual
 * TLS: four sites on the shipped digits, stage deadlines of 20 s so a stalled round would show.
 *   round 1  while site-2 is in the round, another CA-issued certificate for site-2 (issued later)
 *            opens a Session: refused (SITE_IN_ROUND); it receives no round message and the round
 *            commits with site-2 among its signers;
 *   round 2  while site-2 is in the round, a Session with site-2's own certificate opens (a reconnect):
 *            it takes the slot, the daemon's session ends, and the round goes on without site-2 as a
 *            dropout - it commits well before any stage deadline.
 * After the rounds (no open round): a certificate issued later for site-3 replaces its session (a
 * renewal), and one issued earlier than the live one is refused (SITE_ALREADY_CONNECTED).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IssuedCertificate } from '../../certs/index.js';
import type { RoundEvent } from '../../coordinator/federation/federation.js';
import { LOGREG_DIGITS_TASK } from '../support/admin-federation.js';
import { GrpcFederation, siteCertificate, type RawSession } from '../support/grpc-federation.js';
import { createTestPki, type TestPki } from '../support/pki.js';

const STAGE_DEADLINE_MS = 20_000;

let pki: TestPki;
let h: GrpcFederation;
let renewedSiteTwo: IssuedCertificate;
const sessions: { round: number; session: RawSession; roundsStarted: number }[] = [];

beforeAll(async () => {
  pki = await createTestPki('fedgate session-precedence CA');
  // The sites' certificates are issued first, so any certificate issued below is later.
  await Promise.all(['site-1', 'site-2', 'site-3', 'site-4'].map((siteId) => siteCertificate(pki, siteId)));
  renewedSiteTwo = await pki.issue({ commonName: 'site-2', role: 'participant', notBefore: new Date(Date.now() - 60_000) });
  h = await GrpcFederation.start({ pki, sites: 4, rounds: 2, task: LOGREG_DIGITS_TASK, stageDeadlineMs: STAGE_DEADLINE_MS, minParticipants: 4 });
  h.onSiteMessage((record) => {
    if (record.siteId !== 'site-2' || record.what !== 'share_keys' || !record.accepted) return;
    const round = h.committed().length + 1;
    if (sessions.some((entry) => entry.round === round)) return;
    // Round 1: a newer certificate for site-2; round 2: site-2's own certificate (a reconnect).
    const certificate = round === 1 ? renewedSiteTwo : h.certificate('site-2');
    sessions.push({ round, session: h.openSession(h.client(certificate)), roundsStarted: h.events.filter((event) => event.type === 'round_started').length });
  });
  await h.waitUntilDone(120_000);
}, 180_000);

afterAll(async () => {
  await h?.close();
});

function roundEnd(index: number): { started: RoundEvent; ended: RoundEvent } {
  const started = h.events.filter((event) => event.type === 'round_started')[index] as RoundEvent;
  const ended = h.events.find((event) => event.roundId === started.roundId && event.type !== 'round_started') as RoundEvent;
  return { started, ended };
}

describe('a second session for a site in a round', () => {
  it('with another certificate, even one issued later, is refused and the round goes on with the live site', async () => {
    const entry = sessions.find((candidate) => candidate.round === 1);
    expect(entry).toBeDefined();
    const refused = await (entry as { session: RawSession }).session.ended;
    expect([refused?.code, refused?.reason]).toEqual(['ALREADY_EXISTS', 'SITE_IN_ROUND']);
    expect(refused?.message).toContain(`certificate serial ${renewedSiteTwo.serial}`);
    // It never received a round message (no Graph, no shares).
    expect((entry as { session: RawSession }).session.received.map((message) => message.payload)).toEqual([]);
    const { ended } = roundEnd(0);
    expect(ended.type).toBe('round_committed');
    expect(ended.survivors).toContain('site-2');
    expect(h.coordinatorLines('refused a second session for a connected site; the live session keeps its slot')).toEqual(
      expect.arrayContaining([expect.objectContaining({ site: 'site-2', newSerial: renewedSiteTwo.serial, reason: 'SITE_IN_ROUND' })]),
    );
  });

  it('with the same certificate (a reconnect), takes the slot, and the round treats the site as a dropout without waiting for a deadline', () => {
    const entry = sessions.find((candidate) => candidate.round === 2);
    expect(entry?.session.received.map((message) => message.payload)).toContain('helloReply');
    const { started, ended } = roundEnd(1);
    expect(ended.type).toBe('round_committed');
    expect(ended.survivors).not.toContain('site-2');
    expect(ended.survivors).toHaveLength(3);
    // A stalled round would have waited out the 20 s stage deadline for the evicted session.
    expect(Date.parse(ended.at) - Date.parse(started.at)).toBeLessThan(STAGE_DEADLINE_MS / 2);
    expect(h.coordinatorLines('site reconnected with the same certificate; its previous session is closed and counts as a dropout').length).toBeGreaterThan(0);
    expect(h.coordinatorLines('stage deadline passed; treating silent sites as dropped')).toEqual([]);
  });
});

describe('a second session for a site between rounds', () => {
  it('with a certificate issued later (a renewal) replaces the live one; one issued earlier is refused', async () => {
    const liveCertificate = h.certificate('site-3');
    // Site-3's daemon is connected with the certificate issued first. A renewal takes its place:
    const renewed = await pki.issue({ commonName: 'site-3', role: 'participant', notBefore: new Date(Date.now() - 60_000) });
    const renewal = h.openSession(h.client(renewed));
    await renewal.next('helloReply', 10_000);
    expect(h.coordinator.registry.get('site-3')?.serial).toBe(renewed.serial);
    expect(h.coordinatorLines('a certificate issued later for this site replaces its session (renewal); the previous session is closed')).toEqual(
      expect.arrayContaining([expect.objectContaining({ site: 'site-3', liveSerial: liveCertificate.serial, newSerial: renewed.serial })]),
    );
    // The old certificate (the daemon reconnecting with it, or anyone else) no longer gets the slot.
    const older = h.openSession(h.client(liveCertificate));
    const refused = await older.ended;
    expect([refused?.code, refused?.reason]).toEqual(['ALREADY_EXISTS', 'SITE_ALREADY_CONNECTED']);
    expect(refused?.message).toContain('should be revoked');
    expect(h.coordinator.registry.get('site-3')?.serial).toBe(renewed.serial);
  });
});
