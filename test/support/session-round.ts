/**
 * Real RoundSessions (participant/round) driven stage by stage by a real SecAggServer, in one process and
 * without gRPC: each site has a fake environment (training returns a fixed small update, sends and
 * uploads are recorded) but its real SecAgg+ client, its real RoundGuard and a real SiteStateStore on
 * disk. The test is the coordinator: it decides which stage opens next, what each site is shown, and
 * when nothing comes at all - the way to test a site's own defences (freshness, one contribution per
 * model, fixed-text refusals, its own deadlines) against a coordinator that lies or stalls.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino, { type Logger } from 'pino';
import { utf8 } from '../../crypto/bytes.js';
import { sha256 } from '../../crypto/hash.js';
import { encodeAggregate } from '../../crypto/secagg/aggregate-codec.js';
import { parameterCount, type RoundConfig } from '../../crypto/secagg/config.js';
import type { ClientMessage, CommitHashes, MaskedInputMessage, ServerMessage } from '../../crypto/secagg/messages.js';
import type { SitePolicy } from '../../crypto/secagg/policy.js';
import type { SiteSessionMessage } from '../../crypto/secagg/round-envelope.js';
import { SecAggServer } from '../../crypto/secagg/server.js';
import type { AggregateResult } from '../../crypto/secagg/server-unmask.js';
import { RoundGuard } from '../../participant/round/round-guard.js';
import { RoundSession, type LocalEvaluation, type LocalTrainingResult, type SiteRoundEnvironment } from '../../participant/round/round-session.js';
import { SiteStateStore } from '../../participant/state/index.js';
import { testPolicy, type TestFederation } from './secagg-sim.js';

export type LogLine = Record<string, unknown> & { readonly msg?: string };

/** One site: its state on disk, its guard across rounds, its log. */
export class SessionSite {
  readonly log: LogLine[] = [];
  readonly logger: Logger;

  private constructor(
    readonly siteId: string,
    readonly directory: string,
    public state: SiteStateStore,
    public guard: RoundGuard,
  ) {
    this.logger = pino({ level: 'debug' }, { write: (line: string) => this.log.push(JSON.parse(line) as LogLine) });
  }

  static async open(siteId: string, directory: string): Promise<SessionSite> {
    const state = await SiteStateStore.open(directory);
    return new SessionSite(siteId, directory, state, new RoundGuard(state));
  }

  /** A restart: the store reopened from disk and a new guard (nothing carried over in memory). */
  async restart(): Promise<void> {
    this.state = await SiteStateStore.open(this.directory);
    this.guard = new RoundGuard(this.state);
  }

  /** Log lines with message `msg`. */
  lines(msg: string): LogLine[] {
    return this.log.filter((line) => line.msg === msg);
  }
}

/** Every site of a test in one temp directory (removed by `remove`). */
export async function openSessionSites(federation: TestFederation): Promise<{ sites: Map<string, SessionSite>; remove: () => Promise<void> }> {
  const root = await mkdtemp(join(tmpdir(), 'fedgate-session-round-'));
  const sites = new Map<string, SessionSite>();
  for (const site of federation.sites) sites.set(site.siteId, await SessionSite.open(site.siteId, join(root, site.siteId)));
  return { sites, remove: () => rm(root, { recursive: true, force: true }) };
}

/** A small update of `config`'s shape, 50 training examples. */
export function smallUpdate(config: RoundConfig, value = 0.01): LocalTrainingResult {
  return { delta: new Float32Array(parameterCount(config)).fill(value), trainingExamples: 50, evalLossSum: 5, evalCorrect: 7, evalExamples: 10 };
}

