/**
 * Admin.WatchRounds: Federation 'round' events fanned out to every open WatchRounds stream, and the
 * round open right now (for GetStatus and for a watcher that asks for it).
 *
 * Every stream handles cancellation, errors and close (an unhandled stream 'error' is an uncaught
 * exception: grpc-node #531). A watcher that falls MAX_QUEUED_EVENTS behind - it stopped reading: a
 * round emits a few events - is cut off with RESOURCE_EXHAUSTED rather than having events buffered for
 * it without end.
 */
import type { ServerWritableStream } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { Federation, RoundEvent } from '../federation/federation.js';
import type { RoundEventMessage, WatchRoundsRequest } from '../../proto/admin-messages.js';
import { fedgateError } from '../../proto/errors.js';
import type { PeerIdentity } from '../../proto/identity.js';
import { failStream } from '../../proto/status.js';
import { roundEventMessage } from './admin-wire.js';

/** Events a watcher may have queued unread before it is cut off. */
export const MAX_QUEUED_EVENTS = 1000;

export interface OpenRoundState {
  readonly roundId: string;
  readonly participants: readonly string[];
  readonly startedAt: Date;
  /** The started event, replayed to watchers that ask for the open round. */
  readonly event: RoundEvent;
}

type WatchCall = ServerWritableStream<WatchRoundsRequest, RoundEventMessage>;

export class RoundWatch {
  private open: OpenRoundState | undefined;
  private readonly watchers = new Map<WatchCall, PeerIdentity>();
  private readonly onRound = (event: RoundEvent): void => this.publish(event);

  constructor(
    private readonly federation: Federation,
    private readonly logger: Logger,
  ) {
    federation.on('round', this.onRound);
  }

  get openRound(): OpenRoundState | undefined {
    return this.open;
  }

  get watcherCount(): number {
    return this.watchers.size;
  }

  /** Serves one WatchRounds call until the caller cancels or the coordinator stops. */
  watch(call: WatchCall, identity: PeerIdentity): void {
    const remove = (): void => {
      this.watchers.delete(call);
    };
    call.on('cancelled', remove);
    call.on('close', remove);
    call.on('error', remove);
    this.watchers.set(call, identity);
    if (call.request.includeOpenRound && this.open !== undefined) this.send(call, roundEventMessage(this.open.event));
  }

  /** Ends the streams of watchers whose certificate serial is in `serials` (live revocation). */
  closeRevoked(serials: ReadonlySet<string>): void {
    for (const [call, identity] of this.watchers) {
      if (!serials.has(identity.serial)) continue;
      this.watchers.delete(call);
      failStream(call, fedgateError('UNAUTHENTICATED', 'CERTIFICATE_REVOKED', `certificate serial ${identity.serial} of ${identity.role} ${identity.siteId} has been revoked by the federation CA: this WatchRounds stream is closed`));
    }
  }

  /** Ends every stream (coordinator shutdown) and stops listening to the federation. */
  close(): void {
    this.federation.off('round', this.onRound);
    for (const call of this.watchers.keys()) call.end();
    this.watchers.clear();
  }

  private publish(event: RoundEvent): void {
    if (event.type === 'round_started') {
      this.open = { roundId: event.roundId, participants: event.participants, startedAt: new Date(event.at), event };
    } else if (this.open?.roundId === event.roundId) {
      this.open = undefined;
    }
    if (this.watchers.size === 0) return;
    const message = roundEventMessage(event);
    for (const call of [...this.watchers.keys()]) this.send(call, message);
  }

  private send(call: WatchCall, message: RoundEventMessage): void {
    if (call.writableLength >= MAX_QUEUED_EVENTS) {
      const identity = this.watchers.get(call);
      this.watchers.delete(call);
      this.logger.warn({ operator: identity?.siteId, queued: call.writableLength }, 'WatchRounds caller fell too far behind; ending its stream');
      failStream(call, fedgateError('RESOURCE_EXHAUSTED', 'WATCHER_TOO_SLOW', `${call.writableLength} round events are waiting unread on this WatchRounds stream (limit ${MAX_QUEUED_EVENTS}): read the stream, then call WatchRounds again`));
      return;
    }
    call.write(message);
  }
}
