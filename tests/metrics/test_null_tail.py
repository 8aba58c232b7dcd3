"""The held-out statistic's p-values under the null: calibrated at 1e-2 and 1e-3 over a few
thousand independent comparisons, and never too small in the exact permutation null of a hard
pair (few columns, heavy tails, every row alike). benchmarks/null_tail.py is the full version."""

import math

import numpy as np
from scipy import stats as sps

from checker.metrics import stats


def _pair(rng, k, m, rank):
    """Two independent matrices whose rows share ``rank`` Student-t(3) factors (so rows are
    correlated alike in both, as tokens two models learnt from the same data), heavy-tailed
    entries, log-normal column scales; column-standardised as the engine does."""
    shared = rng.standard_t(3, size=(k, rank))

    def one():
        x = shared @ rng.standard_t(3, size=(rank, m)) + rng.standard_t(3, size=(k, m))
        return stats.standardize_columns(x * np.exp(rng.normal(0.0, 1.0, size=m)))

    return one(), one()


def _upper(n, p, alpha=1e-4):
    """The count of n Bernoulli(p) draws exceeded with probability < alpha."""
    return int(sps.binom.isf(alpha, n, p))


def test_null_p_values_are_calibrated_at_1e2_and_1e3():
    rng = np.random.default_rng(7)
    n = 4000
    lp = []
    for i in range(n):
        k, m = (64, 32) if i % 2 else (128, 64)
        a, b = _pair(rng, k, m, rank=1 + i % 4)
        lp.append(stats.held_out_score(a, b, np.ones(k)).log10_p)
    p = np.power(10.0, lp)
    for level in (1e-2, 1e-3):
        assert np.sum(p < level) <= _upper(n, level), level
    # and not absurdly conservative: the bulk of the null stays near uniform
    assert np.sum(p < 1e-2) >= 0.4 * n * 1e-2
    assert sps.kstest(p, "uniform").statistic < 0.05


def test_exact_permutation_tail_of_a_hard_pair():
    """Millions of column orders of one pair: the reported p stays above the true frequency."""
    rng = np.random.default_rng(11)
    k, m = 64, 32
    a, b = _pair(rng, k, m, rank=1)
    base = stats.held_out_score(a, b, np.ones(k))
    c = stats.rownorm(a).T @ stats.rownorm(b)  # T under column order pi: sum_j c[pi(j), j] / k
    draws, cols = 600_000, np.arange(m)
    t = np.concatenate([c[rng.permuted(np.tile(cols, (20_000, 1)), axis=1), cols].sum(axis=1) / k
                        for _ in range(draws // 20_000)])
    log10_p = np.array([stats.held_out_log10_p(z, base.null_sd, m) for z in np.sort(t)[-200:] / base.null_sd])
    for level in (1e-3, 1e-4):
        assert np.sum(log10_p < math.log10(level)) <= _upper(draws, level), level


def test_copies_stay_overwhelmingly_significant():
    rng = np.random.default_rng(3)
    a = rng.standard_normal((64, 32))
    ho = stats.held_out_score(a, a + 0.3 * rng.standard_normal(a.shape), np.ones(64))
    assert ho.z > 20 and ho.log10_p < -20
    # the exact null cannot give less than 1 / m!, and the reported p respects it
    exact = stats.held_out_score(a, a, np.ones(64))
    assert exact.log10_p >= -math.lgamma(33) / math.log(10) - 1e-9


def test_equivalent_z_inverts_the_normal_tail():
    for z in (0.0, 2.326, 4.75, 12.5, 95.0):
        assert abs(stats.equivalent_z(stats.log10_sf(z)) - z) < 1e-6
    # a heavy-tailed held-out p gives a smaller z than the raw one: what Stouffer should add
    assert stats.equivalent_z(stats.held_out_log10_p(6.0, 1 / math.sqrt(29), 32)) < 6.0
