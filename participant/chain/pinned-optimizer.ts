/**
 * The server-optimiser state a site downloads at commit (DESIGN.md step 7) names its optimiser's kind and
 * hyper-parameters in its header. A site recomputes model r+1 with what the state says, so a coordinator
 * that handed out a state with its own learning rate (or momentum, or kind) could steer model r+1 while an
 * honest quorum signs it. The task pins the server optimiser: a state of any other optimiser is refused
 * (OPTIMIZER_STATE_NOT_CHAIN_HEAD: no chain that starts from the task's pinned optimiser reaches it).
 */
import { decodeServerOptimizerState, type ServerOptimizerSpec, type ServerOptimizerState } from '../../model/server-optimizer.js';
import { sameServerOptimizer } from '../../model/task-pin.js';
import { SITE_DEFENCE_REASONS } from '../../crypto/secagg/site-refusals.js';
import { ChainRefusal } from './chain-follower.js';

/** Decodes `bytes`; when the task pins an optimiser, refuses a state of another one. */
export function decodePinnedOptimizerState(bytes: Uint8Array, pinned: ServerOptimizerSpec | undefined): { spec: ServerOptimizerSpec; state: ServerOptimizerState } {
  const decoded = decodeServerOptimizerState(bytes);
  if (pinned !== undefined && !sameServerOptimizer(decoded.spec, pinned)) {
    throw new ChainRefusal(
      SITE_DEFENCE_REASONS.OPTIMIZER_STATE_NOT_CHAIN_HEAD,
      `the server-optimiser state is for ${JSON.stringify(decoded.spec)}, but the task pins ${JSON.stringify(pinned)}: the site does not recompute model r+1 with an optimiser the task does not name`,
    );
  }
  return decoded;
}
