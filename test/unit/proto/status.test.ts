import { Metadata, status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { CertificateRoleError } from '../../../crypto/certificate-role.js';
import { CryptoError } from '../../../crypto/errors.js';
import { SecAggError } from '../../../crypto/secagg/errors.js';
import { ModelError, type ModelErrorReason } from '../../../model/errors.js';
import { ServerOptimizerError } from '../../../model/server-optimizer.js';
import { PkiError } from '../../../certs/errors.js';
import { StateError } from '../../../coordinator/state/state-error.js';
import { NoOpenRoundError } from '../../../coordinator/federation/federation.js';
import { TrainerError } from '../../../participant/trainer/errors.js';
import { DataError } from '../../../participant/data/errors.js';
import { CommitComputationError } from '../../../participant/daemon/site-training.js';
import { ConfigError } from '../../../cli/config/config-error.js';
import { UsageError } from '../../../cli/usage-error.js';
import { LedgerInvalidError } from '../../../cli/commands/verify.js';
import {
  FEDGATE_CODES,
  FedgateError,
  REASON_METADATA_KEY,
  failStream,
  fromGrpcError,
  isKnownError,
  toGrpcStatus,
  type FedgateCode,
} from '../../../proto/index.js';

/** Looks like one of ours (a gRPC code name and an upper-case reason) but is not one of fedgate's error classes. */
class LookalikeError extends Error {
  constructor(
    readonly code: string,
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

const GENERIC = 'internal error in the fedgate service; the service log has the details';

describe('toGrpcStatus', () => {
  it.each(FEDGATE_CODES.filter((code) => code !== 'INTERNAL' && code !== 'UNKNOWN'))('maps FedgateError %s to the same grpc status', (code) => {
    const mapped = toGrpcStatus(new FedgateError(code, `something about ${code}`, { reason: 'SPECIFIC_REASON' }));
    expect(mapped.code).toBe(status[code]);
    expect(mapped.details).toBe(`something about ${code}`);
    expect(mapped.reason).toBe('SPECIFIC_REASON');
    expect(mapped.metadata.get(REASON_METADATA_KEY)).toEqual(['SPECIFIC_REASON']);
    expect(mapped.unexpected).toBe(false);
  });

  it.each<[string, unknown, number, string, string, boolean]>([
    ['a crypto/ error with a gRPC code', new CryptoError('INVALID_ARGUMENT', 'BAD_SHARE', 'share 3 has 31 bytes, expected 32'), status.INVALID_ARGUMENT, 'share 3 has 31 bytes, expected 32', 'BAD_SHARE', false],
    ['a model/ error whose reason is not a tag', new ModelError('FAILED_PRECONDITION', 'not a tag!' as ModelErrorReason, 'opset 19 above 17'), status.FAILED_PRECONDITION, 'opset 19 above 17', 'FAILED_PRECONDITION', false],
    ['an Error that only looks like one of ours', new LookalikeError('INVALID_ARGUMENT', 'BAD_SHARE', 'share 3 has 31 bytes'), status.INTERNAL, GENERIC, 'INTERNAL', true],
    ['an Error with a misspelt code', new LookalikeError('INVALID_ARGUMENTS', 'BAD_SHARE', 'share 3 has 31 bytes'), status.INTERNAL, GENERIC, 'INTERNAL', true],
    ['a FedgateError INTERNAL (message may hold internals)', new FedgateError('INTERNAL', 'state file /var/lib/x corrupt'), status.INTERNAL, GENERIC, 'INTERNAL', true],
    ['a FedgateError UNKNOWN', new FedgateError('UNKNOWN', 'who knows'), status.INTERNAL, GENERIC, 'INTERNAL', true],
    ['a Node fs error (code ENOENT)', Object.assign(new Error("ENOENT: no such file '/etc/secret'"), { code: 'ENOENT' }), status.INTERNAL, GENERIC, 'INTERNAL', true],
    ['a TypeError', new TypeError("Cannot read properties of undefined (reading 'x')"), status.INTERNAL, GENERIC, 'INTERNAL', true],
    ['a thrown string', 'boom', status.INTERNAL, GENERIC, 'INTERNAL', true],
    ['null', null, status.INTERNAL, GENERIC, 'INTERNAL', true],
    ['an object with a numeric code', { code: 3, message: 'x' }, status.INTERNAL, GENERIC, 'INTERNAL', true],
  ])('maps %s', (_case, error, code, details, reason, unexpected) => {
    const mapped = toGrpcStatus(error);
    expect([mapped.code, mapped.details, mapped.reason, mapped.unexpected]).toEqual([code, details, reason, unexpected]);
    expect(mapped.details).not.toMatch(/\n\s+at /);
  });

  it('sends one line of bounded length, never a stack', () => {
    const mapped = toGrpcStatus(new FedgateError('INVALID_ARGUMENT', `first line\n  second line ${'x'.repeat(5000)}`));
    expect(mapped.details.startsWith('first line second line')).toBe(true);
    expect(mapped.details.length).toBe(1024);
    expect(mapped.details.endsWith('...')).toBe(true);
  });

  it('ends a server stream through its error event, which grpc-js turns into the status', () => {
    const emitted: Error[] = [];
    const mapped = failStream({ emit: (_event: 'error', error: Error) => emitted.push(error) > 0 }, new FedgateError('NOT_FOUND', 'no model'));
    expect(emitted).toHaveLength(1);
    expect(emitted[0]).toMatchObject({ code: status.NOT_FOUND, details: 'no model' });
    expect(mapped.code).toBe(status.NOT_FOUND);
  });
});

describe('toGrpcStatus by error class', () => {
  // Every error class of fedgate, each mapped to its own code and reason; nothing is mapped by the shape of its fields.
  it.each<[string, Error, FedgateCode, string]>([
    ['CryptoError', new CryptoError('DATA_LOSS', 'SHAMIR_UNRECOVERABLE', 'x'), 'DATA_LOSS', 'SHAMIR_UNRECOVERABLE'],
    ['SecAggError', new SecAggError('ABORTED', 'NONCE_WITHHELD', 'x'), 'ABORTED', 'NONCE_WITHHELD'],
    ['CertificateRoleError', new CertificateRoleError('UNKNOWN', ['admin'], 'x'), 'PERMISSION_DENIED', 'CERTIFICATE_ROLE'],
    ['ModelError', new ModelError('UNIMPLEMENTED', 'UNSUPPORTED_OPS', 'x'), 'UNIMPLEMENTED', 'UNSUPPORTED_OPS'],
    ['ServerOptimizerError', new ServerOptimizerError('NO_WEIGHT', 'x'), 'INVALID_ARGUMENT', 'NO_WEIGHT'],
    ['PkiError', new PkiError('ALREADY_EXISTS', 'BUNDLE_EXISTS', 'x'), 'ALREADY_EXISTS', 'BUNDLE_EXISTS'],
    ['StateError', new StateError('NOT_FOUND', 'x'), 'NOT_FOUND', 'NOT_FOUND'],
    ['NoOpenRoundError', new NoOpenRoundError(), 'FAILED_PRECONDITION', 'NO_OPEN_ROUND'],
    ['TrainerError', new TrainerError('RESOURCE_EXHAUSTED', 'OUT_OF_MEMORY', 'x'), 'RESOURCE_EXHAUSTED', 'OUT_OF_MEMORY'],
    ['DataError', new DataError('NOT_FOUND', 'FILE_NOT_FOUND', 'x'), 'NOT_FOUND', 'FILE_NOT_FOUND'],
    ['CommitComputationError', new CommitComputationError('x'), 'FAILED_PRECONDITION', 'COMMIT_RECOMPUTE_FAILED'],
    ['ConfigError', new ConfigError('x'), 'INVALID_ARGUMENT', 'INVALID_CONFIG'],
    ['UsageError', new UsageError('x'), 'INVALID_ARGUMENT', 'INVALID_USAGE'],
    ['LedgerInvalidError', new LedgerInvalidError('x'), 'DATA_LOSS', 'LEDGER_INVALID'],
  ])('maps a %s to its code and reason', (_class, error, code, reason) => {
    expect(isKnownError(error)).toBe(true);
    const mapped = toGrpcStatus(error);
    expect([mapped.code, mapped.reason, mapped.details, mapped.unexpected]).toEqual([status[code], reason, error.message, false]);
  });

  it('knows only its own classes', () => {
    expect(isKnownError(new LookalikeError('NOT_FOUND', 'GONE', 'x'))).toBe(false);
    expect(isKnownError(Object.assign(new Error('x'), { code: 'NOT_FOUND', reason: 'GONE' }))).toBe(false);
  });
});

describe('fromGrpcError', () => {
  function serviceError(code: number, details: string, reason?: string): Error {
    const metadata = new Metadata();
    if (reason !== undefined) metadata.set(REASON_METADATA_KEY, reason);
    return Object.assign(new Error(`${code} ${status[code]}: ${details}`), { code, details, metadata });
  }

  it('keeps the call, the code, the server message and the reason', () => {
    const error = fromGrpcError(serviceError(status.FAILED_PRECONDITION, 'opset 19 above 17', 'OPSET_MISMATCH'), 'Session(hello)');
    expect(error).toBeInstanceOf(FedgateError);
    expect(error.code).toBe<FedgateCode>('FAILED_PRECONDITION');
    expect(error.reason).toBe('OPSET_MISMATCH');
    expect(error.message).toBe('Session(hello) failed with FAILED_PRECONDITION: opset 19 above 17');
    expect(error.details).toEqual({ call: 'Session(hello)', grpcCode: status.FAILED_PRECONDITION });
    expect(error.cause).toBeInstanceOf(Error);
  });

  it('falls back to the code when the reason is absent or malformed', () => {
    expect(fromGrpcError(serviceError(status.NOT_FOUND, 'gone'), 'DownloadModel').reason).toBe('NOT_FOUND');
    expect(fromGrpcError(serviceError(status.NOT_FOUND, 'gone', 'not a tag; drop table'), 'DownloadModel').reason).toBe('NOT_FOUND');
  });

  it.each([
    ['No connection established. Last error: ...:tlsv13 alert certificate required', /requires a client certificate/],
    ['No connection established. Last error: Failed to connect', /server unreachable, TLS handshake refused/],
    ['No connection established. Last error: self-signed certificate in certificate chain', /could not verify the server certificate/],
  ])('explains UNAVAILABLE: %s', (details, hint) => {
    const error = fromGrpcError(serviceError(status.UNAVAILABLE, details), 'UploadMaskedInput');
    expect(error.code).toBe('UNAVAILABLE');
    expect(error.message).toMatch(/^UploadMaskedInput failed with UNAVAILABLE: No connection established/);
    expect(error.message).toMatch(hint);
  });

  it('wraps non-gRPC errors as UNKNOWN and passes FedgateErrors through', () => {
    const wrapped = fromGrpcError(new TypeError('bad'), 'Session');
    expect([wrapped.code, wrapped.message]).toEqual(['UNKNOWN', 'Session failed: bad']);
    const ours = new FedgateError('DATA_LOSS', 'hash mismatch');
    expect(fromGrpcError(ours, 'DownloadModel')).toBe(ours);
  });
});
