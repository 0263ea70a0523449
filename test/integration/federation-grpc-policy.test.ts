/**
 * Sites decide what they take part in (DESIGN.md step 1): over real gRPC and mutual TLS, a site refuses
 * a round whose task it has not pinned, whose size or threshold is below its policy, or that is
 * plaintext when it does not allow plaintext. The refusal, with its reason code and that code's fixed
 * text, reaches the coordinator; the details (which limit, which hash) stay in the site's own log. The
 * refusing site sends nothing else for that round (no keys, no shares, no input). A site that does not
 * pin the federation's task at all is turned away at Hello with FAILED_PRECONDITION naming the task.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { decodeRoundConfig, encodeRoundConfig } from '../../crypto/secagg/config-codec.js';
import { refusalText } from '../../crypto/secagg/site-refusals.js';
import { sha256 } from '../../proto/chunking.js';
import { verifyCommitRecord } from '../support/grpc-federation-checks.js';
import { GrpcFederation, siteCertificate, type SiteMessageRecord } from '../support/grpc-federation.js';
import { createTestPki, type TestPki } from '../support/pki.js';

let pki: TestPki;
let harness: GrpcFederation | undefined;

beforeAll(async () => {
  pki = await createTestPki('fedgate grpc policy CA');
});

afterEach(async () => {
  await harness?.close();
  harness = undefined;
});

function messagesFrom(federation: GrpcFederation, siteId: string): SiteMessageRecord[] {
  return federation.received.filter((record) => record.siteId === siteId);
}

/** The coordinator logged the site's refusal with its reason (round-driver.ts 'site refused or left the round'). */
function refusalLogged(federation: GrpcFederation, siteId: string, reason: string): boolean {
  return federation.coordinatorLines('site refused or left the round').some((entry) => entry['site'] === siteId && entry['reason'] === reason);
}

/** What the site logged when it left the round with `reason` (the refusal itself carries only the code). */
function siteDetail(federation: GrpcFederation, siteId: string, reason: string): string {
  const line = federation.siteLog.find((entry) => entry.msg === 'leaving the round' && entry['site'] === siteId && entry['reason'] === reason);
  return String(line?.['detail']);
}

