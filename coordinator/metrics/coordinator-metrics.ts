/**
 * The coordinator's Prometheus metrics (prom-client), in a registry of its own so that several
 * coordinators and sites in one process (the tests) never share a series. Names follow Prometheus's
 * conventions: `fedgate_coordinator_` prefix, base units (`_seconds`, `_bytes`), `_total` on counters.
 *
 * Everything here is about the federation as a whole - rounds, stages, the aggregate's evaluation,
 * connections, bytes - never about one site's data: the loss and accuracy are those of the round's
 * federated evaluation (sums over the survivors, DESIGN.md step 4), which the ledger records anyway.
 * No differential-privacy accountant runs on the coordinator yet, so no privacy-budget series exists.
 *
 * Most values follow the Federation's round events; the gauges that describe "now" (connected sites,
 * revoked certificates, ledger height) are read when Prometheus scrapes.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { ReasonLabels } from '../../platform/index.js';
import type { Federation, RoundEvent } from '../federation/federation.js';
import { parseLedgerCommit } from '../federation/ledger-commit.js';
import { evaluationFigures } from '../../crypto/secagg/metric-figures.js';

/** Seconds of a stage: from a few ms on a LAN to MaskedInput's 600 s default deadline (training included). */
const STAGE_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];
const ROUND_BUCKETS = [0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600];
const COMPUTE_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export type TransferDirection = 'received' | 'sent';

/** What the metrics read at scrape time. */
export interface CoordinatorMetricSources {
  readonly federation: Federation;
  /** Sites with an open Session whose Hello was accepted. */
  readonly connectedSites: () => number;
  /** Certificate serials the coordinator refuses now. */
  readonly revokedCertificates: () => number;
  /** Rounds the coordinator is configured to commit (coordinator.yaml `rounds`). */
  readonly roundsConfigured: number;
}

export interface CoordinatorMetricsOptions {
  /** Also export Node's process metrics (CPU, memory, event loop, GC). @default true */
  readonly processMetrics?: boolean;
}

export class CoordinatorMetrics {
  readonly registry = new Registry();
  private readonly abortReasons = new ReasonLabels();
  private readonly roundsStarted: Counter;
  private readonly roundsCommitted: Counter;
  private readonly roundsAborted: Counter<'reason'>;
  private readonly stageDuration: Histogram<'stage'>;
  private readonly roundDuration: Histogram<'outcome'>;
  private readonly unmaskDuration: Histogram;
  private readonly aggregationDuration: Histogram;
  private readonly participantsInRound: Gauge;
  private readonly lastCommitTime: Gauge;
  private readonly lastEvalLoss: Gauge;
  private readonly lastEvalAccuracy: Gauge;
  private readonly lastSurvivors: Gauge;
  private readonly lastEvalFigure: Gauge<'figure'>;
  private readonly bytes: Record<TransferDirection, Counter<'rpc'>>;
  private sources: CoordinatorMetricSources | undefined;
  private readonly onRound = (event: RoundEvent): void => this.round(event);

