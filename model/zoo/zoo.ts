/**
 * The model zoo: forward graphs for the task kinds fedgate defines itself.
 * - logreg: multinomial logistic regression, logits = x W^T + b.
 * - mlp: dense layers with the chosen activation, linear output layer.
 * - cnn: the CNN of McMahan et al. 2017 ("Communication-Efficient Learning of Deep Networks from
 *   Decentralized Data", section 3): 5x5 conv 32 -> ReLU -> 2x2 max pool -> 5x5 conv 64 -> ReLU ->
 *   2x2 max pool -> dense 512 -> ReLU -> dense classes, convolutions padded to keep the spatial size;
 *   on 28x28x1 inputs with 10 classes that is the paper's 1,663,370 parameters. Each ReLU is applied after
 *   its pool (the same function).
 */
import type { ModelSpec } from '../task.js';
import type { ForwardModel } from '../train/forward-model.js';
import { ZooBuilder } from './layers.js';

type ZooSpec = Exclude<ModelSpec, { kind: 'onnx' }>;

const product = (shape: readonly number[]): number => shape.reduce((n, d) => n * d, 1);

export function buildZooModel(spec: ZooSpec, seed: number): ForwardModel {
  const zoo = new ZooBuilder(seed);
  switch (spec.kind) {
    case 'logreg': {
      const features = product(spec.inputShape);
      const logits = zoo.dense('linear', zoo.flatten(zoo.input, spec.inputShape), features, spec.classes, 'glorot');
      return zoo.finish(logits, spec.inputShape, spec.classes);
    }
    case 'mlp': {
      const activation = spec.activation ?? 'relu';
      let x = zoo.flatten(zoo.input, spec.inputShape);
      let width = product(spec.inputShape);
      spec.hidden.forEach((size, i) => {
        const name = `fc${i + 1}`;
        x = zoo.activation(activation, zoo.dense(name, x, width, size, activation === 'relu' ? 'he' : 'glorot'), name);
        width = size;
      });
      const logits = zoo.dense(`fc${spec.hidden.length + 1}`, x, width, spec.classes, 'glorot');
      return zoo.finish(logits, spec.inputShape, spec.classes);
    }
    case 'cnn': {
      const [channels, height, width] = spec.inputShape;
      // Pool, then ReLU: the same function as the paper's ReLU-then-pool (ReLU is monotone, so it commutes
      // with max), with the ReLU and its gradient on a quarter of the values.
      let x = zoo.activation('relu', zoo.maxPool2x2(zoo.conv('conv1', zoo.input, channels, 32, 5, 2), 'conv1'), 'conv1');
      x = zoo.activation('relu', zoo.maxPool2x2(zoo.conv('conv2', x, 32, 64, 5, 2), 'conv2'), 'conv2');
      const flat = 64 * Math.floor(Math.floor(height / 2) / 2) * Math.floor(Math.floor(width / 2) / 2);
      x = zoo.flatten(x, [64, height, width]);
      x = zoo.activation('relu', zoo.dense('fc1', x, flat, 512, 'he'), 'fc1');
      const logits = zoo.dense('fc2', x, 512, spec.classes, 'glorot');
      return zoo.finish(logits, spec.inputShape, spec.classes);
    }
  }
}