describe('a site refuses rounds outside its policy', () => {
  it('refuses a round smaller than its min_participants and one whose threshold is below its minimum; the others commit without it', async () => {
    harness = await GrpcFederation.start({
      pki,
      sites: 5,
      rounds: 1,
      reconstructionThreshold: 3,
      siteOptions: (siteId) =>
        siteId === 'site-4' ? { policy: { minParticipants: 6 } } : siteId === 'site-5' ? { policy: { minThreshold: 4 } } : {},
    });
    await harness.waitUntilDone(60_000);
    const [event] = harness.committed();
    expect(event?.participants).toHaveLength(5);
    expect(event?.survivors).toEqual(['site-1', 'site-2', 'site-3']);

    const [size] = messagesFrom(harness, 'site-4');
    expect(messagesFrom(harness, 'site-4')).toHaveLength(1);
    expect(size).toMatchObject({ what: 'refusal', accepted: true, reason: 'TOO_FEW_PARTICIPANTS', roundId: event?.roundId });
    expect(size?.message).toBe(refusalText('TOO_FEW_PARTICIPANTS'));
    expect(siteDetail(harness, 'site-4', 'TOO_FEW_PARTICIPANTS')).toContain('RoundConfig.participants has 5 sites, this site requires at least 6');
    expect(refusalLogged(harness, 'site-4', 'TOO_FEW_PARTICIPANTS')).toBe(true);

    const [threshold] = messagesFrom(harness, 'site-5');
    expect(messagesFrom(harness, 'site-5')).toHaveLength(1);
    expect(threshold).toMatchObject({ what: 'refusal', accepted: true, reason: 'THRESHOLD_BELOW_SITE_MINIMUM' });
    expect(threshold?.message).toBe(refusalText('THRESHOLD_BELOW_SITE_MINIMUM'));
    expect(siteDetail(harness, 'site-5', 'THRESHOLD_BELOW_SITE_MINIMUM')).toContain("RoundConfig.reconstructionThreshold t = 3 is below this site's minimum 4");
    expect(refusalLogged(harness, 'site-5', 'THRESHOLD_BELOW_SITE_MINIMUM')).toBe(true);

    // Neither refusing site appears in the round's key list or the commit.
    const [record] = await harness.ledgerFiles();
    expect(record?.body.keyList.map((entry) => entry.siteId)).toEqual(['site-1', 'site-2', 'site-3']);
    if (record !== undefined) expect(verifyCommitRecord(record, pki.ca.certificatePem).quorum).toBe(true);
  });

  it('refuses the rounds of another federation than the one it pins, saying so when it connects', async () => {
    harness = await GrpcFederation.start({
      pki,
      sites: 4,
      rounds: 1,
      reconstructionThreshold: 3,
      siteOptions: (siteId) => (siteId === 'site-4' ? { policy: { federationId: 'another-federation' } } : {}),
    });
    await harness.waitUntilDone(60_000);
    const [event] = harness.committed();
    expect(event?.survivors).toEqual(['site-1', 'site-2', 'site-3']);
    const [refusal] = messagesFrom(harness, 'site-4');
    expect(refusal).toMatchObject({ what: 'refusal', accepted: true, reason: 'FEDERATION_MISMATCH' });
    expect(refusal?.message).toBe(refusalText('FEDERATION_MISMATCH'));
    expect(siteDetail(harness, 'site-4', 'FEDERATION_MISMATCH')).toContain('is not this site\'s federation "another-federation"');
    expect(harness.siteLog.some((entry) => entry.msg?.includes('serves another federation') === true && entry['pinned'] === 'another-federation')).toBe(true);
  });

  it('refuses a plaintext round unless it allows plaintext', async () => {
    harness = await GrpcFederation.start({
      pki,
      sites: 3,
      rounds: 1,
      secureAggregation: false,
      siteOptions: (siteId) => ({ policy: { allowPlaintext: siteId !== 'site-3' } }),
    });
    await harness.waitUntilDone(60_000);
    const [event] = harness.committed();
    expect(event?.survivors).toEqual(['site-1', 'site-2']);
    expect(messagesFrom(harness, 'site-3').map((record) => [record.what, record.reason])).toEqual([['refusal', 'PLAINTEXT_NOT_ALLOWED']]);
    expect(messagesFrom(harness, 'site-3')[0]?.message).toBe(refusalText('PLAINTEXT_NOT_ALLOWED'));
    expect(siteDetail(harness, 'site-3', 'PLAINTEXT_NOT_ALLOWED')).toContain('RoundConfig.plaintext is true but this site does not allow plaintext rounds');
    expect(refusalLogged(harness, 'site-3', 'PLAINTEXT_NOT_ALLOWED')).toBe(true);
    const [record] = await harness.ledgerFiles();
    expect(record === undefined ? undefined : verifyCommitRecord(record, pki.ca.certificatePem).config.plaintext).toBe(true);
  });

  it('refuses a round for a task it has not pinned, even from its own coordinator', async () => {
    harness = await GrpcFederation.start({ pki, sites: 3, rounds: 1 });
    const otherTask = sha256(Buffer.from('a task no site reviewed'));
    // A coordinator that lies: the RoundConfig each site receives names another task than the one it pinned at Hello.
    harness.rewriteToSite = (_siteId, message) => {
      if (message.kind !== 'round_start') return message;
      const config = decodeRoundConfig(message.roundConfig);
      return { ...message, roundConfig: encodeRoundConfig({ ...config, taskHash: new Uint8Array(otherTask) }) };
    };
    const aborted = await harness.waitForEvent((event) => event.type === 'round_aborted', 30_000, 'the round to abort');
    harness.rewriteToSite = () => undefined;
    // Every site refused before making a key: U1 is empty and the round cannot go on.
    expect(aborted.reason).toBe('TOO_FEW_SURVIVORS');
    for (const siteId of harness.siteIds) {
      const sent = messagesFrom(harness, siteId).filter((record) => record.roundId === aborted.roundId);
      expect(sent.map((record) => [record.what, record.reason])).toEqual([['refusal', 'TASK_NOT_PINNED']]);
      expect(sent[0]?.message).toBe(refusalText('TASK_NOT_PINNED'));
      expect(siteDetail(harness, siteId, 'TASK_NOT_PINNED')).toContain(`RoundConfig.taskHash ${otherTask.toString('hex')} is not among the 1 task hashes this site pins`);
      expect(refusalLogged(harness, siteId, 'TASK_NOT_PINNED')).toBe(true);
    }
    expect(await harness.ledgerFiles()).toEqual([]);
  });
});

describe('a site that does not pin the federation task', () => {
  it('is refused at Hello with FAILED_PRECONDITION naming the task hash, and never joins a round', async () => {
    harness = await GrpcFederation.start({ pki, sites: 2, rounds: 1, startSites: false });
    const federation = harness;
    const certificate = await siteCertificate(pki, 'site-1');
    const otherTask = sha256(Buffer.from('another task')).toString('hex');
    const session = federation.openSession(federation.client(certificate), [otherTask]);
    const status = await session.ended;
    expect(status?.code).toBe('FAILED_PRECONDITION');
    expect(status?.reason).toBe('TASK_NOT_ACCEPTED');
    expect(status?.message).toContain(`this federation trains task ${federation.taskHash}, which the site has not pinned (it accepts ${otherTask})`);
    expect(status?.message).toContain('add the hash to accepted_tasks in site.yaml');
    expect(session.received.map((message) => message.payload)).toEqual([]);

    // The real daemon: told the same at every attempt, it keeps reconnecting and is never in a round.
    federation.startSite('site-2', { pinTask: false });
    await expect
      .poll(() => federation.siteLog.filter((entry) => entry.msg === 'connection to the coordinator lost; reconnecting').length, { timeout: 20_000 })
      .toBeGreaterThanOrEqual(2);
    const reasons = federation.siteLog.filter((entry) => entry.msg === 'connection to the coordinator lost; reconnecting').map((entry) => String(entry['reason']));
    expect(reasons.every((reason) => reason.includes(`this federation trains task ${federation.taskHash}`))).toBe(true);
    expect(federation.coordinatorLines('session refused').some((entry) => entry['site'] === 'site-2' && entry['reason'] === 'TASK_NOT_ACCEPTED')).toBe(true);
    expect(federation.coordinator.registry.connected()).toEqual([]);
    expect(federation.events).toEqual([]);
  });
});
