import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { StateError, type StateErrorReason } from '../../../../coordinator/state/index.js';
import { FedgateError, toGrpcStatus, type FedgateCode } from '../../../../proto/index.js';

describe('StateError', () => {
  // Each reason maps to what it means, not DATA_LOSS for everything.
  it.each<[StateErrorReason, FedgateCode]>([
    ['NOT_FOUND', 'NOT_FOUND'],
    ['LOCKED', 'FAILED_PRECONDITION'],
    ['IO_FAILED', 'INTERNAL'],
    ['CORRUPT', 'DATA_LOSS'],
    ['CHAIN_BROKEN', 'DATA_LOSS'],
    ['UNSUPPORTED_VERSION', 'FAILED_PRECONDITION'],
  ])('%s is %s', (reason, code) => {
    const error = new StateError(reason, `state/ledger/00000001.json: ${reason}`);
    expect(error).toBeInstanceOf(FedgateError);
    expect([error.name, error.code, error.reason]).toEqual(['StateError', code, reason]);
  });

  it('reaches a peer with its code and message, except an I/O failure, whose paths stay in the local log', () => {
    const locked = toGrpcStatus(new StateError('LOCKED', 'state directory /srv/state is held by another coordinator'));
    expect([locked.code, locked.reason, locked.unexpected]).toEqual([status.FAILED_PRECONDITION, 'LOCKED', false]);
    const missing = toGrpcStatus(new StateError('NOT_FOUND', 'no model 3fa2 in the store'));
    expect([missing.code, missing.reason, missing.details]).toEqual([status.NOT_FOUND, 'NOT_FOUND', 'no model 3fa2 in the store']);
    const io = toGrpcStatus(new StateError('IO_FAILED', 'could not write /srv/state/round-counter.json: ENOSPC'));
    expect([io.code, io.unexpected]).toEqual([status.INTERNAL, true]);
    expect(io.details).not.toContain('/srv/state');
  });
});
