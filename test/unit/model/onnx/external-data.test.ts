/**
 * ONNX external data (model/onnx/external-data.ts, embed.ts): decoding with a resolver gives the tensors
 * the side files hold, embedding gives one model that decodes to the same tensors without one, and every
 * bad entry is refused naming the tensor - a location that could leave the model's directory before the
 * resolver is ever asked for it.
 */
import { createHash } from 'node:crypto';
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { ModelError } from '../../../../model/index.js';
import { buildTrainingPlan } from '../../../../model/plan.js';
import { decodeModel, encodeModel } from '../../../../model/onnx/codec.js';
import { embedExternalData, externalDataReferences, externalDataTensorNames, MAX_ONNX_BYTES } from '../../../../model/onnx/embed.js';
import { unsafeLocation } from '../../../../model/onnx/external-data.js';
import { DataType, onnxTypes } from '../../../../model/onnx/schema.js';
import { decodeElements, floatTensor, int64Tensor } from '../../../../model/onnx/tensor.js';
import { GraphBuilder, attr } from '../../../../model/graph/builder.js';
import { modelFromGraph } from '../../../../model/graph/model.js';
import { externalizeInitializers, memoryResolver } from '../../../support/model/external-data.js';
import { fixtureBytes, onnxTask, SMALL_CNN_LABELS, SMALL_CNN_SHAPE } from '../../../support/model/fixtures.js';

const sha1 = (data: Uint8Array): string => createHash('sha1').update(data).digest('hex');
const WEIGHTS = Float32Array.from([1, 2, 3, 4, 5, 6.5]);
const WEIGHT_BYTES = new Uint8Array(WEIGHTS.buffer);

/** A model with one FLOAT [2, 3] initializer 'w' stored as external data with the given entries. */
function modelWith(entries: Record<string, string> | { key: string; value: string }[], tensor: Record<string, unknown> = {}): Uint8Array {
  const externalData = Array.isArray(entries) ? entries : Object.entries(entries).map(([key, value]) => ({ key, value }));
  return onnxTypes.ModelProto.encode(
    onnxTypes.ModelProto.fromObject({
      irVersion: 8,
      opsetImport: [{ domain: '', version: 17 }],
      graph: { name: 'g', initializer: [{ name: 'w', dims: [2, 3], dataType: DataType.FLOAT, dataLocation: 1, externalData, ...tensor }] },
    }),
  ).finish();
}

/** The error decoding `bytes` with `resolve` throws, and whether the resolver was asked at all. */
function refusal(bytes: Uint8Array, files: Record<string, Uint8Array> = { 'w.bin': WEIGHT_BYTES }): { error: ModelError; asked: number } {
  const resolve = memoryResolver(files);
  try {
    decodeModel(bytes, { externalData: resolve });
  } catch (error) {
    expect(error).toBeInstanceOf(ModelError);
    return { error: error as ModelError, asked: resolve.asked.length };
  }
  throw new Error('decodeModel accepted the model');
}

