"""Key-driver attribution: how much each factor moves an outcome (pure NumPy/SciPy).

Why our own implementation: of the relative-importance packages, pingouin is exact but GPL-3
(siyu is Apache-2.0), dominance-analysis does not import with NumPy 2, and pyshapley2
computes Banzhaf values rather than Shapley values. The maths is short and is tested
against brute force and a published worked example (tests/voc/test_drivers.py).

Methods
* :func:`shapley_r2` — the Shapley decomposition of R² (LMG). The R² of every subset of
  factors comes from the correlation matrix alone (``R²(S) = r_S' R_SS⁻¹ r_S``), solved in
  batches per subset size, so 15 factors (32,768 subsets) take well under a second whatever
  the number of responses. Exact up to :data:`EXACT_MAX` factors; beyond, a permutation
  sample estimates each value with its standard error (the spread of the marginal
  contributions over the sampled orders divided by √orders).
* :func:`relative_weights` — Johnson's (2000) relative weights: the raw weights sum to R².
* :func:`shapley_logistic` — the Shapley decomposition of McFadden's pseudo-R² of a logistic
  regression (for a yes/no outcome such as "dissatisfied"), exact up to
  :data:`EXACT_MAX_LOGISTIC` factors and sampled beyond.
* :func:`priorities` — importance × performance: rank and quadrant of each factor.
* :func:`aggregate_tree` — Shapley values are additive, so the importance of a category is
  the sum over its leaves.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np

__all__ = [
    "EXACT_MAX",
    "EXACT_MAX_LOGISTIC",
    "DriverResult",
    "aggregate_tree",
    "mcfadden_r2",
    "priorities",
    "r2_of_all_subsets",
    "relative_weights",
    "shapley_logistic",
    "shapley_r2",
]

#: Largest number of factors decomposed exactly by :func:`shapley_r2` (2**15 subsets).
EXACT_MAX = 15
#: Largest number of factors decomposed exactly by :func:`shapley_logistic` (one fit a subset).
EXACT_MAX_LOGISTIC = 10


@dataclass(frozen=True)
class DriverResult:
    """Importance of each factor; ``importance`` sums to ``r2`` (within the sampling error
    when ``exact`` is false, in which case ``stderr`` holds each value's standard error)."""

    factors: list[str]
    importance: np.ndarray
    r2: float
    n: int
    method: str
    exact: bool = True
    stderr: np.ndarray | None = None
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def share(self) -> np.ndarray:
        return self.importance / self.r2 if self.r2 > 0 else np.zeros_like(self.importance)


def _clean(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float).ravel()
    if x.ndim != 2 or x.shape[0] != y.shape[0]:
        raise ValueError("x must be (n, k) and y (n,)")
    keep = np.isfinite(y) & np.isfinite(x).all(axis=1)
    x, y = x[keep], y[keep]
    if x.shape[0] < x.shape[1] + 2:
        raise ValueError(f"need more than {x.shape[1] + 1} complete responses, have {x.shape[0]}")
    if x.shape[1] < 1:
        raise ValueError("need at least one factor")
    return x, y


def _correlations(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Correlation matrix of the factors and their correlations with the outcome; a constant
    column correlates 0 with everything (it explains nothing)."""
    z = np.column_stack([x, y])
    z = z - z.mean(axis=0)
    sd = np.sqrt((z * z).sum(axis=0))
    sd[sd == 0] = np.inf
    z = z / sd
    c = z.T @ z
    k = x.shape[1]
    rxx = c[:k, :k].copy()
    np.fill_diagonal(rxx, 1.0)
    return rxx, c[:k, k].copy()


def r2_of_all_subsets(rxx: np.ndarray, rxy: np.ndarray) -> np.ndarray:
    """R² of the regression on each subset of factors, indexed by bit mask (bit j = factor j).

    Subsets of one size are solved together as one batch of small linear systems; a
    singular subset (collinear factors) falls back to the least-squares solution.
    """
    k = len(rxy)
    out = np.zeros(1 << k)
    for size in range(1, k + 1):
        combos = np.array(list(combinations(range(k), size)), dtype=np.intp)
        masks = (1 << combos).sum(axis=1)
        a = rxx[combos[:, :, None], combos[:, None, :]]
        b = rxy[combos]
        try:
            sol = np.linalg.solve(a, b[:, :, None])[:, :, 0]
        except np.linalg.LinAlgError:
            sol = np.stack([np.linalg.lstsq(ai, bi, rcond=None)[0] for ai, bi in zip(a, b,
                                                                                    strict=True)])
        out[masks] = np.einsum("ij,ij->i", sol, b)
    return np.clip(out, 0.0, 1.0)


def _popcount(masks: np.ndarray) -> np.ndarray:
    counts = np.zeros(masks.shape, dtype=np.intp)
    m = masks.copy()
    while m.any():
        counts += m & 1
        m >>= 1
    return counts


def _exact_shapley(values: np.ndarray, k: int) -> np.ndarray:
    """Shapley values of the game whose coalition values are ``values[mask]``."""
    masks = np.arange(1 << k)
    size = _popcount(masks)
    weight = np.array([math.factorial(s) * math.factorial(k - s - 1) / math.factorial(k)
                       if s < k else 0.0 for s in range(k + 1)])
    phi = np.zeros(k)
    for j in range(k):
        without = masks[(masks >> j) & 1 == 0]
        phi[j] = float(np.sum(weight[size[without]] * (values[without | (1 << j)]
                                                        - values[without])))
    return phi


def _sampled_shapley(value: Callable[[int], float], k: int, orders: int,
                     seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Permutation estimate of Shapley values and their standard errors.

    Each sampled order is used together with its reverse (antithetic pairs lower the
    variance); coalition values are cached, so repeated prefixes cost nothing.
    """
    rng = np.random.default_rng(seed)
    contrib = np.zeros((orders, k))
    cache: dict[int, float] = {0: value(0)}

    def v(mask: int) -> float:
        if mask not in cache:
            cache[mask] = value(mask)
        return cache[mask]

    perm = rng.permutation(k)
    for i in range(orders):
        if i % 2 == 0:
            perm = rng.permutation(k)
        order = perm if i % 2 == 0 else perm[::-1]
        mask, prev = 0, cache[0]
        for j in order:
            mask |= 1 << int(j)
            cur = v(mask)
            contrib[i, j] = cur - prev
            prev = cur
    pairs = contrib.reshape(-1, 2, k).mean(axis=1) if orders % 2 == 0 else contrib
    est = pairs.mean(axis=0)
    se = pairs.std(axis=0, ddof=1) / math.sqrt(len(pairs)) if len(pairs) > 1 else np.zeros(k)
    return est, se


def _subset_r2(rxx: np.ndarray, rxy: np.ndarray, mask: int) -> float:
    idx = [j for j in range(len(rxy)) if mask >> j & 1]
    if not idx:
        return 0.0
    a, b = rxx[np.ix_(idx, idx)], rxy[idx]
    sol = np.linalg.lstsq(a, b, rcond=None)[0]
    return float(np.clip(sol @ b, 0.0, 1.0))


def shapley_r2(x: np.ndarray, y: np.ndarray, factors: Sequence[str] | None = None, *,
               exact_max: int = EXACT_MAX, orders: int = 2000, seed: int = 0) -> DriverResult:
    """Shapley decomposition of the R² of the linear regression of ``y`` on ``x`` (LMG).

    Rows with a missing value are dropped. With more than ``exact_max`` factors the values
    are estimated from ``orders`` sampled orders (``exact`` false, ``stderr`` set).
    """
    x, y = _clean(x, y)
    k = x.shape[1]
    names = list(factors) if factors is not None else [f"x{j + 1}" for j in range(k)]
    rxx, rxy = _correlations(x, y)
    if k <= exact_max:
        values = r2_of_all_subsets(rxx, rxy)
        phi = _exact_shapley(values, k)
        return DriverResult(names, phi, float(values[-1]), x.shape[0], "shapley")
    full = _subset_r2(rxx, rxy, (1 << k) - 1)
    est, se = _sampled_shapley(lambda m: _subset_r2(rxx, rxy, m), k, orders + orders % 2, seed)
    return DriverResult(names, est, full, x.shape[0], "shapley", exact=False, stderr=se)


def relative_weights(x: np.ndarray, y: np.ndarray,
                     factors: Sequence[str] | None = None) -> DriverResult:
    """Johnson's relative weights: raw weights (summing to R²) of each factor.

    The factors are replaced by their closest orthogonal counterparts
    ``Z = X V Λ^{-1/2} V'``; the weight of factor j is ``Σ_k λ_jk² β_k²`` where ``λ`` maps the
    orthogonal variables back to the factors and ``β`` regresses the outcome on them.
    """
    x, y = _clean(x, y)
    names = list(factors) if factors is not None else [f"x{j + 1}" for j in range(x.shape[1])]
    rxx, rxy = _correlations(x, y)
    evals, evecs = np.linalg.eigh(rxx)
    evals = np.clip(evals, 0.0, None)
    lam = evecs @ np.diag(np.sqrt(evals)) @ evecs.T
    beta = np.linalg.lstsq(lam, rxy, rcond=None)[0]
    raw = (lam ** 2) @ (beta ** 2)
    return DriverResult(names, raw, float(raw.sum()), x.shape[0], "relative_weights")


# -- logistic ---------------------------------------------------------------------------------


def _logistic_loglik(x: np.ndarray, y: np.ndarray, iters: int = 50) -> float:
    """Maximised log-likelihood of a logistic regression with intercept (Newton/IRLS with a
    small ridge so that separable data converge to a finite value)."""
    n = x.shape[0]
    a = np.column_stack([np.ones(n), x])
    w = np.zeros(a.shape[1])
    ridge = 1e-6 * np.eye(a.shape[1])
    ridge[0, 0] = 0.0
    prev = -np.inf
    for _ in range(iters):
        eta = a @ w
        p = 1.0 / (1.0 + np.exp(-eta))
        grad = a.T @ (y - p) - ridge @ w
        hess = (a * (p * (1 - p))[:, None]).T @ a + ridge
        w = w + np.linalg.lstsq(hess, grad, rcond=None)[0]
        ll = float(np.sum(y * eta - np.logaddexp(0.0, eta)))
        if abs(ll - prev) < 1e-10 * max(1.0, abs(ll)):
            break
        prev = ll
    eta = a @ w
    return float(np.sum(y * eta - np.logaddexp(0.0, eta)))


def mcfadden_r2(x: np.ndarray, y: np.ndarray) -> float:
    """McFadden's pseudo-R² ``1 - ll(model) / ll(intercept only)`` of a logistic regression."""
    y = np.asarray(y, dtype=float)
    p = y.mean()
    if p <= 0 or p >= 1:
        return 0.0
    ll0 = float(len(y) * (p * math.log(p) + (1 - p) * math.log(1 - p)))
    return max(0.0, 1.0 - _logistic_loglik(np.asarray(x, dtype=float), y) / ll0)


def shapley_logistic(x: np.ndarray, y: np.ndarray, factors: Sequence[str] | None = None, *,
                     exact_max: int = EXACT_MAX_LOGISTIC, orders: int = 200,
                     seed: int = 0) -> DriverResult:
    """Shapley decomposition of McFadden's R² for a yes/no outcome (``y`` in {0, 1})."""
    x, y = _clean(x, y)
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("the logistic method needs a 0/1 outcome")
    k = x.shape[1]
    names = list(factors) if factors is not None else [f"x{j + 1}" for j in range(k)]
    sd = x.std(axis=0)
    sd[sd == 0] = 1.0
    xs = (x - x.mean(axis=0)) / sd

    def value(mask: int) -> float:
        idx = [j for j in range(k) if mask >> j & 1]
        return mcfadden_r2(xs[:, idx], y) if idx else 0.0

    if k <= exact_max:
        values = np.array([value(m) for m in range(1 << k)])
        phi = _exact_shapley(values, k)
        return DriverResult(names, phi, float(values[-1]), x.shape[0], "logistic")
    est, se = _sampled_shapley(value, k, orders + orders % 2, seed)
    return DriverResult(names, est, value((1 << k) - 1), x.shape[0], "logistic", exact=False,
                        stderr=se)


# -- priorities and the factor tree -------------------------------------------------------------

QUADRANTS = {
    (True, False): "优先改进",   # important and performing badly: fix first
    (True, True): "保持优势",    # important and performing well: keep
    (False, False): "次要改进",  # less important, performing badly
    (False, True): "维持现状",   # less important, performing well
}


def priorities(factors: Sequence[str], importance: Sequence[float],
               performance: Sequence[float]) -> list[dict[str, object]]:
    """Importance × performance: each factor's priority (importance × (1 − performance), both
    on 0–1 scales), its rank by priority and its quadrant, split at the mean importance and
    the mean performance. Sorted by priority, highest first."""
    imp = np.asarray(importance, dtype=float)
    perf = np.asarray(performance, dtype=float)
    share = imp / imp.sum() if imp.sum() > 0 else np.zeros_like(imp)
    score = share * (1.0 - perf)
    order = sorted(range(len(factors)), key=lambda j: (-score[j], -imp[j], factors[j]))
    out = []
    for rank, j in enumerate(order, start=1):
        quadrant = QUADRANTS[(bool(imp[j] >= imp.mean()), bool(perf[j] >= perf.mean()))]
        out.append({"factor": factors[j], "priority": float(score[j]), "rank": rank,
                    "quadrant": quadrant})
    return out


def aggregate_tree(importance: Mapping[str, float],
                   parent: Mapping[str, str | None]) -> dict[str, float]:
    """Importance of every node of a factor tree: a leaf's own value plus everything below it.

    ``parent`` maps each node to its parent (``None`` for a top category). Leaves missing from
    ``importance`` count 0; values of unknown nodes are kept at their own name.
    """
    total: dict[str, float] = {name: 0.0 for name in parent}
    for name, value in importance.items():
        node: str | None = name
        seen: set[str] = set()
        while node is not None and node not in seen:
            seen.add(node)
            total[node] = total.get(node, 0.0) + float(value)
            node = parent.get(node)
    return total
