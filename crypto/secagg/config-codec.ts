/**
 * Canonical byte encoding of RoundConfig and H(RoundConfig) (DESIGN.md step 1). Length-prefixed fields
 * in a fixed order, numbers in fixed-width big-endian, maps sorted by key: one RoundConfig has exactly
 * one encoding, so every site and the ledger derive the same hash. Never JSON.
 */
import { compareBytes, encodeFields, u32be, u64be, utf8 } from '../bytes.js';
import { SHA256_LENGTH, sha256 } from '../hash.js';
import {
  DEFAULT_DEADLINES,
  ROUND_ID_LENGTH,
  validateRoundConfig,
  type HyperParameterValue,
  type RoundConfig,
  type RoundPurpose,
  type StageDeadlines,
  type UpdateLayout,
} from './config.js';
import { decodeDistributedDpField, encodeDistributedDpField } from './dp-fields.js';
import { secaggInvalid } from './errors.js';
import { decodeMetricSlotsField, encodeMetricSlotsField, isMetricSlotsField } from './metric-slots.js';
import { FieldReader, booleanByte, f64be } from './fields.js';

const ROUND_CONFIG_LABEL = 'fedgate/v1/round-config';
/** Version of the encoding; stored in the ledger with the config, so it is part of the hash. */
export const ROUND_CONFIG_VERSION = 1;

const DEADLINE_ORDER: readonly (keyof StageDeadlines)[] = Object.keys(DEFAULT_DEADLINES) as (keyof StageDeadlines)[];
const TAG_STRING = 0x73; // 's'
const TAG_NUMBER = 0x6e; // 'n'
const TAG_BOOLEAN = 0x62; // 'b'
/**
 * RoundConfig.purpose on the wire: absent for the default 'train_and_evaluate' (so every RoundConfig
 * written before purposes existed keeps its bytes and its hash), else one trailing byte. The default is
 * never written out, so each config still has exactly one encoding.
 */
const PURPOSE_CODES: Readonly<Record<Exclude<RoundPurpose, 'train_and_evaluate'>, number>> = { train: 1, evaluate: 2 };

/** The canonical bytes of `config` (validated first, so a malformed config has no encoding). */
export function encodeRoundConfig(config: RoundConfig): Uint8Array {
  validateRoundConfig(config);
  refuseLeadingByteOrderMarks(config);
  return encodeFields([
    utf8(ROUND_CONFIG_LABEL),
    u32be(ROUND_CONFIG_VERSION),
    utf8(config.federationId),
    config.roundId,
    encodeFields(config.participants.map((siteId) => utf8(siteId))),
    config.taskHash,
    config.modelHash,
    config.optimizerStateHash,
    encodeHyperParameters(config.hyperParameters),
    u32be(config.reconstructionThreshold),
    u32be(config.neighbourDegree),
    encodeLayout(config.layout),
    u64be(config.maxWeight),
    encodeFields(DEADLINE_ORDER.map((key) => u32be(config.deadlines[key]))),
    booleanByte(config.plaintext),
    ...(config.purpose === 'train_and_evaluate' ? [] : [Uint8Array.of(PURPOSE_CODES[config.purpose])]),
    // Only when present (a config without it keeps its bytes); never 1 byte long, so a reader
    // tells it from the purpose byte.
    ...(config.distributedDp === undefined ? [] : [encodeDistributedDpField(config.distributedDp)]),
    // Last and only when present (class-index tasks never write it, so their configs keep their bytes);
    // told from distributedDp by its label.
    ...(config.metricSlots === undefined ? [] : [encodeMetricSlotsField(config.metricSlots)]),
  ]);
}

/** H(RoundConfig) = SHA-256 of the canonical encoding. */
export function roundConfigHash(config: RoundConfig): Uint8Array {
  return sha256(encodeRoundConfig(config));
}

/**
 * The round id of a RoundConfig encoding that may not decode as a whole (a threshold without majority, a
 * bad layout), so a site can refuse that round by id; undefined when not even the id can be read.
 */
export function peekRoundId(bytes: Uint8Array): Uint8Array | undefined {
  try {
    const reader = new FieldReader(bytes, 'RoundConfig');
    if (decodeText(reader.field('label'), 'label') !== ROUND_CONFIG_LABEL || reader.u32('version') !== ROUND_CONFIG_VERSION) return undefined;
    reader.field('federationId');
    return copy(reader.fixed('roundId', ROUND_ID_LENGTH));
  } catch {
    return undefined;
  }
}

