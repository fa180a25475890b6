"""Earn rules: a daily check-in (签到) once per brand-local day — through the API and the web
chat bot, which says the points and the balance, and that a second 签到 the same day earns
nothing —, a completed survey once per response, a review once per event; the amounts
are settings and 0 turns a rule off."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from siyu.config import Settings
from siyu.events.service import ingest
from siyu.points import earn
from siyu.points import service as points
from siyu.points.config import get_points_settings
from siyu.points.models import PointsEntry
from siyu.service import bot
from siyu.service import service as desk
from siyu.voc import surveys
from siyu.voc.errors import LinkRefused
from tests.points.test_ledger import customer
from tests.service.test_desk import PHONE, decision, kb, replies
from tests.service.test_desk import customer as desk_customer

__all__ = ["kb"]  # the fixture


@pytest.fixture(autouse=True)
def fresh_settings() -> Iterator[None]:
    get_points_settings.cache_clear()
    yield
    get_points_settings.cache_clear()


def _entries(s: Session, source: str) -> list[tuple[int, int, str]]:
    return [(e.customer_id, e.amount, e.key) for e in s.scalars(
        select(PointsEntry).where(PointsEntry.source == source).order_by(PointsEntry.id))]


# Shanghai is UTC+8: 15:59 UTC is 23:59 there, 16:01 UTC already the next day.
LATE = dt.datetime(2026, 6, 30, 15, 59, tzinfo=dt.UTC)
NEXT_DAY = dt.datetime(2026, 6, 30, 16, 1, tzinfo=dt.UTC)


def test_a_check_in_earns_once_per_local_day(sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        cid = customer(s)
        first = earn.check_in(s, cid, now=LATE - dt.timedelta(hours=10))
        again = earn.check_in(s, cid, now=LATE)
        tomorrow = earn.check_in(s, cid, now=NEXT_DAY)
        assert (first.created, first.points, first.balance) == (True, 10, 10)
        assert (again.created, again.points, again.balance) == (False, 10, 10)
        assert (tomorrow.created, tomorrow.day, tomorrow.balance) == (
            True, dt.date(2026, 7, 1), 20)
        assert _entries(s, "checkin") == [(cid, 10, f"{cid}:2026-06-30"),
                                          (cid, 10, f"{cid}:2026-07-01")]


def test_check_in_amount_is_a_setting_and_zero_turns_it_off(
        sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIYU_POINTS_CHECKIN", "25")
    with sessions() as s:
        cid = customer(s)
        assert earn.check_in(s, cid, now=LATE).points == 25
        monkeypatch.setenv("SIYU_POINTS_CHECKIN", "0")
        get_points_settings.cache_clear()
        with pytest.raises(earn.CheckInOff):
            earn.check_in(s, cid, now=NEXT_DAY)
        assert points.balance(s, cid) == 25


def test_the_check_in_api(client: TestClient, sessions: sessionmaker[Session],
                          monkeypatch: pytest.MonkeyPatch) -> None:
    with sessions() as s:
        cid = customer(s)
        s.commit()
    url = f"/api/v1/customers/{cid}/points/check-ins"
    first = client.post(url)
    assert first.status_code == 200, first.text
    assert {k: first.json()[k] for k in ("points", "created", "balance")} == {
        "points": 10, "created": True, "balance": 10}
    again = client.post(url)
    assert (again.json()["created"], again.json()["balance"]) == (False, 10)
    assert again.json()["day"] == first.json()["day"]
    assert client.post("/api/v1/customers/999999/points/check-ins").status_code == 404
    monkeypatch.setenv("SIYU_POINTS_CHECKIN", "0")
    get_points_settings.cache_clear()
    off = client.post(url)
    assert off.status_code == 409 and off.json()["error"] == "checkin_off"


def _chat(sessions: sessionmaker[Session], text: str, external_id: str,
          now: dt.datetime) -> desk.InboundResult:
    with sessions() as s:
        result = desk.receive_inbound(s, channel="webchat", identities=[PHONE], text=text,
                                      external_id=external_id)
        s.commit()
    with sessions() as s:
        bot.handle_inbound(s, result.message_id, now=now)
        s.commit()
    return result


def test_typing_check_in_in_the_web_chat(sessions: sessionmaker[Session], settings: Settings,
                                         kb: None) -> None:
    cid = desk_customer(sessions, settings)
    with sessions() as s:
        points.add_entry(s, cid, 300, source="order", key="o-1")
        s.commit()
    first = _chat(sessions, "签到", "w-1", LATE)
    text = replies(sessions, first.conversation_id)[-1][1]
    assert text == "林女士，签到成功！获得 10 积分，您当前共有 310 积分。明天记得再来签到哦～"
    made = decision(sessions, first.message_id)
    assert made.action == "points_checkin" and "签到 +10" in made.reason
    again = _chat(sessions, "我要签到！", "w-2", LATE)
    text = replies(sessions, again.conversation_id)[-1][1]
    assert "今天已经签到过了" in text and "当前共有 310 积分" in text
    assert decision(sessions, again.message_id).reason == "今天已签到，未重复发放"
    _chat(sessions, "每日签到", "w-3", NEXT_DAY)
    assert "当前共有 320 积分" in replies(sessions, first.conversation_id)[-1][1]
    with sessions() as s:
        assert [k for _c, _a, k in _entries(s, "checkin")] == [
            f"{cid}:2026-06-30", f"{cid}:2026-07-01"]


def test_a_completed_survey_earns_once(sessions: sessionmaker[Session],
                                       settings: Settings) -> None:
    with sessions() as s:
        cid = customer(s)
        survey = surveys.ensure_desk_csat(s)
        token = surveys.sign_link(settings, survey, customer_id=cid)
        link = surveys.read_link(settings, token)
        surveys.save_answer(s, link, "csat", 5)
        resp = surveys.submit(s, link)
        with pytest.raises(LinkRefused):
            surveys.submit(s, surveys.read_link(settings, token))
        # the award itself is idempotent by the response
        assert earn.for_survey(s, cid, resp.id) is not None
        assert _entries(s, "survey") == [(cid, 20, str(resp.id))]
        anonymous = surveys.read_link(settings, surveys.sign_link(settings, survey))
        surveys.save_answer(s, anonymous, "csat", 4)
        surveys.submit(s, anonymous)
        assert len(_entries(s, "survey")) == 1


def test_a_review_earns_once_per_event_not_from_an_import(
        sessions: sessionmaker[Session], settings: Settings,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIYU_POINTS_REVIEW", "30")
    ts = dt.datetime(2026, 6, 1, 8, tzinfo=dt.UTC).isoformat()

    def event(id_: str, type_: str, **props: object) -> dict[str, object]:
        return {"id": id_, "type": type_, "ts": ts, "properties": props,
                "identities": [{"kind": "external_id", "value": "R1"}]}

    with sessions() as s:
        ingest(s, "events", [event("rv-1", "review", text="燕麦很香", score=5),
                             event("fb-1", "feedback", score=4),  # no text: no review
                             event("v-1", "view_product", text="x")],
               settings=settings, source="api")
        ingest(s, "events", [event("rv-1", "review", text="燕麦很香", score=5)],
               settings=settings, source="api")  # re-sent
        ingest(s, "events", [event("rv-old", "review", text="历史评价")], settings=settings,
               source="import")
        rows = _entries(s, "review")
        assert [(a, k) for _c, a, k in rows] == [(30, "rv-1")]
