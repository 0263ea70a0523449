/**
 * Public API of the SecAgg+ round protocol (DESIGN.md "A round"): the RoundConfig and site policy,
 * the plain stage messages, the canonical signed transcripts, and the two pure state machines -
 * SecAggClient (one site) and SecAggServer (the coordinator). Transport lives elsewhere: proto/ maps
 * these messages onto federation.proto and round.proto.
 */
export { SecAggError, type SecAggErrorContext } from './errors.js';
export {
  DEFAULT_DEADLINES,
  MAX_PARTICIPANTS,
  ROUND_ID_LENGTH,
  createRoundConfig,
  defaultThreshold,
  makeRoundId,
  parameterCount,
  ROUND_PURPOSES,
  roundCounter,
  roundScale,
  roundSegments,
  updateWordCount,
  validateRoundConfig,
  vectorLength,
  type HyperParameterValue,
  type RoundConfig,
  type RoundConfigInput,
  type RoundPurpose,
  type StageDeadlines,
  type UpdateLayout,
} from './config.js';
export { DISTRIBUTED_DP_MECHANISMS, type DistributedDpMechanism, type DistributedDpRequirement, type RoundDistributedDp } from './dp-fields.js';
export {
  DP_WRAP_TARGET,
  checkRoundDistributedDp,
  compileRoundDp,
  distributedDpReport,
  dpRotationSeed,
  dpScale,
  participantLevelRoundCurve,
  roundDistributedDp,
  type DistributedDpReport,
  type DistributedDpRoundShape,
} from './distributed-dp-round.js';
export { ROUND_CONFIG_VERSION, decodeRoundConfig, encodeRoundConfig, roundConfigHash } from './config-codec.js';
export { checkRoundConfigAgainstPolicy, collusionMarginShortfall, type MarginPolicy, type MarginShortfall, type SitePolicy } from './policy.js';
export {
  DEFAULT_COMPLETE_GRAPH_UP_TO,
  DEFAULT_MIN_NEIGHBOUR_DEGREE,
  DEFAULT_MIN_TOLERATED_COLLUDERS,
  collusionBound,
  marginThreshold,
  toleratedColluders,
  twoThirdsThreshold,
} from './margin.js';
export type {
  AdvertiseKeysMessage,
  ClientMessage,
  ClientStage,
  CommitHashes,
  CommitRequestMessage,
  CommitSignatureMessage,
  ConsistencyRequestMessage,
  ConsistencySignature,
  ConsistencySignatureMessage,
  GraphMessage,
  KeyListEntry,
  KeyListMessage,
  MaskedInputClosing,
  MaskedInputMessage,
  NeighbourRecord,
  NonceRevealMessage,
  OutgoingShare,
  RevealedSecret,
  RevealedShare,
  RoutedShare,
  ServerMessage,
  ServerStage,
  ShareDeliveryMessage,
  ShareKeysMessage,
  SiteNonce,
  UnmaskRequestMessage,
  UnmaskResponseMessage,
} from './messages.js';
export { CLIENT_STAGES, SERVER_STAGES, SIGNED_STAGE, STAGE } from './stages.js';
export { vectorFromLittleEndianBytes, vectorToLittleEndianBytes } from './vector-bytes.js';
export {
  advertDigest,
  advertiseTranscript,
  commitTranscript,
  commitmentOf,
  consistencyTranscript,
  encodeKeyList,
  keyListHash,
  keyListTranscript,
  maskedInputTranscript,
  revealDigest,
  roundContext,
  shareKeysTranscript,
  sharesDigest,
  survivorDigest,
  unmaskTranscript,
  uploadBytes,
  uploadHash,
  type RoundContext,
} from './transcript.js';
export { encodeSiteIdSet } from './fields.js';
export { quantizeUpdate, updateWeight, type LocalUpdate } from './update-vector.js';
export { SecAggClient, type ClientPhase, type SecAggClientOptions } from './client.js';
export { decideReveals, type PlannedReveal, type RevealDecision, type RevealRefusalReason, type RevealView } from './client-reveal.js';
export { SecAggServer, type SecAggServerOptions, type ServerPhase, type ServerSummary } from './server.js';
export {
  commitQuorum,
  type CommitRecord,
  type CommitSignatureRecord,
  type CommitStatus,
  type RejectedCommitSignature,
} from './server-commit.js';
export type { AggregateResult, InconsistentShare } from './server-unmask.js';
export { decodeAggregate, dequantizeAggregate, encodeAggregate, type AggregateValues } from './aggregate-codec.js';
export { SITE_DEFENCE_REASONS, refusalText, type SiteDefenceReason } from './site-refusals.js';
