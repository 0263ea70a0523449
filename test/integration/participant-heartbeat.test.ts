/**
 * The participant daemon's heartbeat watchdog against a hand-scripted coordinator (a real Federation
 * server over mutual TLS whose Session handler the test writes): HelloReply announces a short heartbeat
 * interval, then the coordinator either sends a heartbeat every interval or falls silent while keeping
 * the stream open. A silent coordinator must be given up after about three intervals and dialled again;
 * a healthy one must keep its single Session for many intervals. Either half alone would pass with a
 * broken watchdog (one that never fires, or one that ignores heartbeats).
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { IssuedCertificate } from '../../certs/index.js';
import { startParticipant, type RunningParticipant } from '../../participant/daemon/participant-app.js';
import { SiteStateStore } from '../../participant/state/index.js';
import { MIB, PROTOCOL_VERSION, type CoordinatorMessage, type FederationHandlers, type ParticipantMessage } from '../../proto/index.js';
import { createTempDirectory, createTestPki, type TempDirectory, type TestPki } from '../support/pki.js';
import { startScriptedCoordinator, type ScriptedCoordinator } from '../support/scripted-coordinator.js';

const INTERVAL_MS = 300;
const MISSED_HEARTBEATS = 3;

interface SessionRecord {
  readonly openedAt: number;
  helloReplyAt?: number;
  /** When the coordinator saw the participant cancel or end the stream. */
  closedAt?: number;
  heartbeats: number;
}

let pki: TestPki;
let site: IssuedCertificate;
let coordinator: ScriptedCoordinator | undefined;
let daemon: RunningParticipant | undefined;
let stateDirectory: TempDirectory;
let state: SiteStateStore;

beforeAll(async () => {
  pki = await createTestPki('fedgate heartbeat CA');
  site = await pki.participant('site-hb');
  stateDirectory = await createTempDirectory('fedgate-heartbeat-site-');
  state = await SiteStateStore.open(stateDirectory.path);
});

afterAll(async () => {
  await stateDirectory.remove();
});

afterEach(async () => {
  await daemon?.stop();
  await coordinator?.close();
  daemon = undefined;
  coordinator = undefined;
});

/** A Session handler that answers Hello with HelloReply and then heartbeats (or, when `silent`, nothing). */
function scriptedSession(sessions: SessionRecord[], options: { silent: boolean }): FederationHandlers['Session'] {
  return (call) => {
    const record: SessionRecord = { openedAt: Date.now(), heartbeats: 0 };
    sessions.push(record);
    let timer: NodeJS.Timeout | undefined;
    const close = (): void => {
      clearInterval(timer);
      record.closedAt ??= Date.now();
    };
    call.on('cancelled', close);
    call.on('error', close);
    call.on('end', () => {
      close();
      call.end();
    });
    call.on('data', (message: ParticipantMessage) => {
      if (message.payload !== 'hello' || record.helloReplyAt !== undefined) return;
      const reply: CoordinatorMessage = {
        payload: 'helloReply',
        helloReply: { protocolVersion: PROTOCOL_VERSION, fedgateVersion: 'scripted', federationId: 'scripted-federation', siteId: 'site-hb', heartbeatIntervalMs: INTERVAL_MS },
      };
      call.write(reply);
      record.helloReplyAt = Date.now();
      if (options.silent) return;
      timer = setInterval(() => {
        record.heartbeats += 1;
        call.write({ payload: 'heartbeat', heartbeat: { sequence: record.heartbeats, sentAtUnixMs: Date.now() } });
      }, INTERVAL_MS);
    });
  };
}

function start(address: string, log: { msg: string; reason?: string }[]): RunningParticipant {
  return startParticipant({
    coordinator: address,
    tls: { caPem: pki.ca.certificatePem, certPem: site.certificatePem, keyPem: site.privateKeyPem },
    siteId: 'site-hb',
    signingKey: createPrivateKey(site.privateKeyPem),
    trust: { caCertificate: new X509Certificate(pki.ca.certificatePem), revokedSerials: new Set() },
    policy: { pinnedTaskHashes: [], minParticipants: 2, minThreshold: 2, allowPlaintext: false },
    // Never loaded: no round starts in these tests.
    data: { format: 'digits', test_fraction: 0.2, split_seed: 1 },
    device: 'cpu',
    intraOpThreads: 1,
    maxModelBytes: 4 * MIB,
    reconnect: { initialMs: 50, maxMs: 200 },
    state,
    logger: pino({ level: 'info' }, { write: (line: string) => log.push(JSON.parse(line) as { msg: string; reason?: string }) }),
  });
}

const lostLines = (log: readonly { msg: string; reason?: string }[]): string[] =>
  log.filter((entry) => entry.msg === 'connection to the coordinator lost; reconnecting').map((entry) => String(entry.reason));

describe('the participant heartbeat watchdog against a scripted coordinator', () => {
  it('gives up a coordinator that stops sending heartbeats after about three intervals, and dials again', async () => {
    const sessions: SessionRecord[] = [];
    const log: { msg: string; reason?: string }[] = [];
    coordinator = await startScriptedCoordinator(pki, { Session: scriptedSession(sessions, { silent: true }) });
    daemon = start(coordinator.address, log);
    await expect.poll(() => sessions.length, { timeout: 20_000, interval: 50 }).toBeGreaterThanOrEqual(2);
    const [first, second] = sessions as [SessionRecord, SessionRecord];
    expect(first.helloReplyAt).toBeDefined();
    expect(first.closedAt).toBeDefined();
    // Silence measured from the HelloReply (the last message) to the coordinator seeing the stream go.
    const silentMs = (first.closedAt as number) - (first.helloReplyAt as number);
    expect(silentMs).toBeGreaterThanOrEqual(MISSED_HEARTBEATS * INTERVAL_MS - 20);
    expect(silentMs).toBeLessThan(MISSED_HEARTBEATS * INTERVAL_MS + 1500);
    // Dialled again at once (backoff is at most 50 ms after a connection that got its HelloReply).
    expect(second.openedAt - (first.closedAt as number)).toBeLessThan(1500);
    expect(lostLines(log)[0]).toMatch(new RegExp(`^no message from the coordinator for \\d+ ms \\(it sends a heartbeat every ${INTERVAL_MS} ms\\)`));
  });

  it('keeps one Session to a coordinator that sends heartbeats, over twelve intervals', async () => {
    const sessions: SessionRecord[] = [];
    const log: { msg: string; reason?: string }[] = [];
    coordinator = await startScriptedCoordinator(pki, { Session: scriptedSession(sessions, { silent: false }) });
    daemon = start(coordinator.address, log);
    await expect.poll(() => sessions[0]?.helloReplyAt, { timeout: 20_000, interval: 50 }).toBeDefined();
    const connectedAt = sessions[0]?.helloReplyAt as number;
    await new Promise((resolve) => setTimeout(resolve, 12 * INTERVAL_MS));
    expect(Date.now() - connectedAt).toBeGreaterThanOrEqual(12 * INTERVAL_MS);
    expect(sessions).toHaveLength(1);
    expect(sessions[0]?.closedAt).toBeUndefined();
    expect(sessions[0]?.heartbeats).toBeGreaterThanOrEqual(10);
    expect(lostLines(log)).toEqual([]);
  });
});
