#!/usr/bin/python3
"""Independent reference for fedgate's RDP accountant (crypto/dp/rdp.ts), written from the papers.

Renyi DP of the Poisson-subsampled Gaussian mechanism with sampling rate q and noise multiplier sigma
(Mironov, Talwar, Zhang 2019, "Renyi Differential Privacy of the Sampled Gaussian Mechanism"):
RDP(alpha) = log(A_alpha) / (alpha - 1), A_alpha = E_{z ~ mu0}[(mu(z) / mu0(z))^alpha], with
mu0 = N(0, sigma^2), mu1 = N(1, sigma^2), mu = (1 - q) mu0 + q mu1 (section 3.3).

This script does NOT use the series the TypeScript uses for fractional orders: integer orders use the
binomial expansion of section 3.3 in log space (scipy.special.gammaln + logsumexp), and fractional orders
integrate the definition of A_alpha numerically (scipy.integrate.quad, log-scaled around the integrand's
peak). Steps compose additively; (epsilon, delta) comes from the classic conversion
eps = min_a RDP(a) + log(1/delta) / (a - 1) (Mironov 2017, Prop. 3) or Balle et al. 2020 (Thm. 21)
eps = min_a RDP(a) + log((a - 1) / a) - (log(delta) + log(a)) / (a - 1).

Input (stdin): JSON {"orders": [...], "cases": [{"q", "sigma", "steps", "delta"}, ...]}.
Output (stdout): JSON [{"classic": eps, "balle": eps, "rdp": [per-order RDP of one step]}, ...].
"""
import json
import math
import sys

import numpy as np
from scipy import integrate, special


def log_a_integer(q, sigma, alpha):
    k = np.arange(alpha + 1, dtype=np.float64)
    log_binom = special.gammaln(alpha + 1) - special.gammaln(k + 1) - special.gammaln(alpha - k + 1)
    with np.errstate(divide='ignore'):
        log_terms = log_binom + k * math.log(q) + (alpha - k) * math.log1p(-q) + (k * k - k) / (2 * sigma * sigma)
    return float(special.logsumexp(log_terms))


def log_a_numeric(q, sigma, alpha):
    # log of the integrand mu0(z) * ((1 - q) + q exp((2z - 1) / (2 sigma^2)))^alpha
    def log_integrand(z):
        log_ratio = np.logaddexp(math.log1p(-q), math.log(q) + (2 * z - 1) / (2 * sigma * sigma))
        return -z * z / (2 * sigma * sigma) - math.log(sigma * math.sqrt(2 * math.pi)) + alpha * log_ratio

    # the peak: maximise over a wide grid, then integrate exp(log f - peak) over +-40 sigma around it
    grid = np.linspace(-60 * sigma, 60 * sigma + alpha, 20001)
    values = log_integrand(grid)
    peak_index = int(np.argmax(values))
    peak, z_peak = float(values[peak_index]), float(grid[peak_index])
    lower, upper = z_peak - 40 * sigma, z_peak + 40 * sigma
    total, _ = integrate.quad(lambda z: math.exp(log_integrand(z) - peak), lower, upper,
                              points=[z_peak], limit=500, epsabs=0, epsrel=1e-11)
    return peak + math.log(total)


def rdp_one_step(q, sigma, alpha):
    if q == 0:
        return 0.0
    if q == 1:
        return alpha / (2 * sigma * sigma)
    log_a = log_a_integer(q, sigma, int(alpha)) if float(alpha).is_integer() else log_a_numeric(q, sigma, alpha)
    return log_a / (alpha - 1)


def epsilons(orders, rdp, delta):
    orders = np.asarray(orders, dtype=np.float64)
    rdp = np.asarray(rdp, dtype=np.float64)
    classic = rdp + math.log(1 / delta) / (orders - 1)
    balle = rdp + np.log((orders - 1) / orders) - (math.log(delta) + np.log(orders)) / (orders - 1)
    return max(0.0, float(np.min(classic))), max(0.0, float(np.min(balle)))


def main():
    request = json.load(sys.stdin)
    orders = request['orders']
    results = []
    cache = {}
    for case in request['cases']:
        key = (case['q'], case['sigma'])
        if key not in cache:
            cache[key] = [rdp_one_step(case['q'], case['sigma'], a) for a in orders]
        one_step = cache[key]
        total = [case['steps'] * r for r in one_step]
        classic, balle = epsilons(orders, total, case['delta'])
        results.append({'classic': classic, 'balle': balle, 'rdp': one_step})
    json.dump(results, sys.stdout)


if __name__ == '__main__':
    main()
