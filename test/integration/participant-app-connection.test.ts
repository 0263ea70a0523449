/**
 * What participant-app.ts does with its connection, against a scripted coordinator over real gRPC and
 * mutual TLS (test/support/malicious-coordinator.ts), each case one a mutation audit found untested:
 * - the reconnect backoff starts again from its initial delay once a connection succeeded
 *   (backoff.reset()), so a coordinator that restarts now and then does not leave its sites minutes away;
 * - a download on a connection that ended is given up (untilAborted), so a download the dead connection
 *   never finishes does not keep the task from being prepared on the next connection forever;
 * - content-addressed blobs are kept in memory (the blob cache): the task document is downloaded once,
 *   not again by each check that reads it at round start;
 * - a Session whose HelloReply never comes is given up after the HelloReply wait (30 s in production,
 *   ParticipantAppOptions.helloReplyTimeoutMs 1 s here) and the site dials again.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { toHex } from '../../crypto/bytes.js';
import { STAGE } from '../../crypto/secagg/stages.js';
import { pinTask } from '../../model/index.js';
import { AttackedSites } from '../support/attacked-sites.js';
import { digitsTask } from '../support/digits-task.js';
import { MaliciousCoordinator } from '../support/malicious-coordinator.js';
import { createTestPki, type TestPki } from '../support/pki.js';

const TASK = pinTask(digitsTask());
const FEDERATION = 'participant-app-connection';
/** AttackedSites' reconnect settings: jittered delays in [0, min(1000, 100 * 2^attempt)] ms. */
const INITIAL_RECONNECT_MS = 100;

let pki: TestPki;
let coordinator: MaliciousCoordinator | undefined;
let sites: AttackedSites | undefined;

beforeAll(async () => {
  pki = await createTestPki('fedgate participant-app connection CA');
});

afterEach(async () => {
  await sites?.close();
  await coordinator?.close();
  sites = undefined;
  coordinator = undefined;
});

/** A scripted coordinator, `prepare`d before any site dials it, and real daemons for `siteIds`, connected. */
async function open(siteIds: readonly string[], prepare: (coordinator: MaliciousCoordinator) => void = () => undefined): Promise<{ coordinator: MaliciousCoordinator; sites: AttackedSites }> {
  coordinator = await MaliciousCoordinator.start({ pki, task: TASK, federationId: FEDERATION });
  prepare(coordinator);
  sites = await AttackedSites.start({ pki, coordinator, task: TASK, siteIds });
  return { coordinator, sites };
}

function logged(opened: AttackedSites, message: string): Record<string, unknown>[] {
  return opened.log.filter((entry) => entry.msg === message);
}

describe('reconnecting', () => {
  it('starts the backoff again from its initial delay after each connection that succeeded (backoff.reset)', async () => {
    const opened = await open(['site-1']);
    const drops = 6;
    for (let i = 1; i <= drops; i++) {
      await opened.coordinator.until(() => logged(opened.sites, 'connected to the coordinator').length >= i, 10_000, () => `connection ${i}`);
      opened.coordinator.drop('site-1');
      await opened.coordinator.until(() => logged(opened.sites, 'connection to the coordinator lost; reconnecting').length >= i, 10_000, () => `the site to see drop ${i}`);
    }
    const delays = logged(opened.sites, 'connection to the coordinator lost; reconnecting').map((entry) => entry['retryInMs'] as number);
    // Without the reset the ceilings grow 100, 200, 400, 800, 1000, 1000 ms: all six at most 100 ms by
    // chance has probability 1/640.
    expect(delays).toHaveLength(drops);
    for (const delay of delays) expect(delay).toBeLessThanOrEqual(INITIAL_RECONNECT_MS);
  });
});

describe('downloads on a connection that ended', () => {
  it('are given up, so the next connection downloads the task again instead of waiting for the dead one (untilAborted)', async () => {
    let held = false;
    const opened = await open(['site-1'], (scripted) => {
      const task = toHex(scripted.taskHash);
      // The first download of the task document never finishes: the connection it ran on "died".
      scripted.holdDownload = (hash) => {
        if (hash !== task || held) return false;
        held = true;
        return true;
      };
    });
    const { coordinator: scripted } = opened;
    const taskDownloads = (): number => scripted.downloads.filter((download) => download.hash === toHex(scripted.taskHash)).length;
    await scripted.until(() => taskDownloads() === 1, 10_000, () => 'the first download of the task');
    scripted.drop('site-1');
    await scripted.until(() => taskDownloads() >= 2, 10_000, () => `a second download of the task after the reconnect (downloads: ${taskDownloads()})`);
    await scripted.until(() => scripted.served.some((download) => download.hash === toHex(scripted.taskHash)), 10_000, () => 'the task to be served on the new connection');
  });
});

describe('the blob cache', () => {
  it('downloads the task document once: the round-start checks that read it again are served from memory', async () => {
    const siteIds = ['site-1', 'site-2', 'site-3'];
    const opened = await open(siteIds);
    const { coordinator: scripted } = opened;
    const task = toHex(scripted.taskHash);
    // The task is prepared at connect: once its document was served (and a moment to take it in), a
    // cached copy serves every later read.
    await scripted.until(() => siteIds.every((siteId) => scripted.served.some((download) => download.siteId === siteId && download.hash === task)), 20_000, () => 'the task document to reach every site');
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const round = scripted.round(scripted.roundConfig({ counter: 1, participants: siteIds }));
    round.start();
    await scripted.until(
      () => siteIds.every((siteId) => scripted.received.some((stage) => stage.roundId === round.label && stage.siteId === siteId && stage.stage === STAGE.advertiseKeys)),
      20_000,
      () => 'AdvertiseKeys of every site',
    );
    round.abort();
    expect(scripted.refusalsOf(round.roundId)).toEqual([]);
    const perSite = siteIds.map((siteId) => [siteId, scripted.downloads.filter((download) => download.siteId === siteId && download.hash === task).length]);
    expect(perSite).toEqual(siteIds.map((siteId) => [siteId, 1]));
  });
});

describe('a coordinator that takes the Session and never answers Hello', () => {
  it('is given up after the HelloReply wait and dialled again (the Hello watchdog)', async () => {
    coordinator = await MaliciousCoordinator.start({ pki, task: TASK, federationId: FEDERATION });
    const scripted = coordinator;
    sites = await AttackedSites.start({ pki, coordinator: scripted, task: TASK, siteIds: ['site-1'], setup: () => ({ helloReplyTimeoutMs: 1000 }) });
    const opened = sites;
    scripted.silentHello = true;
    const hellos = scripted.hellos;
    scripted.drop('site-1');
    // The Hello on the new stream goes unanswered; the site must give that stream up and send another.
    await scripted.until(() => scripted.hellos >= hellos + 2, 10_000, () => `a Hello on a second stream after an unanswered one (hellos: ${scripted.hellos - hellos})`);
    const lost = logged(opened, 'connection to the coordinator lost; reconnecting').map((entry) => String(entry['reason']));
    expect(lost.some((reason) => reason.includes('no HelloReply yet'))).toBe(true);
  });
});
