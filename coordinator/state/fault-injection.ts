/**
 * Crash injection for recovery tests: with FEDGATE_FAULT_INJECTION=<point>:<n> in the environment, the
 * process kills itself with SIGKILL the n-th time it reaches that point (e.g. "ledger_write:2" dies
 * while writing the second ledger record, after the temporary file is on disk and before the rename).
 * Unset - as in every real deployment - it does nothing.
 */
const spec = process.env['FEDGATE_FAULT_INJECTION'];
const [pointName, countText] = spec === undefined ? [] : spec.split(':');
const target = Number(countText ?? '1');
let reached = 0;

export function faultPoint(name: string): void {
  if (pointName !== name) return;
  reached += 1;
  if (reached === target) process.kill(process.pid, 'SIGKILL');
}
