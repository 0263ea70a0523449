/**
 * A site's Prometheus metrics (prom-client), in a registry of its own (several daemons in one test
 * process never share a series). Names follow Prometheus's conventions: `fedgate_site_` prefix, base
 * units, `_total` on counters.
 *
 * What a site's metrics may say is a privacy question, not only an operations one: whoever scrapes them
 * (or reads the dashboards built on them) must not learn the site's data. By default nothing exported
 * depends on the data's content or size beyond what the protocol already shows the coordinator: round
 * outcomes, refusal reason codes, connection state, bytes moved (model-sized, the same for every site),
 * and how long local training took. The number of training examples, the local evaluation loss and the
 * training throughput (examples per second, which with the training time gives the dataset size away)
 * are exported only when site.yaml opts in with `metrics.data_dependent: true`.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { ReasonLabels } from '../../platform/index.js';

const TRAINING_BUCKETS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800];

export interface SiteMetricsOptions {
  /** Export the data-dependent series (example count, local evaluation loss, examples per second). @default false */
  readonly dataDependent?: boolean;
  /** Also export Node's process metrics (CPU, memory, event loop, GC). @default true */
  readonly processMetrics?: boolean;
}

/** What one round's local training reports to the metrics (site-training.ts LocalTrainingResult). */
export interface TrainingObservation {
  readonly seconds: number;
  readonly trainingExamples: number;
  readonly evalLossSum: number;
  readonly evalExamples: number;
}

export type RoundEnd = 'committed' | 'aborted' | 'left' | 'evaluated';

export class SiteMetrics {
  readonly registry = new Registry();
  readonly dataDependent: boolean;
  private readonly refusalReasons = new ReasonLabels();
  private readonly endReasons = new ReasonLabels();
  private readonly joined: Counter;
  private readonly committed: Counter;
  private readonly ended: Counter<'outcome' | 'reason'>;
  private readonly refused: Counter<'reason'>;
  private readonly trainingDuration: Histogram;
  private readonly uploadBytes: Counter;
  private readonly downloadBytes: Counter;
  private readonly connected: Gauge;
  private readonly sessions: Counter;
  private readonly data: { examples: Gauge; examplesPerSecond: Gauge; evalLoss: Gauge } | undefined;

  constructor(options: SiteMetricsOptions = {}) {
    const registers = [this.registry];
    this.dataDependent = options.dataDependent ?? false;
    this.joined = new Counter({ name: 'fedgate_site_rounds_joined_total', help: 'RoundStart messages naming this site (rounds it was selected for).', registers });
    this.committed = new Counter({ name: 'fedgate_site_rounds_committed_total', help: 'Rounds this site saw commit with a commit record it verified.', registers });
    this.ended = new Counter({
      name: 'fedgate_site_rounds_ended_total',
      help: 'Rounds that ended without commit for this site: aborted by the coordinator, or left (connection lost, invalid commit record), by reason code.',
      labelNames: ['outcome', 'reason'],
      registers,
    });
    this.refused = new Counter({ name: 'fedgate_site_rounds_refused_total', help: 'Refusals this site sent the coordinator, by reason code (its policy, a failed check, a local failure).', labelNames: ['reason'], registers });
    this.trainingDuration = new Histogram({ name: 'fedgate_site_training_duration_seconds', help: "Local training and evaluation time of one round (the round's global model, this site's data).", buckets: TRAINING_BUCKETS, registers });
    this.uploadBytes = new Counter({ name: 'fedgate_site_upload_bytes_total', help: 'Masked-input bytes uploaded to the coordinator.', registers });
    this.downloadBytes = new Counter({ name: 'fedgate_site_download_bytes_total', help: 'Model, aggregate and task bytes downloaded from the coordinator.', registers });
    this.connected = new Gauge({ name: 'fedgate_site_connected', help: '1 while the Session with the coordinator is established (HelloReply received), else 0.', registers });
    this.sessions = new Counter({ name: 'fedgate_site_sessions_established_total', help: 'Sessions established with the coordinator (the first connection and every reconnect).', registers });
    this.connected.set(0);
    this.data = this.dataDependent
      ? {
          examples: new Gauge({ name: 'fedgate_site_training_examples', help: 'DATA-DEPENDENT (metrics.data_dependent): training examples of the last round.', registers }),
          examplesPerSecond: new Gauge({ name: 'fedgate_site_training_examples_per_second', help: 'DATA-DEPENDENT (metrics.data_dependent): training throughput of the last round.', registers }),
          evalLoss: new Gauge({ name: 'fedgate_site_eval_loss', help: "DATA-DEPENDENT (metrics.data_dependent): the round's global model's loss on this site's test split.", registers }),
        }
      : undefined;
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  roundJoined(): void {
    this.joined.inc();
  }

  roundEnded(outcome: RoundEnd, reason?: string): void {
    if (outcome === 'committed') this.committed.inc();
    else this.ended.inc({ outcome, reason: this.endReasons.of(reason) });
  }

  /** A refusal this site sent (its reason code only, never the local text). */
  refusalSent(reason: string): void {
    this.refused.inc({ reason: this.refusalReasons.of(reason) });
  }

  trained(observation: TrainingObservation): void {
    this.trainingDuration.observe(observation.seconds);
    if (this.data === undefined) return;
    this.data.examples.set(observation.trainingExamples);
    if (observation.seconds > 0) this.data.examplesPerSecond.set(observation.trainingExamples / observation.seconds);
    if (observation.evalExamples > 0) this.data.evalLoss.set(observation.evalLossSum / observation.evalExamples);
  }

  uploaded(bytes: number): void {
    this.uploadBytes.inc(bytes);
  }

  downloaded(bytes: number): void {
    this.downloadBytes.inc(bytes);
  }

  connection(established: boolean): void {
    this.connected.set(established ? 1 : 0);
    if (established) this.sessions.inc();
  }
}
