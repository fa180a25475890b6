"""Tests for siyu.analytics.clv: summaries, BG/NBD, Gamma-Gamma and CLV.

The CDNOW reproduction is a project acceptance criterion: the published estimates of
Fader, Hardie & Lee (2005) must come back within 1% each.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest
from scipy import optimize, special

from siyu.analytics import clv
from siyu.analytics.clv import (
    BGNBDFit,
    BGNBDParams,
    GammaGammaFit,
    GammaGammaParams,
    RFMSummary,
    bgnbd_conditional_expected_transactions,
    bgnbd_expected_transactions,
    bgnbd_log_likelihood,
    bgnbd_probability_alive,
    customer_lifetime_value,
    day_number,
    fit_bgnbd,
    fit_gamma_gamma,
    gamma_gamma_conditional_expected_value,
    monthly_rate_from_annual,
    summarise_arrays,
    summarise_transactions,
)
from tests.datasets import cdnow_orders

CALIBRATION_END = "1997-09-30"
HOLDOUT_END = "1998-06-30"
CDNOW_PARAMS = BGNBDParams(r=0.243, alpha=4.414, a=0.793, b=2.426)


def _read_cdnow() -> list[tuple[str, str, float]]:
    return [(row["customer_id"], row["ts"], float(row["amount"])) for row in cdnow_orders()]


@pytest.fixture(scope="module")
def cdnow_rows() -> list[tuple[str, str, float]]:
    return _read_cdnow()


@pytest.fixture(scope="module")
def cdnow(cdnow_rows: list[tuple[str, str, float]]) -> RFMSummary:
    return summarise_transactions(
        cdnow_rows, calibration_end=CALIBRATION_END, holdout_end=HOLDOUT_END
    )


@pytest.fixture(scope="module")
def cdnow_bgnbd(cdnow: RFMSummary) -> BGNBDFit:
    return fit_bgnbd(cdnow.frequency, cdnow.recency, cdnow.age)


@pytest.fixture(scope="module")
def cdnow_gamma_gamma(cdnow: RFMSummary) -> GammaGammaFit:
    return fit_gamma_gamma(cdnow.frequency, cdnow.monetary_value)


# --------------------------------------------------------------------------------------
# CDNOW reproduction (acceptance)
# --------------------------------------------------------------------------------------


def test_cdnow_summary_has_the_published_shape(cdnow: RFMSummary) -> None:
    assert len(cdnow) == 2357
    assert int((cdnow.frequency > 0).sum()) == 946
    # Customer 00004: first purchase 1997-01-01, repeats 1997-01-18 and 1997-08-02.
    first = list(cdnow.customers).index("00004")
    assert cdnow.frequency[first] == 2
    assert cdnow.recency[first] == pytest.approx(213 / 7)
    assert cdnow.age[first] == pytest.approx(272 / 7)  # 38.86 weeks, as published
    assert cdnow.holdout_length == pytest.approx(39.0)


@pytest.mark.parametrize(
    ("name", "published"), [("r", 0.243), ("alpha", 4.414), ("a", 0.793), ("b", 2.426)]
)
def test_cdnow_bgnbd_reproduces_published_estimates(
    cdnow_bgnbd: BGNBDFit, name: str, published: float
) -> None:
    assert cdnow_bgnbd.converged
    assert getattr(cdnow_bgnbd.params, name) == pytest.approx(published, rel=0.01)


def test_cdnow_bgnbd_reproduces_published_log_likelihood(cdnow_bgnbd: BGNBDFit) -> None:
    assert cdnow_bgnbd.log_likelihood == pytest.approx(-9582.4, abs=0.5)
    assert cdnow_bgnbd.n_customers == 2357


def test_cdnow_day_convention_is_the_published_one(cdnow: RFMSummary) -> None:
    """T runs to 30 September itself; counting that day in (one more day of age for every
    customer) fits measurably worse than the published -9582.4, so it is not the convention."""
    alternative = fit_bgnbd(cdnow.frequency, cdnow.recency, cdnow.age + 1 / 7)
    assert alternative.log_likelihood < -9582.4 - 5


@pytest.mark.parametrize(("name", "published"), [("p", 6.25), ("q", 3.74), ("gamma", 15.44)])
def test_cdnow_gamma_gamma_reproduces_published_estimates(
    cdnow_gamma_gamma: GammaGammaFit, name: str, published: float
) -> None:
    assert cdnow_gamma_gamma.converged
    assert cdnow_gamma_gamma.n_customers == 946
    assert getattr(cdnow_gamma_gamma.params, name) == pytest.approx(published, rel=0.01)


def test_cdnow_holdout_actual_and_forecast(cdnow: RFMSummary, cdnow_bgnbd: BGNBDFit) -> None:
    """Weeks 40-78: actual repeat transactions (same-day purchases collapsed, like the
    calibration data) against the sum of the conditional expectations (eq. 10).

    The published "≈1,788" is not what this data gives under the day convention that
    reproduces the calibration fit (1,882; counting customer-weeks gives 1,787).  The
    BG/NBD under-forecasts this holdout by 12%; the bound below pins that, so a change in
    either number is noticed.
    """
    assert cdnow.holdout_frequency is not None and cdnow.holdout_length is not None
    actual = float(cdnow.holdout_frequency.sum())
    forecast = float(
        bgnbd_conditional_expected_transactions(
            cdnow_bgnbd.params, cdnow.holdout_length, cdnow.frequency, cdnow.recency, cdnow.age
        ).sum()
    )
    assert actual == 1882
    assert forecast == pytest.approx(1653.4, abs=1.0)
    assert abs(forecast - actual) / actual < 0.15


def test_cdnow_array_path_agrees_with_rows_path(
    cdnow_rows: list[tuple[str, str, float]], cdnow: RFMSummary
) -> None:
    keys = sorted({key for key, _, _ in cdnow_rows})
    code_of = {key: code for code, key in enumerate(keys)}
    codes = np.array([code_of[key] for key, _, _ in cdnow_rows])
    days = np.array([when for _, when, _ in cdnow_rows], dtype="datetime64[D]")
    amounts = np.array([amount for _, _, amount in cdnow_rows])
    fast = summarise_arrays(
        codes, days, amounts, calibration_end=CALIBRATION_END, holdout_end=HOLDOUT_END
    )
    order = np.argsort(cdnow.customers.astype(str))  # rows path keeps first-seen order
    assert np.array_equal(np.asarray(keys)[fast.customers], cdnow.customers[order])
    np.testing.assert_array_equal(fast.frequency, cdnow.frequency[order])
    np.testing.assert_allclose(fast.recency, cdnow.recency[order])
    np.testing.assert_allclose(fast.age, cdnow.age[order])
    np.testing.assert_allclose(fast.monetary_value, cdnow.monetary_value[order])
    assert fast.holdout_frequency is not None and cdnow.holdout_frequency is not None
    np.testing.assert_array_equal(fast.holdout_frequency, cdnow.holdout_frequency[order])


# --------------------------------------------------------------------------------------
# Summaries on hand-made histories
# --------------------------------------------------------------------------------------


def test_same_day_purchases_are_one_transaction() -> None:
    start = dt.date(2024, 1, 1)
    rows = [
        ("a", start, 10.0),
        ("a", start, 5.0),
        ("a", start + dt.timedelta(days=7), 20.0),
        ("a", start + dt.timedelta(days=14), 30.0),
    ]
    summary = summarise_transactions(rows, calibration_end=start + dt.timedelta(days=20))
    assert list(summary.customers) == ["a"]
    assert summary.frequency.tolist() == [2.0]
    assert summary.recency.tolist() == [2.0]
    assert summary.age.tolist() == pytest.approx([20 / 7])
    assert summary.monetary_value.tolist() == [25.0]  # mean of the repeats only
    assert summary.holdout_frequency is None and summary.holdout_length is None


def test_same_day_amounts_are_summed_into_the_repeat_value() -> None:
    rows = [("a", "2024-01-01", 1.0), ("a", "2024-01-03", 4.0), ("a", "2024-01-03", 6.0)]
    summary = summarise_transactions(rows, calibration_end="2024-01-10", time_unit="day")
    assert summary.frequency.tolist() == [1.0]
    assert summary.recency.tolist() == [2.0]
    assert summary.age.tolist() == [9.0]
    assert summary.monetary_value.tolist() == [10.0]


def test_calibration_and_holdout_boundaries() -> None:
    rows = [
        ("a", "2024-01-01", 1.0),
        ("a", "2024-01-31", 1.0),  # last calibration day: calibration
        ("a", "2024-02-01", 1.0),  # first holdout day
        ("a", "2024-02-01T18:30:00", 1.0),  # same day, one transaction
        ("a", "2024-02-29", 1.0),  # holdout end, inclusive
        ("a", "2024-03-01", 1.0),  # after the holdout: ignored
        ("b", "2024-01-31", 7.0),  # first purchase on the calibration end: age 0
        ("c", "2024-02-02", 1.0),  # first purchase after calibration: left out
    ]
    summary = summarise_transactions(
        rows, calibration_end="2024-01-31", holdout_end="2024-02-29", time_unit="day"
    )
    assert list(summary.customers) == ["a", "b"]
    assert summary.frequency.tolist() == [1.0, 0.0]
    assert summary.recency.tolist() == [30.0, 0.0]
    assert summary.age.tolist() == [30.0, 0.0]
    assert summary.monetary_value.tolist() == [1.0, 0.0]
    assert summary.holdout_frequency is not None
    assert summary.holdout_frequency.tolist() == [2.0, 0.0]
    assert summary.holdout_length == 29.0


def test_array_path_with_sparse_codes_and_unsorted_rows() -> None:
    codes = np.array([10**15, 3, 10**15, 3, 3])
    days = np.array([5, 9, 0, 0, 0])
    amounts = np.array([2.0, 3.0, 1.0, 4.0, 5.0])
    summary = summarise_arrays(codes, days, amounts, calibration_end=14, time_unit="day")
    assert summary.customers.tolist() == [3, 10**15]
    assert summary.frequency.tolist() == [1.0, 1.0]
    assert summary.recency.tolist() == [9.0, 5.0]
    assert summary.age.tolist() == [14.0, 14.0]
    assert summary.monetary_value.tolist() == [3.0, 2.0]
    assert summary.first_purchase_day.tolist() == [0, 0]


def test_summary_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="same length"):
        summarise_arrays([1, 2], [0], [1.0, 2.0], calibration_end=5)
    with pytest.raises(ValueError, match="finite"):
        summarise_arrays([1], [0], [math.nan], calibration_end=5)
    with pytest.raises(ValueError, match="holdout_end"):
        summarise_arrays([1], [0], [1.0], calibration_end=5, holdout_end=4)
    with pytest.raises(ValueError, match="time_unit"):
        summarise_arrays([1], [0], [1.0], calibration_end=5, time_unit="month")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="row 2"):
        summarise_transactions(
            [("a", "2024-01-01", 1.0), ("a", "not a day", 1.0)], calibration_end="2024-02-01"
        )
    with pytest.raises(ValueError, match="after today"):
        summarise_transactions(
            [("a", "2024-01-01", 1.0)],
            calibration_end="2024-02-01",
            holdout_end="2024-03-01",
            today="2024-02-15",
        )


def test_day_number_accepts_the_documented_forms() -> None:
    assert day_number("1970-01-02") == 1
    assert day_number(dt.date(1970, 1, 2)) == 1
    assert day_number(dt.datetime(1970, 1, 2, 23, 59)) == 1
    assert day_number(np.datetime64("1970-01-02T12:00")) == 1
    assert day_number(7) == 7


# --------------------------------------------------------------------------------------
# BG/NBD behaviour
# --------------------------------------------------------------------------------------


def test_probability_alive_falls_as_recency_gets_older() -> None:
    recency = np.array([30.0, 20.0, 10.0, 5.0, 1.0])
    p_alive = bgnbd_probability_alive(CDNOW_PARAMS, np.full(5, 3.0), recency, np.full(5, 32.0))
    assert np.all(np.diff(p_alive) < 0)
    assert np.all((p_alive > 0) & (p_alive < 1))
    assert bgnbd_probability_alive(CDNOW_PARAMS, [0.0], [0.0], [32.0]).tolist() == [1.0]


def test_probability_alive_is_stable_for_heavy_buyers() -> None:
    p_alive = bgnbd_probability_alive(CDNOW_PARAMS, [5000.0], [1.0], [300.0])
    assert p_alive.tolist() == [0.0]
    assert bgnbd_probability_alive(CDNOW_PARAMS, [5000.0], [300.0], [300.0])[0] > 0.99


def test_expected_transactions_increase_with_time() -> None:
    t = np.array([0.0, 1.0, 5.0, 13.0, 39.0, 78.0, 520.0])
    expected = bgnbd_expected_transactions(CDNOW_PARAMS, t)
    assert expected[0] == 0.0
    assert np.all(np.diff(expected) > 0)
    conditional = bgnbd_conditional_expected_transactions(CDNOW_PARAMS, t, 2.0, 30.0, 38.0)
    assert conditional[0] == 0.0
    assert np.all(np.diff(conditional) > 0)


def test_expected_transactions_match_the_rate_for_small_t() -> None:
    """A new customer is alive, so for tiny t E[X(t)] ≈ E[lambda] t = r / alpha t."""
    t = 1e-4
    expected = float(bgnbd_expected_transactions(CDNOW_PARAMS, t))
    assert expected == pytest.approx(CDNOW_PARAMS.r / CDNOW_PARAMS.alpha * t, rel=1e-3)


@pytest.mark.parametrize("a", [0.793, 1.0, 1.0 + 2e-6, 3.5])
def test_conditional_expectation_matches_eq_10_as_printed(a: float) -> None:
    params = BGNBDParams(r=0.243, alpha=4.414, a=a, b=2.426)
    x = np.array([0.0, 1.0, 2.0, 7.0, 15.0])
    t_x = np.array([0.0, 5.0, 30.0, 20.0, 35.0])
    big_t = np.array([10.0, 38.0, 32.0, 36.0, 36.0])
    t = 39.0
    ours = bgnbd_conditional_expected_transactions(params, t, x, t_x, big_t)
    a_eval = a if abs(a - 1.0) > 1e-3 else 1.0 + 1e-3  # eq. 10 is 0/0 at a = 1
    r, alpha, b = params.r, params.alpha, params.b
    z = t / (alpha + big_t + t)
    numerator = (
        (a_eval + b + x - 1)
        / (a_eval - 1)
        * (
            1
            - ((alpha + big_t) / (alpha + big_t + t)) ** (r + x)
            * special.hyp2f1(r + x, b + x, a_eval + b + x - 1, z)
        )
    )
    odds = np.where(
        x > 0,
        a_eval / (b + np.maximum(x, 1) - 1) * ((alpha + big_t) / (alpha + t_x)) ** (r + x),
        0.0,
    )
    printed = numerator / (1 + odds)
    tolerance = 1e-9 if a_eval == a else 2e-3
    np.testing.assert_allclose(ours, printed, rtol=tolerance)


def test_log_likelihood_gradient_is_exact(cdnow: RFMSummary) -> None:
    x, t_x, big_t = cdnow.frequency[:400], cdnow.recency[:400], cdnow.age[:400]

    def value(log_params: np.ndarray) -> float:
        return float(clv._bgnbd_terms(log_params, x, t_x, big_t, grad=False)[0].sum())

    def gradient(log_params: np.ndarray) -> np.ndarray:
        grad = clv._bgnbd_terms(log_params, x, t_x, big_t, grad=True)[1]
        assert grad is not None
        return grad.sum(axis=1)

    point = np.log([0.3, 5.0, 0.7, 2.0])
    assert optimize.check_grad(value, gradient, point) < 1e-4 * np.abs(gradient(point)).max()
    ll = bgnbd_log_likelihood(BGNBDParams(0.3, 5.0, 0.7, 2.0), x, t_x, big_t)
    assert float(ll.sum()) == pytest.approx(value(point))


def _simulate_bgnbd(
    params: BGNBDParams, ages: np.ndarray, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Draw (x, t_x) from the BG/NBD story: Poisson purchases at rate lambda, a customer
    dying after the J-th repeat purchase, J ~ Geometric(p)."""
    rng = np.random.default_rng(seed)
    n = ages.shape[0]
    rate = rng.gamma(params.r, 1 / params.alpha, n)
    dropout = rng.beta(params.a, params.b, n)
    lives = rng.geometric(dropout)
    events = rng.poisson(rate * ages)
    x = np.minimum(events, lives)
    # The x-th of `events` uniform purchase times on (0, T] is T * Beta(x, events - x + 1).
    t_x = np.where(x > 0, ages * rng.beta(np.maximum(x, 1), np.maximum(events - x + 1, 1)), 0.0)
    return x.astype(np.float64), t_x


