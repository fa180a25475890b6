"""Key-driver maths against known truth, brute force and a published worked example."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from siyu.voc import drivers

# mtcars (R's datasets package; Henderson & Velleman 1981, from Motor Trend 1974):
# mpg, cyl, disp, hp, wt of the 32 cars.
MTCARS = np.array([
    [21.0, 6, 160.0, 110, 2.62], [21.0, 6, 160.0, 110, 2.875], [22.8, 4, 108.0, 93, 2.32],
    [21.4, 6, 258.0, 110, 3.215], [18.7, 8, 360.0, 175, 3.44], [18.1, 6, 225.0, 105, 3.46],
    [14.3, 8, 360.0, 245, 3.57], [24.4, 4, 146.7, 62, 3.19], [22.8, 4, 140.8, 95, 3.15],
    [19.2, 6, 167.6, 123, 3.44], [17.8, 6, 167.6, 123, 3.44], [16.4, 8, 275.8, 180, 4.07],
    [17.3, 8, 275.8, 180, 3.73], [15.2, 8, 275.8, 180, 3.78], [10.4, 8, 472.0, 205, 5.25],
    [10.4, 8, 460.0, 215, 5.424], [14.7, 8, 440.0, 230, 5.345], [32.4, 4, 78.7, 66, 2.2],
    [30.4, 4, 75.7, 52, 1.615], [33.9, 4, 71.1, 65, 1.835], [21.5, 4, 120.1, 97, 2.465],
    [15.5, 8, 318.0, 150, 3.52], [15.2, 8, 304.0, 150, 3.435], [13.3, 8, 350.0, 245, 3.84],
    [19.2, 8, 400.0, 175, 3.845], [27.3, 4, 79.0, 66, 1.935], [26.0, 4, 120.3, 91, 2.14],
    [30.4, 4, 95.1, 113, 1.513], [15.8, 8, 351.0, 264, 3.17], [19.7, 6, 145.0, 175, 2.77],
    [15.0, 8, 301.0, 335, 3.57], [21.4, 4, 121.0, 109, 2.78],
])


def ols_r2(x: np.ndarray, y: np.ndarray) -> float:
    if x.shape[1] == 0:
        return 0.0
    a = np.column_stack([np.ones(len(y)), x])
    resid = y - a @ np.linalg.lstsq(a, y, rcond=None)[0]
    return 1.0 - float(resid @ resid) / float(((y - y.mean()) ** 2).sum())


def brute_force_shapley(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Average marginal R² gain over every order of the factors, each R² a fresh OLS fit."""
    k = x.shape[1]
    phi = np.zeros(k)
    orders = list(itertools.permutations(range(k)))
    for order in orders:
        used: list[int] = []
        for j in order:
            before = ols_r2(x[:, used], y)
            used.append(j)
            phi[j] += ols_r2(x[:, used], y) - before
    return phi / len(orders)


def synthetic(n: int, coefs: list[float], rho: float, noise: float, seed: int
              ) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    k = len(coefs)
    cov = np.full((k, k), rho) + (1 - rho) * np.eye(k)
    x = rng.multivariate_normal(np.zeros(k), cov, size=n)
    return x, x @ np.array(coefs) + rng.normal(0, noise, n)


def test_shapley_equals_brute_force_and_sums_to_r2() -> None:
    x, y = synthetic(400, [0.9, 0.5, 0.3, 0.1, 0.0], rho=0.4, noise=1.0, seed=1)
    res = drivers.shapley_r2(x, y)
    np.testing.assert_allclose(res.importance, brute_force_shapley(x, y), atol=1e-6)
    assert res.importance.sum() == pytest.approx(ols_r2(x, y), abs=1e-9)
    assert res.r2 == pytest.approx(ols_r2(x, y), abs=1e-9)
    assert res.exact and res.stderr is None


