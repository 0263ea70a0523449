/**
 * Creating ONNX Runtime sessions for the plan's graphs (worker side): execution-provider choice with the
 * `auto` fallback, session options, and a check that each graph has the inputs and outputs the train-step
 * contract promises, so a plan that does not match fails once at start-up with the missing name instead
 * of on the first step of a round.
 */
import * as ort from 'onnxruntime-node';
import { CUDA_INSTALL_HINT, type ParsedDevice, cudaProviderLibrary, ortBindingDirectory } from './device.js';
import { TrainerError } from './errors.js';
import type { SessionTuning } from './protocol.js';

export interface ProviderChoice {
  readonly provider: 'cpu' | 'cuda';
  readonly deviceId?: number;
  readonly fallbackReason?: string;
}

export interface SessionFactory {
  readonly choice: ProviderChoice;
  create(bytes: Uint8Array, graph: string): Promise<ort.InferenceSession>;
}

function sessionOptions(providers: ort.InferenceSession.ExecutionProviderConfig[], threads: number, tuning: SessionTuning): ort.InferenceSession.SessionOptions {
  return {
    executionProviders: providers,
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    // 'extended', not 'all': the level above only adds the NCHWc layout, which in training graphs (weights
    // are inputs, not constants) wraps each MaxPool in layout reorders and converts no convolution; on the
    // zoo CNN's step the reorders cost more than they save (kernel time 28.6-29.0 -> 28.3 ms per step).
    graphOptimizationLevel: tuning.graphOptimizationLevel ?? 'extended',
    executionMode: tuning.executionMode ?? 'sequential',
    enableCpuMemArena: tuning.enableCpuMemArena ?? true,
    enableMemPattern: tuning.enableMemPattern ?? true,
    // Errors reach us as exceptions; ORT's own warnings (e.g. about unused initializers) would only
    // pollute the daemon's structured log.
    logSeverityLevel: 3,
  };
}

async function load(bytes: Uint8Array, graph: string, options: ort.InferenceSession.SessionOptions): Promise<ort.InferenceSession> {
  try {
    return await ort.InferenceSession.create(bytes, options);
  } catch (error) {
    throw new TrainerError('INVALID_ARGUMENT', 'PLAN_INVALID', `plan.${graph}: ONNX Runtime cannot load the graph: ${(error as Error).message}`, { cause: error });
  }
}

/**
 * Resolves the device by creating the first session (the train-step graph) and returns a factory that
 * creates the remaining sessions on the same provider.
 */
export async function openSessions(
  device: ParsedDevice,
  threads: number,
  tuning: SessionTuning,
  firstGraph: Uint8Array,
): Promise<{ factory: SessionFactory; first: ort.InferenceSession }> {
  const cpu = sessionOptions(['cpu'], threads, tuning);
  const make = (choice: ProviderChoice, options: ort.InferenceSession.SessionOptions): SessionFactory => ({
    choice,
    create: (bytes, graph) => load(bytes, graph, options),
  });
  if (device.kind === 'cpu') {
    return { factory: make({ provider: 'cpu' }, cpu), first: await load(firstGraph, 'trainStep', cpu) };
  }
  const deviceId = device.kind === 'cuda' ? device.deviceId : 0;
  const library = cudaProviderLibrary();
  if (library === undefined) {
    const missing = `the CUDA execution provider is not installed (no libonnxruntime_providers_cuda.so in ${ortBindingDirectory()})`;
    if (device.kind === 'cuda') {
      throw new TrainerError('FAILED_PRECONDITION', 'CUDA_UNAVAILABLE', `device 'cuda:${deviceId}' requested, but ${missing}; ${CUDA_INSTALL_HINT}`);
    }
    return { factory: make({ provider: 'cpu', fallbackReason: missing }, cpu), first: await load(firstGraph, 'trainStep', cpu) };
  }
  const cuda = sessionOptions([{ name: 'cuda', deviceId }], threads, tuning);
  try {
    const first = await ort.InferenceSession.create(firstGraph, cuda);
    return { factory: make({ provider: 'cuda', deviceId }, cuda), first };
  } catch (error) {
    const message = (error as Error).message;
    if (device.kind === 'cuda') {
      throw new TrainerError('FAILED_PRECONDITION', 'CUDA_UNAVAILABLE', `device 'cuda:${deviceId}' requested, but the CUDA execution provider failed to start: ${message}`, { cause: error });
    }
    const fallbackReason = `the CUDA execution provider failed to start (${message})`;
    return { factory: make({ provider: 'cpu', fallbackReason }, cpu), first: await load(firstGraph, 'trainStep', cpu) };
  }
}

/** Throws naming the graph and the first missing input or output. */
export function requireIo(session: ort.InferenceSession, graph: string, inputs: readonly string[], outputs: readonly string[]): void {
  const haveInputs = new Set(session.inputNames);
  const haveOutputs = new Set(session.outputNames);
  for (const name of inputs) {
    if (!haveInputs.has(name)) {
      throw new TrainerError('INVALID_ARGUMENT', 'PLAN_MISMATCH', `plan.${graph} has no input '${name}'; the plan lists it, expected graph inputs: ${session.inputNames.join(', ')}`);
    }
  }
  for (const name of outputs) {
    if (!haveOutputs.has(name)) {
      throw new TrainerError('INVALID_ARGUMENT', 'PLAN_MISMATCH', `plan.${graph} has no output '${name}'; expected graph outputs: ${session.outputNames.join(', ')}`);
    }
  }
}

/**
 * Shape of one example from the graph's 'input' declaration: the dims after the batch dim (and after
 * the block dim for trainBlock), which must all be concrete.
 */
export function exampleShapeOf(session: ort.InferenceSession, graph: string, leadingDims: number, name = 'input', scalarExamples = false): number[] {
  const index = session.inputNames.indexOf(name);
  const meta = session.inputMetadata[index];
  if (meta === undefined || !meta.isTensor) {
    throw new TrainerError('INVALID_ARGUMENT', 'PLAN_MISMATCH', `plan.${graph} has no tensor input '${name}'; expected inputs: ${session.inputNames.join(', ')}`);
  }
  const dims = meta.shape.slice(leadingDims);
  if (meta.shape.length < leadingDims || (meta.shape.length === leadingDims && !scalarExamples) || dims.some((d) => typeof d !== 'number' || d <= 0)) {
    throw new TrainerError(
      'INVALID_ARGUMENT',
      'PLAN_MISMATCH',
      `plan.${graph} input '${name}' has shape [${meta.shape.join(', ')}]; expected ${leadingDims === 1 ? '[batch' : '[steps, batch'}, ...concrete example dims]`,
    );
  }
  return dims as number[];
}
