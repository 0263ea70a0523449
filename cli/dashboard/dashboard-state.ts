/**
 * What `fedgate dashboard` shows, built from Admin API answers (proto/admin-messages.ts): the round
 * timeline (ledger rounds from ListRounds, live rounds from WatchRounds with their outcome and stage
 * durations), the participants, the ledger's status and the connection to the coordinator. Pure: the
 * feed (dashboard-feed.ts) calls the apply* methods and forwards the update each returns to the page as
 * JSON, so the browser only ever sees plain values (hashes as hex, times as Unix ms).
 */
import type { CommittedRound, GetStatusResponse, Participant, RoundEventMessage, RoundMetricsMessage } from '../../proto/admin-messages.js';
import type { RoundId__Output } from '../../proto/messages.js';

/** Rounds kept for the page (the newest); older ones are on the ledger and `fedgate rounds`. */
export const MAX_DASHBOARD_ROUNDS = 1000;

export type RoundOutcome = 'open' | 'committed' | 'aborted';

export interface RoundView {
  /** Hex of the 24-byte round id: one row per round, whichever source told of it first. */
  readonly key: string;
  readonly counter: number;
  /** Ledger sequence (= round number GetModel takes) of a committed round. */
  readonly sequence?: number;
  readonly outcome: RoundOutcome;
  readonly participants: readonly string[];
  readonly survivors: readonly string[];
  readonly abortReason?: string;
  /** Seconds per stage; only rounds seen live (WatchRounds) have them, the ledger does not keep them. */
  readonly stageSeconds: Readonly<Record<string, number>>;
  readonly seconds?: number;
  /** When the round started (live rounds) or committed (ledger rounds), Unix ms. */
  readonly startedAtUnixMs?: number;
  readonly endedAtUnixMs?: number;
  readonly evalLoss?: number;
  readonly evalAccuracy?: number;
  /**
   * The evaluation figure that fits the task's loss, as the secure sum reports it: accuracy (class
   * labels), micro-F1 (multi-label), R^2 (regression). What the dashboard charts and lists.
   */
  readonly evalFigure?: EvaluationFigureView;
  readonly evalExamples?: number;
  readonly modelHash?: string;
  readonly previousModelHash?: string;
  readonly onnxSha256?: string;
  readonly recordHash?: string;
}

export interface ParticipantView {
  readonly siteId: string;
  readonly serial: string;
  readonly connected: boolean;
  readonly connectedAtUnixMs?: number;
  /** Last time the coordinator listed it as connected, or it took part in a round. */
  readonly lastSeenUnixMs: number;
  /** Rounds of the timeline it was selected for (U) and whose aggregate it went into (U3). */
  readonly roundsJoined: number;
  readonly roundsContributed: number;
  readonly revoked: boolean;
  readonly device: string;
  readonly certificateNotAfterUnixMs: number;
}

export interface LedgerView {
  readonly height: number;
  /** record_hash of the newest ledger record, hex; undefined before the first commit. */
  readonly headHash?: string;
  readonly verification?: LinkCheck;
}

/** The dashboard's own check of the rounds it holds (DashboardState.verifyLinks). */
export interface LinkCheck {
  readonly checkedAtUnixMs: number;
  readonly ok: boolean;
  /** e.g. "rounds 1..12: contiguous, each starts from the model of the round before". */
  readonly detail: string;
}

export interface StatusView {
  readonly federationId: string;
  readonly taskHash: string;
  readonly committedRounds: number;
  readonly roundsConfigured: number;
  readonly connectedParticipants: number;
  readonly minParticipants: number;
  readonly secureAggregation: boolean;
  readonly currentModelHash: string;
  readonly currentModelOnnxSha256: string;
  readonly openRoundCounter?: number;
  readonly fedgateVersion: string;
  readonly revokedCertificates: number;
}

export type ConnectionState = 'connecting' | 'live' | 'unreachable' | 'revoked' | 'refused';

export interface ConnectionView {
  readonly state: ConnectionState;
  /** What the operator reads in the page's banner: what is wrong and what to do. */
  readonly message: string;
  readonly coordinator: string;
  readonly sinceUnixMs: number;
}

export interface DashboardSnapshot {
  readonly rounds: readonly RoundView[];
  readonly participants: readonly ParticipantView[];
  readonly ledger: LedgerView;
  readonly status?: StatusView;
  readonly connection: ConnectionView;
}

