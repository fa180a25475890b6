"""Driver analyses over stored surveys and feedback (the maths is in :mod:`siyu.voc.drivers`).

Functions take an explicit session and never commit.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.voc import drivers as math_
from siyu.voc.errors import InvalidInput
from siyu.voc.models import FeedbackMention, SurveyAnswer, SurveyQuestion, SurveyResponse
from siyu.voc.surveys import get_survey, questions

METHODS = ("shapley", "relative_weights", "logistic", "text")
#: A response counts as dissatisfied (logistic target) at or below these values.
DISSATISFIED_AT = {"csat": 3.0, "nps": 6.0, "ces": 3.0, "rating": 2.0}


def _matrix(session: Session, survey_id: int, keys: list[str]) -> tuple[np.ndarray, list[int]]:
    """Responses × questions (NaN where unanswered) of the completed responses."""
    qs = {q.key: q for q in questions(session, survey_id)}
    qids = {qs[k].id: j for j, k in enumerate(keys)}
    rows: dict[int, np.ndarray] = {}
    stmt = (select(SurveyAnswer.response_id, SurveyAnswer.question_id, SurveyAnswer.value_num)
            .join(SurveyResponse, SurveyResponse.id == SurveyAnswer.response_id)
            .where(SurveyResponse.survey_id == survey_id, SurveyResponse.completed.is_(True),
                   SurveyAnswer.question_id.in_(list(qids)),
                   SurveyAnswer.value_num.is_not(None)))
    for rid, qid, value in session.execute(stmt):
        row = rows.get(rid)
        if row is None:
            row = rows[rid] = np.full(len(keys), np.nan)
        row[qids[qid]] = value
    ids = sorted(rows)
    return (np.array([rows[i] for i in ids]) if ids else np.zeros((0, len(keys)))), ids


def survey_drivers(session: Session, survey: str, target: str, *, method: str = "shapley",
                   seed: int = 0) -> dict[str, Any]:
    """What drives ``target`` (a numeric question) in ``survey``.

    ``shapley`` and ``relative_weights`` decompose the R² of the linear regression of the
    target on the survey's rating questions; ``logistic`` decomposes McFadden's R² of
    "dissatisfied" (target at or below :data:`DISSATISFIED_AT`); ``text`` uses, per factor,
    whether the response's free text mentions it negatively. Each driver's ``performance``
    is its mean on a 0–1 scale (for ``text``: the share of responses not complaining about
    it); ``categories`` sums importance up the factor tree.
    """
    from siyu.voc.service import factor_tree

    if method not in METHODS:
        raise InvalidInput(f"method must be one of {', '.join(METHODS)}", details=[
            {"field": "method", "reason": "unknown"}])
    s = get_survey(session, survey)
    qs = {q.key: q for q in questions(session, s.id)}
    tq = qs.get(target)
    if tq is None or tq.scale_min is None or tq.scale_max is None:
        raise InvalidInput(f"survey {survey!r} has no numeric question {target!r}", details=[
            {"field": "target", "reason": "not a numeric question of the survey"}])
    tree = factor_tree(session)
    if method == "text":
        y_all, ids = _matrix(session, s.id, [target])
        keep = ~np.isnan(y_all[:, 0])
        y, ids = y_all[keep, 0], [i for i, k in zip(ids, keep, strict=True) if k]
        factors, x = _negative_mentions(session, ids)
        perf = 1.0 - x.mean(axis=0) if len(x) else np.zeros(len(factors))
    else:
        factors = [k for k, q in qs.items() if k != target and q.scale_min is not None
                   and q.kind == "rating"]
        if not factors:
            raise InvalidInput(f"survey {survey!r} has no rating questions to explain "
                               f"{target!r}; try --method text", details=[
                                   {"field": "method", "reason": "no rating questions"}])
        m, _ = _matrix(session, s.id, [target, *factors])
        m = m[~np.isnan(m).any(axis=1)] if len(m) else m
        y, x = m[:, 0], m[:, 1:]
        lo = np.array([qs[f].scale_min for f in factors], dtype=float)
        hi = np.array([qs[f].scale_max for f in factors], dtype=float)
        perf = (x.mean(axis=0) - lo) / (hi - lo) if len(x) else np.zeros(len(factors))
    if len(y) < len(factors) + 2:
        raise InvalidInput(f"need more than {len(factors) + 1} complete responses, have "
                           f"{len(y)}", details=[{"field": "responses", "reason": "too few"}])
    labels = [qs[f].factor or f for f in factors] if method != "text" else factors
    if method == "relative_weights":
        res = math_.relative_weights(x, y, labels)
    elif method == "logistic":
        dis = (y <= DISSATISFIED_AT.get(tq.kind, 2.0)).astype(float)
        res = math_.shapley_logistic(x, dis, labels, seed=seed)
    else:
        res = math_.shapley_r2(x, y, labels, seed=seed)
    return _report(target, method, res, perf, tree)


def _negative_mentions(session: Session, response_ids: list[int]) -> tuple[list[str],
                                                                          np.ndarray]:
    from siyu.voc.models import Feedback

    index = {rid: i for i, rid in enumerate(response_ids)}
    hits: dict[str, set[int]] = defaultdict(set)
    stmt = (select(Feedback.response_id, FeedbackMention.factor)
            .join(FeedbackMention, FeedbackMention.feedback_id == Feedback.id)
            .where(Feedback.response_id.is_not(None), FeedbackMention.sentiment < 0))
    for rid, factor in session.execute(stmt):
        if rid in index:
            hits[factor].add(index[rid])
    factors = sorted(f for f, rows in hits.items() if len(rows) >= 2)
    x = np.zeros((len(response_ids), len(factors)))
    for j, f in enumerate(factors):
        x[list(hits[f]), j] = 1.0
    if not factors:
        raise InvalidInput("no factor is mentioned negatively in two or more responses",
                           details=[{"field": "method", "reason": "no text-mined factors"}])
    return factors, x


def _report(target: str, method: str, res: math_.DriverResult, perf: np.ndarray,
            tree: Any) -> dict[str, Any]:
    ranked = np.argsort(-res.importance, kind="stable")
    rank = {int(j): r for r, j in enumerate(ranked, start=1)}
    prio = {p["factor"]: p for p in math_.priorities(res.factors, res.importance.tolist(),
                                                          perf.tolist())}
    share = res.share
    drivers = []
    for j in ranked:
        j = int(j)
        d: dict[str, Any] = {
            "factor": res.factors[j], "importance": float(res.importance[j]),
            "share": float(share[j]), "performance": float(perf[j]), "rank": rank[j],
            "priority": prio[res.factors[j]]["priority"],
            "priority_rank": prio[res.factors[j]]["rank"],
            "quadrant": prio[res.factors[j]]["quadrant"],
            "category": tree.category_of(res.factors[j]) if res.factors[j] in tree.parents
            else None}
        if res.stderr is not None:
            d["stderr"] = float(res.stderr[j])
        drivers.append(d)
    totals = math_.aggregate_tree(dict(zip(res.factors, res.importance.tolist(),
                                           strict=True)), tree.parents)

    def node(name: str) -> dict[str, Any]:
        kids = [n.name for n in tree.nodes if n.parent == name]
        return {"name": name, "importance": totals.get(name, 0.0),
                "share": totals.get(name, 0.0) / res.r2 if res.r2 > 0 else 0.0,
                "children": sorted((node(k) for k in kids), key=lambda c: -c["importance"])}

    cats = sorted((node(n.name) for n in tree.nodes if n.parent is None),
                  key=lambda c: -c["importance"])
    return {"target": target, "method": method, "n": res.n, "r2": res.r2, "exact": res.exact,
            "drivers": drivers, "categories": [c for c in cats if c["importance"] > 0]}


def trends(session: Session) -> dict[str, Any]:
    """Monthly NPS (promoters − detractors, in points), CSAT (share answering 4–5) and CES
    (mean, 1–7, 7 = easiest) over every survey."""
    stmt = (select(SurveyResponse.submitted_at, SurveyQuestion.kind, SurveyAnswer.value_num)
            .join(SurveyAnswer, SurveyAnswer.response_id == SurveyResponse.id)
            .join(SurveyQuestion, SurveyQuestion.id == SurveyAnswer.question_id)
            .where(SurveyResponse.completed.is_(True), SurveyResponse.submitted_at.is_not(None),
                   SurveyQuestion.kind.in_(("nps", "csat", "ces")),
                   SurveyAnswer.value_num.is_not(None)))
    acc: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for ts, kind, value in session.execute(stmt):
        if ts is not None and value is not None:
            acc[ts.strftime("%Y-%m")][kind].append(value)
    months = sorted(acc)
    out: dict[str, Any] = {"months": months, "nps": [], "csat": [], "ces": [], "n": []}
    for m in months:
        nps, csat, ces = acc[m]["nps"], acc[m]["csat"], acc[m]["ces"]
        out["nps"].append(round(100 * (sum(v >= 9 for v in nps) - sum(v <= 6 for v in nps))
                                / len(nps), 1) if nps else None)
        out["csat"].append(round(100 * sum(v >= 4 for v in csat) / len(csat), 1)
                           if csat else None)
        out["ces"].append(round(sum(ces) / len(ces), 2) if ces else None)
        out["n"].append(max(len(nps), len(csat), len(ces)))
    return out


def primary_driver_survey(session: Session) -> tuple[str, str] | None:
    """The survey with the most responses that has an outcome (CSAT, else NPS) and rating
    questions, with that outcome's key — what the dashboard explains by default."""
    from sqlalchemy import func

    from siyu.voc.models import Survey

    best: tuple[int, str, str] | None = None
    for s in session.scalars(select(Survey).order_by(Survey.id)):
        qs = questions(session, s.id)
        target = next((q.key for kind in ("csat", "nps") for q in qs if q.kind == kind), None)
        if target is None or not any(q.kind == "rating" for q in qs):
            continue
        n = int(session.scalar(select(func.count()).select_from(SurveyResponse).where(
            SurveyResponse.survey_id == s.id, SurveyResponse.completed.is_(True))) or 0)
        if best is None or n > best[0]:
            best = (n, s.name, target)
    return (best[1], best[2]) if best else None


