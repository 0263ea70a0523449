/**
 * Fixed-size statistical checks for the DP samplers. Every threshold is the two-sided 1e-9 quantile of
 * the statistic under a correct sampler (normal z = 6.11; chi-square critical values from SciPy's
 * chi2.isf(1e-9, df)), so a correct sampler fails a check with probability about 1e-9 per check, and the
 * tests use seeded randomness, so a run is reproducible.
 */

/** Two-sided z with P(|Z| > z) = 1e-9. */
export const Z_1E9 = 6.11;

/** chi2.isf(1e-9, df) for the degrees of freedom the tests use. */
// prettier-ignore
const CHI2_1E9: Record<number, number> = { 1: 37.32, 2: 41.45, 3: 44.84, 4: 47.88, 5: 50.69, 6: 53.34, 7: 55.87, 8: 58.31, 9: 60.66, 10: 62.95, 11: 65.17, 12: 67.35, 13: 69.48, 14: 71.57, 15: 73.63, 16: 75.65, 17: 77.65, 18: 79.62, 19: 81.56, 20: 83.48, 21: 85.38, 22: 87.26, 23: 89.12, 24: 90.96, 25: 92.78, 26: 94.59, 27: 96.39, 28: 98.17, 29: 99.94, 30: 101.70, 31: 103.44, 32: 105.17, 33: 106.90, 34: 108.61, 35: 110.31, 36: 112.00, 37: 113.68, 38: 115.36, 39: 117.02, 40: 118.68, 41: 120.33, 42: 121.97, 43: 123.61, 44: 125.24, 45: 126.86, 46: 128.47, 47: 130.08, 48: 131.68, 49: 133.28, 50: 134.87, 51: 136.45, 52: 138.03, 53: 139.61, 54: 141.17, 55: 142.74, 56: 144.29, 57: 145.85, 58: 147.40, 59: 148.94, 60: 150.48, 61: 152.02, 62: 153.55, 63: 155.07, 64: 156.60, 65: 158.12, 66: 159.63, 67: 161.14, 68: 162.65, 69: 164.15, 70: 165.65, 71: 167.15, 72: 168.65, 73: 170.14, 74: 171.62, 75: 173.11, 76: 174.59, 77: 176.07, 78: 177.54, 79: 179.01, 80: 180.48, 81: 181.95, 82: 183.41, 83: 184.87, 84: 186.33, 85: 187.78, 86: 189.23, 87: 190.68, 88: 192.13, 89: 193.58, 90: 195.02, 91: 196.46, 92: 197.90, 93: 199.33, 94: 200.77, 95: 202.20, 96: 203.62, 97: 205.05, 98: 206.48, 99: 207.90, 100: 209.32, 101: 210.74, 102: 212.15, 103: 213.57, 104: 214.98, 105: 216.39, 106: 217.80, 107: 219.20, 108: 220.61, 109: 222.01, 110: 223.41, 111: 224.81, 112: 226.21, 113: 227.60, 114: 229.00, 115: 230.39, 116: 231.78, 117: 233.17, 118: 234.55, 119: 235.94, 120: 237.32, 121: 238.71, 122: 240.09, 123: 241.47, 124: 242.84, 125: 244.22, 126: 245.60, 127: 246.97, 128: 248.34, 129: 249.71, 130: 251.08 };

export function chiSquareCritical(df: number): number {
  const value = CHI2_1E9[df];
  if (value === undefined) throw new Error(`no chi-square critical value tabulated for ${df} degrees of freedom`);
  return value;
}

/**
 * Pearson's chi-square of integer samples against a pmf on [-bound, bound] with both tails (|x| > bound)
 * as two more bins. Returns the statistic and the degrees of freedom (bins - 1).
 */
export function chiSquareAgainstPmf(samples: ArrayLike<number>, pmf: (x: number) => number, bound: number, tailMass: number): { statistic: number; df: number } {
  const counts = new Map<number, number>();
  let below = 0;
  let above = 0;
  for (let i = 0; i < samples.length; i++) {
    const x = samples[i]!;
    if (x < -bound) below++;
    else if (x > bound) above++;
    else counts.set(x, (counts.get(x) ?? 0) + 1);
  }
  const n = samples.length;
  let statistic = 0;
  let bins = 0;
  for (let x = -bound; x <= bound; x++) {
    const expected = n * pmf(x);
    statistic += ((counts.get(x) ?? 0) - expected) ** 2 / expected;
    bins++;
  }
  const expectedTail = (n * tailMass) / 2;
  if (expectedTail > 0) {
    statistic += (below - expectedTail) ** 2 / expectedTail + (above - expectedTail) ** 2 / expectedTail;
    bins += 2;
  }
  return { statistic, df: bins - 1 };
}

/** The normalised pmf of the discrete Gaussian N_Z(0, variance), and its exact variance. */
export function discreteGaussianPmf(variance: number): { pmf: (x: number) => number; variance: number; tail: (bound: number) => number } {
  const reach = Math.ceil(40 * Math.sqrt(variance)) + 10;
  let total = 0;
  let second = 0;
  for (let x = -reach; x <= reach; x++) {
    const w = Math.exp((-x * x) / (2 * variance));
    total += w;
    second += x * x * w;
  }
  const pmf = (x: number): number => Math.exp((-x * x) / (2 * variance)) / total;
  const tail = (bound: number): number => {
    let mass = 0;
    for (let x = bound + 1; x <= reach; x++) mass += 2 * pmf(x);
    return mass;
  };
  return { pmf, variance: second / total, tail };
}

export function meanAndVariance(samples: ArrayLike<number>): { mean: number; variance: number } {
  let sum = 0;
  for (let i = 0; i < samples.length; i++) sum += samples[i]!;
  const mean = sum / samples.length;
  let squares = 0;
  for (let i = 0; i < samples.length; i++) squares += (samples[i]! - mean) ** 2;
  return { mean, variance: squares / (samples.length - 1) };
}
