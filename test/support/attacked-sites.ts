/**
 * The real participant daemons a malicious coordinator (malicious-coordinator.ts) attacks: startParticipant
 * over mutual TLS, real SecAgg+ and real ONNX training on an IID share of the shipped digits, each site
 * with its own certificate and its own state directory (participant/state/site-state.ts), which survives a
 * restart unless the test rolls it back or wipes it.
 *
 * Also what the subtraction check compares a coordinator's aggregates with (subtraction.ts): each site's
 * own update per round (ParticipantAppOptions.onLocalUpdate) and its evaluation metrics on a model,
 * recomputed here the way the site computes them (participant/daemon/site-training.ts), on the site's own
 * test split.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { cp, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import pino, { type Logger } from 'pino';
import { fromHex, toHex } from '../../crypto/bytes.js';
import type { RoundConfig } from '../../crypto/secagg/config.js';
import { updateWeight } from '../../crypto/secagg/update-vector.js';
import type { SitePolicy } from '../../crypto/secagg/policy.js';
import type { IssuedCertificate } from '../../certs/index.js';
import { buildTrainingPlan, pinTask, type TaskDocument } from '../../model/index.js';
import { decodeWeights } from '../../model/weight-codec.js';
import { startParticipant, type LocalUpdateEvent, type ParticipantAppOptions, type RunningParticipant } from '../../participant/daemon/participant-app.js';
import { loadSiteData, type SiteData, type SiteDataSpec } from '../../participant/daemon/site-data.js';
import type { SitePrivacy } from '../../participant/round/site-privacy.js';
import { SiteStateStore } from '../../participant/state/site-state.js';
import { Trainer } from '../../participant/trainer/index.js';
import { MIB } from '../../proto/chunking.js';
import { digitsShare, siteCertificate, type LogEntry } from './grpc-federation.js';
import { MaliciousCoordinator } from './malicious-coordinator.js';
import { createTempDirectory, type TempDirectory, type TestPki } from './pki.js';
import { updateContribution, type SiteContribution, type SiteMetrics } from './subtraction.js';

/**
 * The policy every attacked site keeps unless a test says otherwise: site.yaml's defaults (collusion margin
 * included), except min_threshold 2 - the structural minimum - so that against a weak threshold it is the
 * collusion margin that stands, not the site's own minimum.
 */
export const ATTACKED_SITE_POLICY = { minParticipants: 3, minThreshold: 2, allowPlaintext: false } as const satisfies Partial<SitePolicy>;

export interface AttackedSiteSetup {
  readonly policy?: Partial<SitePolicy>;
  /** @default this site's IID share of the shipped digits */
  readonly data?: SiteDataSpec;
  /** ParticipantAppOptions.dataCheckIntervalMs (how soon the site notices its data files changed). @default the daemon's */
  readonly dataCheckIntervalMs?: number;
  /** ParticipantAppOptions.privacy (site.yaml privacy: budget, require_dp). @default none */
  readonly privacy?: SitePrivacy;
  /** ParticipantAppOptions.helloReplyTimeoutMs. @default the daemon's */
  readonly helloReplyTimeoutMs?: number;
}

export interface AttackedSitesOptions {
  readonly pki: TestPki;
  readonly coordinator: MaliciousCoordinator;
  readonly task: TaskDocument;
  readonly siteIds: readonly string[];
  /** Per-site overrides; `directory` is the site's own private temp directory (for its data files). */
  readonly setup?: (siteId: string, index: number, directory: string) => AttackedSiteSetup;
}

/** How a restarted site finds its state directory. */
export type StateOnRestart =
  /** As the site left it: a correct site remembers everything it persisted. */
  | 'keep'
  /** Restored from the copy taken when the site first started, before any round: an old backup. */
  | 'rollback'
  /** Empty: a new site secret, no counter, no contributions. */
  | 'wipe';

export class AttackedSite {
  readonly updates: LocalUpdateEvent[] = [];
  daemon: RunningParticipant | undefined;
  siteState: SiteStateStore | undefined;
  stateDirectory: string;
  private generation = 0;

  constructor(
    readonly siteId: string,
    readonly certificate: IssuedCertificate,
    /** The site's own private directory: its state directories and any data files of the test. */
    readonly directory: string,
    readonly policy: SitePolicy,
    readonly data: SiteDataSpec,
    readonly dataCheckIntervalMs?: number,
    readonly privacy?: SitePrivacy,
    readonly helloReplyTimeoutMs?: number,
  ) {
    this.stateDirectory = join(directory, 'state-0');
  }

  get snapshotDirectory(): string {
    return join(this.directory, 'state-backup');
  }

