/**
 * coordinator/: the service. What other folders may use (cli/ imports nothing else of coordinator/): the
 * app and its options pipeline, the offline ledger verifier and model export, the operator API's
 * revocation hooks, and the crash-injection hook recovery tests ask for.
 */
export { startCoordinator, FEDGATE_VERSION, type RunningCoordinator } from './service/coordinator-app.js';
export {
  compileCoordinatorOptions,
  DEFAULT_DEADLINES,
  DEFAULT_HEARTBEAT_INTERVAL_MS,
  DEFAULT_LISTEN,
  DEFAULT_PARTICIPANTS,
  DEFAULT_SECAGG,
  DEFAULT_SERVER_OPTIMIZER,
  type CompiledCoordinatorOptions,
  type CoordinatorAdminOptions,
  type CoordinatorOptions,
  type CoordinatorTls,
} from './service/coordinator-options.js';
export type { FederationSettings, ParticipantSettings, SecAggSettings } from './federation/federation-settings.js';
export type { RoundEvent } from './federation/federation.js';
export { exportCommittedModel, exportModelFromState, LedgerCheckError, type CommittedModelExport, type ExportOptions, type ExportedModel } from './federation/model-export.js';
export { verifyLedger, type Revocation, type VerifyLedgerOptions, type VerifyLedgerResult } from './audit/verify-ledger.js';
export type { CaRevocation, CaRevocationResult, IssuedCertificateInfo, RevocationAuthority } from './admin/revocation-authority.js';
export { crashAtFaultPoint, FAULT_POINTS, type FaultPoint, type FaultPointName } from './state/fault-injection.js';
export { CoordinatorMetrics, type CoordinatorMetricsOptions } from './metrics/coordinator-metrics.js';
