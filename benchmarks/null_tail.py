"""How far into its tail the held-out row statistic's p-value can be trusted.

    PYTHONPATH=. python benchmarks/null_tail.py            # ~21,000 comparisons, ~2-3 minutes on 2 cores
    PYTHONPATH=. python benchmarks/null_tail.py --quick    # ~4,000 comparisons, < 1 minute

Every comparison is an independent draw under the null (two models with independent
initialisation and training: nothing but shared data-like structure in common), scored with
the engine's own functions (`checker.metrics.stats`). Four families:

  random      two independent Gaussian matrices, `held_out_score` (the index-aligned test)
  structured  rows correlated the same way in both (shared low-rank row factors, as tokens
              or units that both models learnt alike), Student-t(3) entries, log-normal
              column scales, then `held_out_score` on column-standardised matrices
  row-search  `match_rows`: best of n submission units on the search half, scored held out
  anchors     `identity_rows` on embedding-like matrices sharing a token geometry

Then a check that needs no null population at all: for a few of the hardest single pairs
(few columns, heavy tails, strongly dependent rows) millions of column permutations of the
exact null are drawn and the fraction of reported p-values below 1e-4, 1e-5 and 1e-6 is
counted, which reaches the verdict threshold itself.

Printed per family and overall: comparisons, observed / expected counts below each
threshold with the binomial upper-tail p of the observed count, the smallest p, the KS
statistic of the p-values against the uniform, and the number of tests the binomial and
KS p-values are Bonferroni-corrected for.
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np
from scipy import stats as sps

from checker.metrics import alignment, stats

THRESHOLDS = (1e-2, 1e-3, 1e-4)
PERM_LEVELS = (1e-4, 1e-5, 1e-6)
KS = (64, 128, 256)
MS = (32, 64, 128, 256, 512, 1024)  # held-out columns
NS = (128, 256, 512, 1024, 2048, 4096)


def _t3(rng, shape):
    """Student-t with 3 degrees of freedom, unit variance: heavy tails, finite variance."""
    return rng.standard_t(3, size=shape) / math.sqrt(3.0)


def _cheap(rng, choices, budget):
    """A shape choice weighted towards the cheap end, every shape still drawn."""
    w = 1.0 / np.asarray(budget, dtype=float)
    return choices[rng.choice(len(choices), p=w / w.sum())]


def _structured(rng, rows: np.ndarray, m: int, heavy: bool) -> np.ndarray:
    """``rows`` (k x r, shared row factors) times fresh column factors, plus noise and
    per-column scales: columns i.i.d. given the row factors, so exchangeable under the null."""
    k, r = rows.shape
    draw = (lambda s: _t3(rng, s)) if heavy else rng.standard_normal
    signal = rows @ draw((r, m)) / math.sqrt(r)
    x = signal * rng.uniform(0.5, 3.0) + draw((k, m))
    return x * np.exp(rng.normal(0.0, 1.0, size=m))


def draw_random(rng) -> float:
    km = [(k, m) for k in KS for m in MS]
    k, m = _cheap(rng, km, [k * m for k, m in km])
    a, b = rng.standard_normal((k, m)), rng.standard_normal((k, m))
    sign = np.where(rng.random(k) < 0.5, -1.0, 1.0) if rng.random() < 0.5 else np.ones(k)
    return stats.held_out_score(stats.standardize_columns(a), stats.standardize_columns(b), sign).log10_p


def draw_structured(rng) -> float:
    km = [(k, m) for k in KS for m in MS]
    k, m = _cheap(rng, km, [k * m for k, m in km])
    r = int(rng.choice([1, 2, 8, 32]))
    shared = _t3(rng, (k, r))
    a = _structured(rng, shared, m, heavy=True)
    b = _structured(rng, shared, m, heavy=bool(rng.random() < 0.5))
    return stats.held_out_score(stats.standardize_columns(a), stats.standardize_columns(b), np.ones(k)).log10_p


def draw_row_search(rng) -> float:
    shapes = [(k, m, n) for k in KS for m in MS for n in NS if n * m <= 1 << 18]
    k, m, n = _cheap(rng, shapes, [(k + n) * m for k, m, n in shapes])
    heavy = bool(rng.random() < 0.5)
    r = int(rng.choice([2, 8]))
    ref = _structured(rng, _t3(rng, (k, r)), 2 * m, heavy)
    sub = _structured(rng, _t3(rng, (n, r)), 2 * m, heavy)
    return stats.match_rows(stats.standardize_columns(ref), stats.standardize_columns(sub))[0].log10_p


def draw_anchors(rng) -> float:
    shapes = [(t, d) for t in (128, 256, 512, 1024, 2048) for d in MS]
    t, d = _cheap(rng, shapes, [t * d for t, d in shapes])
    r = int(rng.choice([4, 16, 64]))
    geometry = _t3(rng, (t, r)) * np.exp(rng.normal(0, 0.5, size=r))  # the shared token geometry
    offset = rng.standard_normal(r) * 2.0  # both models' embeddings have a mean direction

    def model():
        w = rng.standard_normal((r, d)) / math.sqrt(r)
        return (geometry + offset) @ w + 0.3 * _t3(rng, (t, d))

    return alignment.identity_rows(model(), model()).log10_p


FAMILIES = {"random": draw_random, "structured": draw_structured, "row-search": draw_row_search,
            "anchors": draw_anchors}


def binom_upper(observed: int, n: int, p: float) -> float:
    """P(X >= observed) for X ~ Binomial(n, p): how surprising an excess count is."""
    return float(sps.binom.sf(observed - 1, n, p)) if observed > 0 else 1.0


def summarise(name: str, log10_p: np.ndarray, n_tests: int) -> list[str]:
    p = np.power(10.0, log10_p)
    n = len(p)
    cells = []
    for t in THRESHOLDS:
        obs = int(np.sum(p < t))
        q = min(1.0, binom_upper(obs, n, t) * n_tests)
        cells.append(f"{obs:5d}/{n * t:7.1f} (p_excess {q:.2g})")
    ks = sps.kstest(p, "uniform")
    return [f"{name:11s} {n:6d}  " + "  ".join(cells)
            + f"  min p {10 ** float(log10_p.min()):.2e}  KS {ks.statistic:.4f}"]


def permutation_tails(rng, draws: int) -> list[str]:
    """Exact-null tails of single hard pairs: T under random column permutations.

    With C = A^T diag(s) B over the held-out columns (A, B row-centred, unit rows), a
    permutation pi of A's columns gives T_pi = sum_j C[pi(j), j] / k: millions of draws
    cost m gathers each. Counted: draws whose p, as the engine would report it for that
    score, lies below each level.
    """
    out = []
    cases = [("m 32, t3, rank 1 shared", 64, 32, 1), ("m 32, t3, rank 4 shared", 64, 32, 4),
             ("m 64, t3, rank 1 shared", 128, 64, 1), ("m 32, t3 independent rows", 64, 32, 0),
             ("m 128, t3, rank 2 shared", 256, 128, 2)]
    for label, k, m, r in cases:
        shared = _t3(rng, (k, max(r, 1)))
        if r:
            a, b = _structured(rng, shared, m, True), _structured(rng, shared, m, True)
        else:
            a, b = _t3(rng, (k, m)), _t3(rng, (k, m))
        a, b = stats.standardize_columns(a), stats.standardize_columns(b)
        sign = np.ones(k)
        an, bn = stats.rownorm(a), stats.rownorm(b)
        c = an.T @ bn  # m x m: row p of A's columns against column j of B's
        # the score at which the engine's p crosses each level, by bisection on the score
        cuts = []
        _, sd = stats.null_moments(an, bn, sign)  # the engine's exact null sd for these rows
        for lvl in PERM_LEVELS:
            lo, hi = 0.0, 1.0
            for _ in range(60):
                mid = (lo + hi) / 2
                if stats.held_out_from_sd(mid, sd, k, m).log10_p > math.log10(lvl):
                    lo = mid
                else:
                    hi = mid
            cuts.append(hi * k)
        counts = np.zeros(len(PERM_LEVELS), dtype=np.int64)
        done, batch = 0, 20000
        cols = np.arange(m)
        while done < draws:
            perms = rng.permuted(np.tile(cols, (batch, 1)), axis=1)
            z = c[perms, cols].sum(axis=1)
            counts += np.array([np.sum(z >= cut) for cut in cuts])
            done += batch
        cells = "  ".join(f"{o:4d}/{lvl * done:5.1f}" for o, lvl in zip(counts, PERM_LEVELS))
        out.append(f"  {label:28s} k {k:3d}  {done:9d} permutations  p<1e-4,1e-5,1e-6: {cells}")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1,000 per family, 200k permutations per pair")
    ap.add_argument("--per-family", type=int, default=None)
    ap.add_argument("--permutations", type=int, default=None)
    ap.add_argument("--seed", type=int, default=20250808)
    args = ap.parse_args(argv)
    per = args.per_family or (1000 if args.quick else 5250)
    perms = args.permutations or (200_000 if args.quick else 2_000_000)
    rng = np.random.default_rng(args.seed)
    # Bonferroni over every binomial count check printed (families + overall) x thresholds.
    n_tests = (len(FAMILIES) + 1) * len(THRESHOLDS)
    print(f"null calibration of held_out_score: {per} comparisons per family, {len(FAMILIES)} families")
    print(f"binomial excess p-values are Bonferroni-corrected for {n_tests} tests "
          f"({len(FAMILIES) + 1} rows x {len(THRESHOLDS)} thresholds)")
    print(f"{'family':11s} {'n':>6s}  " + "  ".join(f"{'p<' + format(t, 'g'):>27s}" for t in THRESHOLDS))
    allp = []
    for name, fn in FAMILIES.items():
        t0 = time.perf_counter()
        lp = np.array([fn(rng) for _ in range(per)])
        allp.append(lp)
        for line in summarise(name, lp, n_tests):
            print(line + f"  ({time.perf_counter() - t0:.0f} s)")
        sys.stdout.flush()
    for line in summarise("overall", np.concatenate(allp), n_tests):
        print(line)
    print("(cells: observed/expected count below the threshold; p_excess: corrected binomial P(count >= observed))")
    print("exact permutation null of single hard pairs (observed/expected draws below each level):")
    t0 = time.perf_counter()
    for line in permutation_tails(rng, perms):
        print(line)
    print(f"  ({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
