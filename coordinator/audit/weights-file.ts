/**
 * Reads a stored model (the canonical weight encoding of model/weight-codec.ts) without the task's plan:
 * the encoding names every tensor and its shape, so an auditor can recompute a round's model from the
 * ledger and the state directory alone.
 */
import { decodeWeights, encodeWeights } from '../../model/weight-codec.js';
import type { ParameterLayout } from '../../model/weights.js';

export function layoutOfWeights(bytes: Uint8Array): ParameterLayout {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const tag = 'fedgate/weights/v1'.length;
  let offset = tag;
  const read = (): number => {
    if (offset + 4 > bytes.length) throw new Error('model file ends early');
    const value = view.getUint32(offset, true);
    offset += 4;
    return value;
  };
  const count = read();
  const parameters: { name: string; shape: number[] }[] = [];
  for (let i = 0; i < count; i++) {
    const nameLength = read();
    const name = new TextDecoder().decode(bytes.subarray(offset, offset + nameLength));
    offset += nameLength;
    const rank = read();
    const shape: number[] = [];
    for (let k = 0; k < rank; k++) shape.push(read());
    parameters.push({ name, shape });
    offset += 4 * shape.reduce((n, d) => n * d, 1);
  }
  return { parameters };
}

export function readWeightsFile(bytes: Uint8Array): { layout: ParameterLayout; values: Float32Array } {
  const layout = layoutOfWeights(bytes);
  return { layout, values: decodeWeights(layout, bytes) };
}

export { encodeWeights };
