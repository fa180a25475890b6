"""Customer intelligence: score recomputation, CLV fitting, LTV/CAC and the dashboard summary.

Service functions take an explicit session and never commit (the route, CLI command or job
that calls them does), except :func:`recompute_scores` given a session *factory*, which
runs its own unit of work.

Time: orders and events are stored in UTC; days ("same day", days since the last purchase,
calibration ends) are calendar days in the brand's zone ``Settings.timezone``.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from siyu.analytics import clv as clv_math
from siyu.analytics import repository as repo
from siyu.analytics import scoring
from siyu.analytics.config import ScoringConfig
from siyu.analytics.errors import ClvFitFailed, InvalidClvRequest, ScoresNotComputed
from siyu.analytics.models import ClvModel
from siyu.analytics.schedule import (  # noqa: F401  (part of this module's interface)
    RECOMPUTE_BUCKET_SECONDS,
    RECOMPUTE_JOB,
    request_recompute,
    schedule_recompute,
)
from siyu.analytics.timeutil import NO_DAY, day_of, local_days, local_midnight
from siyu.db import refresh_statistics, session_scope
from siyu.errors import InvalidInput

Progress = Callable[[str, int, int], None]
"""``progress(step, completed, total)``: called as recomputation advances."""


# -- facts --------------------------------------------------------------------------------------


@dataclass
class _Loaded:
    facts: scoring.Facts
    first_order: NDArray[np.float64]
    last_order: NDArray[np.float64]
    last_active: NDArray[np.float64]
    purchase_index: NDArray[np.int64]
    purchase_day: NDArray[np.int64]
    purchase_amount: NDArray[np.float64]


def _group_ends(keys: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Start and end (exclusive) positions of runs of equal values in sorted ``keys``."""
    if keys.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    change = np.flatnonzero(keys[1:] != keys[:-1]) + 1
    starts = np.concatenate(([0], change))
    ends = np.concatenate((change, [keys.size]))
    return starts.astype(np.int64), ends.astype(np.int64)


def _index_of(ids: NDArray[np.int64], wanted: NDArray[np.int64]) -> tuple[NDArray[np.int64],
                                                                           NDArray[np.bool_]]:
    """Positions of ``wanted`` in sorted ``ids`` and which of them are present."""
    pos = np.searchsorted(ids, wanted)
    pos = np.minimum(pos, max(ids.size - 1, 0))
    found = ids[pos] == wanted if ids.size else np.zeros(wanted.shape[0], dtype=bool)
    return pos.astype(np.int64), found