export interface SessionEnvironmentOptions {
  readonly policy?: SitePolicy;
  readonly train?: (config: RoundConfig, signal: AbortSignal) => Promise<LocalTrainingResult>;
  /** Evaluation-only rounds. @default 10 examples, 7 correct, loss sum 5 */
  readonly evaluate?: (config: RoundConfig, signal: AbortSignal) => Promise<LocalEvaluation>;
  readonly deadlineGraceMs?: number;
  /** Called as each message leaves the site (before the test's coordinator sees it). */
  readonly onSend?: (message: SiteSessionMessage) => void;
  readonly onUpload?: (message: MaskedInputMessage) => void;
  /** The session's own hooks (participant/round/round-session.ts SiteRoundEnvironment), passed through. */
  readonly hooks?: Pick<SiteRoundEnvironment, 'checkRound' | 'onUnmasked' | 'onCommitSigned' | 'onCommitted' | 'onEvaluated'>;
}

/** One site's RoundSession of one round, with what it sent. */
export class SiteRound {
  readonly sent: SiteSessionMessage[] = [];
  readonly uploads: MaskedInputMessage[] = [];
  /** Every stage message and upload, in the order they left the site. */
  readonly outgoing: ClientMessage[] = [];
  readonly session: RoundSession;
  /** The hashes this site "computes" at commit (the test's coordinator sets them). */
  commitHashes: CommitHashes | undefined;

  constructor(
    readonly site: SessionSite,
    readonly federation: TestFederation,
    readonly config: RoundConfig,
    options: SessionEnvironmentOptions = {},
  ) {
    const identity = federation.site(site.siteId);
    this.session = new RoundSession(config.roundId, {
      logger: site.logger,
      clientOptions: () => ({ siteId: site.siteId, signingKey: identity.privateKey, policy: options.policy ?? testPolicy(), trust: federation.trust }),
      guard: site.guard,
      ...(options.deadlineGraceMs === undefined ? {} : { deadlineGraceMs: options.deadlineGraceMs }),
      send: (message) => {
        options.onSend?.(message);
        this.sent.push(message);
        if (message.kind === 'stage') this.outgoing.push(message.message);
      },
      upload: async (message) => {
        options.onUpload?.(message);
        this.uploads.push(message);
        this.outgoing.push(message);
      },
      train: options.train ?? (async (roundConfig) => smallUpdate(roundConfig)),
      evaluate: options.evaluate ?? (async () => ({ evalLossSum: 5, evalCorrect: 7, evalExamples: 10 })),
      computeCommit: async () => {
        if (this.commitHashes === undefined) throw new Error('the test set no commit hashes');
        return { hashes: this.commitHashes, newModel: utf8('model r+1') };
      },
      ...options.hooks,
    });
  }

  start(): this {
    this.session.start(this.config);
    return this;
  }

  /** The refusals this site sent, as [reason, message]. */
  refusals(): [string, string][] {
    return this.sent.flatMap((message) => (message.kind === 'refusal' ? [[message.reason, message.message] as [string, string]] : []));
  }

  /** The stages of the stage messages this site sent, in order. */
  stages(): string[] {
    return this.sent.flatMap((message) => (message.kind === 'stage' ? [message.message.stage] : []));
  }
}

/** A whole round: the test's coordinator (a real SecAggServer) and one SiteRound per member of U. */
export class SessionRound {
  readonly server: SecAggServer;
  readonly rounds = new Map<string, SiteRound>();
  private readonly forwarded = new Map<string, number>();
  aggregate: AggregateResult | undefined;

  constructor(
    readonly federation: TestFederation,
    readonly config: RoundConfig,
    sites: ReadonlyMap<string, SessionSite>,
    options: (siteId: string) => SessionEnvironmentOptions = () => ({}),
  ) {
    this.server = new SecAggServer({
      config,
      certificates: new Map(federation.sites.map((site) => [site.siteId, site.certificatePem])),
      trust: federation.trust,
      now: new Date(),
    });
    for (const siteId of config.participants) {
      const site = sites.get(siteId);
      if (site === undefined) throw new Error(`no session site ${siteId}`);
      this.rounds.set(siteId, new SiteRound(site, federation, config, options(siteId)));
    }
  }