/** Inverse of encodeRoundConfig (for the ledger and offline verification); validates the result. */
export function decodeRoundConfig(bytes: Uint8Array): RoundConfig {
  const reader = new FieldReader(bytes, 'RoundConfig');
  if (decodeText(reader.field('label'), 'label') !== ROUND_CONFIG_LABEL) throw secaggInvalid('INVALID_ENCODING', `RoundConfig: label must be ${ROUND_CONFIG_LABEL}`);
  const version = reader.u32('version');
  if (version !== ROUND_CONFIG_VERSION) {
    throw secaggInvalid('UNSUPPORTED_VERSION', `RoundConfig: encoding version ${version} is not supported (expected ${ROUND_CONFIG_VERSION})`);
  }
  const federationId = decodeText(reader.field('federationId'), 'federationId');
  const roundId = copy(reader.fixed('roundId', ROUND_ID_LENGTH));
  const participants = reader.list('participants').map((item, index) => decodeText(item, `participants[${index}]`));
  const taskHash = copy(reader.fixed('taskHash', SHA256_LENGTH));
  const modelHash = copy(reader.fixed('modelHash', SHA256_LENGTH));
  const optimizerStateHash = copy(reader.fixed('optimizerStateHash', SHA256_LENGTH));
  const hyperParameters = decodeHyperParameters(reader.field('hyperParameters'));
  const reconstructionThreshold = reader.u32('reconstructionThreshold');
  const neighbourDegree = reader.u32('neighbourDegree');
  const layout = decodeLayout(reader.field('layout'));
  const maxWeight = Number(reader.u64('maxWeight'));
  const deadlineReader = new FieldReader(reader.field('deadlines'), 'RoundConfig.deadlines');
  const deadlines = Object.fromEntries(DEADLINE_ORDER.map((key) => [key, deadlineReader.u32(key)])) as unknown as StageDeadlines;
  deadlineReader.end();
  const plaintext = reader.boolean('plaintext');
  // Optional trailing fields, in this order: the purpose byte (absent for the default), distributedDp,
  // metricSlots (both longer than one byte; metricSlots is told apart by its label).
  let purpose: RoundPurpose = 'train_and_evaluate';
  let trailing = reader.done() ? undefined : reader.field('purpose, distributedDp or metricSlots');
  if (trailing?.length === 1) {
    purpose = decodePurpose(trailing[0] as number);
    trailing = reader.done() ? undefined : reader.field('distributedDp or metricSlots');
  }
  let distributedDp: ReturnType<typeof decodeDistributedDpField> | undefined;
  if (trailing !== undefined && !isMetricSlotsField(trailing)) {
    distributedDp = decodeDistributedDpField(trailing);
    trailing = reader.done() ? undefined : reader.field('metricSlots');
  }
  const metricSlots = trailing === undefined ? undefined : decodeMetricSlotsField(trailing);
  reader.end();
  const config: RoundConfig = {
    federationId,
    roundId,
    participants,
    taskHash,
    modelHash,
    optimizerStateHash,
    hyperParameters,
    reconstructionThreshold,
    neighbourDegree,
    layout,
    maxWeight,
    deadlines,
    plaintext,
    purpose,
    ...(distributedDp === undefined ? {} : { distributedDp }),
    ...(metricSlots === undefined ? {} : { metricSlots }),
  };
  validateRoundConfig(config);
  return config;
}

function decodePurpose(code: number): RoundPurpose {
  for (const [purpose, value] of Object.entries(PURPOSE_CODES)) if (value === code) return purpose as RoundPurpose;
  throw secaggInvalid('INVALID_ENCODING', `RoundConfig.purpose: code ${code} is unknown (1 = train, 2 = evaluate; the default train_and_evaluate is never written)`);
}

function encodeHyperParameters(parameters: Readonly<Record<string, HyperParameterValue>>): Uint8Array {
  const entries = Object.entries(parameters).map(([key, value]) => ({ key: utf8(key), value }));
  entries.sort((a, b) => compareBytes(a.key, b.key));
  return encodeFields(entries.map(({ key, value }) => encodeFields([key, encodeValue(value)])));
}

function encodeValue(value: HyperParameterValue): Uint8Array {
  if (typeof value === 'string') return Uint8Array.of(TAG_STRING, ...utf8(value));
  if (typeof value === 'boolean') return Uint8Array.of(TAG_BOOLEAN, value ? 1 : 0);
  return Uint8Array.of(TAG_NUMBER, ...f64be(value));
}

/**
 * Every key becomes an own, enumerable data property, "__proto__" included: plain assignment would
 * set the prototype instead (silently dropping a primitive value), so the decoded config would re-encode
 * to other bytes and another H(RoundConfig). Keys such as "constructor" and "toString" are own
 * properties that shadow Object.prototype's, and are kept the same way.
 */
