/**
 * The single translation between errors and gRPC statuses (connect-es `ConnectError`, flower's error
 * catalog): servers call `toGrpcStatus` at the service edge, clients call `fromGrpcError` on every
 * failed call. Nothing else in fedgate builds a status by hand.
 */
import { Metadata, status, type StatusObject } from '@grpc/grpc-js';
import { CryptoError, type CryptoErrorCode, type CryptoErrorReason } from '../crypto/errors.js';
import { ModelError, type ModelErrorCode, type ModelErrorReason } from '../model/errors.js';
import { diagnoseConnectionFailure } from './connection-diagnosis.js';
import { FedgateError, isFedgateCode, isFedgateReason, type FedgateCode, type FedgateReason } from './errors.js';

/** Trailer key carrying FedgateError.reason so the client recovers the specific reason. */
export const REASON_METADATA_KEY = 'fedgate-reason';
/** gRPC messages travel in an HTTP/2 trailer; keep them readable and bounded. */
const MAX_PUBLIC_MESSAGE_LENGTH = 1024;
const INTERNAL_MESSAGE = 'internal error in the fedgate service; the service log has the details';

export interface GrpcStatus extends Pick<StatusObject, 'code' | 'details' | 'metadata'> {
  /** The FedgateError reason carried in the trailers (also present there). */
  readonly reason: string;
  /**
   * True when the peer only gets the generic INTERNAL message (an error that is not one of ours, or an
   * INTERNAL/UNKNOWN one): the caller must log the original error, with its stack, locally.
   */
  readonly unexpected: boolean;
}

/**
 * Maps any thrown value to a status safe to send to a peer, by its class:
 * - a FedgateError (every error class of proto/, coordinator/, participant/, certs/, cli/), a
 *   CryptoError or a ModelError keeps its code, reason and message; an INTERNAL or UNKNOWN code still
 *   gets the generic message.
 * - Everything else becomes INTERNAL with a generic message, whatever fields it carries (a TypeError,
 *   an fs error with code 'ENOENT', even an Error whose `code` happens to read 'INVALID_ARGUMENT'): no
 *   stack, no paths, no secrets. `unexpected` tells the caller to log the original.
 * This is the only place that decides what a peer may read about a failure.
 */
export function toGrpcStatus(error: unknown): GrpcStatus {
  const known = describeKnownError(error);
  const metadata = new Metadata();
  if (known === null || known.code === 'INTERNAL' || known.code === 'UNKNOWN') {
    metadata.set(REASON_METADATA_KEY, 'INTERNAL');
    return { code: status.INTERNAL, details: INTERNAL_MESSAGE, metadata, reason: 'INTERNAL', unexpected: true };
  }
  metadata.set(REASON_METADATA_KEY, known.reason);
  return { code: status[known.code], details: publicMessage(known.message), metadata, reason: known.reason, unexpected: false };
}

/**
 * A ServiceError-shaped Error for grpc-js APIs that want an Error rather than a status object (a unary
 * or client-streaming callback). For server-streaming and bidirectional calls use `failStream`:
 * `call.destroy(toServiceError(error))` sends no status at all.
 */
export function toServiceError(error: unknown): Error & GrpcStatus {
  const grpcStatus = toGrpcStatus(error);
  return Object.assign(new Error(grpcStatus.details), grpcStatus);
}

/**
 * Ends a server-streaming or bidirectional call with the status for `error`. grpc-js sends a stream's
 * status from its 'error' event; `call.destroy(error)` would instead tear the stream down without
 * any status and leave the client waiting for its deadline.
 */
export function failStream(call: { emit(event: 'error', error: Error): boolean }, error: unknown): GrpcStatus {
  const serviceError = toServiceError(error);
  call.emit('error', serviceError);
  return serviceError;
}

