/**
 * Wraps a graph into a ModelProto. IR version 8 and opset 17 are the newest that ONNX 1.12 (Debian's
 * python3-onnx) validates, and ONNX Runtime 1.30 runs them; every op fedgate emits exists in opset 17.
 */
import type { GraphIR, ModelIR } from '../onnx/ir.js';

export const DEFAULT_OPSET = 17;
export const IR_VERSION = 8;
export const PRODUCER_NAME = 'fedgate';
export const PRODUCER_VERSION = '0.1.0';

export interface ModelOptions {
  readonly opset?: number;
  readonly docString?: string;
  readonly metadata?: Readonly<Record<string, string>>;
}

export function modelFromGraph(graph: GraphIR, options: ModelOptions = {}): ModelIR {
  return {
    irVersion: IR_VERSION,
    opsetImports: [{ domain: '', version: options.opset ?? DEFAULT_OPSET }],
    producerName: PRODUCER_NAME,
    producerVersion: PRODUCER_VERSION,
    docString: options.docString ?? '',
    graph,
    metadata: Object.entries(options.metadata ?? {}).map(([key, value]) => ({ key, value })),
  };
}
