/**
 * Embedding ONNX external data: a model whose tensors live in side files becomes one self-contained
 * ModelProto, which fedgate can pin by its SHA-256 and hand to sites as one blob.
 *
 * The rewrite works on the protobuf wire format, not through fedgate's decoded ModelIR: every field is
 * copied byte for byte except, in each TensorProto that uses external data, `external_data` (13) and
 * `data_location` (14), which are dropped, and `raw_data` (9), which is appended with the side file's
 * bytes. So everything fedgate's schema subset does not declare (functions, training_info, sparse
 * initializers, quantization annotations, value_info of non-tensor types, fields of newer IR versions)
 * survives unchanged. Every message that can hold a TensorProto is walked: graphs, nodes, attributes
 * (t, tensors, sparse tensors, subgraphs), sparse initializers, training_info and functions, the places
 * onnx.save_model(..., save_as_external_data=True) and ONNX Runtime's external-data loader look.
 */
import protobuf from 'protobufjs';
import { ModelError } from '../errors.js';
import { declaresExternalData, externalDataReference, loadExternalData, type ExternalDataReference, type ExternalDataResolver } from './external-data.js';
import { onnxTypes } from './schema.js';

/** Protobuf's limit for one message, and so for one ONNX file (ONNX Runtime and onnx refuse more). */
export const MAX_ONNX_BYTES = 2 ** 31 - 1;

type MessageKind = 'ModelProto' | 'GraphProto' | 'NodeProto' | 'AttributeProto' | 'SparseTensorProto' | 'TrainingInfoProto' | 'FunctionProto' | 'TensorProto';

/** Field numbers (onnx.proto) of the sub-messages through which a TensorProto can be reached. */
const CHILDREN: Readonly<Record<Exclude<MessageKind, 'TensorProto'>, Readonly<Record<number, MessageKind>>>> = {
  ModelProto: { 7: 'GraphProto', 20: 'TrainingInfoProto', 25: 'FunctionProto' },
  GraphProto: { 1: 'NodeProto', 5: 'TensorProto', 15: 'SparseTensorProto' },
  NodeProto: { 5: 'AttributeProto' },
  AttributeProto: { 5: 'TensorProto', 6: 'GraphProto', 10: 'TensorProto', 11: 'GraphProto', 22: 'SparseTensorProto', 23: 'SparseTensorProto' },
  SparseTensorProto: { 1: 'TensorProto', 2: 'TensorProto' },
  TrainingInfoProto: { 1: 'GraphProto', 2: 'GraphProto' },
  FunctionProto: { 7: 'NodeProto', 11: 'AttributeProto' },
};

/** What the walk does with each TensorProto it reaches. */
interface Walk {
  /** Replacement bytes for a TensorProto, or undefined to keep it. */
  readonly tensor: (bytes: Uint8Array) => Uint8Array | undefined;
}

const LENGTH_DELIMITED = 2;
const EXTERNAL_DATA_FIELD = 13;
const DATA_LOCATION_FIELD = 14;
const RAW_DATA_FIELD = 9;

function malformed(message: string, cause: unknown): ModelError {
  return new ModelError('INVALID_ARGUMENT', 'MALFORMED_ONNX', message, { cause });
}

function concat(pieces: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(pieces.reduce((n, piece) => n + piece.byteLength, 0));
  let offset = 0;
  for (const piece of pieces) {
    out.set(piece, offset);
    offset += piece.byteLength;
  }
  return out;
}

function lengthDelimitedHeader(field: number, length: number): Uint8Array {
  return protobuf.Writer.create().uint32((field << 3) | LENGTH_DELIMITED).uint32(length).finish();
}

/**
 * Walks one message; returns its new bytes when a tensor below it changed, else undefined (the caller
 * keeps the original bytes, so an untouched model comes out identical).
 */
function walkMessage(bytes: Uint8Array, kind: MessageKind, walk: Walk): Uint8Array | undefined {
  if (kind === 'TensorProto') return walk.tensor(bytes);
  const children = CHILDREN[kind];
  const reader = protobuf.Reader.create(bytes);
  const pieces: Uint8Array[] = [];
  let changed = false;
  let copyFrom = 0;
  while (reader.pos < reader.len) {
    const fieldStart = reader.pos;
    const tag = reader.uint32();
    const field = tag >>> 3;
    const wireType = tag & 7;
    const child = children[field];
    if (child === undefined || wireType !== LENGTH_DELIMITED) {
      reader.skipType(wireType, 0, field);
      continue;
    }
    const sub = reader.bytes();
    const replaced = walkMessage(sub, child, walk);
    if (replaced === undefined) continue;
    // Copy everything before this field verbatim, then the field with its new bytes.
    pieces.push(bytes.subarray(copyFrom, fieldStart), lengthDelimitedHeader(field, replaced.byteLength), replaced);
    copyFrom = reader.pos;
    changed = true;
  }
  if (!changed) return undefined;
  pieces.push(bytes.subarray(copyFrom));
  return concat(pieces);
}