def test_fit_recovers_simulated_parameters() -> None:
    truth = BGNBDParams(r=0.5, alpha=6.0, a=0.9, b=3.0)
    ages = np.random.default_rng(0).uniform(26.0, 52.0, 40_000)
    x, t_x = _simulate_bgnbd(truth, ages, seed=1)
    fit = fit_bgnbd(x, t_x, ages)
    assert fit.converged
    assert fit.params.r == pytest.approx(truth.r, rel=0.1)
    assert fit.params.alpha == pytest.approx(truth.alpha, rel=0.15)
    assert fit.params.a == pytest.approx(truth.a, rel=0.25)
    assert fit.params.b == pytest.approx(truth.b, rel=0.3)


def test_fit_refuses_inconsistent_histories() -> None:
    with pytest.raises(ValueError, match="recency"):
        fit_bgnbd([1.0], [5.0], [4.0])
    with pytest.raises(ValueError, match="recency 0"):
        fit_bgnbd([0.0], [1.0], [4.0])
    with pytest.raises(ValueError, match="no customers"):
        fit_bgnbd([], [], [])


# --------------------------------------------------------------------------------------
# Gamma-Gamma and CLV
# --------------------------------------------------------------------------------------


def test_gamma_gamma_expectation_shrinks_towards_the_population_mean() -> None:
    params = GammaGammaParams(p=6.25, q=3.74, gamma=15.44)
    population = params.gamma * params.p / (params.q - 1)
    values = gamma_gamma_conditional_expected_value(
        params, [0.0, 1.0, 5.0, 50.0], [99.0, 60.0, 60.0, 60.0]
    )
    assert values[0] == pytest.approx(population)
    assert population < values[1] < values[2] < values[3] < 60.0
    with pytest.raises(ValueError, match="q <= 1"):
        gamma_gamma_conditional_expected_value(GammaGammaParams(1.0, 0.9, 1.0), [1.0], [1.0])


