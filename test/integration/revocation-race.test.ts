/**
 * Live revocation against running rounds (issue 11, item 1), with real daemons over mutual TLS: a
 * coordinator with the federation's CA directory and four participant daemons on the shipped digits.
 * Every round, one site is revoked by serial through the Admin API at a different point of the round -
 * before its RoundStart, its key list, its shares, its ConsistencyCheck, its Unmask request or its commit
 * request, right after its own commit signature, after the last signature but before the ledger append,
 * and while the append waits for a revocation in flight - and then rejoins with a renewed certificate.
 *
 * Whatever the point, the round treats the site as a dropout (commits without it, or aborts when the
 * protocol must: a withheld nonce), a signature of a revoked certificate never reaches a record written
 * after the revocation, and the whole ledger verifies offline with the CA's CRL (`fedgate verify --crl`).
 */
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueBundle, verifyCertificateRevocationList } from '../../certs/index.js';
import { verifyLedger } from '../../coordinator/audit/verify-ledger.js';
import type { RoundEvent } from '../../coordinator/federation/federation.js';
import type { CoordinatorToSite, SiteToCoordinator } from '../../coordinator/round/round-messages.js';
import { normalizeSerial } from '../../crypto/certificate.js';
import { parseCommitBody } from '../../crypto/secagg/commit-record-codec.js';
import { createAdminFederation, type AdminFederation, type Credentials } from '../support/admin-federation.js';

/** Where in a round the site is revoked. */
type RevocationPoint =
  | 'before its RoundStart'
  | 'before its key list (it advertised, its nonce is not revealed)'
  | 'before its shares are delivered'
  | 'before its ConsistencyCheck request (its masked input is in)'
  | 'before its Unmask request'
  | 'before its commit request'
  | 'right after its own commit signature, before the others sign'
  | 'after the last commit signature, before the ledger append'
  | 'while the append waits for the revocation in flight';

interface Scenario {
  readonly point: RevocationPoint;
  /** Index of the site revoked in this round. */
  readonly site: number;
  readonly outcome: RoundEvent['type'];
}

const SCENARIOS: readonly Scenario[] = [
  { point: 'before its RoundStart', site: 0, outcome: 'round_committed' },
  { point: 'before its key list (it advertised, its nonce is not revealed)', site: 1, outcome: 'round_aborted' },
  { point: 'before its shares are delivered', site: 2, outcome: 'round_committed' },
  { point: 'before its ConsistencyCheck request (its masked input is in)', site: 3, outcome: 'round_committed' },
  { point: 'before its Unmask request', site: 0, outcome: 'round_committed' },
  { point: 'before its commit request', site: 1, outcome: 'round_committed' },
  { point: 'right after its own commit signature, before the others sign', site: 2, outcome: 'round_committed' },
  { point: 'after the last commit signature, before the ledger append', site: 3, outcome: 'round_committed' },
  { point: 'while the append waits for the revocation in flight', site: 0, outcome: 'round_committed' },
];
const COMMITTED_ROUNDS = SCENARIOS.filter((scenario) => scenario.outcome === 'round_committed').length;

/** The coordinator's message that, about to be sent to the scenario's site, triggers the revocation instead. */
const SEND_TRIGGERS: Partial<Record<RevocationPoint, (message: CoordinatorToSite) => boolean>> = {
  'before its RoundStart': (message) => message.kind === 'round_start',
  'before its key list (it advertised, its nonce is not revealed)': (message) => message.kind === 'stage' && message.message.stage === 'key_list',
  'before its shares are delivered': (message) => message.kind === 'stage' && message.message.stage === 'share_delivery',
  'before its ConsistencyCheck request (its masked input is in)': (message) => message.kind === 'stage' && message.message.stage === 'consistency_request',
  'before its Unmask request': (message) => message.kind === 'stage' && message.message.stage === 'unmask_request',
  'before its commit request': (message) => message.kind === 'stage' && message.message.stage === 'commit_request',
};

let h: AdminFederation;
const events: RoundEvent[] = [];
/** Per scenario (round started, in order): the revoked serial, once revoked. */
const revokedSerials = new Map<number, string>();
/** The credentials each site runs with now (renewed after each revocation). */
const current: Credentials[] = [];
const failures: unknown[] = [];

