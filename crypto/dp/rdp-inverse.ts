/**
 * The accountant run backwards, for choosing DP-SGD parameters: how many steps fit in a budget, and
 * which noise multiplier reaches a target epsilon. Both rely on epsilon growing with the step count and
 * falling with sigma (each RDP order does, so the minimum over orders does too).
 */
import { invalidArgument } from '../errors.js';
import { composeSteps, DEFAULT_ORDERS, rdpToEpsilon, subsampledGaussianRdp, type Conversion, type RdpCurve } from './rdp.js';

export interface Budget {
  readonly epsilon: number;
  readonly delta: number;
}

function checkBudget(budget: Budget): void {
  if (typeof budget.epsilon !== 'number' || !(budget.epsilon > 0) || !Number.isFinite(budget.epsilon)) {
    throw invalidArgument('INVALID_DP_PARAMETER', `budget.epsilon must be a finite number > 0, got ${String(budget.epsilon)}`);
  }
}

/**
 * The largest number of steps n such that `spent` composed with n steps of `step` stays within `budget`
 * (0 when even one step exceeds it), searched by doubling then bisection; at most `limit` steps.
 */
export function maxSteps(step: RdpCurve, budget: Budget, options: { spent?: RdpCurve; conversion?: Conversion; limit?: number } = {}): number {
  checkBudget(budget);
  const conversion = options.conversion ?? 'classic';
  const limit = options.limit ?? 1e9;
  const fits = (n: number): boolean => {
    const total = composeSteps(step, n).rdp.map((value, i) => value + (options.spent?.rdp[i] ?? 0));
    return rdpToEpsilon({ orders: step.orders, rdp: total }, budget.delta, conversion).epsilon <= budget.epsilon;
  };
  if (!fits(0) || !fits(1)) return 0;
  let low = 1;
  let high = 2;
  while (high <= limit && fits(high)) {
    low = high;
    high *= 2;
  }
  if (high > limit) {
    if (fits(limit)) return limit;
    high = limit;
  }
  while (high - low > 1) {
    const middle = Math.floor((low + high) / 2);
    if (fits(middle)) low = middle;
    else high = middle;
  }
  return low;
}

/**
 * The smallest noise multiplier sigma (to relative precision 1e-4, rounded up so the result always meets
 * the target) for which `steps` Poisson-subsampled Gaussian steps at rate q spend at most `budget`.
 */
export function sigmaForEpsilon(q: number, steps: number, budget: Budget, options: { conversion?: Conversion; orders?: readonly number[] } = {}): number {
  checkBudget(budget);
  const orders = options.orders ?? DEFAULT_ORDERS;
  const conversion = options.conversion ?? 'classic';
  const epsilon = (sigma: number): number => rdpToEpsilon(composeSteps(subsampledGaussianRdp(q, sigma, orders), steps), budget.delta, conversion).epsilon;
  let low = 0.05;
  let high = 1;
  while (epsilon(high) > budget.epsilon) {
    low = high;
    high *= 2;
    if (high > 1e4) throw invalidArgument('BUDGET_UNREACHABLE', `no sigma up to 1e4 brings ${steps} steps at q = ${q} within epsilon ${budget.epsilon}, delta ${budget.delta}`);
  }
  if (epsilon(low) <= budget.epsilon) return low;
  while (high / low > 1 + 1e-4) {
    const middle = Math.sqrt(low * high);
    if (epsilon(middle) <= budget.epsilon) high = middle;
    else low = middle;
  }
  return high;
}
