/**
 * The dashboard's side of the Admin API: one OperatorClient (mutual TLS with the operator certificate),
 * a first load (GetStatus, ListParticipants, the newest rounds of ListRounds), then WatchRounds for live
 * events, with GetStatus and ListParticipants polled every few seconds for who is connected. After each
 * committed round the newest ledger rounds are read again, so the page's figures are the ledger's own.
 *
 * When the coordinator cannot be reached the feed says so and retries with a growing delay; when the
 * coordinator refuses the operator certificate because it was revoked, it says so and stops: no retry
 * can help, the operator needs a new certificate.
 */
import { EventEmitter } from 'node:events';
import type { ModelSelector, OperatorClient } from '../../proto/admin-client.js';
import type { ReceivedModel } from '../../proto/admin-transfer.js';
import { FedgateError } from '../../proto/errors.js';
import { DashboardState, type ConnectionState, type DashboardUpdate } from './dashboard-state.js';

/** The OperatorClient calls the feed makes (a subset, so the feed states what it needs). */
export type DashboardClient = Pick<OperatorClient, 'status' | 'participants' | 'rounds' | 'watch' | 'model'>;

export interface DashboardFeedOptions {
  /** host:port of the coordinator, for messages. */
  readonly coordinator: string;
  /** How often connected participants and the status are read again. @default 5 s */
  readonly pollMs?: number;
  /** Delay before the first retry after a failure, doubled up to maxMs. @default 1 s, 15 s */
  readonly retry?: { readonly initialMs: number; readonly maxMs: number };
  /** Ledger rounds loaded at start (the newest). @default 500 */
  readonly historyRounds?: number;
}

/** Rounds read again after each commit: enough to cover the commits of one poll interval. */
const RECENT_ROUNDS = 20;

export class DashboardFeed extends EventEmitter<{ update: [DashboardUpdate] }> {
  readonly state: DashboardState;
  private readonly stopping = new AbortController();
  private running: Promise<void> | undefined;
  private readonly pollMs: number;
  private readonly retry: { readonly initialMs: number; readonly maxMs: number };

  constructor(
    private readonly client: DashboardClient,
    private readonly options: DashboardFeedOptions,
  ) {
    super();
    this.state = new DashboardState(options.coordinator);
    this.pollMs = options.pollMs ?? 5000;
    this.retry = options.retry ?? { initialMs: 1000, maxMs: 15_000 };
  }

  start(): void {
    this.running ??= this.run();
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    await this.running;
  }

  /** A committed round's ONNX model (round 0 = the initial model), its SHA-256 checked against ListRounds when known. */
  async exportModel(round: number): Promise<ReceivedModel> {
    const selector: ModelSelector = { round };
    const model = await this.client.model(selector);
    const expected = this.state.committedRound(round)?.onnxSha256;
    if (expected !== undefined && model.sha256.toString('hex') !== expected) {
      throw new FedgateError('DATA_LOSS', `GetModel(round ${round}) streamed a model with SHA-256 ${model.sha256.toString('hex')}, but ListRounds reports ${expected} for that round`, { reason: 'MODEL_HASH_MISMATCH' });
    }
    return model;
  }

  private publish(update: DashboardUpdate | undefined): void {
    if (update !== undefined) this.emit('update', update);
  }

  private connection(state: ConnectionState, message: string): void {
    this.publish(this.state.applyConnection(state, message));
  }

  private async run(): Promise<void> {
    const signal = this.stopping.signal;
    let failures = 0;
    while (!signal.aborted) {
      const poll = setInterval(() => void this.poll(), this.pollMs);
      try {
        await this.load();
        failures = 0;
        this.connection('live', `live: watching rounds on ${this.options.coordinator}`);
        await this.client.watch((event) => this.onEvent(event), { includeOpenRound: true, signal });
        if (signal.aborted) break;
        failures += 1;
        this.connection('unreachable', `the coordinator at ${this.options.coordinator} ended the round stream (it is stopping or restarting); reconnecting in ${this.delay(failures) / 1000} s`);
      } catch (error) {
        if (signal.aborted) break;
        failures += 1;
        if (this.failed(error, failures) === 'final') break;
      } finally {
        clearInterval(poll);
      }
      await sleep(this.delay(failures), signal);
    }
  }

  /** Shows what went wrong; 'final' when retrying cannot help. */
  private failed(error: unknown, failures: number): 'retry' | 'final' {
    const failure = error instanceof FedgateError ? error : undefined;
    const text = error instanceof Error ? error.message : String(error);
    const retry = `retrying in ${this.delay(failures) / 1000} s`;
    if (failure?.reason === 'CERTIFICATE_REVOKED') {
      this.connection(
        'revoked',
        `the coordinator refused the dashboard's operator certificate: it has been revoked (${text}). ` +
          'Ask the CA operator for a new one (fedgate certs issue operator NAME) and restart fedgate dashboard with it.',
      );
      return 'final';
    }
    if (failure?.code === 'UNAVAILABLE' || failure?.code === 'DEADLINE_EXCEEDED') {
      this.connection('unreachable', `cannot reach the coordinator at ${this.options.coordinator}: ${text}; ${retry}`);
      return 'retry';
    }
    if (failure?.code === 'UNAUTHENTICATED' || failure?.code === 'PERMISSION_DENIED') {
      this.connection('refused', `the coordinator refused the dashboard's certificate: ${text}. fedgate dashboard needs an operator certificate of this federation (--cert, --key); ${retry}`);
      return 'retry';
    }
    this.connection('refused', `the Admin API failed: ${text}; ${retry}`);
    return 'retry';
  }

  private delay(failures: number): number {
    return Math.min(this.retry.maxMs, this.retry.initialMs * 2 ** Math.max(0, Math.min(failures - 1, 10)));
  }

  private async load(): Promise<void> {
    const history = this.options.historyRounds ?? 500;
    const [status, participants, rounds] = await Promise.all([this.client.status(), this.client.participants(), this.client.rounds({ newestFirst: true, limit: history })]);
    this.publish(this.state.applyLedgerRounds(rounds.reverse()));
    this.publish(this.state.applyParticipants(participants));
    this.publish(this.state.applyStatus(status));
  }

  /** Who is connected now; a failure here shows when the round stream fails too, so it is ignored. */
  private async poll(): Promise<void> {
    try {
      const [status, participants] = await Promise.all([this.client.status(), this.client.participants()]);
      this.publish(this.state.applyParticipants(participants));
      this.publish(this.state.applyStatus(status));
    } catch {
      // The watch loop reports the failure and reconnects.
    }
  }

  private onEvent(event: Parameters<Parameters<DashboardClient['watch']>[0]>[0]): void {
    this.publish(this.state.applyEvent(event));
    if (event.type !== 'ROUND_EVENT_COMMITTED' && event.type !== 'ROUND_EVENT_ABORTED') return;
    void this.afterRound(event.type === 'ROUND_EVENT_COMMITTED');
  }

  /** After a round ends: the ledger's record of it (hashes, figures), the status and the participants. */
  private async afterRound(committed: boolean): Promise<void> {
    try {
      const [status, participants, rounds] = await Promise.all([
        this.client.status(),
        this.client.participants(),
        committed ? this.client.rounds({ newestFirst: true, limit: RECENT_ROUNDS }) : Promise.resolve([]),
      ]);
      if (rounds.length > 0) this.publish(this.state.applyLedgerRounds(rounds.reverse()));
      this.publish(this.state.applyParticipants(participants));
      this.publish(this.state.applyStatus(status));
    } catch {
      // As in poll(): the watch loop reports it.
    }
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
}