/** A change to push to the page: rounds are upserted by key, the other parts replaced whole. */
export interface DashboardUpdate {
  readonly rounds?: readonly RoundView[];
  readonly participants?: readonly ParticipantView[];
  readonly ledger?: LedgerView;
  readonly status?: StatusView;
  readonly connection?: ConnectionView;
}

export function roundKey(roundId: RoundId__Output | null): string {
  if (roundId === null) return 'unknown';
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.max(0, Math.trunc(roundId.counter))));
  return counter.toString('hex') + Buffer.from(roundId.nonce).toString('hex');
}

const hex = (bytes: Buffer): string | undefined => (bytes.length === 0 ? undefined : bytes.toString('hex'));

export interface EvaluationFigureView {
  readonly name: 'accuracy' | 'micro-F1' | 'R^2';
  readonly value: number;
}

/** The figure of an evaluation that fits its kind (RoundMetrics.evalKind; absent = class labels). */
export function evaluationFigure(metrics: RoundMetricsMessage): EvaluationFigureView | undefined {
  const figure = (name: EvaluationFigureView['name'], value: number | null | undefined): EvaluationFigureView | undefined =>
    typeof value === 'number' && Number.isFinite(value) ? { name, value } : undefined;
  switch (metrics.evalKind) {
    case 'regression':
      return figure('R^2', metrics.evalR2);
    case 'multi_label':
      return figure('micro-F1', metrics.evalF1);
    default:
      return figure('accuracy', metrics.evalAccuracy);
  }
}

function evaluation(metrics: RoundMetricsMessage | null): Pick<RoundView, 'evalLoss' | 'evalAccuracy' | 'evalFigure' | 'evalExamples'> {
  if (metrics === null) return {};
  const figure = evaluationFigure(metrics);
  return { evalLoss: metrics.evalLoss, evalAccuracy: metrics.evalAccuracy, ...(figure === undefined ? {} : { evalFigure: figure }), evalExamples: metrics.evalExamples };
}

interface KnownParticipant {
  serial: string;
  connected: boolean;
  connectedAtUnixMs?: number;
  lastSeenUnixMs: number;
  device: string;
  certificateNotAfterUnixMs: number;
}

export class DashboardState {
  private readonly rounds = new Map<string, RoundView>();
  private readonly known = new Map<string, KnownParticipant>();
  private revokedSerials: ReadonlySet<string> = new Set();
  private status: StatusView | undefined;
  private ledger: LedgerView = { height: 0 };
  private connection: ConnectionView;

  constructor(
    coordinator: string,
    private readonly now: () => number = Date.now,
  ) {
    this.connection = { state: 'connecting', message: `connecting to the coordinator at ${coordinator}`, coordinator, sinceUnixMs: now() };
  }

  snapshot(): DashboardSnapshot {
    return {
      rounds: this.sortedRounds(),
      participants: this.participantViews(),
      ledger: this.ledger,
      ...(this.status === undefined ? {} : { status: this.status }),
      connection: this.connection,
    };
  }

  /** The committed round `sequence`, if the timeline holds it. */
  committedRound(sequence: number): RoundView | undefined {
    for (const round of this.rounds.values()) if (round.sequence === sequence && round.outcome === 'committed') return round;
    return undefined;
  }

  applyConnection(state: ConnectionState, message: string): DashboardUpdate | undefined {
    if (this.connection.state === state && this.connection.message === message) return undefined;
    this.connection = { state, message, coordinator: this.connection.coordinator, sinceUnixMs: this.now() };
    return { connection: this.connection };
  }

  applyStatus(status: GetStatusResponse): DashboardUpdate {
    const openRoundId = status.openRound?.roundId ?? null;
    this.status = {
      federationId: status.federationId,
      taskHash: status.taskHash.toString('hex'),
      committedRounds: status.committedRounds,
      roundsConfigured: status.roundsConfigured,
      connectedParticipants: status.connectedParticipants,
      minParticipants: status.minParticipants,
      secureAggregation: status.secureAggregation,
      currentModelHash: status.currentModelHash.toString('hex'),
      currentModelOnnxSha256: status.currentModelOnnxSha256.toString('hex'),
      ...(openRoundId === null ? {} : { openRoundCounter: openRoundId.counter }),
      fedgateVersion: status.fedgateVersion,
      revokedCertificates: status.revokedCertificates,
    };
    this.revokedSerials = new Set(status.revokedCertificateSerials);
    this.ledger = { ...this.ledger, height: status.committedRounds };
    return { status: this.status, ledger: this.ledger, participants: this.participantViews() };
  }

