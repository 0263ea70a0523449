/**
 * ONNX external data (onnx/onnx docs/ExternalData.md): a TensorProto with data_location = EXTERNAL keeps
 * its bytes in a side file, described by external_data key/value entries:
 * - `location` (required): a POSIX path relative to the directory of the model file;
 * - `offset`: byte position where the data begins (decimal integer as a string), default 0;
 * - `length`: number of bytes, default: up to the end of the file;
 * - `checksum`: SHA-1 digest (hex) of the data; other keys are ignored, as the spec says.
 *
 * This module is pure: it checks the entries and the bytes a caller-supplied resolver returns, and never
 * touches a file. Because the entries come from a file someone else wrote, a location that could leave
 * the model's directory (absolute, drive letter, backslash, `..` segment, NUL) is refused before the
 * resolver is ever asked for it (the spec says `..` "is disallowed"; onnx's own loader strips it).
 */
import { createHash } from 'node:crypto';
import { ModelError, describeValue } from '../errors.js';
import { dataTypeName, elementCount, elementSize } from './ir.js';

/** TensorProto.DataLocation. */
export const DataLocation = { DEFAULT: 0, EXTERNAL: 1 } as const;

/** One tensor's external data, checked: where its bytes are and how many it needs. */
export interface ExternalDataReference {
  /** The tensor as error messages name it, e.g. `initializer tensor 'fc.weight'`. */
  readonly tensor: string;
  /** Relative POSIX path, checked to stay inside the model's directory. */
  readonly location: string;
  readonly offset: number;
  /** Byte count the entries give; undefined = to the end of the file. */
  readonly length: number | undefined;
  /** Lower-case hex SHA-1 the data must have, when the entries give one. */
  readonly checksum: string | undefined;
  /** Bytes the tensor's dims and data type need (elements x element size). */
  readonly byteLength: number;
}

/**
 * Returns the bytes of `reference`: `length` bytes from `offset` of the file at `location` (relative to
 * the model's directory), or everything from `offset` to the end of the file when `length` is undefined.
 * It may throw its own error (naming the file) when the file is missing or too short.
 */
export type ExternalDataResolver = (reference: ExternalDataReference) => Uint8Array;

/** The command that turns a model with side files into one file (cli/commands/embed-weights.ts). */
export const EMBED_COMMAND = 'fedgate task embed-weights --model MODEL.onnx --out model.onnx';

type Plain = Record<string, unknown>;

function invalid(where: string, message: string): ModelError {
  return new ModelError('INVALID_ARGUMENT', 'EXTERNAL_DATA_INVALID', `${where}: ${message}`);
}

const asArray = (value: unknown): unknown[] => (Array.isArray(value) ? value : []);

/** True when a decoded TensorProto (protobufjs plain object) declares external data in any way. */
export function declaresExternalData(raw: Plain): boolean {
  return (typeof raw['dataLocation'] === 'number' && raw['dataLocation'] !== DataLocation.DEFAULT) || asArray(raw['externalData']).length > 0;
}

/**
 * Why `location` may not be handed to a resolver, or undefined when it is a plain relative path.
 * Checked on the string as written: a resolver joins it to the model's directory.
 */
export function unsafeLocation(location: string): string | undefined {
  if (location === '') return 'is empty';
  if (location.includes('\0')) return 'contains a NUL character';
  if (location.includes('\\')) return 'contains a backslash (the spec\'s locations are POSIX paths with /)';
  if (/^[A-Za-z]:/.test(location)) return 'starts with a drive letter';
  if (location.startsWith('/')) return 'is an absolute path';
  if (location.split('/').includes('..')) return "has a '..' segment";
  return undefined;
}

function byteCount(where: string, key: string, value: string): number {
  // Decimal digits only: no sign, no exponent, no hex, no surrounding space (Number('') would be 0).
  if (!/^[0-9]+$/.test(value) || !Number.isSafeInteger(Number(value))) {
    throw invalid(where, `external_data '${key}' is ${describeValue(value)}; expected a non-negative integer number of bytes`);
  }
  return Number(value);
}

/**
 * The checked external-data reference of a decoded TensorProto, or undefined for a tensor whose data is
 * embedded. `where` names the tensor in errors.
 */
