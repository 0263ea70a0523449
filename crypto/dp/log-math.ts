/**
 * Log-space arithmetic for the accountant: sums of terms whose logarithms run to hundreds (exp of them
 * overflows a double), and log erfc to double precision far into the tail (Math has no erf at all).
 */

/** log(e^a + e^b), exact for -Infinity operands. */
export function logAdd(a: number, b: number): number {
  if (a === -Infinity) return b;
  if (b === -Infinity) return a;
  const high = Math.max(a, b);
  return high + Math.log1p(Math.exp(Math.min(a, b) - high));
}

/** log(e^a - e^b) for a >= b; -Infinity when they are equal. */
export function logSub(a: number, b: number): number {
  if (b === -Infinity) return a;
  if (b > a) throw new RangeError(`logSub(${a}, ${b}): the difference is negative`);
  if (a === b) return -Infinity;
  return a + Math.log(-Math.expm1(b - a));
}

const LOG_SQRT_PI = 0.5 * Math.log(Math.PI);

/**
 * log(erfc(x)) to about 1e-14 relative accuracy for every finite x. Below x = 3 it uses the
 * all-positive series erf(x) = 2/sqrt(pi) e^{-x^2} sum_n 2^n x^{2n+1} / (1*3*...*(2n+1)) (no cancellation
 * inside the sum; erfc(3) = 2.2e-5 loses 5 digits to 1 - erf, leaving 1e-11); from x = 3 on, the continued
 * fraction erfc(x) = e^{-x^2}/sqrt(pi) / (x + (1/2)/(x + 1/(x + (3/2)/(x + ...)))) evaluated by Lentz's
 * method in log space, which never underflows however far out x is.
 */
export function logErfc(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x <= -3) return Math.log(2 - Math.exp(logErfc(-x))); // erfc(x) = 2 - erfc(-x), and erfc(-x) < 2.3e-5
  if (x < 3) {
    const erfAbs = erfSeries(Math.abs(x));
    return x < 0 ? Math.log1p(erfAbs) : Math.log1p(-erfAbs);
  }
  return -x * x - LOG_SQRT_PI + Math.log(erfcContinuedFraction(x));
}

function erfSeries(x: number): number {
  const x2 = x * x;
  let term = x;
  let sum = x;
  for (let n = 1; n < 200; n++) {
    term *= (2 * x2) / (2 * n + 1);
    sum += term;
    if (term < sum * 1e-17) break;
  }
  return (2 / Math.sqrt(Math.PI)) * Math.exp(-x2) * sum;
}

/** 1 / (x + a_1/(x + a_2/(x + ...))) with a_n = n/2, by the modified Lentz method. */
function erfcContinuedFraction(x: number): number {
  const tiny = 1e-300;
  let f = x;
  let c = x;
  let d = 0;
  for (let n = 1; n < 5000; n++) {
    const a = n / 2;
    d = x + a * d;
    if (d === 0) d = tiny;
    c = x + a / c;
    if (c === 0) c = tiny;
    d = 1 / d;
    const step = c * d;
    f *= step;
    if (Math.abs(step - 1) < 1e-16) break;
  }
  return 1 / f;
}
