/**
 * Models with ONNX external data made in TypeScript: the initializers' bytes moved to side files the way
 * onnx.save_model(m, path, save_as_external_data=True, all_tensors_to_one_file=True, location=...) writes
 * them (data_location EXTERNAL, external_data location/offset/length), and a resolver over those files.
 */
import { createHash } from 'node:crypto';
import { decodeModel } from '../../../model/onnx/codec.js';
import type { ExternalDataReference, ExternalDataResolver } from '../../../model/onnx/external-data.js';
import { onnxTypes } from '../../../model/onnx/schema.js';

export interface ExternalizedModel {
  readonly model: Uint8Array;
  /** Side files by location. */
  readonly files: Readonly<Record<string, Uint8Array>>;
}

/** `bytes` with every initializer of the main graph stored in the side file `location`, one after another. */
export function externalizeInitializers(bytes: Uint8Array, location = 'weights.bin', options: { checksums?: boolean } = {}): ExternalizedModel {
  const decoded = decodeModel(bytes);
  const message = onnxTypes.ModelProto.toObject(onnxTypes.ModelProto.decode(bytes), { longs: Number, arrays: true }) as { graph: { initializer: Record<string, unknown>[] } };
  const pieces: Uint8Array[] = [];
  let offset = 0;
  message.graph.initializer = message.graph.initializer.map((tensor, index) => {
    const data = decoded.graph.initializers[index]?.data ?? new Uint8Array(0);
    const entries = [
      { key: 'location', value: location },
      { key: 'offset', value: String(offset) },
      { key: 'length', value: String(data.byteLength) },
      ...(options.checksums === true ? [{ key: 'checksum', value: sha1(data) }] : []),
    ];
    pieces.push(data);
    offset += data.byteLength;
    const { rawData: _raw, floatData: _f, int32Data: _i, int64Data: _l, doubleData: _d, uint64Data: _u, ...rest } = tensor;
    return { ...rest, dataLocation: 1, externalData: entries };
  });
  const file = new Uint8Array(offset);
  let at = 0;
  for (const piece of pieces) {
    file.set(piece, at);
    at += piece.byteLength;
  }
  return { model: onnxTypes.ModelProto.encode(onnxTypes.ModelProto.fromObject(message)).finish(), files: { [location]: file } };
}

function sha1(data: Uint8Array): string {
  return createHash('sha1').update(data).digest('hex');
}

/** A resolver over in-memory side files that records every reference it was asked for. */
export function memoryResolver(files: Readonly<Record<string, Uint8Array>>): ExternalDataResolver & { readonly asked: ExternalDataReference[] } {
  const asked: ExternalDataReference[] = [];
  const resolve = (reference: ExternalDataReference): Uint8Array => {
    asked.push(reference);
    const file = files[reference.location];
    if (file === undefined) throw new Error(`no side file ${reference.location}`);
    return file.subarray(reference.offset, reference.length === undefined ? undefined : reference.offset + reference.length);
  };
  return Object.assign(resolve, { asked });
}