def test_known_truth_order_is_recovered_with_15_factors() -> None:
    coefs = [round(1.5 - 0.1 * j, 2) for j in range(15)]  # 1.5, 1.4, ... 0.1
    x, y = synthetic(20_000, coefs, rho=0.3, noise=2.0, seed=7)
    res = drivers.shapley_r2(x, y, [f"f{j}" for j in range(15)])
    assert list(np.argsort(-res.importance)) == list(range(15))
    assert res.importance.sum() == pytest.approx(res.r2, abs=1e-9)
    rw = drivers.relative_weights(x, y)
    assert list(np.argsort(-rw.importance)) == list(range(15))
    assert rw.importance.sum() == pytest.approx(res.r2, abs=1e-9)


def test_relative_weights_match_the_rwa_vignette() -> None:
    # rwa (R package) vignette "regression methods": rwa_multiregress(mtcars, "mpg",
    # c("cyl", "disp", "hp", "wt")) gives these raw and rescaled weights.
    res = drivers.relative_weights(MTCARS[:, 1:], MTCARS[:, 0], ["cyl", "disp", "hp", "wt"])
    np.testing.assert_allclose(res.importance, [0.2096904, 0.1883043, 0.1799590, 0.2706812],
                               atol=5e-8)
    np.testing.assert_allclose(res.share * 100, [24.70914, 22.18908, 21.20570, 31.89607],
                               atol=5e-6)
    assert res.r2 == pytest.approx(ols_r2(MTCARS[:, 1:], MTCARS[:, 0]), abs=1e-9)


def test_sampled_shapley_is_within_its_stated_error() -> None:
    x, y = synthetic(3000, [0.8, 0.6, 0.4, 0.3, 0.2, 0.1], rho=0.5, noise=1.0, seed=3)
    exact = drivers.shapley_r2(x, y)
    est = drivers.shapley_r2(x, y, exact_max=3, orders=600, seed=5)
    assert not est.exact and est.stderr is not None
    assert np.all(np.abs(est.importance - exact.importance) <= 4 * est.stderr + 1e-12)
    assert est.r2 == pytest.approx(exact.r2)


def test_constant_factor_gets_nothing_and_too_few_rows_are_refused() -> None:
    x, y = synthetic(200, [1.0, 0.5], rho=0.0, noise=1.0, seed=2)
    x = np.column_stack([x, np.ones(200)])
    res = drivers.shapley_r2(x, y)
    assert res.importance[2] == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="complete responses"):
        drivers.shapley_r2(x[:3], y[:3])


def test_logistic_shapley_sums_to_mcfadden_and_orders_drivers() -> None:
    rng = np.random.default_rng(11)
    x = rng.normal(size=(4000, 4))
    logit = -0.5 + x @ np.array([2.0, 1.0, 0.5, 0.0])
    y = (rng.random(4000) < 1 / (1 + np.exp(-logit))).astype(float)
    res = drivers.shapley_logistic(x, y)
    assert res.importance.sum() == pytest.approx(drivers.mcfadden_r2(x, y), abs=1e-9)
    assert list(np.argsort(-res.importance)) == [0, 1, 2, 3]
    # McFadden's R² by hand for one factor: 1 - ll(model)/ll(null)
    p = y.mean()
    ll0 = len(y) * (p * math.log(p) + (1 - p) * math.log(1 - p))
    assert 0 < drivers.mcfadden_r2(x[:, :1], y) < 1 and ll0 < 0
    with pytest.raises(ValueError, match="0/1"):
        drivers.shapley_logistic(x, y * 2)


def test_priorities_and_tree_aggregation() -> None:
    ranked = drivers.priorities(["物流", "口味", "包装"], [0.3, 0.2, 0.05], [0.4, 0.8, 0.5])
    assert [r["factor"] for r in ranked] == ["物流", "口味", "包装"]
    assert ranked[0]["quadrant"] == "优先改进" and ranked[1]["quadrant"] == "保持优势"
    tree = {"服务水平": None, "装机服务": "服务水平", "故障维修": "服务水平", "资费套餐": None,
            "套餐价格": "资费套餐"}
    total = drivers.aggregate_tree({"装机服务": 0.2, "故障维修": 0.1, "套餐价格": 0.15}, tree)
    assert total["服务水平"] == pytest.approx(0.3) and total["资费套餐"] == pytest.approx(0.15)
    assert total["装机服务"] == pytest.approx(0.2)
