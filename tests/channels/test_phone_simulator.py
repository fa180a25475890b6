"""The console's phone simulator (demo only): each step is a webhook event signed with the
configured secret and sent down the webhook's own path; and the demo's call history gives
the service metrics a phone row with bot-resolved and transferred calls and CSAT."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from siyu.channels.config import ChannelSettings
from siyu.channels.phone.models import PhoneCall, PhoneWebhookEvent
from siyu.config import Settings
from siyu.service.models import Conversation
from tests.channels.conftest import row_counts
from tests.channels.test_phone_webhook import (  # noqa: F401
    SECRET,
    _customer_with_failed_payment,
    kb,
)
from tests.console.conftest import Login, csrf_from, login, make_user, staff  # noqa: F401

PAGE = "/service/phone-simulator"


def _configure(client: TestClient, *, demo: bool, secret: str = SECRET) -> None:
    client.app.state.channel_settings = ChannelSettings(  # type: ignore[attr-defined]
        phone_secret=SecretStr(secret), phone_demo=demo)


@pytest.mark.usefixtures("staff")
def test_the_simulator_is_closed_outside_the_demo(app_client: TestClient, login: Login,  # noqa: F811
                                                  sessions: sessionmaker[Session]) -> None:
    _configure(app_client, demo=False)
    admin = login("admin")
    page = admin.get(PAGE)
    assert page.status_code == 404 and "仅在演示模式" in page.text
    assert f'href="{PAGE}"' not in admin.get("/service").text
    before = row_counts(sessions)
    r = admin.post(PAGE + "/event", data={"kind": "start", "number": "13800138000",
                                          "csrf_token": csrf_from(page.text)})
    assert r.status_code == 404 and row_counts(sessions) == before
    _configure(app_client, demo=True, secret="")  # demo mode without a secret: still closed
    assert admin.get(PAGE).status_code == 404


@pytest.mark.usefixtures("staff", "kb")
def test_a_simulated_call_goes_through_the_signed_webhook_path(
        app_client: TestClient, login: Login, sessions: sessionmaker[Session],  # noqa: F811
        settings: Settings) -> None:
    _customer_with_failed_payment(sessions, settings)
    _configure(app_client, demo=True)
    agent = login("agent")
    page = agent.get(PAGE)
    assert page.status_code == 200 and "林晓雯" in page.text and "13800138000" in page.text
    assert "陌生号码" in page.text
    csrf = csrf_from(page.text)
    before = row_counts(sessions)
    assert agent.post(PAGE + "/event", data={"kind": "start", "number": "13800138000",
                                             "csrf_token": "forged"}).status_code == 403
    assert row_counts(sessions) == before

    started = agent.post(PAGE + "/event", data={"kind": "start", "number": "13800138000",
                                                "csrf_token": csrf}).json()
    call_id = started["answer"]["call_id"]
    first = started["answer"]["actions"][0]
    assert first["type"] == "speak" and "776元" in first["text"] and "没有成功" in first["text"]
    assert started["event"]["type"] == "call.started"
    said = agent.post(PAGE + "/event", data={"kind": "say", "call_id": call_id,
                                             "text": "转人工", "csrf_token": csrf}).json()
    transfer = said["answer"]["actions"][-1]
    assert transfer["type"] == "transfer" and transfer["queue"]
    ended = agent.post(PAGE + "/event", data={"kind": "hangup", "call_id": call_id,
                                              "csrf_token": csrf}).json()
    assert ended["answer"]["status"] == "ended"
    unknown = agent.post(PAGE + "/event", data={"kind": "say", "call_id": "SIM-nope",
                                                "text": "你好", "csrf_token": csrf})
    assert unknown.status_code == 404 and unknown.json()["details"]["reason"] == "unknown_call"
    with sessions() as s:
        # each step was a webhook event with its replay guard row, as from a call centre
        events = s.scalars(select(PhoneWebhookEvent.type).where(
            PhoneWebhookEvent.call_id == call_id).order_by(PhoneWebhookEvent.id)).all()
        assert events == ["call.started", "utterance", "call.ended"]
        call = s.scalars(select(PhoneCall).where(PhoneCall.call_id == call_id)).one()
        assert call.status == "ended" and call.skill_group == transfer["queue"]
        assert s.get(Conversation, call.conversation_id) is not None


def test_the_demo_seeds_weeks_of_calls_for_the_metrics(sessions: sessionmaker[Session],
                                                       settings: Settings) -> None:
    from siyu.channels.phone.demo import seed_call_history
    from siyu.demo import generator
    from siyu.service import metrics
    from siyu.service.demo import seed_agents

    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    generator.seed_demo(sessions, settings, customers=100, seed=42, now=now)
    with sessions() as s:
        seed_agents(s)
        assert seed_call_history(s, now=now, calls=120) == 120
        assert seed_call_history(s, now=now) == 0  # once only
        s.commit()
    with sessions() as s:
        oldest = s.scalar(select(func.min(PhoneCall.started_at)))
        assert oldest is not None and (now - oldest).days >= 14
        assert s.scalar(select(func.count()).select_from(PhoneCall).where(
            PhoneCall.customer_id <= 5)) == 0  # showcase customers keep their stories
        m = metrics.summary(s, days=30, now=now)
    phone = next(r for r in m["by_channel"] if r["channel"] == "phone")
    assert phone["conversations"] == 120
    assert phone["by_bot"] > phone["transferred"] > 10
    assert phone["csat"] is not None
    assert phone["resolution_p50_min"] is not None
    bot, agent = m["resolution_minutes"]["bot"], m["resolution_minutes"]["agent"]
    assert bot is not None and agent is not None and bot * 3 < agent  # "20 minutes to a few"
