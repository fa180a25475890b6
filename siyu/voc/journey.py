"""Journey experience: satisfaction and effort per journey step and touchpoint over time,
the highlight and darkest moments, and before/after a marked change.

Satisfaction of a response is its survey's outcome question on a 0–1 scale (CSAT first,
else NPS, else the mean of its ratings); effort is its CES on a 0–1 scale (1 = easiest).
Peak-end weighting: a step's *impact* is (its mean satisfaction − the overall mean) × the
customers passing it, so a mediocre step that everyone passes can be darker than a bad
step that few see. The highlight moment is the step with the highest impact, the darkest
the one with the lowest.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import CompoundSelect, and_, exists, func, or_, select, union
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.elements import ColumnElement

from siyu.voc.models import (
    FeedbackMention,
    Survey,
    SurveyAnswer,
    SurveyQuestion,
    SurveyResponse,
    VocFactor,
)

OUTCOME_ORDER = ("csat", "nps", "rating")


@dataclass(frozen=True)
class Observation:
    step: str
    touchpoint: str | None
    customer_id: int | None
    month: str
    day: dt.date
    satisfaction: float | None
    effort: float | None


def observations(session: Session) -> list[Observation]:
    """One observation per completed response, with its step and 0–1 scores."""
    stmt = (select(SurveyResponse.id, SurveyResponse.customer_id, SurveyResponse.submitted_at,
                   SurveyResponse.touchpoint, Survey.journey_step, Survey.touchpoint,
                   SurveyQuestion.kind, SurveyQuestion.scale_min, SurveyQuestion.scale_max,
                   SurveyAnswer.value_num)
            .join(Survey, Survey.id == SurveyResponse.survey_id)
            .join(SurveyAnswer, SurveyAnswer.response_id == SurveyResponse.id)
            .join(SurveyQuestion, SurveyQuestion.id == SurveyAnswer.question_id)
            .where(SurveyResponse.completed.is_(True), SurveyAnswer.value_num.is_not(None),
                   SurveyResponse.submitted_at.is_not(None)))
    per: dict[int, dict[str, Any]] = {}
    for rid, cid, submitted, r_tp, step, s_tp, kind, lo, hi, value in session.execute(stmt):
        if submitted is None or value is None:
            continue
        rec = per.setdefault(rid, {"cid": cid, "ts": submitted, "tp": r_tp or s_tp,
                                   "step": step or r_tp or s_tp or "未标注",
                                   "scores": defaultdict(list)})
        if lo is not None and hi is not None and hi > lo:
            rec["scores"][kind].append((value - lo) / (hi - lo))
    out = []
    for rec in per.values():
        scores = rec["scores"]
        sat = next((sum(scores[k]) / len(scores[k]) for k in OUTCOME_ORDER if scores.get(k)),
                   None)
        eff = sum(scores["ces"]) / len(scores["ces"]) if scores.get("ces") else None
        ts: dt.datetime = rec["ts"]
        out.append(Observation(rec["step"], rec["tp"], rec["cid"], ts.strftime("%Y-%m"),
                               ts.date(), sat, eff))
    return out


def _mean(xs: list[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def difference_ci(before: list[float], after: list[float]) -> dict[str, Any]:
    """Mean after − mean before with Welch's 95% confidence interval."""
    from scipy import stats  # type: ignore[import-untyped]

    n1, n2 = len(before), len(after)
    out: dict[str, Any] = {"before": _mean(before), "after": _mean(after), "n_before": n1,
                           "n_after": n2, "difference": None, "ci95": None}
    if n1 < 2 or n2 < 2:
        return out
    m1, m2 = sum(before) / n1, sum(after) / n2
    v1 = sum((x - m1) ** 2 for x in before) / (n1 - 1)
    v2 = sum((x - m2) ** 2 for x in after) / (n2 - 1)
    se = math.sqrt(v1 / n1 + v2 / n2)
    diff = m2 - m1
    if se == 0:
        out.update(difference=diff, ci95=[diff, diff])
        return out
    df = (v1 / n1 + v2 / n2) ** 2 / ((v1 / n1) ** 2 / (n1 - 1) + (v2 / n2) ** 2 / (n2 - 1))
    t = float(stats.t.ppf(0.975, df))
    out.update(difference=diff, ci95=[diff - t * se, diff + t * se])
    return out


