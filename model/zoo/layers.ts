/**
 * Layer helpers the model zoo builds its forward graphs with. Weights follow PyTorch's layouts
 * (dense [out, in] applied with Gemm transB = 1, conv [out, in, kh, kw]); initial values come from
 * Philox streams numbered in parameter order, so they depend on the seed and nothing else.
 */
import { GraphBuilder, attr } from '../graph/builder.js';
import type { ForwardModel, ParameterSpec } from '../train/forward-model.js';
import { fillUniform } from './philox.js';

/**
 * He et al. 2015 ("Delving deep into rectifiers") uniform bound sqrt(6 / fan_in) for ReLU layers;
 * Glorot & Bengio 2010 uniform bound sqrt(6 / (fan_in + fan_out)) for tanh, sigmoid and output layers.
 */
export type Initialiser = 'he' | 'glorot';

const INPUT = 'input';

export class ZooBuilder {
  readonly graph = new GraphBuilder('forward');
  private readonly parameters: ParameterSpec[] = [];
  private readonly values: Float32Array[] = [];

  constructor(private readonly seed: number) {
    this.graph.reserve([INPUT]);
  }

  get input(): string {
    return INPUT;
  }

  private parameter(name: string, shape: readonly number[], limit: number): string {
    const values = new Float32Array(shape.reduce((n, d) => n * d, 1));
    if (limit > 0) fillUniform(values, this.seed, this.parameters.length, limit);
    this.graph.reserve([name]);
    this.parameters.push({ name, shape: [...shape], role: 'trainable' });
    this.values.push(values);
    return name;
  }

  private weightLimit(init: Initialiser, fanIn: number, fanOut: number): number {
    return init === 'he' ? Math.sqrt(6 / fanIn) : Math.sqrt(6 / (fanIn + fanOut));
  }

  /** Fully connected layer y = x W^T + b (bias starts at zero). */
  dense(name: string, x: string, inFeatures: number, outFeatures: number, init: Initialiser): string {
    const weight = this.parameter(`${name}.weight`, [outFeatures, inFeatures], this.weightLimit(init, inFeatures, outFeatures));
    const bias = this.parameter(`${name}.bias`, [outFeatures], 0);
    return this.graph.op('Gemm', [x, weight, bias], { transB: attr.int(1) }, `${name}/out`);
  }

  /** 2-D convolution with stride 1 and explicit padding. */
  conv(name: string, x: string, inChannels: number, outChannels: number, kernel: number, pad: number): string {
    const area = kernel * kernel;
    const weight = this.parameter(
      `${name}.weight`,
      [outChannels, inChannels, kernel, kernel],
      this.weightLimit('he', inChannels * area, outChannels * area),
    );
    const bias = this.parameter(`${name}.bias`, [outChannels], 0);
    return this.graph.op(
      'Conv',
      [x, weight, bias],
      { kernel_shape: attr.ints([kernel, kernel]), pads: attr.ints([pad, pad, pad, pad]) },
      `${name}/out`,
    );
  }

  activation(kind: 'relu' | 'tanh' | 'sigmoid', x: string, name: string): string {
    const op = kind === 'relu' ? 'Relu' : kind === 'tanh' ? 'Tanh' : 'Sigmoid';
    return this.graph.op(op, [x], {}, `${name}/${kind}`);
  }

  maxPool2x2(x: string, name: string): string {
    return this.graph.op('MaxPool', [x], { kernel_shape: attr.ints([2, 2]), strides: attr.ints([2, 2]) }, `${name}/pool`);
  }

  /** [batch, ...] -> [batch, prod(...)]; a no-op for inputs that are already flat. */
  flatten(x: string, shape: readonly number[]): string {
    return shape.length === 1 ? x : this.graph.op('Flatten', [x], { axis: attr.int(1) }, 'flatten');
  }

  finish(logits: string, inputShape: readonly number[], classes: number): ForwardModel {
    const total = this.values.reduce((n, v) => n + v.length, 0);
    const initialParameters = new Float32Array(total);
    let offset = 0;
    for (const values of this.values) {
      initialParameters.set(values, offset);
      offset += values.length;
    }
    const graph = this.graph.build();
    return {
      nodes: graph.nodes,
      constants: graph.initializers,
      parameters: this.parameters,
      input: INPUT,
      inputShape: [...inputShape],
      logits,
      classes,
      initialParameters,
    };
  }
}