  constructor(options: CoordinatorMetricsOptions = {}) {
    const registers = [this.registry];
    const gauge = (name: string, help: string, collect?: () => number | undefined): Gauge =>
      new Gauge({
        name,
        help,
        registers,
        ...(collect === undefined
          ? {}
          : {
              collect(this: Gauge) {
                const value = collect();
                if (value !== undefined) this.set(value);
              },
            }),
      });
    this.roundsStarted = new Counter({ name: 'fedgate_coordinator_rounds_started_total', help: 'Rounds started (RoundStart sent) since the coordinator started.', registers });
    this.roundsCommitted = new Counter({ name: 'fedgate_coordinator_rounds_committed_total', help: 'Rounds committed (quorum-signed record appended to the ledger) since the coordinator started.', registers });
    this.roundsAborted = new Counter({ name: 'fedgate_coordinator_rounds_aborted_total', help: 'Rounds aborted since the coordinator started, by abort reason.', labelNames: ['reason'], registers });
    this.stageDuration = new Histogram({
      name: 'fedgate_coordinator_stage_duration_seconds',
      help: 'Time from opening a round stage until every expected site answered, dropped or refused, or its deadline passed.',
      labelNames: ['stage'],
      buckets: STAGE_BUCKETS,
      registers,
    });
    this.roundDuration = new Histogram({ name: 'fedgate_coordinator_round_duration_seconds', help: 'Wall time of a round, by outcome (committed, aborted).', labelNames: ['outcome'], buckets: ROUND_BUCKETS, registers });
    this.unmaskDuration = new Histogram({ name: 'fedgate_coordinator_unmask_duration_seconds', help: 'Time spent reconstructing secrets and removing the masks from the sum.', buckets: COMPUTE_BUCKETS, registers });
    this.aggregationDuration = new Histogram({
      name: 'fedgate_coordinator_aggregation_duration_seconds',
      help: 'Time spent computing and storing model r+1 from the unmasked aggregate (server optimiser).',
      buckets: COMPUTE_BUCKETS,
      registers,
    });
    gauge('fedgate_coordinator_participants_connected', 'Participant sites with an open Session whose Hello was accepted.', () => this.sources?.connectedSites());
    this.participantsInRound = gauge('fedgate_coordinator_participants_in_round', 'Members of the open round (|U|); 0 between rounds.');
    gauge('fedgate_coordinator_certificates_revoked', 'Certificate serials the coordinator refuses (CRL and live revocations).', () => this.sources?.revokedCertificates());
    gauge('fedgate_coordinator_ledger_height', 'Committed rounds the ledger holds (its length).', () => this.sources?.federation.committedRounds);
    gauge('fedgate_coordinator_rounds_configured', 'Rounds the coordinator is configured to commit; ledger_height reaches it when the federation is done.', () => this.sources?.roundsConfigured);
    this.lastCommitTime = gauge('fedgate_coordinator_last_commit_timestamp_seconds', 'Unix time of the last committed round (0 before the first); alert on time() minus this.');
    this.lastEvalLoss = gauge('fedgate_coordinator_last_round_eval_loss', "Federated evaluation loss of the last committed round's global model (sum over survivors / examples).");
    this.lastEvalAccuracy = gauge('fedgate_coordinator_last_round_eval_accuracy', "Federated evaluation accuracy of the last committed round's global model (0..1).");
    this.lastEvalFigure = new Gauge({
      name: 'fedgate_coordinator_last_round_eval_figure',
      help: "Figures of the last federated evaluation from the secure sum that its task's loss reports: r2, rmse, mse, mae (regression), f1, precision, recall (multi-label micro averages).",
      labelNames: ['figure'],
      registers,
    });
    this.lastSurvivors = gauge('fedgate_coordinator_last_round_survivors', 'Sites whose masked input went into the last committed aggregate (|U3|).');
    this.bytes = {
      received: new Counter({ name: 'fedgate_coordinator_received_bytes_total', help: 'Payload bytes received from sites, by RPC.', labelNames: ['rpc'], registers }),
      sent: new Counter({ name: 'fedgate_coordinator_sent_bytes_total', help: 'Payload bytes sent to sites and operators, by RPC.', labelNames: ['rpc'], registers }),
    };
    this.lastCommitTime.set(0);
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  /** Starts following `sources.federation`; the last committed round of its ledger seeds the last-round gauges. */
  attach(sources: CoordinatorMetricSources): void {
    this.detach();
    this.sources = sources;
    sources.federation.on('round', this.onRound);
    const head = sources.federation.ledgerRecords.head;
    if (head !== undefined) {
      const { committedAt, body } = parseLedgerCommit(head.body, `ledger record ${head.sequence}`);
      this.lastCommitTime.set(committedAt.getTime() / 1000);
      this.evaluation(Number(body.metrics['evalLossSum']), Number(body.metrics['evalCorrect']), Number(body.metrics['evalExamples']));
      this.figures(body.metrics);
      this.lastSurvivors.set(body.survivors.length);
    }
  }

  detach(): void {
    this.sources?.federation.off('round', this.onRound);
    this.sources = undefined;
  }

  /** Payload bytes of a transfer (masked-input upload, model download, model export). */
  transferred(direction: TransferDirection, rpc: string, bytes: number): void {
    this.bytes[direction].inc({ rpc }, bytes);
  }

  private round(event: RoundEvent): void {
    if (event.type === 'round_started') {
      this.roundsStarted.inc();
      this.participantsInRound.set(event.participants.length);
      return;
    }
    this.participantsInRound.set(0);
    for (const [stage, seconds] of Object.entries(event.stageSeconds ?? {})) this.stageDuration.observe({ stage }, seconds);
    const compute = event.computeSeconds ?? {};
    if (compute['unmask'] !== undefined) this.unmaskDuration.observe(compute['unmask']);
    if (compute['aggregation'] !== undefined) this.aggregationDuration.observe(compute['aggregation']);
    if (event.seconds !== undefined) this.roundDuration.observe({ outcome: event.type === 'round_committed' ? 'committed' : 'aborted' }, event.seconds);
    if (event.type === 'round_aborted') {
      this.roundsAborted.inc({ reason: this.abortReasons.of(event.reason) });
      return;
    }
    this.roundsCommitted.inc();
    const at = Date.parse(event.at);
    this.lastCommitTime.set((Number.isNaN(at) ? Date.now() : at) / 1000);
    if (event.metrics !== undefined) {
      this.evaluation(event.metrics.evalLossSum, event.metrics.evalCorrect, event.metrics.evalExamples);
      this.figures(event.metrics);
      this.lastSurvivors.set(event.metrics.survivors);
    }
  }

  /** The figures of a multi-label or regression evaluation (metric-figures.ts); none for class-index tasks. */
  private figures(metrics: Parameters<typeof evaluationFigures>[0]): void {
    const figures = evaluationFigures(metrics);
    if (figures.kind === 'classification' || !(figures.examples > 0)) return;
    const names = figures.kind === 'regression' ? (['r2', 'rmse', 'mse', 'mae'] as const) : (['f1', 'precision', 'recall'] as const);
    this.lastEvalFigure.reset();
    for (const name of names) {
      const value = figures[name];
      if (value !== null && Number.isFinite(value)) this.lastEvalFigure.set({ figure: name }, value);
    }
  }

  private evaluation(lossSum: number, correct: number, examples: number): void {
    if (!(examples > 0) || !Number.isFinite(lossSum) || !Number.isFinite(correct)) return;
    this.lastEvalLoss.set(lossSum / examples);
    this.lastEvalAccuracy.set(correct / examples);
  }
}