describe('ONNX external data', () => {
  it('decodes tensors from side files through the resolver, with offset, length and checksum', () => {
    const file = new Uint8Array(8 + WEIGHT_BYTES.byteLength);
    file.set(WEIGHT_BYTES, 8);
    const bytes = modelWith({ location: 'sub/w.bin', offset: '8', length: '24', checksum: sha1(WEIGHT_BYTES).toUpperCase(), ignored: 'per spec' });
    const resolve = memoryResolver({ 'sub/w.bin': file });
    const model = decodeModel(bytes, { externalData: resolve });
    expect(decodeElements(model.graph.initializers[0] as never)).toEqual(Array.from(WEIGHTS));
    expect(resolve.asked).toEqual([{ tensor: "initializer tensor 'w'", location: 'sub/w.bin', offset: 8, length: 24, checksum: sha1(WEIGHT_BYTES), byteLength: 24 }]);
  });

  it('reads to the end of the file when length is absent, and offset defaults to 0', () => {
    const model = decodeModel(modelWith({ location: 'w.bin' }), { externalData: memoryResolver({ 'w.bin': WEIGHT_BYTES }) });
    expect(decodeElements(model.graph.initializers[0] as never)).toEqual(Array.from(WEIGHTS));
  });

  it('without a resolver refuses external data naming the tensor, the file and the command that embeds it', () => {
    expect(() => decodeModel(modelWith({ location: 'w.bin' }))).toThrow(
      /initializer tensor 'w' stores its data in the external file "w\.bin" .*run `fedgate task embed-weights --model MODEL\.onnx --out model\.onnx`/,
    );
    let reason: string | undefined;
    try {
      decodeModel(modelWith({ location: 'w.bin' }));
    } catch (error) {
      reason = (error as ModelError).reason;
    }
    expect(reason).toBe('EXTERNAL_DATA');
  });

  it.each([
    ['../w.bin', /location "\.\.\/w\.bin" has a '\.\.' segment/],
    ['sub/../../w.bin', /has a '\.\.' segment/],
    ['..', /has a '\.\.' segment/],
    ['/etc/passwd', /location "\/etc\/passwd" is an absolute path/],
    ['C:/weights.bin', /starts with a drive letter/],
    ['c:weights.bin', /starts with a drive letter/],
    ['sub\\w.bin', /contains a backslash/],
    ['..\\w.bin', /contains a backslash/],
    ['w.bin\0.txt', /contains a NUL character/],
    ['', /location "" is empty/],
  ])('refuses location %j without asking the resolver', (location, message) => {
    const { error, asked } = refusal(modelWith({ location }));
    expect(error.reason).toBe('EXTERNAL_DATA_INVALID');
    expect(error.message).toMatch(/^initializer tensor 'w': external_data location/);
    expect(error.message).toMatch(message);
    expect(asked).toBe(0);
  });

  it('accepts plain relative locations, "." segments and dots inside names', () => {
    for (const location of ['w.bin', './w.bin', 'a/b/w.bin', '..w.bin', 'w..bin', '...']) expect(unsafeLocation(location)).toBeUndefined();
  });

  it.each([
    [{ location: 'w.bin', offset: '-1' }, /external_data 'offset' is "-1"; expected a non-negative integer/],
    [{ location: 'w.bin', offset: '1.5' }, /'offset' is "1\.5"/],
    [{ location: 'w.bin', offset: '1e3' }, /'offset' is "1e3"/],
    [{ location: 'w.bin', offset: '0x10' }, /'offset' is "0x10"/],
    [{ location: 'w.bin', offset: ' 8' }, /'offset' is " 8"/],
    [{ location: 'w.bin', offset: '' }, /'offset' is ""/],
    [{ location: 'w.bin', offset: '99999999999999999999' }, /'offset' is "99999999999999999999"/],
    [{ location: 'w.bin', length: '-24' }, /'length' is "-24"/],
    [{ location: 'w.bin', length: '23' }, /external_data length 23 disagrees with dims \[2, 3\] of FLOAT, which need 24 bytes/],
    [{ location: 'w.bin', length: '48' }, /length 48 disagrees/],
    [{ offset: '0', length: '24' }, /has data_location EXTERNAL but no external_data 'location'/],
    [[{ key: 'location', value: 'w.bin' }, { key: 'location', value: 'other.bin' }], /external_data key "location" appears twice/],
    [{ location: 'w.bin', checksum: 'abc' }, /checksum "abc"; expected the data's SHA-1 digest as 40 hex digits/],
  ] as const)('refuses entries %j without asking the resolver', (entries, message) => {
    const { error, asked } = refusal(modelWith(entries as never));
    expect(error.reason).toBe('EXTERNAL_DATA_INVALID');
    expect(error.message).toMatch(/^initializer tensor 'w': /);
    expect(error.message).toMatch(message);
    expect(asked).toBe(0);
  });

  it('refuses tensors that mix external and embedded data or mislabel the location', () => {
    expect(refusal(modelWith({ location: 'w.bin' }, { rawData: WEIGHT_BYTES })).error.message).toMatch(/carries embedded data as well as external data/);
    expect(refusal(modelWith({ location: 'w.bin' }, { floatData: [1, 2, 3, 4, 5, 6] })).error.message).toMatch(/carries embedded data as well/);
    expect(refusal(modelWith({ location: 'w.bin' }, { dataLocation: 0 })).error.message).toMatch(/has external_data entries but data_location DEFAULT \(0\); expected data_location EXTERNAL \(1\)/);
    expect(refusal(modelWith({ location: 'w.bin' }, { dataLocation: 7 })).error.message).toMatch(/has data_location 7/);
    expect(refusal(modelWith({ location: 'w.bin' }, { dataType: DataType.STRING })).error.message).toMatch(/is STRING stored as external data/);
  });

  it('refuses data shorter or longer than the dims need, and a checksum that does not match', () => {
    const short = refusal(modelWith({ location: 'w.bin' }), { 'w.bin': WEIGHT_BYTES.subarray(0, 20) }).error;
    expect(short.message).toMatch(/initializer tensor 'w': external data 'w\.bin' at offset 0 is too short: 20 bytes \(no length given: to the end of the file\), the tensor needs 24/);
    const long = new Uint8Array(32);
    expect(refusal(modelWith({ location: 'w.bin' }), { 'w.bin': long }).error.message).toMatch(/is the wrong size: 32 bytes .* needs 24/);
    // offset past the end: the resolver returns nothing.
    expect(refusal(modelWith({ location: 'w.bin', offset: '100', length: '24' })).error.message).toMatch(/at offset 100 is too short: 0 bytes, the tensor needs 24/);
    const tampered = WEIGHT_BYTES.slice();
    tampered[0] = (tampered[0] ?? 0) ^ 1;
    const mismatch = refusal(modelWith({ location: 'w.bin', checksum: sha1(WEIGHT_BYTES) }), { 'w.bin': tampered }).error;
    expect(mismatch.message).toMatch(new RegExp(`has SHA-1 ${sha1(tampered)}; its external_data checksum says ${sha1(WEIGHT_BYTES)}`));
  });

  it('embeds every initializer of a model and decodes to the same tensors; buildTrainingPlan accepts the result', () => {
    const original = fixtureBytes('small_cnn.onnx');
    const { model, files } = externalizeInitializers(original, 'cnn.data', { checksums: true });
    expect(externalDataTensorNames(model).length).toBe(decodeModel(original).graph.initializers.length);
    const resolve = memoryResolver(files);
    const viaResolver = decodeModel(model, { externalData: resolve });
    expect(viaResolver).toEqual(decodeModel(original));
    const embedded = embedExternalData(model, memoryResolver(files));
    expect(embedded.embedded.map((reference) => reference.location)).toEqual(resolve.asked.map(() => 'cnn.data'));
    expect(externalDataTensorNames(embedded.bytes)).toEqual([]);
    expect(decodeModel(embedded.bytes)).toEqual(decodeModel(original));
    const plan = buildTrainingPlan(onnxTask(embedded.bytes, SMALL_CNN_SHAPE, SMALL_CNN_LABELS), embedded.bytes);
    const reference = buildTrainingPlan(onnxTask(original, SMALL_CNN_SHAPE, SMALL_CNN_LABELS), original);
    expect(plan.initialParameters).toEqual(reference.initialParameters);
  });

  it('leaves a self-contained model byte for byte as it is', () => {
    const original = fixtureBytes('small_cnn.onnx');
    const resolve = memoryResolver({});
    expect(embedExternalData(original, resolve).bytes).toBe(original);
    expect(resolve.asked).toEqual([]);
  });

  it('embeds tensors in node attributes and subgraphs, and keeps fields fedgate does not declare', () => {
    const body = new GraphBuilder('body');
    body.addInitializer(floatTensor('inner', [2, 3], WEIGHTS));
    body.addOutput('inner', DataType.FLOAT, [2, 3]);
    const b = new GraphBuilder('outer');
    b.appendNode('Constant', [], ['c'], { value: attr.tensor(floatTensor('c', [2, 3], WEIGHTS)) });
    b.appendNode('If', ['cond'], ['y'], { then_branch: attr.graph(body.build()), else_branch: attr.graph(body.build()) });
    b.addInput('cond', DataType.BOOL, []);
    b.addOutput('y', DataType.FLOAT, [2, 3]);
    const plain = encodeModel(modelFromGraph(b.build()));
    // Every TensorProto with name/dims/dataType/rawData -> external, by rewriting the plain message.
    const message = onnxTypes.ModelProto.toObject(onnxTypes.ModelProto.decode(plain), { longs: Number, arrays: true });
    const externalize = (tensor: Record<string, unknown>): void => {
      delete tensor['rawData'];
      tensor['dataLocation'] = 1;
      tensor['externalData'] = [{ key: 'location', value: `${String(tensor['name'])}.bin` }];
    };
    const visit = (graph: { node?: { attribute?: { t?: Record<string, unknown>; g?: unknown }[] }[]; initializer?: Record<string, unknown>[] }): void => {
      for (const tensor of graph.initializer ?? []) externalize(tensor);
      for (const node of graph.node ?? []) {
        for (const attribute of node.attribute ?? []) {
          if (attribute.t !== undefined) externalize(attribute.t);
          if (attribute.g !== undefined) visit(attribute.g as never);
        }
      }
    };
    visit((message as { graph: never }).graph);
    const external = onnxTypes.ModelProto.encode(onnxTypes.ModelProto.fromObject(message)).finish();
    // ModelProto.functions (25), unknown to fedgate's schema: a FunctionProto named 'kept'.
    const unknownField = protobuf.Writer.create().uint32((25 << 3) | 2).bytes(protobuf.Writer.create().uint32((1 << 3) | 2).string('kept').finish()).finish();
    const withUnknown = new Uint8Array([...external, ...unknownField]);
    const files = { 'c.bin': WEIGHT_BYTES, 'inner.bin': WEIGHT_BYTES };
    expect(externalDataReferences(withUnknown).map((r) => r.location)).toEqual(['c.bin', 'inner.bin', 'inner.bin']);
    const embedded = embedExternalData(withUnknown, memoryResolver(files)).bytes;
    expect(decodeModel(embedded)).toEqual(decodeModel(plain));
    expect(Buffer.from(embedded).subarray(-unknownField.length)).toEqual(Buffer.from(unknownField));
  });

  it('refuses a model whose embedded data would pass 2 GiB before reading any of it', () => {
    const huge = onnxTypes.ModelProto.encode(
      onnxTypes.ModelProto.fromObject({
        irVersion: 8,
        graph: { initializer: [{ name: 'big', dims: [2 ** 28, 2], dataType: DataType.FLOAT, dataLocation: 1, externalData: [{ key: 'location', value: 'big.bin' }] }] },
      }),
    ).finish();
    const resolve = memoryResolver({});
    let error: unknown;
    try {
      embedExternalData(huge, resolve);
    } catch (caught) {
      error = caught;
    }
    expect((error as ModelError).reason).toBe('MODEL_TOO_LARGE');
    expect((error as ModelError).message).toMatch(new RegExp(`at least ${2 ** 31} bytes, over protobuf's limit of ${MAX_ONNX_BYTES} bytes \\(2 GiB\\)`));
    expect(resolve.asked).toEqual([]);
  });
});

describe('ONNX int64_data', () => {
  it('keeps every bit of INT64_MAX and INT64_MIN (a double would round them)', () => {
    const bytes = onnxTypes.ModelProto.encode(
      onnxTypes.ModelProto.fromObject({
        irVersion: 8,
        graph: { initializer: [{ name: 'ends', dims: [2], dataType: DataType.INT64, int64Data: ['9223372036854775807', '-9223372036854775808'] }] },
      }),
    ).finish();
    const tensor = decodeModel(bytes).graph.initializers[0];
    const view = new DataView((tensor?.data ?? new Uint8Array(16)).buffer);
    expect(view.getBigInt64(0, true)).toBe(9223372036854775807n);
    expect(view.getBigInt64(8, true)).toBe(-9223372036854775808n);
    // raw_data int64 round-trips as before.
    expect(decodeElements(decodeModel(encodeModel(modelFromGraph(graphWith(int64Tensor('s', [2], [-1, 12]))))).graph.initializers[0] as never)).toEqual([-1, 12]);
  });
});

function graphWith(tensor: ReturnType<typeof int64Tensor>): ReturnType<GraphBuilder['build']> {
  const b = new GraphBuilder('g');
  b.addInitializer(tensor);
  b.addOutput(tensor.name, DataType.INT64, [...tensor.dims]);
  return b.build();
}