def _load(session: Session, *, now: dt.datetime, config: ScoringConfig, timezone: str,
          progress: Progress) -> _Loaded:
    customers_arr = repo.load_customers(session)
    ids = customers_arr["id"].astype(np.int64)
    n = ids.size
    progress("读取客户", 1, 5)

    purchases = repo.load_purchases(session, until=now)
    pos, found = _index_of(ids, purchases["customer"])
    idx, ts, amount = pos[found], purchases["ts"][found], purchases["amount"][found]
    order = np.lexsort((ts, idx))
    idx, ts, amount = idx[order], ts[order], amount[order]
    day = local_days(ts, timezone)
    orders_count = np.bincount(idx, minlength=n).astype(np.int64)
    spend = np.bincount(idx, weights=amount, minlength=n).astype(np.float64)
    first_order = np.full(n, np.nan)
    last_order = np.full(n, np.nan)
    starts, ends = _group_ends(idx)
    owners = idx[starts]
    first_order[owners] = ts[starts]
    last_order[owners] = ts[ends - 1]
    # Distinct purchase days: rows are sorted by (customer, time), so days ascend too.
    new_day = np.ones(idx.size, dtype=bool)
    if idx.size:
        new_day[1:] = (idx[1:] != idx[:-1]) | (day[1:] != day[:-1])
    pair_idx, pair_day = idx[new_day], day[new_day]
    purchase_days = np.bincount(pair_idx, minlength=n).astype(np.int64)
    first_day = np.full(n, NO_DAY, dtype=np.int64)
    last_day = np.full(n, NO_DAY, dtype=np.int64)
    prev_day = np.full(n, NO_DAY, dtype=np.int64)
    p_starts, p_ends = _group_ends(pair_idx)
    p_owner = pair_idx[p_starts]
    first_day[p_owner] = pair_day[p_starts]
    last_day[p_owner] = pair_day[p_ends - 1]
    two = (p_ends - p_starts) >= 2
    prev_day[p_owner[two]] = pair_day[p_ends[two] - 2]
    progress("读取订单", 2, 5)

    fan = config.fan
    events = repo.load_event_facts(session, until=now, shares=fan.share_events,
                                   feedback=fan.feedback_events,
                                   complaints=fan.complaint_events,
                                   ratings=config.asset.rating_sources)
    e_pos, e_found = _index_of(ids, events["customer"])
    e_idx = e_pos[e_found]
    events = events[e_found]

    def spread(column: str, fill: float | int, dtype: Any) -> NDArray[Any]:
        out = np.full(n, fill, dtype=dtype)
        out[e_idx] = events[column]
        return out

    shares = spread("shares", 0, np.int64)
    feedbacks = spread("feedbacks", 0, np.int64)
    complaints = spread("complaints", 0, np.int64)
    first_complaint = spread("first_complaint", np.nan, np.float64)
    last_event = spread("last_event", np.nan, np.float64)
    rating_sum = spread("rating_sum", 0.0, np.float64)
    rating_count = spread("rating_count", 0, np.int64)
    with np.errstate(invalid="ignore"):
        stayed = (complaints > 0) & (last_order > first_complaint)
    last_active = np.fmax(last_event, last_order)

    made, referred_ids = repo.load_referrals(session, until=now)
    r_pos, r_found = _index_of(ids, made["customer"])
    referrals = np.zeros(n, dtype=np.int64)
    referrals[r_pos[r_found]] = made["count"][r_found]
    referred = np.zeros(n, dtype=bool)
    rr_pos, rr_found = _index_of(ids, referred_ids)
    referred[rr_pos[rr_found]] = True
    progress("读取事件", 3, 5)

    facts = scoring.Facts(
        customer_id=ids, created_day=local_days(customers_arr["created"].astype(np.float64),
                                                timezone),
        acquisition_channel=customers_arr["channel"].tolist(), orders_count=orders_count,
        spend=spend, purchase_days=purchase_days, first_day=first_day, prev_day=prev_day,
        last_day=last_day, referrals=referrals, referred=referred, shares=shares,
        feedbacks=feedbacks, complaints=complaints, stayed_after_complaint=stayed,
        rating_sum=rating_sum, rating_count=rating_count)
    return _Loaded(facts, first_order, last_order, last_active, idx, day, amount)


def active_model(session: Session) -> ClvModel | None:
    """The newest active fitted CLV model, if any."""
    return session.scalars(select(ClvModel).where(ClvModel.is_active.is_(True))
                           .order_by(ClvModel.id.desc()).limit(1)).first()


def _clv_inputs(model: ClvModel | None, loaded: _Loaded, today: int) -> scoring.ClvInputs | None:
    if model is None or loaded.purchase_index.size == 0:
        return None
    unit: clv_math.TimeUnit = "week" if model.time_unit == "week" else "day"
    summary = clv_math.summarise_arrays(loaded.purchase_index, loaded.purchase_day,
                                        loaded.purchase_amount, calibration_end=today,
                                        time_unit=unit)
    b, g = model.bgnbd, model.gamma_gamma
    return scoring.ClvInputs(
        model_id=model.id, time_unit=unit,
        bgnbd=clv_math.BGNBDParams(r=b["r"], alpha=b["alpha"], a=b["a"], b=b["b"]),
        gamma_gamma=clv_math.GammaGammaParams(p=g["p"], q=g["q"], gamma=g["gamma"]),
        index=summary.customers.astype(np.int64), frequency=summary.frequency,
        recency=summary.recency, age=summary.age, monetary=summary.monetary_value)


# -- recomputation ------------------------------------------------------------------------------


