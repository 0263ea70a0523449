import { describe, expect, it } from 'vitest';
import { Trainer, TrainerError, type TrainerPlan } from '../../../../participant/index.js';
import { cudaProviderLibrary } from '../../../../participant/trainer/device.js';
import { checkSystemDependency, type SystemDependency } from '../../../support/system-deps.js';

/** A plan whose graphs are not ONNX at all: enough for checks that happen before or while loading. */
const garbagePlan: TrainerPlan = {
  parameters: [{ name: 'w', shape: [4, 2] }],
  optimizerState: [],
  trainStep: new TextEncoder().encode('not an onnx model'),
  evalStep: new TextEncoder().encode('not an onnx model either'),
};

async function rejection(promise: Promise<unknown>): Promise<TrainerError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(TrainerError);
  return error as TrainerError;
}

/** The missing-provider error can only be seen where the provider is missing (the default, CPU-only install). */
const withoutCudaProvider: SystemDependency = {
  packages: [],
  remedy: `onnxruntime-node without its CUDA provider (${cudaProviderLibrary() ?? 'none'} is installed): run it on a CPU-only install (npm ci without ONNXRUNTIME_NODE_INSTALL=cuda12)`,
  present: () => cudaProviderLibrary() === undefined,
};
const cpuOnly = checkSystemDependency(withoutCudaProvider);

describe('Trainer.create failures', () => {
  it.skipIf(cpuOnly.skip)(`device cuda without the CUDA provider is a clear FAILED_PRECONDITION ${cpuOnly.reason}`, async () => {
    for (const device of ['cuda', 'cuda:1'] as const) {
      const error = await rejection(Trainer.create({ plan: garbagePlan, device }));
      expect(error.code).toBe('FAILED_PRECONDITION');
      expect(error.reason).toBe('CUDA_UNAVAILABLE');
      expect(error.message).toContain(`device '${device === 'cuda' ? 'cuda:0' : device}' requested, but the CUDA execution provider is not installed`);
      expect(error.message).toContain('libonnxruntime_providers_cuda.so');
      expect(error.message).toContain('ONNXRUNTIME_NODE_INSTALL=cuda12');
    }
  });

  it('graphs ONNX Runtime cannot load reject with the graph named and its error', async () => {
    const error = await rejection(Trainer.create({ plan: garbagePlan, device: 'cpu' }));
    expect(error.code).toBe('INVALID_ARGUMENT');
    expect(error.reason).toBe('PLAN_INVALID');
    expect(error.message).toMatch(/^plan\.trainStep: ONNX Runtime cannot load the graph: /);
  });

  it('bad options are rejected before a worker starts', async () => {
    await expect(Trainer.create({ plan: garbagePlan, device: 'gpu' as 'cpu' })).rejects.toThrow("device must be 'auto', 'cpu', 'cuda' or 'cuda:N'");
    await expect(Trainer.create({ plan: garbagePlan, device: 'cpu', intraOpThreads: 0 })).rejects.toThrow('intraOpThreads must be an integer in [1, 256], got 0');
    await expect(Trainer.create({ plan: garbagePlan, device: 'cpu', stepsPerRun: 0 })).rejects.toThrow("stepsPerRun must be 'auto' or an integer in [1, 4096], got 0");
    await expect(Trainer.create({ plan: { ...garbagePlan, evalStep: new Uint8Array(0) }, device: 'cpu' })).rejects.toThrow('plan.evalStep must be non-empty ONNX ModelProto bytes');
  });

  it('a worker that crashes while starting rejects create with its message', async () => {
    // A heap far too small for the worker to even load its modules: V8 kills the worker thread.
    const error = await rejection(Trainer.create({ plan: garbagePlan, device: 'cpu', resourceLimits: { maxOldGenerationSizeMb: 1, maxYoungGenerationSizeMb: 1 } }));
    expect(error.code).toBe('INTERNAL');
    expect(['WORKER_CRASHED', 'WORKER_EXITED']).toContain(error.reason);
    expect(error.message).toMatch(/^training worker (crashed|exited)/);
  });
});
