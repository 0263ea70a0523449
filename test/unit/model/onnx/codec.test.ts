/** ONNX ModelProto encoding/decoding with fedgate's own schema subset. */
import { describe, expect, it } from 'vitest';
import { ModelError } from '../../../../model/index.js';
import { GraphBuilder, attr } from '../../../../model/graph/builder.js';
import { modelFromGraph } from '../../../../model/graph/model.js';
import { decodeModel, encodeModel } from '../../../../model/onnx/codec.js';
import { DataType, onnxTypes } from '../../../../model/onnx/schema.js';
import { decodeElements, floatTensor, int64Tensor, makeTensor, readFloat32 } from '../../../../model/onnx/tensor.js';
import { fixtureBytes } from '../../../support/model/fixtures.js';
import { f32, output, run, session } from '../../../support/model/ort.js';

function sampleModel(): ReturnType<typeof modelFromGraph> {
  const body = new GraphBuilder('body');
  body.addInput('i', DataType.INT64, []);
  body.addOutput('i', DataType.INT64, []);
  const b = new GraphBuilder('sample');
  b.addInput('x', DataType.FLOAT, ['batch', 3, null]);
  b.addInitializer(floatTensor('w', [2, 3], [1, 2, 3, 4, 5, 6.5]));
  b.addInitializer(int64Tensor('shape', [2], [-1, 9007199254740991]));
  b.addInitializer(makeTensor('d', DataType.DOUBLE, [], [Math.PI]));
  b.addInitializer(makeTensor('flag', DataType.BOOL, [2], [1, 0]));
  b.appendNode('Custom', ['x', '', 'w'], ['y', 'z'], {
    f: attr.float(0.25),
    i: attr.int(-3),
    s: attr.string('héllo'),
    t: attr.tensor(floatTensor('tv', [1], [2])),
    g: attr.graph(body.build()),
    fs: attr.floats([0.5, 1.5]),
    is: attr.ints([1, -2, 3]),
    ss: { kind: 'strings', value: ['a', 'b'] },
  }, 'custom.domain');
  b.addOutput('y', DataType.FLOAT, ['batch', 2]);
  return modelFromGraph(b.build('doc'), { metadata: { key: 'value' }, docString: 'model doc' });
}