def test_gamma_gamma_fit_skips_customers_it_cannot_use() -> None:
    rng = np.random.default_rng(3)
    x = rng.integers(1, 6, 5000).astype(float)
    nu = rng.gamma(4.0, 1 / 20.0, 5000)
    m = rng.gamma(5.0 * x, 1 / (nu * x))
    with_extras = fit_gamma_gamma(np.append(x, [0.0, 2.0]), np.append(m, [0.0, 0.0]))
    assert with_extras.n_customers == 5000
    assert with_extras.params.p == pytest.approx(5.0, rel=0.15)
    assert with_extras.params.q == pytest.approx(4.0, rel=0.2)
    with pytest.raises(ValueError, match="no customer"):
        fit_gamma_gamma([0.0], [0.0])


def test_clv_is_the_discounted_sum_of_expected_spend() -> None:
    gg = GammaGammaParams(p=6.25, q=3.74, gamma=15.44)
    history = (
        np.array([0.0, 2.0, 6.0]),
        np.array([0.0, 30.0, 10.0]),
        np.array([38.0, 38.0, 38.0]),
        np.array([0.0, 40.0, 20.0]),
    )
    spend = gamma_gamma_conditional_expected_value(gg, history[0], history[3])
    undiscounted = customer_lifetime_value(
        CDNOW_PARAMS, gg, *history, horizon_months=12, monthly_discount_rate=0.0
    )
    year = 12 * clv.DAYS_PER_MONTH / 7
    expected = bgnbd_conditional_expected_transactions(CDNOW_PARAMS, year, *history[:3])
    np.testing.assert_allclose(undiscounted, spend * expected, rtol=1e-12)

    discounted = customer_lifetime_value(CDNOW_PARAMS, gg, *history, monthly_discount_rate=0.01)
    assert np.all(discounted < undiscounted) and np.all(discounted > 0.85 * undiscounted)
    profit = customer_lifetime_value(
        CDNOW_PARAMS, gg, *history, monthly_discount_rate=0.01, margin=0.3
    )
    np.testing.assert_allclose(profit, 0.3 * discounted)
    assert customer_lifetime_value(CDNOW_PARAMS, gg, *history, horizon_months=0).tolist() == [
        0.0,
        0.0,
        0.0,
    ]
    longer = customer_lifetime_value(CDNOW_PARAMS, gg, *history, horizon_months=24)
    assert np.all(longer > discounted)