beforeAll(async () => {
  h = await createAdminFederation(4);
  current.push(...h.sites);
  let operator: ReturnType<AdminFederation['operatorClient']> | undefined;
  let started = -1;
  const scenario = (): Scenario | undefined => SCENARIOS[started];
  const revocations = new Map<number, Promise<void>>();
  let authorityStarted: (() => void) | undefined;

  /** Revokes the scenario's site by serial (once), then renews its certificate and restarts its daemon. */
  const revoke = (index: number): Promise<void> => {
    const existing = revocations.get(index);
    if (existing !== undefined) return existing;
    const { site } = SCENARIOS[index] as Scenario;
    const credentials = current[site] as Credentials;
    const done = (async () => {
      await (operator ??= h.operatorClient()).revoke({ serial: credentials.serial });
      revokedSerials.set(index, credentials.serial);
      const renewed = await issueBundle({ dir: h.caDir, role: 'participant', name: credentials.name, renew: true, validDays: 2 });
      const fresh: Credentials = { name: credentials.name, serial: renewed.certificate.serial, certPem: await readFile(renewed.certificatePath, 'utf8'), keyPem: await readFile(renewed.privateKeyPath, 'utf8') };
      current[site] = fresh;
      h.startSite(site, fresh);
    })();
    done.catch((error: unknown) => failures.push(error));
    revocations.set(index, done);
    return done;
  };

  const coordinator = await h.startCoordinator({
    rounds: COMMITTED_ROUNDS,
    // Every round waits for all four sites, so the revoked site is back (renewed) before the next one.
    minParticipants: 4,
    // The CA takes its time, so an append arriving meanwhile must wait for the revocation to be live.
    authority: (authority) => ({
      ...authority,
      description: authority.description,
      async revoke(serials, now) {
        authorityStarted?.();
        await new Promise((resolve) => setTimeout(resolve, 300));
        return authority.revoke(serials, now);
      },
    }),
    pausePoint: async (name) => {
      const active = scenario();
      if (name !== 'before_commit_append' || active === undefined || revocations.has(started)) return;
      if (active.point === 'after the last commit signature, before the ledger append') {
        await revoke(started);
      } else if (active.point === 'while the append waits for the revocation in flight') {
        // Start the revocation and let the append go on as soon as the CA is at work (the fence is held).
        const inFlight = new Promise<void>((resolve) => (authorityStarted = resolve));
        void revoke(started);
        await inFlight;
        authorityStarted = undefined;
      }
    },
  });
  coordinator.federation.on('round', (event) => {
    events.push(event);
    if (event.type === 'round_started') started += 1;
  });

  const registry = coordinator.registry;
  const send = registry.send.bind(registry);
  registry.send = (siteId: string, message: CoordinatorToSite): void => {
    const active = scenario();
    const trigger = active === undefined ? undefined : SEND_TRIGGERS[active.point];
    if (active !== undefined && trigger !== undefined && siteId === current[active.site]?.name && trigger(message) && !revocations.has(started)) {
      // The message never reaches the site: its session is closed by the revocation.
      void revoke(started);
      return;
    }
    send(siteId, message);
  };

  // Right after its own commit signature: the others' signatures wait until the revocation is live.
  const federation = coordinator.federation;
  const receive = federation.receive.bind(federation);
  const deliverLater = (siteId: string, message: SiteToCoordinator, after: Promise<void>): void => {
    void after.finally(() => {
      try {
        receive(siteId, message);
      } catch {
        // The round moved on meanwhile; the site's message is refused as it would be on time.
      }
    });
  };
  let heldUntil: Promise<void> | undefined;
  federation.receive = (siteId: string, message: SiteToCoordinator): void => {
    const active = scenario();
    const isCommit = message.kind === 'stage' && message.message.stage === 'commit';
    if (active?.point === 'right after its own commit signature, before the others sign' && isCommit) {
      if (siteId === current[active.site]?.name && !revocations.has(started)) {
        receive(siteId, message);
        heldUntil = revoke(started);
        return;
      }
      if (!revocations.has(started)) {
        // Arrived before the site's own signature: hold it until that signature is in and revoked.
        deliverLater(siteId, message, (async () => {
          while (heldUntil === undefined) await new Promise((resolve) => setTimeout(resolve, 10));
          await heldUntil;
        })());
        return;
      }
      if (heldUntil !== undefined) {
        deliverLater(siteId, message, heldUntil);
        return;
      }
    }
    receive(siteId, message);
  };

  for (let index = 0; index < 4; index++) h.startSite(index);
  await coordinator.done;
  // The last revocation (and the renewal after it) may still be finishing when the last round commits.
  await Promise.allSettled(revocations.values());
}, 300_000);