  /** A fresh state directory path for the next start. */
  nextStateDirectory(): string {
    this.generation += 1;
    return join(this.directory, `state-${this.generation}`);
  }
}

export class AttackedSites {
  readonly log: LogEntry[] = [];
  private readonly sites = new Map<string, AttackedSite>();
  private readonly logger: Logger;

  private constructor(
    private readonly options: AttackedSitesOptions,
    private readonly root: TempDirectory,
  ) {
    const entries = this.log;
    this.logger = pino({ level: 'info' }, { write: (line: string) => { if (process.env['HARNESS_DEBUG'] !== undefined) process.stderr.write(line); entries.push(JSON.parse(line) as LogEntry); } });
  }

  /** Starts a daemon for every site id, each connected to the coordinator, and waits until all are. */
  static async start(options: AttackedSitesOptions): Promise<AttackedSites> {
    const root = await createTempDirectory('fedgate-attacked-');
    const sites = new AttackedSites(options, root);
    try {
      const certificates = await Promise.all(options.siteIds.map((siteId) => siteCertificate(options.pki, siteId)));
      for (const [index, siteId] of options.siteIds.entries()) {
        const directory = join(root.path, siteId);
        await mkdir(directory, { recursive: true });
        const setup = options.setup?.(siteId, index, directory) ?? {};
        const policy: SitePolicy = {
          pinnedTaskHashes: [options.coordinator.taskHash],
          federationId: options.coordinator.federationId,
          ...ATTACKED_SITE_POLICY,
          ...setup.policy,
        };
        const site = new AttackedSite(siteId, certificates[index] as IssuedCertificate, directory, policy, setup.data ?? digitsShare(options.siteIds.length, index), setup.dataCheckIntervalMs, setup.privacy, setup.helloReplyTimeoutMs);
        sites.sites.set(siteId, site);
        await sites.launch(site);
        // The backup a careless operator could restore later: the state before any round.
        await cp(site.stateDirectory, site.snapshotDirectory, { recursive: true });
      }
      await options.coordinator.waitForSites(options.siteIds, 20_000);
    } catch (error) {
      await sites.close();
      throw error;
    }
    return sites;
  }

  get ids(): string[] {
    return [...this.sites.keys()];
  }

  site(siteId: string): AttackedSite {
    const site = this.sites.get(siteId);
    if (site === undefined) throw new Error(`no attacked site ${siteId}`);
    return site;
  }

  /** Stops a site's daemon and starts it again on the state directory `state` says; waits until it is connected. */
  async restart(siteId: string, state: StateOnRestart): Promise<void> {
    const site = this.site(siteId);
    const { coordinator } = this.options;
    await site.daemon?.stop();
    site.daemon = undefined;
    // The coordinator must have seen the old session end, or the new one would be mistaken for it.
    await coordinator.until(() => !coordinator.connected().includes(siteId), 10_000, () => `${siteId}'s old session to end`);
    if (state !== 'keep') {
      site.stateDirectory = site.nextStateDirectory();
      if (state === 'rollback') await cp(site.snapshotDirectory, site.stateDirectory, { recursive: true });
    }
    await this.launch(site);
    await coordinator.waitForSites([siteId], 20_000);
  }

  /** The update `siteId` trained in round `roundId`. */
  localUpdate(siteId: string, roundId: Uint8Array): LocalUpdateEvent {
    const update = this.site(siteId).updates.find((event) => event.roundId === toHex(roundId));
    if (update === undefined) throw new Error(`${siteId} reported no local update for round ${toHex(roundId)}`);
    return update;
  }

  /**
   * What each site really contributed to the rounds the coordinator ran: its w * delta and w in every
   * round it trained in, and its evaluation metrics on every model an aggregate was taken on.
   */
  async contributions(coordinator: MaliciousCoordinator, evaluator: SiteEvaluator): Promise<SiteContribution[]> {
    const out: SiteContribution[] = [];
    const configs = new Map(coordinator.aggregates.map((aggregate) => [toHex(aggregate.config.roundId), aggregate.config]));
    const models = new Map(coordinator.aggregates.map((aggregate) => [toHex(aggregate.config.modelHash), aggregate.config]));
    for (const site of this.sites.values()) {
      for (const update of site.updates) {
        const config = configs.get(update.roundId);
        if (config === undefined) continue;
        const weight = updateWeight(update.trainingExamples, config.maxWeight);
        out.push(updateContribution(site.siteId, `${site.siteId} in round ${update.roundId.slice(0, 16)}...`, config, update.delta, weight));
      }
      for (const [modelHash, config] of models) {
        const model = decodeWeights(coordinator.plan, coordinator.blob(fromHex(modelHash)));
        out.push({ siteId: site.siteId, source: `${site.siteId} evaluating model ${modelHash.slice(0, 16)}...`, metrics: await evaluator.metrics(site.data, model, config) });
      }
    }
    return out;
  }

