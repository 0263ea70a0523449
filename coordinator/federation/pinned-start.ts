/**
 * Where the federation starts (DESIGN.md "What a site checks for itself"): the task document pins the
 * initial model hash and the server optimiser, and every site verifies the chain of commit records back
 * to them. The coordinator checks before its first round that the model it would open round 1 on and
 * the optimiser it would run are exactly those, so a misconfigured coordinator fails at start instead
 * of having every site refuse its rounds.
 */
import { FedgateError } from '../../platform/index.js';
import type { ServerOptimizerSpec } from '../../model/server-optimizer.js';
import { parseTaskDocument, type PinnedTaskDocument } from '../../model/task.js';
import { checkPinnedInitialModel, sameServerOptimizer } from '../../model/task-pin.js';
import type { ParameterLayout } from '../../model/weights.js';

/** The pinned task of `taskBytes`; throws unless `initialModel` and `serverOptimizer` are what it pins. */
export function checkPinnedStart(taskBytes: Uint8Array, layout: ParameterLayout, initialModel: Float32Array, serverOptimizer: ServerOptimizerSpec): PinnedTaskDocument {
  const task = checkPinnedInitialModel(parseTaskDocument(JSON.parse(Buffer.from(taskBytes).toString('utf8'))), layout, initialModel);
  if (!sameServerOptimizer(task.serverOptimizer, serverOptimizer)) {
    throw new FedgateError(
      'FAILED_PRECONDITION',
      `the coordinator would run server optimiser ${JSON.stringify(serverOptimizer)} but the task pins ${JSON.stringify(task.serverOptimizer)}: the task document's serverOptimizer is the one the federation runs`,
      { reason: 'SERVER_OPTIMIZER_NOT_PINNED' },
    );
  }
  return task;
}
