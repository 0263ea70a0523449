/**
 * A real federation for the Admin API tests: a federation CA directory (so revocation signs real CRLs),
 * a coordinator on 127.0.0.1:0 with mutual TLS and the Admin service, and participant daemons in this
 * process training logistic regression on the shipped digits (fast: a round takes about a second).
 * Everything lives in a temp directory removed by `close`.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import pino from 'pino';
import { initCertificateAuthority, issueBundle } from '../../certs/index.js';
import type { CertificateRole } from '../../crypto/certificate-role.js';
import { caDirectoryAuthority } from '../../cli/commands/admin-ca.js';
import type { RevocationAuthority } from '../../coordinator/admin/revocation-authority.js';
import type { PausePoint } from '../../coordinator/state/fault-injection.js';
import { OperatorClient } from '../../proto/admin-client.js';
import { startCoordinator, type RunningCoordinator } from '../../coordinator/service/coordinator-app.js';
import type { CoordinatorMetrics } from '../../coordinator/metrics/coordinator-metrics.js';
import type { SiteMetrics } from '../../participant/metrics/site-metrics.js';
import { fromHex } from '../../crypto/bytes.js';
import { parseTaskDocument, taskHash, type PinnedTaskDocument } from '../../model/task.js';
import { pinTask } from '../../model/task-pin.js';
import { startParticipant, type RunningParticipant } from '../../participant/daemon/participant-app.js';
import { SiteStateStore } from '../../participant/state/index.js';
import type { SitePrivacy } from '../../participant/round/site-privacy.js';
import { createTempDirectory, type TempDirectory } from './pki.js';
import { DIGITS_MLP_TASK } from './in-memory-federation.js';
import { NO_COLLUSION_MARGIN } from './protocol-margin.js';

/** The shared digits task with a logistic-regression model (fast rounds for Admin tests). */
export const LOGREG_DIGITS_TASK: PinnedTaskDocument = pinTask(parseTaskDocument({ ...DIGITS_MLP_TASK, model: { kind: 'logreg', inputShape: [64], classes: 10 }, initialModel: undefined }));

export interface Credentials {
  readonly name: string;
  readonly serial: string;
  readonly certPem: string;
  readonly keyPem: string;
}

export interface CoordinatorSettings {
  readonly rounds: number;
  readonly minParticipants: number;
  /** Give the coordinator the CA directory (revocation possible). @default true */
  readonly withCaDirectory?: boolean;
  readonly stateDirectory?: string;
  /** Prometheus metrics the coordinator keeps up to date. @default none */
  readonly metrics?: CoordinatorMetrics;
  /** Run the evaluation-only round on the final model. @default false */
  readonly finalEvaluation?: boolean;
  /** Wraps the CA directory's revocation authority (e.g. to slow it down). @default as it is */
  readonly authority?: (authority: RevocationAuthority) => RevocationAuthority;
  /** CoordinatorOptions.pausePoint. @default none */
  readonly pausePoint?: PausePoint;
}

export interface AdminFederation {
  readonly work: TempDirectory;
  readonly caDir: string;
  readonly caPem: string;
  readonly stateDirectory: string;
  readonly operator: Credentials;
  /** The coordinator's certificate (valid for 127.0.0.1 and localhost). */
  readonly coordinatorCredentials: Credentials;
  readonly sites: readonly Credentials[];
  coordinator: RunningCoordinator;
  readonly address: () => string;
  /** Starts (or restarts, on the same state directory) the coordinator. */
  startCoordinator(settings: CoordinatorSettings): Promise<RunningCoordinator>;
  /**
   * Starts the daemon of `sites[index]`, holding data partition `index` of `sites.length`, with the
   * site's first certificate or `credentials` (e.g. renewed after a revocation).
   */
  startSite(index: number, credentials?: Credentials, extra?: { readonly metrics?: SiteMetrics; readonly privacy?: SitePrivacy }): RunningParticipant;
  operatorClient(credentials?: Credentials): OperatorClient;
  issue(role: CertificateRole, name: string): Promise<Credentials>;
  close(): Promise<void>;
}