describe('ONNX codec', () => {
  it('round-trips models, attributes of every kind, tensors and symbolic dimensions', () => {
    const model = sampleModel();
    const decoded = decodeModel(encodeModel(model));
    expect(decoded.irVersion).toBe(8);
    expect(decoded.opsetImports).toEqual([{ domain: '', version: 17 }]);
    expect(decoded.metadata).toEqual([{ key: 'key', value: 'value' }]);
    expect(decoded.docString).toBe('model doc');
    expect(decoded.graph.inputs).toEqual([{ name: 'x', elemType: DataType.FLOAT, shape: ['batch', 3, null] }]);
    const node = decoded.graph.nodes[0];
    expect(node?.domain).toBe('custom.domain');
    expect(node?.inputs).toEqual(['x', '', 'w']);
    expect(node?.attributes['f']).toEqual({ kind: 'float', value: 0.25 });
    expect(node?.attributes['i']).toEqual({ kind: 'int', value: -3 });
    expect(node?.attributes['s']).toEqual({ kind: 'string', value: 'héllo' });
    expect(node?.attributes['fs']).toEqual({ kind: 'floats', value: [0.5, 1.5] });
    expect(node?.attributes['is']).toEqual({ kind: 'ints', value: [1, -2, 3] });
    expect(node?.attributes['ss']).toEqual({ kind: 'strings', value: ['a', 'b'] });
    const graphAttribute = node?.attributes['g'];
    expect(graphAttribute?.kind === 'graph' && graphAttribute.value.inputs[0]?.name).toBe('i');
    const [w, shape, d, flag] = decoded.graph.initializers;
    expect(Array.from(readFloat32(w as never))).toEqual([1, 2, 3, 4, 5, 6.5]);
    expect(decodeElements(shape as never)).toEqual([-1, 9007199254740991]);
    expect(decodeElements(d as never)).toEqual([Math.PI]);
    expect(decodeElements(flag as never)).toEqual([1, 0]);
  });

  it('reads tensors stored in the typed data fields (float_data, int64_data, int32_data, double_data)', () => {
    const bytes = onnxTypes.ModelProto.encode({
      irVersion: 7,
      opsetImport: [{ domain: '', version: 13 }],
      graph: {
        name: 'typed',
        initializer: [
          { name: 'f', dims: [3], dataType: DataType.FLOAT, floatData: [1.5, -2, 3] },
          { name: 'l', dims: [2], dataType: DataType.INT64, int64Data: [7, -8] },
          { name: 'b', dims: [3], dataType: DataType.BOOL, int32Data: [1, 0, 1] },
          { name: 'h', dims: [1], dataType: DataType.FLOAT16, int32Data: [0x3c00] },
          { name: 'd', dims: [1], dataType: DataType.DOUBLE, doubleData: [0.1] },
        ],
      },
    } as never).finish();
    const [f, l, b, h, d] = decodeModel(bytes).graph.initializers;
    expect(Array.from(readFloat32(f as never))).toEqual([1.5, -2, 3]);
    expect(decodeElements(l as never)).toEqual([7, -8]);
    expect(decodeElements(b as never)).toEqual([1, 0, 1]);
    expect(Array.from((h as { data: Uint8Array }).data)).toEqual([0x00, 0x3c]);
    expect(decodeElements(d as never)).toEqual([0.1]);
  });

  it('decodes a model written by onnx.helper', () => {
    const model = decodeModel(fixtureBytes('small_cnn.onnx'));
    expect(model.irVersion).toBe(7);
    expect(model.producerName).toBe('onnx-helper-fixture');
    expect(model.opsetImports).toEqual([{ domain: '', version: 13 }]);
    expect(model.graph.nodes.map((n) => n.opType)).toEqual([
      'Conv', 'BatchNormalization', 'Relu', 'MaxPool', 'Shape', 'Gather', 'Unsqueeze', 'Constant', 'Concat', 'Reshape', 'Gemm', 'Relu', 'Dropout', 'Gemm', 'Softmax',
    ]);
    const constant = model.graph.nodes.find((n) => n.opType === 'Constant')?.attributes['value'];
    expect(constant?.kind === 'tensor' && decodeElements(constant.value)).toEqual([-1]);
    expect(model.graph.inputs[0]?.shape).toEqual(['batch', 1, 12, 12]);
  });

  it('encodes models that onnxruntime runs', async () => {
    const b = new GraphBuilder('add');
    b.addInput('x', DataType.FLOAT, ['n']);
    b.appendNode('Add', ['x', b.scalar(1.5)], ['y'], {});
    b.addOutput('y', DataType.FLOAT, ['n']);
    const result = await run(await session(encodeModel(modelFromGraph(b.build()))), { x: f32([1, 2], [2]) });
    expect(Array.from(output(result, 'y').data)).toEqual([2.5, 3.5]);
  });

  const malformed: [string, Uint8Array, RegExp][] = [
    ['empty bytes', new Uint8Array(0), /expected a non-empty serialized ModelProto/],
    ['a truncated model', fixtureBytes('small_cnn.onnx').subarray(0, 100), /not a valid ModelProto/],
    ['text', new TextEncoder().encode('hello, world'), /ModelProto|graph/],
    ['a model without a graph', onnxTypes.ModelProto.encode({ irVersion: 8 } as never).finish(), /has no graph/],
  ];
  for (const [what, bytes, message] of malformed) {
    it(`rejects ${what} with MALFORMED_ONNX`, () => {
      let error: unknown;
      try {
        decodeModel(bytes);
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(ModelError);
      expect((error as ModelError).reason).toBe('MALFORMED_ONNX');
      expect((error as ModelError).message).toMatch(message);
    });
  }

  it('rejects external-data tensors and payloads that disagree with their dims', () => {
    const external = onnxTypes.ModelProto.encode({
      irVersion: 8,
      graph: { initializer: [{ name: 'w', dims: [2], dataType: DataType.FLOAT, dataLocation: 1, externalData: [{ key: 'location', value: 'w.bin' }] }] },
    } as never).finish();
    expect(() => decodeModel(external)).toThrow(/initializer tensor 'w' stores its data in the external file "w\.bin" .*run `fedgate task embed-weights --model MODEL\.onnx --out model\.onnx`/);
    const short = onnxTypes.ModelProto.encode({
      irVersion: 8,
      graph: { initializer: [{ name: 'w', dims: [4], dataType: DataType.FLOAT, rawData: new Uint8Array(8) }] },
    } as never).finish();
    expect(() => decodeModel(short)).toThrow(/tensor 'w': holds 8 bytes, dims \[4\] of FLOAT need 16/);
  });
});

describe('ONNX fields exporters write beyond the basics', () => {
  const sparse = (indices: { dims: number[]; int64Data: number[] }, values = [7, 8]): Uint8Array =>
    onnxTypes.ModelProto.encode(
      onnxTypes.ModelProto.fromObject({
        irVersion: 8,
        graph: {
          initializer: [{ name: 'dense', dims: [1], dataType: DataType.FLOAT, floatData: [1] }],
          sparseInitializer: [{ dims: [2, 3], values: { name: 'w', dims: [values.length], dataType: DataType.FLOAT, floatData: values }, indices: { dims: indices.dims, dataType: DataType.INT64, int64Data: indices.int64Data } }],
        },
      }),
    ).finish();

  it('densifies sparse initializers given linear indices or coordinates', () => {
    for (const indices of [{ dims: [2], int64Data: [1, 5] }, { dims: [2, 2], int64Data: [0, 1, 1, 2] }]) {
      const [dense, w] = decodeModel(sparse(indices)).graph.initializers;
      expect(dense?.name).toBe('dense');
      expect(w?.name).toBe('w');
      expect(w?.dims).toEqual([2, 3]);
      expect(Array.from(readFloat32(w as never))).toEqual([0, 7, 0, 0, 0, 8]);
    }
  });

  it('refuses sparse indices out of range or of the wrong shape, naming the initializer', () => {
    expect(() => decodeModel(sparse({ dims: [2], int64Data: [1, 6] }))).toThrow(/sparse initializer 'w': index 6 of non-zero #1 is outside \[0, 6\)/);
    expect(() => decodeModel(sparse({ dims: [2, 2], int64Data: [0, 1, 2, 0] }))).toThrow(/index 2 of non-zero #1 is outside \[0, 2\)/);
    expect(() => decodeModel(sparse({ dims: [3], int64Data: [0, 1, 2] }))).toThrow(/indices are INT64 \[3\]; expected INT64 \[2\] \(linear\) or \[2, 2\] \(coordinates\)/);
  });

  it('refuses a tensor segment by name instead of reading it as the whole tensor', () => {
    const bytes = onnxTypes.ModelProto.encode(
      onnxTypes.ModelProto.fromObject({ irVersion: 8, graph: { initializer: [{ name: 'part', dims: [4], dataType: DataType.FLOAT, segment: { begin: 0, end: 2 }, floatData: [1, 2] }] } }),
    ).finish();
    expect(() => decodeModel(bytes)).toThrow(/initializer tensor 'part' is segment \[0, 2\) of a tensor split across several TensorProtos/);
  });

  it('names a sparse-tensor attribute type it cannot read', () => {
    const bytes = onnxTypes.ModelProto.encode(
      onnxTypes.ModelProto.fromObject({ irVersion: 8, graph: { node: [{ name: 'c', opType: 'Constant', output: ['c'], attribute: [{ name: 'sparse_value', type: 11, sparseTensor: { dims: [1] } }] }] } }),
    ).finish();
    expect(() => decodeModel(bytes)).toThrow(/attribute 'sparse_value' has attribute type SPARSE_TENSOR \(11\)/);
  });
});