export function externalDataReference(raw: Plain, where: string): ExternalDataReference | undefined {
  if (!declaresExternalData(raw)) return undefined;
  const dataLocation = raw['dataLocation'] ?? DataLocation.DEFAULT;
  if (dataLocation !== DataLocation.EXTERNAL) {
    throw invalid(where, `has ${dataLocation === DataLocation.DEFAULT ? 'external_data entries but data_location DEFAULT (0)' : `data_location ${describeValue(dataLocation)}`}; expected data_location EXTERNAL (1) with external_data entries, or neither`);
  }
  const entries = new Map<string, string>();
  for (const entry of asArray(raw['externalData'])) {
    const plain = (typeof entry === 'object' && entry !== null ? entry : {}) as Plain;
    const key = typeof plain['key'] === 'string' ? plain['key'] : '';
    const value = typeof plain['value'] === 'string' ? plain['value'] : '';
    // A repeated key would let two readers disagree on where the data is.
    if (entries.has(key)) throw invalid(where, `external_data key ${describeValue(key)} appears twice; expected each key once`);
    entries.set(key, value);
  }
  const location = entries.get('location');
  if (location === undefined) throw invalid(where, "has data_location EXTERNAL but no external_data 'location'; expected the side file's path relative to the model's directory");
  const unsafe = unsafeLocation(location);
  if (unsafe !== undefined) {
    throw invalid(where, `external_data location ${describeValue(location)} ${unsafe}; expected a path relative to the model's directory that stays inside it`);
  }
  const offsetText = entries.get('offset');
  const lengthText = entries.get('length');
  const offset = offsetText === undefined ? 0 : byteCount(where, 'offset', offsetText);
  const length = lengthText === undefined ? undefined : byteCount(where, 'length', lengthText);
  const checksumText = entries.get('checksum');
  if (checksumText !== undefined && !/^[0-9a-fA-F]{40}$/.test(checksumText)) {
    throw invalid(where, `external_data checksum ${describeValue(checksumText)}; expected the data's SHA-1 digest as 40 hex digits`);
  }
  const dataType = typeof raw['dataType'] === 'number' ? raw['dataType'] : 0;
  const size = elementSize(dataType);
  if (size === undefined) {
    throw invalid(where, `is ${dataTypeName(dataType)} stored as external data; expected a numeric tensor (the spec allows external data only for raw_data types)`);
  }
  const rawData = raw['rawData'];
  const embedded = (rawData instanceof Uint8Array && rawData.byteLength > 0) || ['floatData', 'int32Data', 'stringData', 'int64Data', 'doubleData', 'uint64Data'].some((field) => asArray(raw[field]).length > 0);
  if (embedded) throw invalid(where, 'carries embedded data as well as external data; expected one or the other');
  const dims = asArray(raw['dims']).map((dim) => (typeof dim === 'number' ? dim : Number(dim)));
  if (dims.some((dim) => !Number.isSafeInteger(dim) || dim < 0)) throw invalid(where, `dims ${describeValue(dims)} are not non-negative integers`);
  const byteLength = elementCount(dims) * size;
  if (!Number.isSafeInteger(byteLength)) throw invalid(where, `dims [${dims.join(', ')}] of ${dataTypeName(dataType)} need more bytes than a file can hold`);
  if (length !== undefined && length !== byteLength) {
    throw invalid(where, `external_data length ${length} disagrees with dims [${dims.join(', ')}] of ${dataTypeName(dataType)}, which need ${byteLength} bytes`);
  }
  return { tensor: where, location, offset, length, checksum: checksumText?.toLowerCase(), byteLength };
}

/** Asks `resolve` for the bytes of `reference` and checks their length and checksum. */
export function loadExternalData(reference: ExternalDataReference, resolve: ExternalDataResolver): Uint8Array {
  const data = resolve(reference);
  const source = `'${reference.location}' at offset ${reference.offset}`;
  if (!(data instanceof Uint8Array) || data.byteLength !== reference.byteLength) {
    const got = data instanceof Uint8Array ? `${data.byteLength} bytes` : describeValue(data);
    const shortOrLong = data instanceof Uint8Array && data.byteLength < reference.byteLength ? 'too short' : 'the wrong size';
    throw invalid(reference.tensor, `external data ${source} is ${shortOrLong}: ${got}${reference.length === undefined ? ' (no length given: to the end of the file)' : ''}, the tensor needs ${reference.byteLength}`);
  }
  if (reference.checksum !== undefined) {
    const actual = createHash('sha1').update(data).digest('hex');
    if (actual !== reference.checksum) {
      throw invalid(reference.tensor, `external data ${source} has SHA-1 ${actual}; its external_data checksum says ${reference.checksum} (the side file changed or is not this model's)`);
    }
  }
  return data;
}

/** The refusal of a tensor with external data when the caller gave no resolver: says what to run. */
export function externalDataNotEmbedded(raw: Plain, where: string): ModelError {
  const location = asArray(raw['externalData'])
    .map((entry) => (typeof entry === 'object' && entry !== null ? (entry as Plain) : {}))
    .find((entry) => entry['key'] === 'location')?.['value'];
  const file = typeof location === 'string' ? ` file ${describeValue(location)}` : ' file';
  return new ModelError(
    'INVALID_ARGUMENT',
    'EXTERNAL_DATA',
    `${where} stores its data in the external${file} (ONNX external data, as onnx.save_model(..., save_as_external_data=True) writes); fedgate distributes a forward model as one file pinned by its SHA-256: run \`${EMBED_COMMAND}\` to embed the weights, then put the SHA-256 it prints in the task's model.modelSha256 and use the new file`,
  );
}
