"""Analytics API: scores with explanations, summary, LTV/CAC, recompute, CLV models, and an
auth matrix for every route."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from siyu.analytics import service
from siyu.analytics.config import ScoringConfig
from siyu.analytics.models import ClvModel
from siyu.config import Settings
from siyu.jobs.models import Job
from tests.analytics.builders import add_customers, add_orders, end_of_today
from tests.console.conftest import Login, MakeUser, login, make_user  # noqa: F401

ROUTES = [
    ("GET", "/api/v1/customers/1/scores"),
    ("GET", "/api/v1/analytics/summary"),
    ("GET", "/api/v1/analytics/ltv-cac"),
    ("POST", "/api/v1/analytics/recompute"),
    ("GET", "/api/v1/clv/models"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_every_route_needs_a_key(app_client: TestClient, sessions: sessionmaker[Session],
                                 method: str, path: str) -> None:
    response = app_client.request(method, path)
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"
    bad = app_client.request(method, path, headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Job)) == 0


@pytest.fixture
def scored(sessions: sessionmaker[Session], settings: Settings) -> int:
    with sessions() as s:
        (cid,) = add_customers(s, settings, {"id": "A", "acquisition_channel": "直播"})
        add_orders(s, settings, "A", (30, 100.0), (10, 300.0))
        s.commit()
    service.recompute_scores(sessions, now=end_of_today(), config=ScoringConfig())
    return cid


def test_customer_scores_with_explanations(client: TestClient, scored: int) -> None:
    body = client.get(f"/api/v1/customers/{scored}/scores").json()
    assert body["customer_id"] == scored
    assert (body["orders_count"], body["spend"], body["lifecycle"]) == (2, 400.0, "growth")
    assert body["lifecycle_zh"] == "成长期"
    assert set(body["explanations"]) == {"rfm", "lifecycle", "clv", "fan", "audience",
                                         "value_asset", "brand_asset", "retention_asset"}
    assert body["explanations"]["rfm"] == ("10 天前购买（R1）、2 笔订单（F1）、消费 ¥400（M1），"
                                           "总分 3 → 粉丝")


def test_scores_of_unknown_or_unscored_customers_are_404(
        client: TestClient, sessions: sessionmaker[Session], settings: Settings) -> None:
    missing = client.get("/api/v1/customers/999/scores")
    assert missing.status_code == 404 and missing.json()["error"] == "customer_not_found"
    with sessions() as s:
        (cid,) = add_customers(s, settings, {"id": "N"})
        s.commit()
    unscored = client.get(f"/api/v1/customers/{cid}/scores")
    assert unscored.status_code == 404 and unscored.json()["error"] == "scores_not_computed"
    assert client.get("/api/v1/customers/0/scores").status_code == 422


def test_summary_and_ltv_cac(client: TestClient, scored: int) -> None:
    data = client.get("/api/v1/analytics/summary").json()
    assert data["customers"] == 1 and data["scored"] == 1
    assert {r["stage"]: r["count"] for r in data["by_lifecycle"]}["growth"] == 1
    assert {k: data["true_fans"][k] for k in ("count", "goal", "progress")} == {
        "count": 0, "goal": 1000, "progress": 0.0}
    assert data["true_fans"]["trend"]["counts"][-1] == 0
    assert len(data["transitions"]["months"]) == 12
    assert client.get("/api/v1/analytics/summary?months=0").status_code == 422
    report = client.get("/api/v1/analytics/ltv-cac").json()
    assert report["channels"] == [{"channel": "直播", "customers": 1, "scored": 1,
                                   "ltv": 400.0, "cac": None, "ltv_cac": None}]


def test_recompute_queues_one_job_per_minute(client: TestClient,
                                             sessions: sessionmaker[Session]) -> None:
    first = client.post("/api/v1/analytics/recompute")
    assert first.status_code == 202 and first.json()["job"] == service.RECOMPUTE_JOB
    second = client.post("/api/v1/analytics/recompute")
    keys = {first.json()["dedup_key"], second.json()["dedup_key"]}  # 2 only across a minute
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Job).where(
            Job.name == service.RECOMPUTE_JOB)) == len(keys)


def test_clv_models_newest_first(client: TestClient, sessions: sessionmaker[Session]) -> None:
    assert client.get("/api/v1/clv/models").json() == {"models": []}
    with sessions() as s:
        for r in (0.2, 0.3):
            s.add(ClvModel(calibration_end=dt.date(2026, 1, 1), time_unit="week",
                           bgnbd={"r": r}, gamma_gamma={}, n_customers=5, is_active=r == 0.3))
        s.commit()
    models = client.get("/api/v1/clv/models").json()["models"]
    assert [(m["bgnbd"]["r"], m["is_active"]) for m in models] == [(0.3, True), (0.2, False)]


def test_console_roles(app_client: TestClient, make_user: MakeUser, login: Login,  # noqa: F811
                       sessions: sessionmaker[Session], scored: int) -> None:
    make_user("agent", "agent")
    make_user("analyst", "analyst")
    headers = {"X-Siyu-Console": "1"}
    login("agent")
    assert app_client.get("/api/v1/analytics/summary", headers=headers).status_code == 403
    assert app_client.get(f"/api/v1/customers/{scored}/scores",
                          headers=headers).status_code == 200
    app_client.cookies.clear()
    login("analyst")
    assert app_client.get("/api/v1/analytics/summary", headers=headers).status_code == 200
    assert app_client.post("/api/v1/analytics/recompute", headers=headers).status_code == 403
    with sessions() as s:  # only the recomputation the fixture's orders asked for
        assert s.scalar(select(func.count()).select_from(Job).where(
            Job.dedup_key.like("%:manual:%"))) == 0


def test_new_orders_queue_one_recomputation_and_retries_none(
        client: TestClient, sessions: sessionmaker[Session]) -> None:
    def recompute_jobs() -> list[Job]:
        with sessions() as s:
            return list(s.scalars(select(Job).where(Job.name == service.RECOMPUTE_JOB)))

    order = {"id": "o-1", "identities": [{"kind": "phone", "value": "13800138000"}],
             "ts": "2026-05-01T10:00:00+08:00", "amount": 99.0}
    assert client.post("/api/v1/orders", json={"orders": [order]}).status_code == 200
    queued = recompute_jobs()
    assert len(queued) == 1
    # It runs when the current 10-minute bucket ends, whatever else arrives meanwhile.
    run_at = queued[0].run_at
    run_at = run_at if run_at.tzinfo else run_at.replace(tzinfo=dt.UTC)
    assert run_at.timestamp() % service.RECOMPUTE_BUCKET_SECONDS == 0
    event = {"id": "e-1", "type": "coupon_used", "ts": "2026-05-02T10:00:00+08:00",
             "identities": [{"kind": "phone", "value": "13800138000"}]}
    assert client.post("/api/v1/events", json={"events": [event]}).status_code == 200
    # A retried batch stores nothing new and asks for nothing.
    assert client.post("/api/v1/orders", json={"orders": [order]}).json()["duplicates"] == 1
    assert len(recompute_jobs()) == 1
