/**
 * A site's side of one round (participant/round/round-session.ts) between its stages: what it signs and
 * keeps at commit, what it reports to the daemon's chain duties, and what it does once the round has
 * ended for it - an end announced early, a RoundAbort while it trains or records its contribution, a
 * session stopped before its RoundStart was handled. Once a round is over the site sends, uploads and
 * persists nothing more for it and holds no timer. Real sessions, a real SecAggServer as the coordinator
 * (test/support/session-round.ts).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { bytesEqual, toHex, utf8 } from '../../../../crypto/bytes.js';
import { sha256 } from '../../../../crypto/hash.js';
import type { UnmaskedRound } from '../../../../crypto/secagg/commit-resign.js';
import { DEFAULT_DEADLINES, type RoundConfig } from '../../../../crypto/secagg/config.js';
import type { CommitHashes } from '../../../../crypto/secagg/messages.js';
import { RoundGuard } from '../../../../participant/round/round-guard.js';
import type { SiteSessionMessage } from '../../../../crypto/secagg/round-envelope.js';
import { RoundSession, type CommitComputation, type LocalTrainingResult } from '../../../../participant/round/round-session.js';
import { SessionRound, SiteRound, openSessionSites, smallUpdate, type SessionEnvironmentOptions, type SessionSite } from '../../../support/session-round.js';
import { cachedFederation, testPolicy, testRoundConfig, type TestFederation } from '../../../support/secagg-sim.js';

const FEDERATION_ID = 'fedgate-test';
const ANNOUNCED_MODEL = sha256(utf8('fedgate test model r+1'));

let federation: TestFederation;
let siteIds: string[];
let sites: Map<string, SessionSite>;
let remove: () => Promise<void>;
let counter = 0;

beforeAll(async () => {
  federation = cachedFederation(3, 'session-');
  siteIds = federation.sites.map((site) => site.siteId);
  ({ sites, remove } = await openSessionSites(federation));
});

afterAll(async () => {
  await remove();
});

afterEach(() => {
  vi.useRealTimers();
});

/** A fresh round (higher counter, its own model) of all three sites. */
function config(overrides: { plaintext?: boolean } = {}): RoundConfig {
  counter += 1;
  return { ...testRoundConfig({ participants: siteIds, degree: 2, counter, ...overrides }), modelHash: sha256(utf8(`session model ${counter}`)) };
}

function site(index: number): SessionSite {
  return sites.get(siteIds[index] as string) as SessionSite;
}

/** A promise and the function that resolves it. */
function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((settle) => (resolve = settle));
  return { promise, resolve };
}

/** A guard whose recordContribution waits at a gate: the test decides what happens meanwhile. */
class GatedGuard extends RoundGuard {
  readonly entered = deferred();
  readonly gate = deferred();

  override async recordContribution(roundConfig: RoundConfig): Promise<void> {
    this.entered.resolve();
    await this.gate.promise;
    await super.recordContribution(roundConfig);
  }
}

interface Reported {
  unmasked: UnmaskedRound[];
  signed: { roundId: Uint8Array; hashes: CommitHashes }[];
  committed: { config: RoundConfig; computation: CommitComputation }[];
}

/** Session options that record each site's hooks (onUnmasked, onCommitSigned, onCommitted). */
function reporting(): { reports: Map<string, Reported>; options: (siteId: string) => SessionEnvironmentOptions } {
  const reports = new Map<string, Reported>();
  return {
    reports,
    options: (siteId) => {
      const report: Reported = { unmasked: [], signed: [], committed: [] };
      reports.set(siteId, report);
      return {
        hooks: {
          onUnmasked: (round) => {
            report.unmasked.push(round);
          },
          onCommitSigned: (roundId, hashes) => {
            report.signed.push({ roundId, hashes });
          },
          onCommitted: (roundConfig, computation) => {
            report.committed.push({ config: roundConfig, computation });
          },
        },
      };
    },
  };
}