function decodeHyperParameters(bytes: Uint8Array): Record<string, HyperParameterValue> {
  const out: Record<string, HyperParameterValue> = {};
  const entries = new FieldReader(bytes, 'RoundConfig.hyperParameters');
  let previous: Uint8Array | undefined;
  while (!entries.done()) {
    const entry = new FieldReader(entries.field('entry'), 'RoundConfig.hyperParameters entry');
    const keyBytes = entry.field('key');
    if (previous !== undefined && compareBytes(previous, keyBytes) >= 0) {
      throw secaggInvalid('INVALID_ENCODING', 'RoundConfig.hyperParameters: keys must be distinct and sorted');
    }
    previous = keyBytes;
    const key = decodeText(keyBytes, 'hyperParameters key');
    const value = entry.field(`hyperParameters[${key}]`);
    entry.end();
    Object.defineProperty(out, key, { value: decodeValue(value, key), enumerable: true, writable: true, configurable: true });
  }
  return out;
}

function decodeValue(bytes: Uint8Array, key: string): HyperParameterValue {
  const payload = bytes.subarray(1);
  switch (bytes[0]) {
    case TAG_STRING:
      return decodeText(payload, `hyperParameters[${key}]`);
    case TAG_BOOLEAN:
      if (payload.length === 1 && (payload[0] === 0 || payload[0] === 1)) return payload[0] === 1;
      break;
    case TAG_NUMBER:
      if (payload.length === 8) return new DataView(new Uint8Array(payload).buffer).getFloat64(0, false);
      break;
    default:
      break;
  }
  throw secaggInvalid('INVALID_ENCODING', `RoundConfig.hyperParameters[${JSON.stringify(key)}]: malformed value`);
}

function encodeLayout(layout: UpdateLayout): Uint8Array {
  return encodeFields([
    encodeFields(layout.parameterSegments.map((segment) => encodeFields([u32be(segment.length), f64be(segment.bound)]))),
    f64be(layout.maxLossPerExample),
    u32be(layout.maxEvalExamples),
  ]);
}

function decodeLayout(bytes: Uint8Array): UpdateLayout {
  const reader = new FieldReader(bytes, 'RoundConfig.layout');
  const parameterSegments = reader.list('parameterSegments').map((item, index) => {
    const segment = new FieldReader(item, `RoundConfig.layout.parameterSegments[${index}]`);
    const decoded = { length: segment.u32('length'), bound: segment.f64('bound') };
    segment.end();
    return decoded;
  });
  const maxLossPerExample = reader.f64('maxLossPerExample');
  const maxEvalExamples = reader.u32('maxEvalExamples');
  reader.end();
  return { parameterSegments, maxLossPerExample, maxEvalExamples };
}

// ignoreBOM: true keeps a U+FEFF the decoder would otherwise strip in silence (decodeText refuses a
// leading one first; this is the second line of defence).
const textDecoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const UTF8_BOM = Uint8Array.of(0xef, 0xbb, 0xbf);
const BOM = '\uFEFF';

/**
 * Strict UTF-8, and no leading byte-order mark: TextDecoder strips one by default, so "\uFEFFsite-a"
 * and "site-a" would decode alike and a config would not re-encode to the bytes whose hash was signed.
 */
function decodeText(bytes: Uint8Array, name: string): string {
  if (bytes.length >= 3 && bytes[0] === UTF8_BOM[0] && bytes[1] === UTF8_BOM[1] && bytes[2] === UTF8_BOM[2]) {
    throw secaggInvalid('INVALID_ENCODING', `RoundConfig.${name} starts with a UTF-8 byte-order mark (EF BB BF), which a canonical encoding never holds`);
  }
  try {
    return textDecoder.decode(bytes);
  } catch (cause) {
    throw secaggInvalid('INVALID_ENCODING', `RoundConfig.${name} is not valid UTF-8`, { cause });
  }
}

/** The encoding side of decodeText's rule: a text field that starts with U+FEFF has no canonical encoding. */
function refuseLeadingByteOrderMarks(config: RoundConfig): void {
  const texts: [string, string][] = [
    ['federationId', config.federationId],
    ...config.participants.map((siteId, index): [string, string] => [`participants[${index}]`, siteId]),
    ...Object.entries(config.hyperParameters).flatMap(([key, value]): [string, string][] => [
      [`hyperParameters key ${JSON.stringify(key)}`, key],
      ...(typeof value === 'string' ? [[`hyperParameters[${JSON.stringify(key)}]`, value] as [string, string]] : []),
    ]),
  ];
  for (const [name, text] of texts) {
    if (text.startsWith(BOM)) {
      throw secaggInvalid('INVALID_ROUND_CONFIG', `RoundConfig.${name} starts with U+FEFF (a byte-order mark); remove it`, { stage: 'round_config' });
    }
  }
}

function copy(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(bytes);
}
