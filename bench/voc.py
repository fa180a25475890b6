"""VOC at scale: exact-Shapley key drivers for 15 factors over 100,000 survey responses
(the maths alone, and ``siyu voc drivers`` end to end on a scratch SQLite database holding
the survey), and feedback classification throughput (texts/s).

The survey is synthetic with known coefficients (``--factors`` ratings 1–5, CSAT from a
weighted sum plus noise); the benchmark checks the recovered order before it reports a time.
Classification uses the food-delivery reviews of ``SIYU_SHARED_DATA``/reviews_waimai when
present (trained on train.csv, classifying test.csv), else the demo brand's phrases.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import scratch_database
from siyu import migrate
from siyu.db import make_engine, make_session_factory
from siyu.voc import analysis, drivers, surveys
from siyu.voc.models import SurveyAnswer, SurveyResponse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--responses", type=int, default=100_000)
    parser.add_argument("--factors", type=int, default=15)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of the maths")
    parser.add_argument("--skip-db", action="store_true", help="only the maths and texts/s")


def synthetic(n: int, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ratings (n × k, 1–5, mildly correlated), CSAT 1–5 and the true coefficients (the
    first factor weighs most, decreasing)."""
    rng = np.random.default_rng(seed)
    beta = np.linspace(1.0, 0.05, k)
    common = rng.normal(0, 0.6, size=(n, 1))
    x = np.clip(np.round(3.5 + common + rng.normal(0, 1.0, size=(n, k))), 1, 5)
    latent = x @ beta + rng.normal(0, 1.5, size=n)
    lo, hi = np.percentile(latent, [2, 98])
    y = np.clip(np.round(1 + 4 * (latent - lo) / (hi - lo)), 1, 5)
    return x, y, beta


def _maths(x: np.ndarray, y: np.ndarray, repeat: int) -> dict[str, Any]:
    times, res = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        res = drivers.shapley_r2(x, y)
        times.append(time.perf_counter() - t)
    assert res is not None and res.exact
    t = time.perf_counter()
    rw = drivers.relative_weights(x, y)
    rw_s = time.perf_counter() - t
    order = list(np.argsort(-res.importance))
    return {"shapley_seconds_best": min(times), "shapley_seconds_runs": times,
            "relative_weights_seconds": rw_s, "r2": res.r2,
            "sum_importance": float(np.sum(res.importance)),
            "top5": [res.factors[i] for i in order[:5]],
            "order_recovered": bool(order[:5] == [0, 1, 2, 3, 4]),
            "rw_sum": float(np.sum(rw.importance))}


def _end_to_end(x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    k = x.shape[1]
    names = [f"因素{j + 1:02d}" for j in range(k)]
    with scratch_database("sqlite") as url:
        engine = make_engine(url)
        migrate.upgrade(engine)
        sessions = make_session_factory(engine)
        t = time.perf_counter()
        with sessions() as session:
            spec = surveys.QuestionSpec
            survey = surveys.create_survey(session, name="bench", title="基准", questions_=[
                spec("csat", "csat", "满意度"), *(spec(n, "rating", n) for n in names)])
            session.flush()
            qids = [q.id for q in surveys.questions(session, survey.id)]
            ts = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
            session.execute(SurveyResponse.__table__.insert(), [
                {"survey_id": survey.id, "external_id": f"b{i}", "source": "bench",
                 "submitted_at": ts, "completed": True, "created_at": ts, "updated_at": ts}
                for i in range(len(y))])
            rids = [r for (r,) in session.execute(
                SurveyResponse.__table__.select().with_only_columns(SurveyResponse.id)
                .order_by(SurveyResponse.id))]
            rows = np.column_stack([y, x])
            batch: list[dict[str, Any]] = []
            for rid, vals in zip(rids, rows, strict=True):
                batch += [{"response_id": rid, "question_id": q, "value_num": float(v)}
                          for q, v in zip(qids, vals, strict=True)]
                if len(batch) >= 50_000:
                    session.execute(SurveyAnswer.__table__.insert(), batch)
                    batch = []
            if batch:
                session.execute(SurveyAnswer.__table__.insert(), batch)
            session.commit()
        load_s = time.perf_counter() - t
        with sessions() as session:
            t = time.perf_counter()
            report = analysis.survey_drivers(session, "bench", "csat")
            drivers_s = time.perf_counter() - t
        engine.dispose()
    return {"load_seconds": load_s, "drivers_seconds": drivers_s, "n": report["n"],
            "r2": report["r2"], "top3": [d["factor"] for d in report["drivers"][:3]]}


def _classification() -> dict[str, Any]:
    from siyu.voc.demo import training_phrases
    from siyu.voc.text import DEMO_TREE, NEGATIVE, POSITIVE, FeedbackClassifier

    shared = Path(os.environ.get("SIYU_SHARED_DATA", "../shared/data")) / "reviews_waimai"
    if (shared / "train.csv").is_file():
        def read(name: str) -> list[tuple[str, str]]:
            with (shared / name).open(encoding="utf-8") as f:
                return [(r["review"], POSITIVE if r["label"] == "1" else NEGATIVE)
                        for r in csv.DictReader(f)]

        train, test, source = read("train.csv"), read("test.csv"), "reviews_waimai"
    else:
        train = training_phrases()
        test, source = train * 20, "demo phrases"
    t = time.perf_counter()
    model = FeedbackClassifier.train_sentiment(train)
    train_s = time.perf_counter() - t
    clf = FeedbackClassifier(DEMO_TREE, sentiment=model)
    texts = [t for t, _ in test]
    t = time.perf_counter()
    sentiments = clf.sentiments(texts)
    sent_s = time.perf_counter() - t
    t = time.perf_counter()
    clf.classify_many(texts)
    full_s = time.perf_counter() - t
    acc = float(np.mean([s == y for (s, _), (_, y) in zip(sentiments, test, strict=True)]))
    return {"source": source, "train_examples": len(train), "train_seconds": train_s,
            "texts": len(texts), "sentiment_texts_per_s": len(texts) / sent_s,
            "classify_texts_per_s": len(texts) / full_s, "accuracy": acc}


def run(args: argparse.Namespace) -> dict[str, Any]:
    x, y, _ = synthetic(args.responses, args.factors)
    figures: dict[str, Any] = {"responses": args.responses, "factors": args.factors,
                               "maths": _maths(x, y, args.repeat)}
    m = figures["maths"]
    print(f"exact Shapley, {args.factors} factors × {args.responses:,} responses: "
          f"{m['shapley_seconds_best']:.3f} s (best of {args.repeat}); R² {m['r2']:.4f}, "
          f"Σ importance {m['sum_importance']:.4f}; order recovered {m['order_recovered']}; "
          f"relative weights {m['relative_weights_seconds']:.3f} s")
    if not args.skip_db:
        e = figures["end_to_end"] = _end_to_end(x, y)
        print(f"siyu voc drivers on SQLite ({e['n']:,} responses): {e['drivers_seconds']:.2f} s "
              f"(loading the survey took {e['load_seconds']:.1f} s); top {e['top3']}")
    c = figures["classification"] = _classification()
    print(f"classification ({c['source']}, {c['texts']:,} texts): sentiment "
          f"{c['sentiment_texts_per_s']:,.0f} texts/s, factors + per-clause sentiment "
          f"{c['classify_texts_per_s']:,.0f} texts/s; training on {c['train_examples']:,} "
          f"took {c['train_seconds']:.1f} s; accuracy {c['accuracy']:.4f}")
    return figures