def test_clv_in_days_equals_clv_in_weeks_for_the_same_model() -> None:
    gg = GammaGammaParams(p=6.25, q=3.74, gamma=15.44)
    in_days = BGNBDParams(CDNOW_PARAMS.r, CDNOW_PARAMS.alpha * 7, CDNOW_PARAMS.a, CDNOW_PARAMS.b)
    weeks = customer_lifetime_value(CDNOW_PARAMS, gg, [3.0], [20.0], [30.0], [25.0])
    days = customer_lifetime_value(in_days, gg, [3.0], [140.0], [210.0], [25.0], time_unit="day")
    np.testing.assert_allclose(days, weeks, rtol=1e-10)


def test_monthly_rate_from_annual() -> None:
    assert monthly_rate_from_annual(0.0) == 0.0
    assert (1 + monthly_rate_from_annual(0.1)) ** 12 == pytest.approx(1.1)
    with pytest.raises(ValueError):
        monthly_rate_from_annual(-1.0)


def test_cdnow_clv_is_finite_and_ordered(
    cdnow: RFMSummary, cdnow_bgnbd: BGNBDFit, cdnow_gamma_gamma: GammaGammaFit
) -> None:
    values = customer_lifetime_value(
        cdnow_bgnbd.params,
        cdnow_gamma_gamma.params,
        cdnow.frequency,
        cdnow.recency,
        cdnow.age,
        cdnow.monetary_value,
    )
    assert values.shape == (2357,) and np.all(np.isfinite(values)) and np.all(values >= 0)
    # The heaviest calibration buyers are worth more than one-time buyers on average.
    assert values[cdnow.frequency >= 5].mean() > 5 * values[cdnow.frequency == 0].mean()
