/**
 * Execution-provider selection (DESIGN.md "Local training with ONNX Runtime"): `device` is `auto`, `cpu`,
 * `cuda` or `cuda:N`. `auto` tries CUDA, then CPU, and logs which one it got; `cuda` fails loudly when the
 * CUDA provider is missing, because a site that asked for a GPU must not silently train 50x slower.
 *
 * onnxruntime-node ships the CPU provider inside its binding; the CUDA provider is a separate shared
 * library (libonnxruntime_providers_cuda.so) that its install script downloads next to the binding only
 * when ONNXRUNTIME_NODE_INSTALL=cuda12 (this project's .npmrc skips the download). Checking for that file
 * first avoids ORT's own noisy load failure on every CPU-only site.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { invalidArgument } from './errors.js';

export type Device = 'auto' | 'cpu' | 'cuda' | `cuda:${number}`;

export type ParsedDevice = { readonly kind: 'auto' } | { readonly kind: 'cpu' } | { readonly kind: 'cuda'; readonly deviceId: number };

export const CUDA_INSTALL_HINT =
  'install it on a machine with an NVIDIA GPU and CUDA 12 with `ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install.js` (README "GPU (CUDA)"), or set device to cpu or auto';

export function parseDevice(device: unknown): ParsedDevice {
  if (device === 'auto') return { kind: 'auto' };
  if (device === 'cpu') return { kind: 'cpu' };
  if (device === 'cuda') return { kind: 'cuda', deviceId: 0 };
  if (typeof device === 'string') {
    const match = /^cuda:(\d{1,3})$/.exec(device);
    if (match !== null) return { kind: 'cuda', deviceId: Number(match[1]) };
  }
  throw invalidArgument('INVALID_DEVICE', `device must be 'auto', 'cpu', 'cuda' or 'cuda:N' (N a GPU index), got ${JSON.stringify(device)}`);
}

/** Directory holding onnxruntime-node's native binding for this platform. */
export function ortBindingDirectory(): string {
  const require = createRequire(import.meta.url);
  const main = require.resolve('onnxruntime-node'); // .../onnxruntime-node/dist/index.js
  return join(dirname(main), '..', 'bin', 'napi-v6', process.platform, process.arch);
}

/** Path of the CUDA provider library when it is installed, else undefined. */
export function cudaProviderLibrary(bindingDirectory = ortBindingDirectory()): string | undefined {
  const name = process.platform === 'win32' ? 'onnxruntime_providers_cuda.dll' : 'libonnxruntime_providers_cuda.so';
  const path = join(bindingDirectory, name);
  return existsSync(path) ? path : undefined;
}