@dataclass
class RecomputeResult:
    """What a recomputation did."""

    customers: int
    buyers: int
    true_fans: int
    transitions: int
    clv_model_id: int | None
    seconds: float
    by_lifecycle: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"customers": self.customers, "buyers": self.buyers,
                "true_fans": self.true_fans, "transitions": self.transitions,
                "clv_model_id": self.clv_model_id, "seconds": round(self.seconds, 3),
                "by_lifecycle": self.by_lifecycle}


def _nullable(values: NDArray[np.float64]) -> list[float | None]:
    return [None if v != v else v for v in values.tolist()]


def recompute_scores(
    factory_or_session: sessionmaker[Session] | Session,
    *,
    now: dt.datetime,
    config: ScoringConfig,
    timezone: str = "Asia/Shanghai",
    progress: Progress | None = None,
) -> RecomputeResult:
    """Recompute every active customer's scores as of ``now`` and store them.

    Facts come from SQL aggregates (orders and events up to ``now``), the rules run over
    numpy arrays, and the rows are replaced in bulk. Lifecycle and audience changes against
    the stored scores, and becoming or ceasing to be a true fan (dimension ``fan``), are
    appended to ``stage_transitions`` (a customer's first scores are
    not a transition). With a session the caller commits; with a session factory the work
    is one transaction committed here.
    """
    if now.tzinfo is None:
        raise InvalidInput("now must carry a time zone", details=[
            {"field": "now", "reason": "naive datetime"}])
    report = progress or (lambda _step, _done, _total: None)
    if isinstance(factory_or_session, Session):
        return _recompute(factory_or_session, now=now, config=config, timezone=timezone,
                          progress=report)
    with session_scope(factory_or_session) as session:
        return _recompute(session, now=now, config=config, timezone=timezone,
                          progress=report)


def _recompute(session: Session, *, now: dt.datetime, config: ScoringConfig, timezone: str,
               progress: Progress) -> RecomputeResult:
    started = time.perf_counter()
    today = day_of(now, timezone)
    loaded = _load(session, now=now, config=config, timezone=timezone, progress=progress)
    facts = loaded.facts
    model = active_model(session)
    clv_inputs = _clv_inputs(model, loaded, today)
    scores = scoring.compute(facts, config, today=today, clv=clv_inputs)
    progress("计算评分", 4, 5)

    n = len(facts)
    now_s = now.timestamp()
    previous = repo.load_previous(session)
    prev_pos, prev_found = _index_of(facts.customer_id, previous["customer"])
    dialect = session.get_bind().dialect.name
    computed_at = repo.timestamps_text(np.array([now_s]), dialect)[0]
    since: list[str | None] = [computed_at] * n
    prev_stage: list[str | None] = [None] * n
    prev_audience: list[str | None] = [None] * n
    prev_fan: list[str | None] = [None] * n
    for p, stage, stage_since, audience, fan in zip(
            prev_pos[prev_found].tolist(), previous["lifecycle"][prev_found].tolist(),
            previous["since"][prev_found].tolist(), previous["audience"][prev_found].tolist(),
            previous["fan"][prev_found].tolist(), strict=True):
        prev_stage[p] = stage
        prev_audience[p] = audience
        prev_fan[p] = fan
        if stage == scores.lifecycle[p] and stage_since is not None:
            since[p] = stage_since
    transitions: list[tuple[Any, ...]] = []
    ids = facts.customer_id.tolist()
    fan_now = [repo.FAN_STAGES[f] for f in scores.is_true_fan.tolist()]
    for dimension, before, after in (("lifecycle", prev_stage, scores.lifecycle),
                                     ("audience", prev_audience, scores.audience),
                                     ("fan", prev_fan, fan_now)):
        for i, (old, new) in enumerate(zip(before, after, strict=True)):
            if old is not None and old != new:
                transitions.append((ids[i], dimension, old, new, computed_at, computed_at))

    buyer = facts.purchase_days > 0
    avg = np.where(facts.orders_count > 0,
                   facts.spend / np.maximum(facts.orders_count, 1), np.nan)
    rfm_or_none = [(r, f, m, t) if b else (None, None, None, None)
                   for r, f, m, t, b in zip(scores.rfm_r.tolist(), scores.rfm_f.tolist(),
                                            scores.rfm_m.tolist(), scores.rfm_score.tolist(),
                                            buyer.tolist(), strict=True)]
    explanations = scores.explanations
    columns = [
        ids, [computed_at] * n, facts.orders_count.tolist(), facts.spend.tolist(),
        _nullable(avg), repo.timestamps_text(loaded.first_order, dialect),
        repo.timestamps_text(loaded.last_order, dialect),
        repo.timestamps_text(loaded.last_active, dialect), facts.referrals.tolist(),
        [x[0] for x in rfm_or_none], [x[1] for x in rfm_or_none],
        [x[2] for x in rfm_or_none], [x[3] for x in rfm_or_none], scores.rfm_tier,
        scores.lifecycle, since, _nullable(scores.p_alive),
        _nullable(scores.expected_purchases), _nullable(scores.clv),
        scores.fan_score.tolist(), scores.is_true_fan.tolist(), scores.audience,
        scores.value_asset.tolist(), scores.brand_asset.tolist(),
        scores.retention_asset.tolist(), explanations, scores.fan_parts[0].tolist(),
        scores.fan_parts[1].tolist(), scores.fan_parts[2].tolist(),
    ]
    repo.replace_scores(session, facts.customer_id, previous["customer"].astype(np.int64),
                        zip(*columns, strict=True))
    repo.add_transitions(session, transitions)
    refresh_statistics(session, ["customer_scores", "stage_transitions"])
    progress("写入评分", 5, 5)
    counts = {stage: 0 for stage in scoring.LIFECYCLE_STAGES}
    for stage in scores.lifecycle:
        counts[stage] += 1
    return RecomputeResult(
        customers=n, buyers=int(buyer.sum()), true_fans=int(scores.is_true_fan.sum()),
        transitions=len(transitions), clv_model_id=model.id if model else None,
        seconds=time.perf_counter() - started, by_lifecycle=counts)


