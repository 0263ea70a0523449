/**
 * Public API of crypto/: pure, I/O-free primitives of secure aggregation and of the signed round
 * protocol. Nothing here opens files or sockets; keys and certificates come in as values.
 */
export { CryptoError, type CryptoErrorCode, type CryptoErrorReason } from './errors.js';
export {
  assertBytes,
  bytesEqual,
  compareBytes,
  concatBytes,
  encodeFields,
  fromHex,
  toHex,
  u32be,
  u64be,
  utf8,
  zeroize,
} from './bytes.js';
export { SHA256_LENGTH, Sha256Stream, hmacSha256, sha256, sha256Hex } from './hash.js';
export { hkdf, hkdfExpand, hkdfExtract } from './hkdf.js';
export { X25519_KEY_LENGTH, generateX25519KeyPair, x25519, x25519PublicKey, type X25519KeyPair } from './x25519.js';
export { AGREED_KEY_LENGTH, deriveMaskSeed, deriveShareKey, shareAssociatedData } from './agreement.js';
export { SEALED_SHARE_OVERHEAD, openShare, sealShare } from './aead.js';
export { PSS_SALT_LENGTH, canonicalMessage, signMessage, verifyMessage } from './signature.js';
export {
  MAX_SHARES,
  combineShares,
  decodeShare,
  encodeShare,
  recoverWithCheck,
  shareValueLength,
  splitSecret,
  type RecoveryOptions,
  type Share,
} from './shamir.js';
export {
  DEFAULT_CHUNK_BYTES,
  PRG_SEED_LENGTH,
  PrgScratch,
  addMasks,
  prgBlock,
  type MaskStream,
} from './prg.js';
export { canReleaseBuffers, installBufferTransfer, releaseBuffer, type BufferTransfer } from './buffer-release.js';
export {
  RandomSource,
  dequantizeSum,
  layoutLength,
  quantizationScale,
  quantize,
  type Segment,
} from './quantize.js';
export {
  CERTIFICATE_ROLES,
  CertificateRoleError,
  isCertificateRole,
  roleFromCertificate,
  roleFromOrganizationalUnits,
  roleFromSubject,
  type CertificateRole,
  type CertificateRoleProblem,
  type SubjectAttributes,
} from './certificate-role.js';
export { ENTITY_NAME_MAX_LENGTH, ENTITY_NAME_RULE, isEntityName, quoteUntrusted } from './entity-name.js';
export {
  normalizeSerial,
  verifyPeerCertificate,
  type TrustAnchor,
  type VerifiedPeer,
} from './certificate.js';
export {
  GRAPH_NONCE_LENGTH,
  buildNeighbourGraph,
  compareSiteIds,
  graphSeed,
  sortSiteIds,
  type NeighbourGraph,
} from './graph.js';
// The SecAgg+ round protocol: RoundConfig, messages, transcripts, client and server state machines.
export * from './secagg/index.js';