  applyParticipants(participants: readonly Participant[]): DashboardUpdate {
    const now = this.now();
    const connected = new Set(participants.map((site) => site.siteId));
    for (const [siteId, site] of this.known) if (!connected.has(siteId)) site.connected = false;
    for (const site of participants) {
      this.known.set(site.siteId, {
        serial: site.certificateSerial,
        connected: true,
        connectedAtUnixMs: site.connectedAtUnixMs,
        lastSeenUnixMs: now,
        device: site.device,
        certificateNotAfterUnixMs: site.certificateNotAfterUnixMs,
      });
    }
    return { participants: this.participantViews() };
  }

  /** Ledger rounds (ListRounds): authoritative figures; the live view of the same round keeps its stage times. */
  applyLedgerRounds(committed: readonly CommittedRound[]): DashboardUpdate {
    const changed: RoundView[] = [];
    for (const round of committed) {
      const key = roundKey(round.roundId);
      const live = this.rounds.get(key);
      const view: RoundView = {
        ...live,
        key,
        counter: round.roundId?.counter ?? 0,
        sequence: round.sequence,
        outcome: 'committed',
        participants: [...round.participants],
        survivors: [...round.survivors],
        stageSeconds: live?.stageSeconds ?? {},
        ...(live?.startedAtUnixMs === undefined ? { startedAtUnixMs: round.committedAtUnixMs } : {}),
        endedAtUnixMs: round.committedAtUnixMs,
        ...evaluation(round.metrics),
        ...optional('modelHash', hex(round.modelHash)),
        ...optional('previousModelHash', hex(round.previousModelHash)),
        ...optional('onnxSha256', hex(round.onnxSha256)),
        ...optional('recordHash', hex(round.recordHash)),
      };
      this.rounds.set(key, view);
      changed.push(view);
      this.sawParticipants(view);
    }
    this.trim();
    this.ledger = { ...this.ledger, ...this.ledgerHead(), verification: this.verifyLinks() };
    return { rounds: changed, ledger: this.ledger, participants: this.participantViews() };
  }

  applyEvent(event: RoundEventMessage): DashboardUpdate {
    const key = roundKey(event.roundId);
    const previous = this.rounds.get(key);
    const at = event.atUnixMs > 0 ? event.atUnixMs : this.now();
    const base = {
      key,
      counter: event.roundId?.counter ?? 0,
      participants: [...event.participants],
      survivors: previous?.survivors ?? [],
      stageSeconds: previous?.stageSeconds ?? {},
    };
    let view: RoundView;
    switch (event.type) {
      case 'ROUND_EVENT_STARTED':
        view = { ...previous, ...base, outcome: previous?.outcome ?? 'open', startedAtUnixMs: at };
        break;
      case 'ROUND_EVENT_COMMITTED':
        view = {
          ...previous,
          ...base,
          outcome: 'committed',
          sequence: event.sequence,
          survivors: [...event.survivors],
          stageSeconds: { ...event.stageSeconds },
          seconds: event.seconds,
          endedAtUnixMs: at,
          ...(previous?.startedAtUnixMs === undefined ? { startedAtUnixMs: at - event.seconds * 1000 } : {}),
          ...evaluation(event.metrics),
          ...optional('modelHash', hex(event.modelHash)),
        };
        break;
      case 'ROUND_EVENT_ABORTED':
        view = {
          ...previous,
          ...base,
          outcome: 'aborted',
          abortReason: event.abortReason,
          stageSeconds: { ...event.stageSeconds },
          seconds: event.seconds,
          endedAtUnixMs: at,
          ...(previous?.startedAtUnixMs === undefined ? { startedAtUnixMs: at - event.seconds * 1000 } : {}),
        };
        break;
      default:
        return {};
    }
    this.rounds.set(key, view);
    this.sawParticipants(view);
    this.trim();
    return { rounds: [view], participants: this.participantViews() };
  }

