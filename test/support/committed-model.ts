/**
 * The model a federation committed, run on held-out rows: a site's latest committed weights, exported as
 * the plain inference model operators get, scored in ONNX Runtime. Tests of losses whose metrics the
 * secure sum does not carry yet (regression, multi-label) compute them from these outputs.
 */
import * as ort from 'onnxruntime-node';
import { exportInferenceModel } from '../../model/export.js';
import { buildTrainingPlan } from '../../model/plan.js';
import type { TaskDocument } from '../../model/task.js';
import { decodeWeights } from '../../model/weight-codec.js';
import type { GrpcFederation } from './grpc-federation.js';

/** The 'logits' output of the task's inference model with `parameters` for `rows` (one float32 input named 'input'). */
export async function modelOutputs(task: TaskDocument, parameters: Parameters<typeof exportInferenceModel>[1], rows: readonly (readonly number[])[]): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(exportInferenceModel(task, parameters));
  const input = new ort.Tensor('float32', Float32Array.from(rows.flat()), [rows.length, rows[0]?.length ?? 0]);
  return (await session.run({ input }))['logits']?.data as Float32Array;
}

/** The same for `siteId`'s latest committed model. */
export async function committedModelOutputs(harness: GrpcFederation, task: TaskDocument, rows: readonly (readonly number[])[], siteId = 'site-1'): Promise<Float32Array> {
  const latest = harness.daemon(siteId)?.latestModel();
  if (latest === undefined) throw new Error(`${siteId} holds no committed model`);
  return modelOutputs(task, decodeWeights({ parameters: buildTrainingPlan(task).parameters }, latest), rows);
}