def journey_map(session: Session, *, change_step: str | None = None,
                change_date: dt.date | None = None, change_label: str | None = None
                ) -> dict[str, Any]:
    """Per step: responses, customers passing, mean satisfaction and effort, monthly trend;
    the highlight and darkest moments; and, given a change (step + date), before/after."""
    obs = observations(session)
    sats = [o.satisfaction for o in obs if o.satisfaction is not None]
    overall = _mean(sats)
    steps: dict[str, list[Observation]] = defaultdict(list)
    for o in obs:
        steps[o.step].append(o)
    rows: list[dict[str, Any]] = []
    for name, items in steps.items():
        s = [o.satisfaction for o in items if o.satisfaction is not None]
        e = [o.effort for o in items if o.effort is not None]
        passing = len({o.customer_id for o in items if o.customer_id is not None}) or len(items)
        monthly: dict[str, list[float]] = defaultdict(list)
        for o in items:
            if o.satisfaction is not None:
                monthly[o.month].append(o.satisfaction)
        mean = _mean(s)
        impact = (mean - overall) * passing if mean is not None and overall is not None else 0.0
        rows.append({"step": name, "responses": len(items), "customers": passing,
                     "satisfaction": mean, "effort": _mean(e), "impact": impact,
                     "trend": [{"month": m, "satisfaction": sum(v) / len(v), "n": len(v)}
                               for m, v in sorted(monthly.items())]})
    rows.sort(key=lambda r: -r["customers"])
    scored = [r for r in rows if r["satisfaction"] is not None]
    out: dict[str, Any] = {
        "overall_satisfaction": overall, "steps": rows,
        "highlight": max(scored, key=lambda r: r["impact"])["step"] if scored else None,
        "darkest": min(scored, key=lambda r: r["impact"])["step"] if scored else None,
        "change": None,
    }
    if change_step and change_date:
        items = steps.get(change_step, [])
        before = [o.satisfaction for o in items if o.satisfaction is not None
                  and o.day < change_date]
        after = [o.satisfaction for o in items if o.satisfaction is not None
                 and o.day >= change_date]
        out["change"] = {"step": change_step, "date": change_date.isoformat(),
                         "label": change_label, **difference_ci(before, after)}
    return out


#: A score at or below this fraction of its scale (0 = the scale's low end) is "low": CSAT ≤ 3
#: of 1–5, NPS ≤ 6 of 0–10 (a detractor), CES ≤ 3 of 1–7, a factor rating ≤ 2 of 1–5 — the
#: same cuts as the logistic drivers' "dissatisfied" (siyu.voc.analysis.DISSATISFIED_AT).
LOW_AT = {"csat": 0.5, "nps": 0.6, "ces": 1 / 3, "rating": 0.25}


def _factor_names(column: Any, factor: str) -> ColumnElement[bool]:
    """``column`` names ``factor`` or a factor below it in the brand's factor tree (the
    demo tree while none is stored, as :func:`siyu.voc.service.factor_tree` reads it)."""
    from siyu.voc.text import DEMO_TREE

    child = aliased(VocFactor)
    stored = select(VocFactor.name).where(or_(
        VocFactor.name == factor, VocFactor.parent == factor,
        VocFactor.parent.in_(select(child.name).where(child.parent == factor))))
    default = [n.name for n in DEMO_TREE.nodes if factor in DEMO_TREE.path(n.name)]
    return or_(column == factor, column.in_(stored),
               and_(~exists(select(VocFactor.id)), column.in_(default or [factor])))


def _low(kinds: Sequence[str]) -> ColumnElement[bool]:
    span = SurveyQuestion.scale_max - SurveyQuestion.scale_min
    return or_(*(and_(SurveyQuestion.kind == k,
                      SurveyAnswer.value_num - SurveyQuestion.scale_min <= LOW_AT[k] * span)
                 for k in kinds))


def unhappy_customers(factor: str, *, since: dt.datetime | None, until: dt.datetime
                      ) -> CompoundSelect:
    """``SELECT customer_id`` of the customers unhappy with ``factor`` between ``since``
    (None: ever) and ``until`` — what the rule ``voc_low("物流", last 30d)`` reads.

    Unhappy means any of: a negative mention of the factor (or one below it) in their
    feedback; a low rating of it in a survey; a low CSAT / NPS / CES in a survey whose
    journey step or touchpoint is ``factor`` (the customers behind a dark moment).
    """
    def window(column: Any) -> list[ColumnElement[bool]]:
        return [column <= until] + ([column >= since] if since is not None else [])

    mentions = select(FeedbackMention.customer_id).where(
        FeedbackMention.customer_id.is_not(None), FeedbackMention.sentiment < 0,
        _factor_names(FeedbackMention.factor, factor), *window(FeedbackMention.ts))
    answered = (select(SurveyResponse.customer_id)
                .join(SurveyAnswer, SurveyAnswer.response_id == SurveyResponse.id)
                .join(SurveyQuestion, SurveyQuestion.id == SurveyAnswer.question_id)
                .join(Survey, Survey.id == SurveyResponse.survey_id)
                .where(SurveyResponse.customer_id.is_not(None),
                       SurveyAnswer.value_num.is_not(None),
                       SurveyQuestion.scale_min.is_not(None),
                       SurveyQuestion.scale_max.is_not(None),
                       *window(SurveyResponse.submitted_at)))
    ratings = answered.where(
        _low(["rating"]),
        _factor_names(func.coalesce(SurveyQuestion.factor, SurveyQuestion.key), factor))
    steps = answered.where(
        _low(["csat", "nps", "ces"]),
        or_(Survey.journey_step == factor, SurveyResponse.touchpoint == factor,
            Survey.touchpoint == factor))
    return union(mentions, ratings, steps)