  async close(): Promise<void> {
    await Promise.all([...this.sites.values()].map((site) => site.daemon?.stop()));
    await this.root.remove();
  }

  private async launch(site: AttackedSite): Promise<void> {
    const { pki, coordinator } = this.options;
    site.siteState = await SiteStateStore.open(site.stateDirectory);
    const options: ParticipantAppOptions = {
      coordinator: coordinator.address,
      tls: { caPem: pki.ca.certificatePem, certPem: site.certificate.certificatePem, keyPem: site.certificate.privateKeyPem },
      siteId: site.siteId,
      signingKey: createPrivateKey(site.certificate.privateKeyPem),
      trust: { caCertificate: new X509Certificate(pki.ca.certificatePem), revokedSerials: new Set() },
      policy: site.policy,
      data: site.data,
      device: 'cpu',
      intraOpThreads: 1,
      maxModelBytes: 64 * MIB,
      reconnect: { initialMs: 100, maxMs: 1000 },
      logger: this.logger.child({ site: site.siteId }),
      onLocalUpdate: (event) => site.updates.push(event),
      // Everything the attacks need of the state store - persisted, rolled back, wiped - is set up above.
      state: site.siteState,
      // The daemon's grace beyond each RoundConfig deadline (10 s by default): short, so the deadline
      // attack ends within a test's time.
      deadlineGraceMs: 250,
      ...(site.dataCheckIntervalMs === undefined ? {} : { dataCheckIntervalMs: site.dataCheckIntervalMs }),
      ...(site.privacy === undefined ? {} : { privacy: site.privacy }),
      ...(site.helloReplyTimeoutMs === undefined ? {} : { helloReplyTimeoutMs: site.helloReplyTimeoutMs }),
    };
    site.daemon = startParticipant(options);
  }
}

/**
 * Evaluation metrics of a model on a site's own test split, computed as the site computes them
 * (site-training.ts: at most E_max examples, the loss sum clipped to L_max per example), with a trainer of
 * the harness's own.
 */
export class SiteEvaluator {
  private readonly data = new Map<string, Promise<SiteData>>();

  private constructor(
    private readonly task: TaskDocument,
    private readonly trainer: Trainer,
  ) {}

  static async create(task: TaskDocument): Promise<SiteEvaluator> {
    return new SiteEvaluator(task, await Trainer.create({ plan: buildTrainingPlan(task), device: 'cpu', intraOpThreads: 1 }));
  }

  async metrics(spec: SiteDataSpec, model: Float32Array, config: RoundConfig): Promise<SiteMetrics> {
    const key = JSON.stringify(spec);
    let data = this.data.get(key);
    if (data === undefined) {
      data = loadSiteData(spec, this.task);
      this.data.set(key, data);
    }
    const { test } = await data;
    if (test.count === 0) return { evalLossSum: 0, evalCorrect: 0, evalExamples: 0 };
    const limit = Math.min(test.count, config.layout.maxEvalExamples);
    const subset = limit === test.count ? test : { ...test, count: limit, features: test.features.subarray(0, limit * (test.features.length / test.count)), labels: test.labels.subarray(0, limit) };
    const result = await this.trainer.evaluate(model, subset);
    return { evalLossSum: Math.min(result.lossSum, config.layout.maxLossPerExample * result.examples), evalCorrect: result.correct, evalExamples: result.examples };
  }

  close(): Promise<void> {
    return this.trainer.close();
  }
}

/** A malicious coordinator and the real daemons it attacks, connected to it. */
export interface Attack {
  readonly coordinator: MaliciousCoordinator;
  readonly sites: AttackedSites;
  close(): Promise<void>;
}

export interface AttackOptions {
  readonly pki: TestPki;
  readonly task: TaskDocument;
  readonly federationId: string;
  readonly siteIds: readonly string[];
  readonly setup?: AttackedSitesOptions['setup'];
}

export async function openAttack(options: AttackOptions): Promise<Attack> {
  // Sites accept only tasks that pin where the chain of models starts (model/task-pin.ts).
  const task = pinTask(options.task);
  const coordinator = await MaliciousCoordinator.start({ pki: options.pki, task, federationId: options.federationId });
  let sites: AttackedSites;
  try {
    sites = await AttackedSites.start({ pki: options.pki, coordinator, task, siteIds: options.siteIds, ...(options.setup === undefined ? {} : { setup: options.setup }) });
  } catch (error) {
    await coordinator.close();
    throw error;
  }
  return {
    coordinator,
    sites,
    close: async () => {
      await sites.close();
      await coordinator.close();
    },
  };
}
