export { StateError, type StateErrorReason } from './state-error.js';
export { RoundCounter, type RoundId, ROUND_COUNTER_FORMAT_VERSION } from './round-counter.js';
export { ModelStore } from './model-store.js';
export { canonicalJson, type JsonValue } from './canonical-json.js';
export { Ledger, type LedgerRecord, LEDGER_FORMAT_VERSION, GENESIS_HASH, recordHash, findChainProblem, readLedgerDirectory, parseRecord } from './ledger.js';
export { acquireStateLock, LOCK_FILE_NAME, type StateLock } from './state-lock.js';
export { PendingCommitStore, PENDING_COMMIT_FILE, PENDING_COMMIT_FORMAT_VERSION, type PendingCommit } from './pending-commit.js';