  site(siteId: string): SiteRound {
    const round = this.rounds.get(siteId);
    if (round === undefined) throw new Error(`no site ${siteId} in this round`);
    return round;
  }

  start(): this {
    for (const round of this.rounds.values()) round.start();
    return this;
  }

  /** Waits until every site has handled what it was given, then passes what they sent to the server. */
  async settle(): Promise<void> {
    await Promise.all([...this.rounds.values()].map((round) => round.session.settled()));
    for (const [siteId, round] of this.rounds) {
      const outgoing = round.outgoing;
      const done = this.forwarded.get(siteId) ?? 0;
      for (const message of outgoing.slice(done)) this.server.receive(siteId, message);
      this.forwarded.set(siteId, outgoing.length);
    }
  }

  private deliver(siteId: string, message: ServerMessage): void {
    this.site(siteId).session.handle(message);
  }

  async openKeyList(): Promise<void> {
    await this.settle();
    const keyList = this.server.closeAdvertiseKeys();
    for (const { siteId } of keyList.entries) this.deliver(siteId, keyList);
  }

  async openGraph(): Promise<void> {
    await this.settle();
    for (const [siteId, graph] of this.server.closeNonceReveal()) this.deliver(siteId, graph);
  }

  async openShareDelivery(): Promise<void> {
    await this.settle();
    for (const [siteId, delivery] of this.server.closeShareKeys()) this.deliver(siteId, delivery);
  }

  async openConsistency(): Promise<void> {
    await this.settle();
    const request = this.server.closeMaskedInput();
    for (const siteId of request.survivors) this.deliver(siteId, request);
  }

  async openUnmask(): Promise<void> {
    await this.settle();
    const request = this.server.closeConsistencyCheck();
    for (const { siteId } of request.signatures) this.deliver(siteId, request);
  }

  async openCommit(): Promise<void> {
    await this.settle();
    const aggregate = this.server.closeUnmask();
    this.aggregate = aggregate;
    const hashes: CommitHashes = {
      previousModelHash: this.config.modelHash,
      aggregateHash: sha256(encodeAggregate(aggregate.sum)),
      newModelHash: sha256(utf8('fedgate test model r+1')),
      optimizerStateHash: sha256(utf8('fedgate test optimiser state r+1')),
    };
    const request = this.server.beginCommit(hashes);
    for (const siteId of aggregate.maskedSurvivors) {
      this.site(siteId).commitHashes = hashes;
      this.deliver(siteId, request);
    }
  }

  /**
   * Runs an evaluation-only round (purpose 'evaluate') to its end: every stage up to Unmask, then the
   * metric sums unmasked into `aggregate`. No commit follows such a round.
   */
  async runToEvaluated(): Promise<void> {
    await this.openKeyList();
    await this.openGraph();
    await this.openShareDelivery();
    await this.openConsistency();
    await this.openUnmask();
    await this.settle();
    this.aggregate = this.server.closeUnmask();
    // As the coordinator does: the members hear that the round is complete (RoundAbort EVALUATION_COMPLETE).
    this.end('EVALUATION_COMPLETE');
  }

  /** The coordinator ends the round (RoundAbort) for every site still in it. */
  end(reason = 'the coordinator aborted the round'): void {
    for (const round of this.rounds.values()) round.session.stop(reason);
  }

  /** Runs every stage up to the commit announcement. */
  async runToCommitted(): Promise<void> {
    await this.openKeyList();
    await this.openGraph();
    await this.openShareDelivery();
    await this.openConsistency();
    await this.openUnmask();
    await this.openCommit();
    await this.settle();
    for (const round of this.rounds.values()) round.session.committed(sha256(utf8('fedgate test model r+1')));
    await Promise.all([...this.rounds.values()].map((round) => round.session.settled()));
  }
}