def verbatims(session: Session, factor: str, *, tree: Any, sentiment: int | None = None,
              limit: int = 50) -> list[dict[str, Any]]:
    """Feedback naming ``factor`` (or any factor below it), newest first, with the clause
    that names it (for highlighting) and its sentiment."""
    from siyu.voc.models import Feedback

    names = [n.name for n in tree.nodes if factor in tree.path(n.name)] or [factor]
    stmt = (select(Feedback.id, Feedback.text, Feedback.source, Feedback.product, Feedback.ts,
                   FeedbackMention.factor, FeedbackMention.sentiment, FeedbackMention.clause)
            .join(FeedbackMention, FeedbackMention.feedback_id == Feedback.id)
            .where(FeedbackMention.factor.in_(names))
            .order_by(Feedback.ts.desc(), Feedback.id.desc()).limit(limit))
    if sentiment is not None:
        stmt = stmt.where(FeedbackMention.sentiment == sentiment)
    out = []
    for fid, text, source, product, ts, f, s, clause in session.execute(stmt):
        start = text.find(clause)
        parts = ([text[:start], text[start:start + len(clause)], text[start + len(clause):]]
                 if start >= 0 else [text, "", ""])
        out.append({"id": fid, "text": text, "parts": parts, "source": source,
                    "product": product, "ts": ts, "factor": f,
                    "sentiment": "positive" if s > 0 else "negative"})
    return out


def mention_counts(session: Session) -> dict[str, dict[str, int]]:
    """Positive and negative mentions per factor."""
    from sqlalchemy import func

    out: dict[str, dict[str, int]] = defaultdict(lambda: {"positive": 0, "negative": 0})
    for f, s, n in session.execute(select(FeedbackMention.factor, FeedbackMention.sentiment,
                                          func.count()).group_by(FeedbackMention.factor,
                                                                 FeedbackMention.sentiment)):
        out[f]["positive" if s > 0 else "negative"] += int(n)
    return dict(out)
