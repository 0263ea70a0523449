/**
 * The one rule for the names that identify a member of a federation - the subject CN of its
 * certificate: a site id (which every round signature, the ledger and revocation by name refer to), an
 * operator or a coordinator name. The CA tooling issues only such names (certs/validation.ts), and both
 * ends of every mutual-TLS connection refuse a peer certificate whose CN breaks it (proto/identity.ts,
 * proto/credentials.ts), as does the certificate verifier (certificate.ts): a name with control
 * characters would reach logs and terminals, and would be read differently by two parsers (Node escapes
 * it RFC 2253-style, OpenSSL's legacy object does not), so a site and its coordinator would disagree
 * about the site id; a 2 KB name could not be revoked by name.
 *
 * Letters, digits, '.', '_' and '-', starting with a letter or digit (so never '.' or '..', and usable as
 * a file name in bundles), at most 64 characters (X.520 ub-common-name).
 */

export const ENTITY_NAME_MAX_LENGTH = 64;
const ENTITY_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** What the rule asks for, for error messages. */
export const ENTITY_NAME_RULE = `1-${ENTITY_NAME_MAX_LENGTH} characters of letters, digits, '.', '_' or '-' starting with a letter or digit`;

export function isEntityName(name: unknown): name is string {
  return typeof name === 'string' && ENTITY_NAME.test(name);
}

/**
 * A peer-supplied string made safe to quote in an error message or a log line: at most `limit`
 * characters, every character outside printable ASCII written as \u{...}, and the length said when it
 * was cut. Never echoes a control character (terminal escapes) back to whoever reads the message.
 */
export function quoteUntrusted(text: string, limit = 80): string {
  const characters = Array.from(text);
  const shown = characters
    .slice(0, limit)
    .map((character) => (/^[\x20-\x7e]$/.test(character) ? character : `\\u{${(character.codePointAt(0) ?? 0).toString(16)}}`))
    .join('');
  const quoted = `"${shown.replaceAll('"', '\\"')}"`;
  return characters.length > limit ? `${quoted}... (${characters.length} characters)` : quoted;
}