function tensorName(raw: Record<string, unknown>): string {
  return typeof raw['name'] === 'string' ? raw['name'] : '';
}

function decodeTensorFields(bytes: Uint8Array): Record<string, unknown> {
  const message = onnxTypes.TensorProto.decode(bytes);
  return onnxTypes.TensorProto.toObject(message, { longs: String, arrays: true }) as Record<string, unknown>;
}

function walkModel(bytes: Uint8Array, walk: Walk): Uint8Array | undefined {
  try {
    return walkMessage(bytes, 'ModelProto', walk);
  } catch (error) {
    if (error instanceof ModelError) throw error;
    const detail = error instanceof Error ? error.message : String(error);
    throw malformed(`ONNX model bytes (${bytes.byteLength} bytes) are not a valid ModelProto: ${detail}`, error);
  }
}

/**
 * Names of the tensors of `bytes` that declare external data, unchecked (for a hint before anything else
 * reads the model); [] for a self-contained model. Throws MALFORMED_ONNX for bytes that are not a model.
 */
export function externalDataTensorNames(bytes: Uint8Array): string[] {
  const names: string[] = [];
  walkModel(bytes, {
    tensor(tensorBytes) {
      const raw = decodeTensorFields(tensorBytes);
      if (declaresExternalData(raw)) names.push(tensorName(raw));
      return undefined;
    },
  });
  return names;
}

/** The tensors of `bytes` that use external data, checked, in file order. */
export function externalDataReferences(bytes: Uint8Array): ExternalDataReference[] {
  const references: ExternalDataReference[] = [];
  walkModel(bytes, {
    tensor(tensorBytes) {
      const raw = decodeTensorFields(tensorBytes);
      const reference = externalDataReference(raw, `tensor '${tensorName(raw)}'`);
      if (reference !== undefined) references.push(reference);
      return undefined;
    },
  });
  return references;
}

export interface EmbeddedModel {
  /** The self-contained ModelProto (the input bytes themselves when nothing was external). */
  readonly bytes: Uint8Array;
  /** The tensors whose data was embedded. */
  readonly embedded: readonly ExternalDataReference[];
}

/**
 * Rewrites `bytes` with the data of every external-data tensor embedded as raw_data, read through
 * `resolve` (checked by loadExternalData: length, checksum). Refuses (MODEL_TOO_LARGE) a result over
 * protobuf's 2 GiB limit (before reading anything when the tensors' data alone is over it).
 */
export function embedExternalData(bytes: Uint8Array, resolve: ExternalDataResolver): EmbeddedModel {
  const references = externalDataReferences(bytes);
  if (references.length === 0) return { bytes, embedded: [] };
  // The data alone over the limit: refuse before reading any of it. Otherwise the exact size decides below.
  const needed = references.reduce((n, reference) => n + reference.byteLength, 0);
  if (needed > MAX_ONNX_BYTES) throw tooLarge(needed, references.length);
  const rewritten = walkModel(bytes, {
    tensor(tensorBytes) {
      const raw = decodeTensorFields(tensorBytes);
      const reference = externalDataReference(raw, `tensor '${tensorName(raw)}'`);
      if (reference === undefined) return undefined;
      const data = loadExternalData(reference, resolve);
      return concat([withoutFields(tensorBytes, [EXTERNAL_DATA_FIELD, DATA_LOCATION_FIELD, RAW_DATA_FIELD]), lengthDelimitedHeader(RAW_DATA_FIELD, data.byteLength), data]);
    },
  });
  const out = rewritten ?? bytes;
  if (out.byteLength > MAX_ONNX_BYTES) throw tooLarge(out.byteLength, references.length);
  return { bytes: out, embedded: references };
}

/** `bytes` (one message) without the fields numbered `drop`; the other fields keep their bytes and order. */
function withoutFields(bytes: Uint8Array, drop: readonly number[]): Uint8Array {
  const reader = protobuf.Reader.create(bytes);
  const pieces: Uint8Array[] = [];
  while (reader.pos < reader.len) {
    const start = reader.pos;
    const tag = reader.uint32();
    reader.skipType(tag & 7, 0, tag >>> 3);
    if (!drop.includes(tag >>> 3)) pieces.push(bytes.subarray(start, reader.pos));
  }
  return concat(pieces);
}

function tooLarge(size: number, tensors: number): ModelError {
  return new ModelError(
    'RESOURCE_EXHAUSTED',
    'MODEL_TOO_LARGE',
    `with its ${tensors} external tensor(s) embedded the model would be at least ${size} bytes, over protobuf's limit of ${MAX_ONNX_BYTES} bytes (2 GiB) for one ONNX file; fedgate distributes a forward model as one file, so a model this large cannot be a fedgate task (train a smaller model)`,
  );
}
