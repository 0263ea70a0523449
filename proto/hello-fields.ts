/**
 * The free-text fields of a site's Hello (Capabilities.device, Hello.fedgate_version) end up in the
 * coordinator's log, the Admin API and `fedgate participants` on an operator's terminal. The coordinator
 * refuses a Hello whose fields break these rules, naming the field and the rule (INVALID_ARGUMENT,
 * INVALID_HELLO), so nothing a participant types can carry terminal escapes or megabytes of text.
 */
import type { SiteHello } from './session-codec.js';
import { quoteUntrusted } from '../crypto/entity-name.js';
import { fedgateError } from './errors.js';

interface FieldRule {
  readonly pattern: RegExp;
  readonly description: string;
}

/** A semantic version with its pre-release and build parts (semver.org), or any such tag of a build. */
const FEDGATE_VERSION: FieldRule = { pattern: /^[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}$/, description: "1-64 letters, digits, '.', '+', '_' or '-' (a version such as 0.1.0 or 1.2.0-rc.1+build.5)" };
/** An execution provider as site.yaml names it: auto, cpu, cuda, cuda:N, or a later kind in the same shape. */
const DEVICE: FieldRule = { pattern: /^[a-z][a-z0-9:_-]{0,31}$/, description: "1-32 lower-case letters, digits, ':', '_' or '-' (such as cpu or cuda:0)" };

/** Throws INVALID_ARGUMENT (reason INVALID_HELLO) for the first field of `hello` that breaks its rule. */
export function checkHelloFields(hello: SiteHello): void {
  check('Hello.fedgate_version', hello.fedgateVersion, FEDGATE_VERSION);
  if (hello.capabilities !== null) check('Hello.capabilities.device', hello.capabilities.device, DEVICE);
}

function check(field: string, value: string, rule: FieldRule): void {
  if (rule.pattern.test(value)) return;
  throw fedgateError('INVALID_ARGUMENT', 'INVALID_HELLO', `${field} must be ${rule.description}; got ${quoteUntrusted(value, 40)}: fix the participant's configuration or upgrade it`);
}
