/**
 * certs/: the federation's PKI on node-forge. A CA, leaf certificates whose subject OU carries the role,
 * X.509 v2 CRLs (built and verified here: node-forge has none), and the CA directory layout behind the
 * `fedgate certs` commands. Library functions only; cli/ wires them to commands.
 */
export { PkiError, type PkiErrorCode, type PkiErrorReason } from './errors.js';
export { CLOCK_SKEW_ALLOWANCE_MS, validateRole, type ValidityOptions } from './validation.js';
export { normalizeSerial, randomSerial, SERIAL_BYTES } from './serial.js';
export { RSA_MODULUS_BITS } from './keys.js';
export {
  certificateAuthorityFromPem,
  createCertificateAuthority,
  type CertificateAuthority,
  type CreateCertificateAuthorityOptions,
} from './authority.js';
export {
  DEFAULT_LEAF_VALID_DAYS,
  describeCertificate,
  issueCertificate,
  renewCertificate,
  type CertificateSummary,
  type IssueCertificateOptions,
  type IssuedCertificate,
} from './issue.js';
export {
  DEFAULT_CRL_VALID_DAYS,
  createCertificateRevocationList,
  type CreateCrlOptions,
  type RevokedCertificateEntry,
} from './crl.js';
export { verifyCertificateRevocationList, type VerifiedCrl, type VerifyCrlOptions } from './crl-verify.js';
export { readRevocationList, type RevocationList, type RevocationRecord } from './revocation-list.js';
export {
  DEFAULT_CA_VALID_DAYS,
  caDirectoryPaths,
  initCertificateAuthority,
  issueBundle,
  issueCoordinatorBundle,
  issueOperatorBundle,
  issueParticipantBundle,
  loadCertificateAuthority,
  revokeCertificate,
  writeCrl,
  type CaDirectoryPaths,
  type InitCertificateAuthorityOptions,
  type IssueBundleOptions,
  type IssuedBundle,
  type RevocationResult,
  type RevokeOptions,
  type RoleBundleOptions,
} from './ca-directory.js';
