/**
 * fedgate's batched per-example gradients and DP-SGD clipped sum against PyTorch 1.13
 * (scripts/dp/per_example_reference.py: one backward pass per example, float64). The models are
 * exported by torch.onnx.export and imported through fedgate's own import path, so the per-example forms
 * meet what the exporter writes: GroupNorm as InstanceNormalization with Unsqueeze'd affine parameters,
 * a grouped strided Conv, LayerNorm, Gemm; a Linear on [B, T, F] as MatMul + Add, and nn.GRU, whose gate
 * blocks the exporter reorders with Slice and Concat of the parameters. Per tensor and per example,
 * ||g_fedgate - g_torch|| / ||g_torch|| must be <= 1e-4; so must the clipped sum's.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { lossOf } from '../../model/index.js';
import { encodeModel } from '../../model/onnx/codec.js';
import { modelFromGraph } from '../../model/graph/model.js';
import { forwardModelFor } from '../../model/plan.js';
import { prepareModel } from '../../model/train/prepare.js';
import { buildDpGradientGraph, clippedSumName, perExampleGradientName } from '../../model/train/dp-graphs.js';
import { onnxTask } from '../support/model/fixtures.js';
import { f32, i64, output, run, session, type Feed } from '../support/model/ort.js';
import { checkSystemDependency, DEBIAN_PYTHON, systemDependencies } from '../support/system-deps.js';

const torch = checkSystemDependency(systemDependencies.pythonTorch);
const SCRIPT = fileURLToPath(new URL('../../scripts/dp/per_example_reference.py', import.meta.url));
const TOLERANCE = 1e-4;

interface Reference {
  readonly inputShape: number[];
  readonly batch: number;
  readonly input: number[];
  readonly labels: number[];
  readonly norms: number[];
  readonly parameters: { name: string; shape: number[]; perExample: number[][]; clippedSum: number[] }[];
}

function relativeError(actual: ArrayLike<number>, expected: readonly number[]): number {
  let difference = 0;
  let norm = 0;
  for (let i = 0; i < expected.length; i++) {
    difference += ((actual[i] as number) - (expected[i] as number)) ** 2;
    norm += (expected[i] as number) ** 2;
  }
  return Math.sqrt(difference) / Math.max(Math.sqrt(norm), 1e-12);
}

describe.skipIf(torch.skip)(`DP-SGD per-example gradients match PyTorch ${torch.reason}`, () => {
  // C between the examples' norms (from the reference), so that some are clipped and some are not.
  for (const [family, CLIP_NORM] of [['groupnorm_cnn', 10], ['recurrent', 2.5]] as const) {
    it(family, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'fedgate-dp-torch-'));
      try {
        const ran = spawnSync(DEBIAN_PYTHON, [SCRIPT, family, String(CLIP_NORM), dir], { encoding: 'utf8' });
        expect(ran.status, ran.stderr).toBe(0);
        const reference = JSON.parse(readFileSync(join(dir, 'reference.json'), 'utf8')) as Reference;
        const bytes = new Uint8Array(readFileSync(join(dir, 'model.onnx')));
        const task = onnxTask(bytes, reference.inputShape, ['a', 'b', 'c']);
        const prepared = prepareModel(forwardModelFor(task, bytes), lossOf(task));
        const graph = buildDpGradientGraph(prepared, { clipNorm: CLIP_NORM, perExampleOutputs: true });
        const feeds: Record<string, Feed> = {
          input: f32(reference.input, [reference.batch, ...reference.inputShape]),
          label: i64(reference.labels, [reference.batch]),
        };
        let offset = 0;
        for (const p of prepared.forward.parameters) {
          const size = p.shape.reduce((n, d) => n * d, 1);
          feeds[p.name] = f32(prepared.forward.initialParameters.subarray(offset, offset + size), p.shape);
          offset += size;
        }
        const result = await run(await session(encodeModel(modelFromGraph(graph))), feeds);
        expect(prepared.trainable.map((p) => p.name).sort()).toEqual(reference.parameters.map((p) => p.name).sort());
        // Some examples are clipped and some are not, so both branches of min(1, C / norm) are compared.
        expect(reference.norms.some((n) => n > CLIP_NORM) && reference.norms.some((n) => n < CLIP_NORM)).toBe(true);
        const worst: string[] = [];
        for (const p of reference.parameters) {
          const rows = output(result, perExampleGradientName(p.name)).data;
          const size = p.shape.reduce((n, d) => n * d, 1);
          p.perExample.forEach((expected, b) => {
            const error = relativeError(rows.subarray(b * size, (b + 1) * size), expected);
            if (error > TOLERANCE) worst.push(`${p.name} example ${b}: ${error.toExponential(2)}`);
          });
          const sumError = relativeError(output(result, clippedSumName(p.name)).data, p.clippedSum);
          if (sumError > TOLERANCE) worst.push(`${p.name} clipped sum: ${sumError.toExponential(2)}`);
        }
        expect(worst).toEqual([]);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }, 120_000);
  }
});