/** @param task what the federation trains. @default LOGREG_DIGITS_TASK */
export async function createAdminFederation(siteCount: number, task: PinnedTaskDocument = LOGREG_DIGITS_TASK): Promise<AdminFederation> {
  const work = await createTempDirectory('fedgate-admin-');
  const caDir = join(work.path, 'ca');
  await initCertificateAuthority({ dir: caDir, commonName: 'fedgate admin test CA', validDays: 3 });
  const caPem = await readFile(join(caDir, 'ca.pem'), 'utf8');
  const issue = async (role: CertificateRole, name: string): Promise<Credentials> => {
    const bundle = await issueBundle({ dir: caDir, role, name, validDays: 2, ...(role === 'coordinator' ? { hosts: ['127.0.0.1', 'localhost'] } : {}) });
    return { name, serial: bundle.certificate.serial, certPem: await readFile(bundle.certificatePath, 'utf8'), keyPem: await readFile(bundle.privateKeyPath, 'utf8') };
  };
  const [coordinatorCredentials, operator, ...sites] = await Promise.all([
    issue('coordinator', 'coordinator'),
    issue('operator', 'ops'),
    ...Array.from({ length: siteCount }, (_, index) => issue('participant', `site-${index + 1}`)),
  ]);
  const stateDirectory = join(work.path, 'state');
  // Each site's own state_dir, opened once: a restarted daemon keeps its counters, as on a real site.
  const siteStates = await Promise.all(sites.map((site) => SiteStateStore.open(join(work.path, 'sites', site.name))));
  const logger = pino({ level: process.env['FEDGATE_TEST_LOG'] ?? 'silent' });
  const participants: RunningParticipant[] = [];
  const clients: OperatorClient[] = [];
  const hash = taskHash(task);

  const harness: AdminFederation = {
    work,
    caDir,
    caPem,
    stateDirectory,
    operator: operator as Credentials,
    coordinatorCredentials: coordinatorCredentials as Credentials,
    sites,
    coordinator: undefined as unknown as RunningCoordinator,
    address: () => `127.0.0.1:${harness.coordinator.port}`,
    async startCoordinator(settings) {
      harness.coordinator = await startCoordinator({
        federationId: 'admin-test',
        listen: '127.0.0.1:0',
        tls: { caPem, certPem: (coordinatorCredentials as Credentials).certPem, keyPem: (coordinatorCredentials as Credentials).keyPem },
        revokedSerials: [],
        admin: { enabled: true, ...(settings.withCaDirectory === false ? {} : { revocationAuthority: (settings.authority ?? ((authority) => authority))(caDirectoryAuthority(caDir)) }) },
        stateDirectory: settings.stateDirectory ?? stateDirectory,
        task,
        rounds: settings.rounds,
        participants: { minimum: settings.minParticipants, sampleFraction: 1, waitTimeoutMs: 60_000 },
        secureAggregation: true,
        secagg: { clipBound: 1, maxWeight: 1000, maxEvalExamples: 1000, maxLossPerExample: 50 },
        deadlines: { advertiseKeysMs: 20_000, shareKeysMs: 20_000, maskedInputMs: 60_000, consistencyCheckMs: 20_000, unmaskMs: 20_000, commitMs: 20_000 },
        finalEvaluation: settings.finalEvaluation ?? false,
        logger,
        heartbeatIntervalMs: 60_000,
        ...(settings.metrics === undefined ? {} : { metrics: settings.metrics }),
        ...(settings.pausePoint === undefined ? {} : { pausePoint: settings.pausePoint }),
      });
      return harness.coordinator;
    },
    startSite(index, credentials, extra = {}) {
      const site = credentials ?? sites[index];
      if (site === undefined) throw new RangeError(`no site ${index}`);
      const participant = startParticipant({
        coordinator: harness.address(),
        tls: { caPem, certPem: site.certPem, keyPem: site.keyPem },
        siteId: site.name,
        signingKey: createPrivateKey(site.keyPem),
        trust: { caCertificate: new X509Certificate(caPem), revokedSerials: new Set() },
        policy: { pinnedTaskHashes: [fromHex(hash)], minParticipants: 2, minThreshold: 2, ...NO_COLLUSION_MARGIN },
        data: { format: 'digits', test_fraction: 0.2, split_seed: 1, partition: { kind: 'iid', count: sites.length, index, seed: 1 } },
        device: 'cpu',
        intraOpThreads: 1,
        maxModelBytes: 1 << 30,
        reconnect: { initialMs: 200, maxMs: 1000 },
        state: siteStates[index] as SiteStateStore,
        logger,
        ...(extra.metrics === undefined ? {} : { metrics: extra.metrics }),
        ...(extra.privacy === undefined ? {} : { privacy: extra.privacy }),
      });
      participants.push(participant);
      return participant;
    },
    operatorClient(credentials = harness.operator) {
      const client = new OperatorClient({ address: harness.address(), caPem, certPem: credentials.certPem, keyPem: credentials.keyPem });
      clients.push(client);
      return client;
    },
    issue,
    async close() {
      for (const client of clients) client.close();
      await Promise.all(participants.map((participant) => participant.stop()));
      await harness.coordinator?.stop();
      await work.remove();
    },
  };
  return harness;
}