describe('a round to its commit', () => {
  it('signs the commit over the hashes it computed, reports what it unmasked and signed, and keeps model r+1', async () => {
    const roundConfig = config();
    const { reports, options } = reporting();
    const round = new SessionRound(federation, roundConfig, sites, options).start();
    await round.runToCommitted();
    expect(round.server.commitStatus()).toMatchObject({ committed: true, signers: siteIds });
    for (const siteId of siteIds) {
      const siteRound = round.site(siteId);
      const hashes = siteRound.commitHashes as CommitHashes;
      const commit = siteRound.sent.at(-1);
      expect(commit).toMatchObject({ kind: 'stage', message: { stage: 'commit', ...hashes } });
      const report = reports.get(siteId) as Reported;
      expect(report.unmasked).toHaveLength(1);
      expect(report.unmasked[0]).toMatchObject({ siteId, config: roundConfig, maskedSurvivors: siteIds });
      expect(report.unmasked[0]?.keyListHash).toHaveLength(32);
      expect(report.signed).toEqual([{ roundId: roundConfig.roundId, hashes }]);
      expect(report.committed).toHaveLength(1);
      expect(report.committed[0]?.config).toBe(roundConfig);
      expect(report.committed[0]?.computation.hashes).toEqual(hashes);
      expect(siteRound.session.state).toBe('finished');
    }
  });

  it('does not keep a model it did not sign when the coordinator announces another commit', async () => {
    const { reports, options } = reporting();
    const round = new SessionRound(federation, config(), sites, options).start();
    await round.openKeyList();
    await round.openGraph();
    await round.openShareDelivery();
    await round.openConsistency();
    await round.openUnmask();
    await round.openCommit();
    await round.settle();
    const [liar, ...honest] = siteIds as [string, ...string[]];
    round.site(liar).session.committed(sha256(utf8('a model nobody signed')));
    for (const siteId of honest) round.site(siteId).session.committed(ANNOUNCED_MODEL);
    await Promise.all(siteIds.map((siteId) => round.site(siteId).session.settled()));
    expect(reports.get(liar)?.committed).toEqual([]);
    expect(round.site(liar).session.state).toBe('finished');
    expect(round.site(liar).site.lines('coordinator announced a commit this site did not sign; not keeping that model')).not.toHaveLength(0);
    for (const siteId of honest) expect(reports.get(siteId)?.committed).toHaveLength(1);
  });
});