# -- CLV fitting --------------------------------------------------------------------------------


@dataclass
class ClvFitResult:
    model_id: int
    bgnbd: dict[str, float]
    gamma_gamma: dict[str, float]
    holdout: dict[str, float] | None
    n_customers: int
    n_repeaters: int
    converged: bool

    def to_dict(self) -> dict[str, Any]:
        """The documented JSON: ``{"bgnbd": {...}, "gamma_gamma": {...}, "holdout": {...}}``
        (``holdout`` only when a holdout end was given)."""
        out: dict[str, Any] = {
            "bgnbd": {k: self.bgnbd[k] for k in ("r", "alpha", "a", "b", "log_likelihood")},
            "gamma_gamma": {k: self.gamma_gamma[k] for k in ("p", "q", "gamma")},
        }
        if self.holdout is not None:
            out["holdout"] = {"actual": self.holdout["actual"],
                              "predicted": self.holdout["predicted"]}
        return out


def fit_clv(
    session: Session,
    *,
    calibration_end: dt.date,
    time_unit: str = "week",
    holdout_end: dt.date | None = None,
    today: dt.date,
    timezone: str = "Asia/Shanghai",
) -> ClvFitResult:
    """Fit BG/NBD and Gamma-Gamma on the purchases in the database and store the model as
    the active one (earlier models are deactivated).

    Purchases are orders that are not cancelled, refunded or failed; purchases on the same
    brand-zone day are one transaction, each customer's first purchase starts their clock,
    calibration ends with the day ``calibration_end`` (inclusive). With ``holdout_end`` the
    actual repeat transactions in (calibration_end, holdout_end] and the model's conditional
    expectation for them are summed over the calibration customers. A period that ends
    after ``today`` is refused: its counts would be incomplete.
    """
    if time_unit not in ("week", "day"):
        raise InvalidClvRequest(f"time_unit must be 'week' or 'day', not {time_unit!r}",
                                details=[{"field": "time_unit", "reason": "not week or day"}])
    if calibration_end > today:
        raise InvalidClvRequest(
            f"calibration_end {calibration_end} is after today ({today}): counts would be "
            "incomplete", details=[{"field": "calibration_end", "reason": "in the future"}])
    if holdout_end is not None:
        if holdout_end <= calibration_end:
            raise InvalidClvRequest(
                f"holdout_end {holdout_end} must be after calibration_end {calibration_end}",
                details=[{"field": "holdout_end", "reason": "not after calibration_end"}])
        if holdout_end > today:
            raise InvalidClvRequest(
                f"holdout_end {holdout_end} is after today ({today}): counts would be "
                "incomplete", details=[{"field": "holdout_end", "reason": "in the future"}])
    last_day = holdout_end or calibration_end
    until = local_midnight(last_day + dt.timedelta(days=1), timezone) - dt.timedelta(
        microseconds=1)
    purchases = repo.load_purchases(session, until=until)
    unit: clv_math.TimeUnit = "week" if time_unit == "week" else "day"
    summary = clv_math.summarise_arrays(
        purchases["customer"], local_days(purchases["ts"], timezone), purchases["amount"],
        calibration_end=calibration_end, holdout_end=holdout_end, time_unit=unit)
    if len(summary) == 0:
        raise InvalidClvRequest(f"no purchases on or before {calibration_end} to fit on",
                                details=[{"field": "calibration_end",
                                          "reason": "no purchases before it"}])
    try:
        bg = clv_math.fit_bgnbd(summary.frequency, summary.recency, summary.age)
        gg = clv_math.fit_gamma_gamma(summary.frequency, summary.monetary_value)
    except ValueError as exc:
        raise ClvFitFailed(f"cannot fit the CLV models: {exc}", details=[
            {"field": "calibration_end", "reason": str(exc)}]) from None
    holdout: dict[str, float] | None = None
    if holdout_end is not None:
        assert summary.holdout_frequency is not None and summary.holdout_length is not None
        predicted = clv_math.bgnbd_conditional_expected_transactions(
            bg.params, summary.holdout_length, summary.frequency, summary.recency, summary.age)
        holdout = {"actual": float(summary.holdout_frequency.sum()),
                   "predicted": round(float(predicted.sum()), 3),
                   "length": summary.holdout_length}
    bgnbd = {"r": bg.params.r, "alpha": bg.params.alpha, "a": bg.params.a, "b": bg.params.b,
             "log_likelihood": bg.log_likelihood, "n_customers": bg.n_customers}
    gamma = {"p": gg.params.p, "q": gg.params.q, "gamma": gg.params.gamma,
             "log_likelihood": gg.log_likelihood, "n_customers": gg.n_customers}
    session.execute(update(ClvModel).where(ClvModel.is_active.is_(True))
                    .values(is_active=False))
    model = ClvModel(calibration_end=calibration_end, time_unit=time_unit, bgnbd=bgnbd,
                     gamma_gamma=gamma, holdout=holdout, n_customers=len(summary),
                     is_active=True)
    session.add(model)
    session.flush()
    return ClvFitResult(model_id=model.id, bgnbd=bgnbd, gamma_gamma=gamma, holdout=holdout,
                        n_customers=len(summary), n_repeaters=gg.n_customers,
                        converged=bg.converged and gg.converged)


def list_models(session: Session, *, limit: int = 50) -> list[dict[str, Any]]:
    """Fitted CLV models, newest first."""
    rows = session.scalars(select(ClvModel).order_by(ClvModel.id.desc()).limit(limit))
    return [{"id": m.id, "created_at": m.created_at.isoformat(),
             "calibration_end": m.calibration_end.isoformat(), "time_unit": m.time_unit,
             "bgnbd": m.bgnbd, "gamma_gamma": m.gamma_gamma, "holdout": m.holdout,
             "n_customers": m.n_customers, "is_active": m.is_active} for m in rows]


from siyu.analytics.reports import (  # noqa: E402 - re-exported: the domain's facade
    customer_scores,
    ltv_cac,
    score_card,
    summary,
)

__all__ = [
    "ClvFitResult", "RecomputeResult", "ScoresNotComputed", "active_model", "customer_scores",
    "fit_clv", "list_models", "ltv_cac", "recompute_scores", "request_recompute",
    "schedule_recompute", "score_card", "summary",
]