/**
 * Client side: turns the error of a failed call into a FedgateError that says which call failed
 * (grpc-node #1810: "14 UNAVAILABLE" alone helps nobody). `call` names the RPC and, where useful, its
 * context ("DownloadModel(model 3fa2...)"). The gRPC status code becomes the FedgateError code and
 * the server's reason is kept.
 */
export function fromGrpcError(error: unknown, call: string): FedgateError {
  if (error instanceof FedgateError) return error;
  const statusCode = typeof (error as { code?: unknown } | null)?.code === 'number' ? (error as { code: number }).code : undefined;
  const code = statusCode === undefined ? undefined : codeName(statusCode);
  if (code === undefined) {
    const message = error instanceof Error ? error.message : String(error);
    return new FedgateError('UNKNOWN', `${call} failed: ${message}`, { reason: 'UNKNOWN', cause: error, details: { call } });
  }
  const serviceError = error as Partial<StatusObject> & { message?: string };
  const rawDetails = typeof serviceError.details === 'string' && serviceError.details !== '' ? serviceError.details : (serviceError.message ?? '');
  // grpc-js ends every transport failure with "Resolution note: " and, mostly, nothing after it.
  const detailsText = rawDetails.replace(/\.?\s*Resolution note: ?$/, '');
  const reasonValue = serviceError.metadata instanceof Metadata ? serviceError.metadata.get(REASON_METADATA_KEY)[0] : undefined;
  const reason = isFedgateReason(reasonValue) ? reasonValue : code;
  const hint = code === 'UNAVAILABLE' ? connectionHint(detailsText) : '';
  return new FedgateError(code, `${call} failed with ${code}: ${detailsText}${hint}`, {
    reason,
    cause: error,
    details: { call, grpcCode: statusCode ?? null },
  });
}

/** Name of a numeric grpc status, or undefined for OK / values outside the enum. */
export function codeName(statusCode: number): FedgateCode | undefined {
  const name = status[statusCode];
  return isFedgateCode(name) ? name : undefined;
}

/** The error classes whose code, reason and message a peer may read (see toGrpcStatus). */
export type KnownError = FedgateError | CryptoError | ModelError;

export function isKnownError(error: unknown): error is KnownError {
  return error instanceof FedgateError || error instanceof CryptoError || error instanceof ModelError;
}

/**
 * crypto/ and model/ may not import FedgateError, so they declare their own code and reason types. These
 * two aliases stop compiling when either stops being a subset of fedgate's (a misspelt code, a
 * lower-case reason).
 */
type Subset<Narrow extends Wide, Wide> = Narrow;
export type PureFolderErrorCode = Subset<CryptoErrorCode | ModelErrorCode, FedgateCode>;
export type PureFolderErrorReason = Subset<CryptoErrorReason | ModelErrorReason, FedgateReason>;

interface PublicError {
  readonly code: FedgateCode;
  readonly reason: FedgateReason;
  readonly message: string;
}

function describeKnownError(error: unknown): PublicError | null {
  if (!isKnownError(error)) return null;
  // The reason types enforce the casing at compile time; a reason built at run time is checked here.
  return { code: error.code, reason: isFedgateReason(error.reason) ? error.reason : error.code, message: error.message };
}

function publicMessage(message: string): string {
  // Single line: HTTP/2 trailers are percent-encoded by grpc-js, but multi-line text reads badly in logs.
  const oneLine = message.replace(/\s*\n\s*/g, ' ');
  return oneLine.length > MAX_PUBLIC_MESSAGE_LENGTH ? `${oneLine.slice(0, MAX_PUBLIC_MESSAGE_LENGTH - 3)}...` : oneLine;
}

/**
 * UNAVAILABLE covers every connection failure; the node error inside it says which, and
 * connection-diagnosis.ts turns it into what failed and what to do. Node's TLS server rejects an
 * untrusted client certificate by closing the connection (grpc-js then reports only "Failed to
 * connect"), so the fallback lists the likely causes as well.
 */
function connectionHint(details: string): string {
  return ` (${diagnoseConnectionFailure(details).advice})`;
}
