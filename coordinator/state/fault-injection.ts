/**
 * Crash injection for recovery tests. Durable writes call a `FaultPoint` hook with the name of the point
 * they reached (e.g. "ledger_write": after the temporary ledger record is on disk, before its rename);
 * without a hook - as in every real deployment - nothing happens. The hook is an option of the coordinator
 * (CoordinatorOptions.faultPoint), never read from the environment here: cli/ reads
 * FEDGATE_FAULT_INJECTION once at start and builds the hook with `crashAtFaultPoint`.
 */

/**
 * Names of the points where a crash can be injected:
 * - ledger_write: a ledger record is durable under its temporary name, not yet renamed;
 * - commit_pending_write: the pending commit (pending-commit.ts) is durable under its temporary name;
 * - commit_pending: the pending commit of an unmasked round is on disk, its CommitRequest not yet sent;
 * - commit_signature: a commit signature was added to the pending commit on disk.
 */
export const FAULT_POINTS = ['ledger_write', 'commit_pending_write', 'commit_pending', 'commit_signature'] as const;
export type FaultPointName = (typeof FAULT_POINTS)[number];

export type FaultPoint = (name: FaultPointName) => void;

/**
 * A hook that kills this process with SIGKILL the `count`-th time it reaches the point `spec` names,
 * written `<point>:<count>` ("ledger_write:2" dies while writing the second ledger record) or `<point>`
 * (the first time). Throws a RangeError naming the accepted points for anything else.
 */
export function crashAtFaultPoint(spec: string, kill: () => void = () => process.kill(process.pid, 'SIGKILL')): FaultPoint {
  const [point, countText, ...rest] = spec.split(':');
  const count = countText === undefined ? 1 : Number(countText);
  if (!(FAULT_POINTS as readonly string[]).includes(point ?? '') || !Number.isSafeInteger(count) || count < 1 || rest.length > 0) {
    throw new RangeError(`fault injection ${JSON.stringify(spec)}: expected <point>:<count> with a point among ${FAULT_POINTS.join(', ')} and a positive count, such as "ledger_write:2"`);
  }
  let reached = 0;
  return (name) => {
    if (name !== point) return;
    reached += 1;
    if (reached === count) kill();
  };
}

/**
 * Names of the points where a test may run its own code in the middle of a round and make the
 * coordinator wait for it: "before_commit_append" is after the commit quorum is stored, before the
 * record is checked once more and appended (where a revocation can race the append).
 */
export const PAUSE_POINTS = ['before_commit_append'] as const;
export type PausePointName = (typeof PAUSE_POINTS)[number];

/**
 * A test hook the coordinator awaits at each pause point (CoordinatorOptions.pausePoint); never set in a
 * deployment, and never read from the environment.
 */
export type PausePoint = (name: PausePointName) => Promise<void>;