describe('a round that ends early for the site', () => {
  it('announced committed before the site was asked to sign: training is abandoned, nothing is uploaded or kept', async () => {
    const training = deferred<LocalTrainingResult>();
    const started = deferred<AbortSignal>();
    const { reports, options } = reporting();
    const round = new SessionRound(federation, config(), sites, (siteId) => ({
      ...options(siteId),
      train: (roundConfig, signal) => {
        if (siteId !== siteIds[0]) return Promise.resolve(smallUpdate(roundConfig));
        started.resolve(signal);
        return training.promise;
      },
    })).start();
    await round.openKeyList();
    await round.openGraph();
    await round.settle();
    await round.openShareDelivery();
    const signal = await started.promise;
    const early = round.site(siteIds[0] as string);
    early.session.committed(ANNOUNCED_MODEL);
    expect(signal.aborted).toBe(true);
    expect(early.session.state).toBe('finished');
    training.resolve(smallUpdate(round.config));
    await early.session.settled();
    expect(early.uploads).toEqual([]);
    expect(early.refusals()).toEqual([]);
    expect(reports.get(early.site.siteId)?.committed).toEqual([]);
    expect(early.site.lines('round ended for this site').at(-1)).toMatchObject({ reason: 'the coordinator announced a commit before asking this site to sign one' });
    round.end();
  });

  it('stopped while its plaintext contribution is being recorded: the update is not uploaded', async () => {
    const who = site(0);
    const original = who.guard;
    const gated = new GatedGuard(who.state);
    who.guard = gated;
    try {
      const round = new SessionRound(federation, config({ plaintext: true }), sites, () => ({ policy: testPolicy({ allowPlaintext: true }) })).start();
      await round.openKeyList();
      await round.openGraph();
      await round.openShareDelivery();
      await gated.entered.promise;
      const stopped = round.site(who.siteId);
      stopped.session.stop('the coordinator aborted the round');
      gated.gate.resolve();
      await stopped.session.settled();
      expect(stopped.uploads).toEqual([]);
      expect(stopped.session.state).toBe('finished');
      round.end();
    } finally {
      who.guard = original;
    }
  });

  it('stopped while its contribution is being recorded at Unmask: the unmask answer does not leave', async () => {
    const who = site(1);
    const original = who.guard;
    const gated = new GatedGuard(who.state);
    who.guard = gated;
    try {
      const round = new SessionRound(federation, config(), sites).start();
      await round.openKeyList();
      await round.openGraph();
      await round.openShareDelivery();
      await round.openConsistency();
      await round.openUnmask();
      await gated.entered.promise;
      const stopped = round.site(who.siteId);
      stopped.session.stop('the coordinator aborted the round');
      gated.gate.resolve();
      await stopped.session.settled();
      expect(stopped.stages()).not.toContain('unmask');
      expect(stopped.refusals()).toEqual([]);
      round.end();
    } finally {
      who.guard = original;
    }
  });

  it('stopped before its RoundStart was handled: no counter is persisted and nothing is sent', async () => {
    const who = site(2);
    const before = who.state.highestRoundCounter(FEDERATION_ID);
    const alone = new SiteRound(who, federation, config()).start();
    alone.session.stop('the coordinator aborted the round');
    await alone.session.settled();
    expect(who.state.highestRoundCounter(FEDERATION_ID)).toBe(before);
    expect(alone.sent).toEqual([]);
    expect(alone.session.state).toBe('finished');
  });

  it('a RoundCommitted announcement frees the one-round slot at once: the next round is not refused as concurrent', async () => {
    const who = site(2);
    const first = new SiteRound(who, federation, config()).start();
    await first.session.settled();
    expect(first.stages()).toEqual(['advertise_keys']);
    first.session.endAnnounced();
    const next = new SiteRound(who, federation, config()).start();
    await next.session.settled();
    expect(next.refusals()).toEqual([]);
    expect(next.stages()).toEqual(['advertise_keys']);
    first.session.stop('done');
    next.session.stop('done');
  });
});

