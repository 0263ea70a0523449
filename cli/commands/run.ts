/**
 * `fedgate coordinator` and `fedgate participant`: long-running services, stopped by SIGINT/SIGTERM.
 * FEDGATE_FAULT_INJECTION (crash-recovery tests only) is read here, once, and handed to the coordinator as
 * its faultPoint option (coordinator/state/fault-injection.ts).
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import { SingleBar } from 'cli-progress';
import { CoordinatorMetrics, crashAtFaultPoint, startCoordinator, type FaultPoint } from '../../coordinator/index.js';
import { PrivacyBudgetStore, SiteMetrics, SitePrivacy, SiteStateStore, datasetId, startParticipant, type Device } from '../../participant/index.js';
import { writeFileAtomic } from '../../platform/index.js';
import { loadCoordinatorConfig } from '../config/coordinator-config.js';
import { checkSiteDataFiles, loadSiteConfig, sitePolicy, sitePrivacyPolicy } from '../config/site-config.js';
import { ConfigError } from '../config/config-error.js';
import { compileMetricsConfig } from '../config/metrics-config.js';
import { coordinatorTwoSiteWarning, siteTwoSiteWarning } from '../config/two-site-warning.js';
import { UsageError } from '../usage-error.js';
import { createLogger } from '../logging.js';
import { readInitialModelFile, readTaskFile } from '../task-file.js';
import { readTlsFiles } from '../tls-files.js';
import { coordinatorAdminOptions } from './admin-ca.js';
import { serveMetrics } from '../metrics-serve.js';

export function registerRunCommands(program: Command, env: NodeJS.ProcessEnv = process.env): void {
  program
    .command('coordinator')
    .description('run the coordinator service: mTLS gRPC, secure rounds, ledger in state_dir')
    .requiredOption('--config <file>', 'coordinator.yaml')
    .option('--exit-when-done', 'exit once the configured number of rounds has committed')
    .action(async (options: { config: string; exitWhenDone?: boolean }) => {
      const config = await loadCoordinatorConfig(options.config);
      const tls = await readTlsFiles(config.tls, config.source);
      if (tls.role !== 'coordinator') throw new ConfigError(`${config.source}: tls.cert is a ${tls.role} certificate; the coordinator needs one made by \`fedgate certs issue coordinator\``);
      const { task, forwardModel } = await readTaskFile(config.taskPath, config.modelPath);
      const initialModelFile = config.initialModelPath === undefined ? undefined : await readInitialModelFile(config.initialModelPath, 'initial_model');
      const admin = await coordinatorAdminOptions({ admin: config.coordinator.admin, tls: config.tls, source: config.source }, tls.caPem);
      const logger = createLogger('coordinator');
      const twoSites = coordinatorTwoSiteWarning(config);
      if (twoSites !== undefined) logger.warn(twoSites);
      const faultPoint = faultInjection(env);
      const metrics = config.metrics === undefined ? undefined : new CoordinatorMetrics();
      const metricsEndpoint = config.metrics === undefined || metrics === undefined ? undefined : await serveMetrics(config.metrics, config.source, metrics.registry, logger);
      const coordinator = await startCoordinator({
        ...config.coordinator,
        tls: { caPem: tls.caPem, certPem: tls.certPem, keyPem: tls.keyPem },
        revokedSerials: [...tls.revokedSerials, ...admin.revokedSerials],
        admin: admin.admin,
        task,
        ...(forwardModel === undefined ? {} : { forwardModel }),
        ...(initialModelFile === undefined ? {} : { initialModelFile }),
        ...(faultPoint === undefined ? {} : { faultPoint }),
        ...(metrics === undefined ? {} : { metrics }),
        logger,
      }).catch(async (error: unknown) => {
        await metricsEndpoint?.close();
        throw error;
      });
      coordinator.federation.on('round', (event) => logger.info({ event }, event.type));
      const stopped = waitForSignal();
      await Promise.race([stopped, options.exitWhenDone === true ? coordinator.done : new Promise(() => undefined)]);
      await coordinator.stop();
      await metricsEndpoint?.close();
    });

  program
    .command('participant')
    .description('run a data site: dial the coordinator, train locally, take part in secure rounds')
    .requiredOption('--config <file>', 'site.yaml')
    .option('--rounds <n>', 'exit after this many rounds have committed (for scripts and demos)')
    .action(async (options: { config: string; rounds?: string }) => {
      const config = await loadSiteConfig(options.config);
      await checkSiteDataFiles(config);
      const tls = await readTlsFiles(config.tls, config.source);
      if (tls.role !== 'participant') throw new ConfigError(`${config.source}: tls.cert is a ${tls.role} certificate; a site needs one made by \`fedgate certs issue participant NAME\``);
      const logger = createLogger('participant');
      const twoSites = siteTwoSiteWarning(config);
      if (twoSites !== undefined) logger.warn(twoSites);
      // Round counters, models contributed to and the site secret: what stops a coordinator replaying this site.
      const state = await SiteStateStore.open(config.state_dir);
      // What DP rounds spent on this site's data, kept per dataset in state_dir whether or not site.yaml
      // sets a budget, so a budget set later counts the rounds before it.
      const privacy = new SitePrivacy(sitePrivacyPolicy(config) ?? { requireDp: false, datasetId: datasetId(config.data) }, await PrivacyBudgetStore.open(config.state_dir), logger);
      const budget = privacy.policy.budget;
      logger.info(
        { dataset: Buffer.from(privacy.policy.datasetId).toString('hex'), requireDp: privacy.requiresDp, epsilonSpent: privacy.epsilonSpent(), delta: privacy.delta, ...(budget === undefined ? {} : { budgetEpsilon: budget.epsilon }) },
        budget === undefined ? 'no privacy budget set (site.yaml privacy); DP rounds are still counted' : 'privacy budget',
      );
      const metrics = config.metrics === undefined ? undefined : new SiteMetrics({ dataDependent: config.metrics.data_dependent });
      const metricsEndpoint =
        config.metrics === undefined || metrics === undefined
          ? undefined
          : // Paths in site.yaml's metrics.tls are already resolved against its directory (site-config.ts).
            await serveMetrics(compileMetricsConfig(config.metrics, (path) => path), config.source, metrics.registry, logger);
      const bar = process.stderr.isTTY ? new SingleBar({ format: 'training {bar} {percentage}% | step {value}/{total} | loss {loss}', hideCursor: true, clearOnComplete: true }) : undefined;
      let committed = 0;
      let barRunning = false;
      const target = options.rounds === undefined ? undefined : Number(options.rounds);
      if (target !== undefined && (!Number.isInteger(target) || target < 1)) throw new UsageError(`--rounds must be a positive whole number, got ${JSON.stringify(options.rounds)}`);
      let reachedTarget: () => void = () => undefined;
      const targetReached = new Promise<void>((resolve) => {
        reachedTarget = resolve;
      });
      const participant = startParticipant({
        coordinator: config.coordinator,
        ...(config.server_name === undefined ? {} : { serverName: config.server_name }),
        tls,
        siteId: tls.commonName,
        signingKey: createPrivateKey(tls.keyPem),
        trust: { caCertificate: new X509Certificate(tls.caPem), revokedSerials: tls.revokedSerials },
        policy: sitePolicy(config),
        data: config.data,
        device: config.device as Device,
        intraOpThreads: config.intra_op_threads,
        maxModelBytes: config.max_model_bytes,
        reconnect: { initialMs: config.reconnect.initial, maxMs: config.reconnect.max },
        state,
        privacy,
        logger,
        ...(metrics === undefined ? {} : { metrics }),
        ...(bar === undefined
          ? {}
          : {
              onProgress: (event) => {
                if (!barRunning) {
                  bar.start(event.totalSteps, 0, { loss: '-' });
                  barRunning = true;
                }
                bar.update(event.step, { loss: event.loss.toFixed(4) });
                if (event.step >= event.totalSteps) {
                  bar.stop();
                  barRunning = false;
                }
              },
            }),
        onRoundEnd: (event) => {
          logger.info(event, 'round ended');
          if (event.outcome === 'committed') {
            committed += 1;
            const model = participant.latestModel();
            if (model !== undefined) void saveLatestModel(config.state_dir, model).catch((error: unknown) => logger.warn({ err: error }, 'could not save the latest model'));
          }
          if (target !== undefined && committed >= target) reachedTarget();
        },
      });
      // `done` rejects only when the coordinator refused the site for good (e.g. a revoked certificate).
      await Promise.race([waitForSignal(), targetReached, participant.done]).finally(() => metricsEndpoint?.close());
      await participant.stop();
    });
}

/** The crash hook FEDGATE_FAULT_INJECTION asks for (recovery tests), or undefined when it is unset. */
function faultInjection(env: NodeJS.ProcessEnv): FaultPoint | undefined {
  const spec = env['FEDGATE_FAULT_INJECTION'];
  if (spec === undefined || spec === '') return undefined;
  try {
    return crashAtFaultPoint(spec);
  } catch (error) {
    throw new UsageError(`FEDGATE_FAULT_INJECTION: ${(error as Error).message}`);
  }
}

/** Keeps the newest committed global model this site signed, written atomically, for local use. */
async function saveLatestModel(directory: string, model: Uint8Array): Promise<void> {
  await mkdir(directory, { recursive: true });
  await writeFileAtomic(join(directory, 'latest-model.bin'), model);
}

function waitForSignal(): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      process.off('SIGINT', done);
      process.off('SIGTERM', done);
      resolve();
    };
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
  });
}
