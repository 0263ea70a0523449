/**
 * A promise-based client of the coordinator's Admin API for fedgate's own tools (the `fedgate status`,
 * `rounds`, `watch`, `export` and `certs revoke` commands). It dials with mutual TLS as an operator and
 * turns every failed call into a FedgateError that names the call (grpc-node #1810).
 */
import type { ClientUnaryCall, requestCallback } from '@grpc/grpc-js';
import { adminProtocol, type AdminClient } from './admin-loader.js';
import type {
  CommittedRound,
  GetStatusResponse,
  ListParticipantsResponse,
  ListRoundsResponse,
  Participant,
  RevokeParticipantRequest,
  RevokeParticipantResponse,
  RoundEventMessage,
} from './admin-messages.js';
import { receiveModelStream, type ReceivedModel } from './admin-transfer.js';
import { coordinatorChannel } from './coordinator-channel.js';
import { fedgateError } from './errors.js';
import { fromGrpcError } from './status.js';

export interface OperatorConnection {
  /** host:port of the coordinator. */
  readonly address: string;
  readonly caPem: string;
  readonly certPem: string;
  readonly keyPem: string;
  /** Host name to verify in the coordinator's certificate when it differs from the dialled host. */
  readonly serverName?: string;
  /** Deadline of each unary call. @default 30 s */
  readonly deadlineMs?: number;
}

export type ModelSelector = { readonly round: number } | { readonly modelHash: Buffer } | Record<string, never>;

/** @default 4 GiB: the largest ONNX model `fedgate export` accepts. */
export const DEFAULT_MAX_MODEL_BYTES = 4 * 1024 ** 3;

export class OperatorClient {
  private readonly client: AdminClient;
  private readonly deadlineMs: number;

  constructor(connection: OperatorConnection) {
    const channel = coordinatorChannel(connection.address, {
      caPem: connection.caPem,
      certPem: connection.certPem,
      keyPem: connection.keyPem,
      ...(connection.serverName === undefined ? {} : { serverName: connection.serverName }),
    });
    this.client = new (adminProtocol().AdminClient)(connection.address, channel.credentials, channel.options);
    this.deadlineMs = connection.deadlineMs ?? 30_000;
  }

  /** @param options.privacyDelta the delta of the task's reported epsilon (the coordinator's default 1e-5 when absent) */
  status(options: { readonly privacyDelta?: number } = {}): Promise<GetStatusResponse> {
    return this.unary('GetStatus', (callback, callOptions) => this.client.getStatus({ privacyDelta: options.privacyDelta ?? 0 }, callOptions, callback));
  }

  async participants(): Promise<readonly Participant[]> {
    return (await this.unary<ListParticipantsResponse>('ListParticipants', (callback, options) => this.client.listParticipants({}, options, callback))).participants;
  }

  roundsPage(pageSize: number, pageToken: string, newestFirst: boolean): Promise<ListRoundsResponse> {
    return this.unary(`ListRounds(page ${pageToken === '' ? 'first' : pageToken})`, (callback, options) =>
      this.client.listRounds({ pageSize, pageToken, newestFirst }, options, callback),
    );
  }

  /** Committed rounds, following next_page_token; at most `limit` of them (newest first when asked). */
  async rounds(options: { readonly newestFirst?: boolean; readonly limit?: number } = {}): Promise<CommittedRound[]> {
    const rounds: CommittedRound[] = [];
    const limit = options.limit ?? Number.POSITIVE_INFINITY;
    let token = '';
    do {
      const page = await this.roundsPage(Math.min(500, limit - rounds.length), token, options.newestFirst ?? false);
      rounds.push(...page.rounds.slice(0, limit - rounds.length));
      token = page.nextPageToken;
    } while (token !== '' && rounds.length < limit);
    return rounds;
  }

  /**
   * Calls `onEvent` for each round event until `signal` aborts (resolves) or the stream fails (rejects).
   * Resolves too when the coordinator ends the stream (it is shutting down).
   */
  watch(onEvent: (event: RoundEventMessage) => void, options: { readonly includeOpenRound?: boolean; readonly signal?: AbortSignal } = {}): Promise<void> {
    return new Promise((resolve, reject) => {
      const call = this.client.watchRounds({ includeOpenRound: options.includeOpenRound ?? false });
      let settled = false;
      const finish = (error?: unknown): void => {
        if (settled) return;
        settled = true;
        options.signal?.removeEventListener('abort', onAbort);
        if (error === undefined) resolve();
        else reject(fromGrpcError(error, 'WatchRounds'));
      };
      const onAbort = (): void => {
        call.cancel();
        finish();
      };
      if (options.signal?.aborted === true) {
        onAbort();
        return;
      }
      options.signal?.addEventListener('abort', onAbort, { once: true });
      call.on('data', (event: RoundEventMessage) => {
        try {
          onEvent(event);
        } catch (error) {
          call.cancel();
          finish(error);
        }
      });
      call.on('error', (error) => finish(error));
      call.on('end', () => finish());
    });
  }

  /** Downloads a committed round's ONNX model; length and SHA-256 are checked against the trailer. */
  model(selector: ModelSelector, maxBytes: number = DEFAULT_MAX_MODEL_BYTES): Promise<ReceivedModel> {
    const callName = 'round' in selector ? `GetModel(round ${selector.round})` : 'modelHash' in selector ? `GetModel(model ${selector.modelHash.toString('hex').slice(0, 16)}...)` : 'GetModel(latest)';
    if ('round' in selector && (!Number.isSafeInteger(selector.round) || selector.round < 0)) {
      return Promise.reject(fedgateError('INVALID_ARGUMENT', 'INVALID_ROUND', `round must be a non-negative integer; got ${String(selector.round)}`));
    }
    return receiveModelStream(this.client.getModel(selector), { maxBytes, callName });
  }

  revoke(target: { readonly serial: string } | { readonly siteId: string }): Promise<RevokeParticipantResponse> {
    const request: RevokeParticipantRequest = 'serial' in target ? { certificateSerial: target.serial } : { siteId: target.siteId };
    const name = 'serial' in target ? `RevokeParticipant(serial ${target.serial})` : `RevokeParticipant(site ${target.siteId})`;
    return this.unary(name, (callback, options) => this.client.revokeParticipant(request, options, callback));
  }

  close(): void {
    this.client.close();
  }

  private unary<Response>(name: string, start: (callback: requestCallback<Response>, options: { deadline: Date }) => ClientUnaryCall): Promise<Response> {
    return new Promise((resolve, reject) => {
      start(
        (error, response) => {
          if (error !== null || response === undefined) reject(fromGrpcError(error ?? new Error('no response'), name));
          else resolve(response);
        },
        { deadline: new Date(Date.now() + this.deadlineMs) },
      );
    });
  }
}