describe('the state a session ends in', () => {
  it('is failed for a refused round and for a repeat of the running round, finished when stopped, and a later stop changes nothing', async () => {
    const who = site(0);
    const refused = new SiteRound(who, federation, config({ plaintext: true })).start();
    await refused.session.settled();
    expect(refused.refusals().map(([reason]) => reason)).toEqual(['PLAINTEXT_NOT_ALLOWED']);
    expect(refused.session.state).toBe('failed');
    refused.session.stop('the coordinator aborted the round');
    expect(refused.session.state).toBe('failed');

    const running = new SiteRound(who, federation, config()).start();
    await running.session.settled();
    const repeat = new SiteRound(who, federation, running.config).start();
    await repeat.session.settled();
    expect(repeat.session.state).toBe('failed');
    expect(repeat.sent).toEqual([]);
    expect(running.session.state).toBe('running');
    running.session.stop('the coordinator aborted the round');
    expect(running.session.state).toBe('finished');
  });

  it('holds no timer once over, whatever the coordinator sends afterwards', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const round = new SessionRound(federation, config(), sites).start();
    await round.settle();
    const keyList = round.server.closeAdvertiseKeys();
    const who = round.site(siteIds[0] as string);
    who.session.stop('the coordinator aborted the round');
    expect(vi.getTimerCount()).toBe(2);
    who.session.handle(keyList);
    await who.session.settled();
    expect(vi.getTimerCount()).toBe(2);
    expect(who.sent.filter((message) => message.kind === 'stage' && bytesEqual(message.message.roundId, round.config.roundId)).map((message) => (message.kind === 'stage' ? message.message.stage : ''))).toEqual(['advertise_keys']);
    round.end();
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe("what a site keeps in its own log when it leaves (the coordinator gets the code alone)", () => {
  function leaving(who: SessionSite): Record<string, unknown> | undefined {
    return who.lines('leaving the round').at(-1);
  }

  it('a second round while one runs: the stage, the code and the running round', async () => {
    const who = site(1);
    const running = new SiteRound(who, federation, config()).start();
    await running.session.settled();
    const second = new SiteRound(who, federation, config()).start();
    await second.session.settled();
    expect(second.refusals().map(([reason]) => reason)).toEqual(['ROUND_CONCURRENT']);
    expect(leaving(who)).toMatchObject({ stage: 'round_start', reason: 'ROUND_CONCURRENT', detail: `round ${toHex(running.config.roundId)} of this site is still running` });
    running.session.stop('done');
  });

  it('a RoundStart its policy refuses: the stage it was refused at', async () => {
    const who = site(1);
    const refused = new SiteRound(who, federation, config({ plaintext: true })).start();
    await refused.session.settled();
    expect(leaving(who)).toMatchObject({ stage: 'round_start', reason: 'PLAINTEXT_NOT_ALLOWED', refusal: 'PLAINTEXT_NOT_ALLOWED' });
  });

  it('a deadline that passed: which stage waited and how long', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const who = site(2);
    const roundConfig = { ...config(), deadlines: { ...DEFAULT_DEADLINES, advertiseKeysMs: 1000 } };
    const stalled = new SiteRound(who, federation, roundConfig, { deadlineGraceMs: 0 }).start();
    await stalled.session.settled();
    vi.advanceTimersByTime(999);
    expect(stalled.refusals()).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(stalled.refusals().map(([reason]) => reason)).toEqual(['STAGE_DEADLINE_PASSED']);
    expect(leaving(who)).toMatchObject({ stage: 'round_start', reason: 'STAGE_DEADLINE_PASSED', detail: 'no next stage within 1000 ms of round_start' });
  });

  it('a stage message before its RoundStart was handled: refused, for want of a RoundConfig', async () => {
    const who = site(0);
    const roundConfig = config();
    const early = new SiteRound(who, federation, roundConfig);
    const hash = sha256(utf8('a commit asked before the round started'));
    early.session.handle({ stage: 'commit_request', roundId: roundConfig.roundId, previousModelHash: hash, aggregateHash: hash, newModelHash: hash, optimizerStateHash: hash });
    await early.session.settled();
    expect(early.refusals().map(([reason]) => reason)).toEqual(['SITE_ERROR']);
    expect(leaving(who)).toMatchObject({ stage: 'commit_request', detail: 'no RoundConfig received for this round' });
    expect(early.session.state).toBe('failed');
  });

  it('a RoundConfig for another round than the RoundStart names: refused before any counter moves', async () => {
    const who = site(0);
    const roundConfig = config();
    const before = who.state.highestRoundCounter(FEDERATION_ID);
    const sent: SiteSessionMessage[] = [];
    const identity = federation.site(who.siteId);
    const otherId = new Uint8Array(roundConfig.roundId);
    otherId[23] = (otherId[23] as number) ^ 1;
    const session = new RoundSession(otherId, {
      logger: who.logger,
      clientOptions: () => ({ siteId: who.siteId, signingKey: identity.privateKey, policy: testPolicy(), trust: federation.trust }),
      guard: who.guard,
      send: (message) => sent.push(message),
      upload: () => Promise.reject(new Error('no upload in this test')),
      train: () => Promise.reject(new Error('no training in this test')),
      evaluate: () => Promise.reject(new Error('no evaluation in this test')),
      computeCommit: () => Promise.reject(new Error('no commit in this test')),
    });
    session.start(roundConfig);
    await session.settled();
    expect(sent).toMatchObject([{ kind: 'refusal', reason: 'SITE_ERROR' }]);
    expect(leaving(who)).toMatchObject({ detail: 'RoundStart carries a RoundConfig for another round id' });
    expect(who.state.highestRoundCounter(FEDERATION_ID)).toBe(before);
  });
});
