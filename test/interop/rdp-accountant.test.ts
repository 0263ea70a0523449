/**
 * The accountant (crypto/dp/rdp.ts) against an independent Python implementation written from the
 * papers (scripts/dp/rdp_reference.py, Debian python3-scipy): integer orders by the binomial sum with
 * scipy's gammaln/logsumexp, fractional orders by numerical integration of the definition of A_alpha -
 * not by the erfc series the TypeScript uses. Epsilon, both conversions, must agree within 1% over a grid
 * of (q, sigma, steps, delta); a wrong series term, sign, stopping rule or conversion shows here.
 */
import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { composeSteps, DEFAULT_ORDERS, rdpToEpsilon, subsampledGaussianRdp } from '../../crypto/dp/rdp.js';
import { checkSystemDependency, DEBIAN_PYTHON, systemDependencies } from '../support/system-deps.js';

const scipy = checkSystemDependency(systemDependencies.pythonScipy);
const SCRIPT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'scripts', 'dp', 'rdp_reference.py');

interface Case {
  readonly q: number;
  readonly sigma: number;
  readonly steps: number;
  readonly delta: number;
}

const cases: Case[] = [];
for (const [q, sigma] of [
  [0.001, 0.8],
  [0.01, 1.1],
  [0.01, 4],
  [0.05, 0.7],
  [0.05, 2],
  [0.2, 1.5],
] as const) {
  for (const steps of [100, 10_000]) {
    for (const delta of [1e-5, 1e-3]) cases.push({ q, sigma, steps, delta });
  }
}

describe.skipIf(scipy.skip)(`RDP accountant against an independent SciPy implementation ${scipy.reason}`, () => {
  it('agrees within 1% on epsilon (classic and Balle et al. 2020) over a grid of (q, sigma, steps, delta)', { timeout: 300_000 }, async () => {
    const reference = await runReference({ orders: DEFAULT_ORDERS, cases });
    let worst = 0;
    for (const [index, testCase] of cases.entries()) {
      const expected = reference[index]!;
      const curve = composeSteps(subsampledGaussianRdp(testCase.q, testCase.sigma), testCase.steps);
      for (const conversion of ['classic', 'balle2020'] as const) {
        const ours = rdpToEpsilon(curve, testCase.delta, conversion).epsilon;
        const theirs = conversion === 'classic' ? expected.classic : expected.balle;
        const relative = Math.abs(ours - theirs) / theirs;
        worst = Math.max(worst, relative);
        expect(relative, `${conversion} epsilon for ${JSON.stringify(testCase)}: ours ${ours}, SciPy ${theirs}`).toBeLessThan(0.01);
      }
    }
    // The measured agreement, for the record (the assertion above is the 1% bound).
    console.log(`rdp-accountant interop: ${cases.length} cases x 2 conversions, max relative difference ${worst.toExponential(2)}`);
  });
});

interface ReferenceResult {
  readonly classic: number;
  readonly balle: number;
}

async function runReference(request: { orders: readonly number[]; cases: readonly Case[] }): Promise<ReferenceResult[]> {
  return new Promise((resolve, reject) => {
    const child = execFile(DEBIAN_PYTHON, [SCRIPT], { timeout: 300_000, maxBuffer: 64 << 20 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${SCRIPT} failed: ${error.message}\n${stderr}`));
      else resolve(JSON.parse(stdout) as ReferenceResult[]);
    });
    child.stdin?.end(JSON.stringify(request));
  });
}