afterAll(async () => {
  await h?.close();
});

/** The round (started, ended) of scenario `index`. */
function roundOf(index: number): { roundId: string; ended: RoundEvent } {
  const started = events.filter((event) => event.type === 'round_started')[index];
  if (started === undefined) throw new Error(`round ${index + 1} never started; events: ${JSON.stringify(events.map((event) => [event.type, event.reason]))}`);
  const ended = events.find((event) => event.roundId === started.roundId && event.type !== 'round_started');
  if (ended === undefined) throw new Error(`round ${index + 1} never ended`);
  return { roundId: started.roundId, ended };
}

/** Serials of the signers of ledger record `sequence`, and its commit time. */
async function signersOf(sequence: number): Promise<{ serials: string[]; committedAt: Date }> {
  const parsed = parseCommitBody((await h.coordinator.federation.ledgerRecords.read(sequence)).body, `record ${sequence}`);
  const serials = parsed.record.signatures.map((signature) =>
    normalizeSerial(new X509Certificate(typeof signature.certificate === 'string' ? signature.certificate : Buffer.from(signature.certificate)).serialNumber),
  );
  return { serials, committedAt: parsed.committedAt };
}

describe('a certificate revoked while rounds run', () => {
  it('is revoked once per round, at every point, and the revoked site rejoins with a renewed certificate', () => {
    expect(failures).toEqual([]);
    expect([...revokedSerials.keys()]).toEqual(SCENARIOS.map((_, index) => index));
  });

  it.each(SCENARIOS.map((scenario, index) => [scenario.point, index] as const))('revoked %s: the round treats the site as a dropout', async (_point, index) => {
    const scenario = SCENARIOS[index] as Scenario;
    const { ended } = roundOf(index);
    expect(ended.type).toBe(scenario.outcome);
    if (ended.type === 'round_aborted') {
      expect(ended.reason).toBe('NONCE_WITHHELD');
      return;
    }
    const revoked = revokedSerials.get(index) as string;
    const { serials } = await signersOf(ended.sequence as number);
    expect(serials).not.toContain(revoked);
    // The other three signed: the quorum held without the revoked site.
    expect(serials).toHaveLength(3);
  });

  it('never counts a signature of a certificate in a record written at or after its revocation date', async () => {
    const crl = verifyCertificateRevocationList(await readFile(join(h.caDir, 'crl.pem'), 'utf8'), h.caPem, { checkFreshness: false });
    expect(crl.entries.map((entry) => entry.serial).sort()).toEqual([...revokedSerials.values()].sort());
    for (let sequence = 1; sequence <= h.coordinator.federation.ledgerRecords.length; sequence++) {
      const { serials, committedAt } = await signersOf(sequence);
      for (const entry of crl.entries) {
        if (serials.includes(entry.serial)) expect(entry.revokedAt.getTime()).toBeGreaterThan(committedAt.getTime());
      }
    }
  });

  it('leaves a ledger that verifies offline with the CA certificate and its CRL', async () => {
    const crl = verifyCertificateRevocationList(await readFile(join(h.caDir, 'crl.pem'), 'utf8'), h.caPem, { checkFreshness: false });
    const result = await verifyLedger({ stateDirectory: h.stateDirectory, caPem: h.caPem, revocations: crl.entries.map((entry) => ({ serial: entry.serial, revokedAt: entry.revokedAt })) });
    expect(result).toMatchObject({ ok: true, rounds: COMMITTED_ROUNDS });
  });
});