  private sawParticipants(round: RoundView): void {
    const at = round.endedAtUnixMs ?? round.startedAtUnixMs;
    if (at === undefined) return;
    for (const siteId of round.participants) {
      const site = this.known.get(siteId);
      if (site === undefined) this.known.set(siteId, { serial: '', connected: false, lastSeenUnixMs: at, device: '', certificateNotAfterUnixMs: 0 });
      else if (site.lastSeenUnixMs < at) site.lastSeenUnixMs = at;
    }
  }

  private participantViews(): ParticipantView[] {
    const joined = new Map<string, number>();
    const contributed = new Map<string, number>();
    for (const round of this.rounds.values()) {
      for (const siteId of round.participants) joined.set(siteId, (joined.get(siteId) ?? 0) + 1);
      if (round.outcome === 'committed') for (const siteId of round.survivors) contributed.set(siteId, (contributed.get(siteId) ?? 0) + 1);
    }
    return [...this.known.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([siteId, site]) => ({
        siteId,
        serial: site.serial,
        connected: site.connected,
        ...(site.connectedAtUnixMs === undefined || !site.connected ? {} : { connectedAtUnixMs: site.connectedAtUnixMs }),
        lastSeenUnixMs: site.lastSeenUnixMs,
        roundsJoined: joined.get(siteId) ?? 0,
        roundsContributed: contributed.get(siteId) ?? 0,
        revoked: site.serial !== '' && this.revokedSerials.has(site.serial),
        device: site.device,
        certificateNotAfterUnixMs: site.certificateNotAfterUnixMs,
      }));
  }

  private sortedRounds(): RoundView[] {
    return [...this.rounds.values()].sort((a, b) => a.counter - b.counter);
  }

  private committedRounds(): RoundView[] {
    return this.sortedRounds()
      .filter((round) => round.outcome === 'committed' && round.sequence !== undefined)
      .sort((a, b) => (a.sequence ?? 0) - (b.sequence ?? 0));
  }

  private ledgerHead(): Pick<LedgerView, 'headHash'> {
    const newest = this.committedRounds().at(-1);
    return newest?.recordHash === undefined ? {} : { headHash: newest.recordHash };
  }

  /**
   * What the dashboard can check with the Admin API alone: the committed rounds it holds are contiguous
   * and each one's previous model is the model of the round before. The signatures and record hashes are
   * checked offline by `fedgate verify` on the state directory.
   */
  private verifyLinks(): LinkCheck {
    const committed = this.committedRounds().filter((round) => round.recordHash !== undefined);
    const checkedAtUnixMs = this.now();
    const first = committed[0];
    const last = committed.at(-1);
    if (first === undefined || last === undefined) return { checkedAtUnixMs, ok: true, detail: 'no committed round yet' };
    for (let index = 1; index < committed.length; index++) {
      const before = committed[index - 1] as RoundView;
      const round = committed[index] as RoundView;
      if (round.sequence !== (before.sequence ?? 0) + 1) {
        return { checkedAtUnixMs, ok: false, detail: `round ${before.sequence ?? '?'} is followed by round ${round.sequence ?? '?'}: the ledger the coordinator serves has a gap; run fedgate verify on its state directory` };
      }
      if (round.previousModelHash !== before.modelHash) {
        return {
          checkedAtUnixMs,
          ok: false,
          detail: `round ${round.sequence ?? '?'} starts from model ${round.previousModelHash?.slice(0, 16) ?? '?'}..., but round ${before.sequence ?? '?'} produced ${before.modelHash?.slice(0, 16) ?? '?'}...: run fedgate verify on the state directory`,
        };
      }
    }
    return {
      checkedAtUnixMs,
      ok: true,
      detail: `rounds ${first.sequence ?? '?'}..${last.sequence ?? '?'}: contiguous, each starts from the model of the round before (signatures: fedgate verify)`,
    };
  }

  private trim(): void {
    if (this.rounds.size <= MAX_DASHBOARD_ROUNDS) return;
    for (const round of this.sortedRounds().slice(0, this.rounds.size - MAX_DASHBOARD_ROUNDS)) this.rounds.delete(round.key);
  }
}

function optional<Key extends string>(key: Key, value: string | undefined): { [K in Key]?: string } {
  return (value === undefined ? {} : { [key]: value }) as { [K in Key]?: string };
}
