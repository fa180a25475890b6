"""The WeCom welcome message: an add-contact callback's ``WelcomeCode`` reaches a playbook's
``wecom_welcome`` step, which sends through ``externalcontact/send_welcome_msg`` at a local
HTTP server standing in for WeCom; past ``platform.welcome_code_seconds`` the code is not
used (reason ``welcome_code_expired``) and, with ``fallback: wecom``, an app message goes
instead. The code never appears in the logs."""

from __future__ import annotations

import datetime as dt
import logging
import textwrap
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from siyu.channels import outbox, tasks
from siyu.channels.config import ChannelSettings
from siyu.channels.models import Delivery
from siyu.channels.wecom.adapter import WeComAdapter
from siyu.channels.wecom.client import TokenCache
from siyu.channels.wecom.welcome import WeComWelcomeAdapter
from siyu.config import Settings
from siyu.playbooks import service
from siyu.playbooks.models import StepLog
from siyu.playbooks.tasks import run_batches
from tests.channels.conftest import run_jobs
from tests.channels.fakes import FakeWeCom
from tests.channels.test_wecom_callback import URL, encrypted

WELCOME = "/cgi-bin/externalcontact/send_welcome_msg"
PLAYBOOK = """\
name: 企微欢迎语
status: active
trigger: {event: wecom_add_external_contact}
steps:
  - send: {channel: wecom_welcome, purpose: service, FALLBACK
           template: "{{ customer.name or '您' }}好，我是您的专属顾问小禾"}
"""


@pytest.fixture
def welcome_adapters(wecom_settings: Settings, channel_settings: ChannelSettings
                     ) -> Iterator[dict[str, Any]]:
    cache = TokenCache()
    registry: dict[str, Any] = {
        "wecom": WeComAdapter(wecom_settings, channel_settings, cache=cache),
        "wecom_welcome": WeComWelcomeAdapter(wecom_settings, channel_settings, cache=cache)}
    tasks.use_adapters(registry)
    yield registry
    tasks.use_adapters(None)


def add_contact(client: TestClient, vector: dict[str, Any], external: str, code: str,
                at: int) -> None:
    xml = ("<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName>"
           f"<FromUserName><![CDATA[sys]]></FromUserName><CreateTime>{at}</CreateTime>"
           "<MsgType><![CDATA[event]]></MsgType>"
           "<Event><![CDATA[change_external_contact]]></Event>"
           "<ChangeType><![CDATA[add_external_contact]]></ChangeType>"
           "<UserID><![CDATA[advisor_chen]]></UserID>"
           f"<ExternalUserID><![CDATA[{external}]]></ExternalUserID>"
           f"<WelcomeCode><![CDATA[{code}]]></WelcomeCode></xml>")
    params, body = encrypted(vector, xml, ts=str(at))
    assert client.post(URL, params=params, content=body).status_code == 200


def setup(sessions: sessionmaker[Session], fallback: bool) -> None:
    text = PLAYBOOK.replace("FALLBACK", "fallback: wecom," if fallback else "")
    with sessions() as s:
        service.apply(s, textwrap.dedent(text), file="welcome.yaml")
        s.commit()


def step_logs(sessions: sessionmaker[Session]) -> list[tuple[str, str | None, str | None]]:
    with sessions() as s:
        return [(r.outcome, r.reason, r.channel) for r in s.scalars(
            select(StepLog).order_by(StepLog.id))]


def test_the_welcome_goes_with_the_code_within_the_window(
        chan_client: TestClient, vector: dict[str, Any], sessions: sessionmaker[Session],
        wecom_api: FakeWeCom, welcome_adapters: dict[str, Any],
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    setup(sessions, fallback=True)
    add_contact(chan_client, vector, "wmWelcome01", "CODE-fresh-7f3a", int(time.time()))
    assert run_batches(sessions) == 1
    run_jobs(sessions)
    calls = wecom_api.calls(WELCOME)
    assert [c.body for c in calls] == [{"welcome_code": "CODE-fresh-7f3a",
                                        "text": {"content": "您好，我是您的专属顾问小禾"}}]
    assert wecom_api.calls("/cgi-bin/kf/send_msg") == []
    assert step_logs(sessions) == [("queued", None, "wecom_welcome")]
    with sessions() as s:
        [delivery] = s.scalars(select(Delivery).where(Delivery.key.is_not(None)))
        assert (delivery.channel, delivery.state) == ("wecom_welcome", "sent")
    assert "CODE-fresh-7f3a" not in caplog.text


def test_past_the_window_the_code_is_not_used_and_the_fallback_is_an_app_message(
        chan_client: TestClient, vector: dict[str, Any], sessions: sessionmaker[Session],
        wecom_api: FakeWeCom, welcome_adapters: dict[str, Any],
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    setup(sessions, fallback=True)
    # The worker reaches the step 30 s after the add-contact: the code is 10 s past its 20.
    add_contact(chan_client, vector, "wmLate01", "CODE-late-91c2", int(time.time()) - 30)
    assert run_batches(sessions) == 1
    run_jobs(sessions)
    assert wecom_api.calls(WELCOME) == []
    kf = wecom_api.calls("/cgi-bin/kf/send_msg")
    assert len(kf) == 1 and kf[0].body["touser"] == "wmLate01"
    assert kf[0].body["text"] == {"content": "您好，我是您的专属顾问小禾"}
    assert step_logs(sessions) == [("queued", "welcome_code_expired", "wecom")]
    with sessions() as s:
        [delivery] = s.scalars(select(Delivery).where(Delivery.key.is_not(None)))
        assert delivery.channel == "wecom" and "welcome_code" not in delivery.content
    assert "CODE-late-91c2" not in caplog.text


def test_past_the_window_without_a_fallback_nothing_is_sent_and_the_reason_recorded(
        chan_client: TestClient, vector: dict[str, Any], sessions: sessionmaker[Session],
        wecom_api: FakeWeCom, welcome_adapters: dict[str, Any]) -> None:
    setup(sessions, fallback=False)
    add_contact(chan_client, vector, "wmLate02", "CODE-late-55d0", int(time.time()) - 30)
    assert run_batches(sessions) == 1
    run_jobs(sessions)
    assert wecom_api.calls(WELCOME) == [] and wecom_api.calls("/cgi-bin/kf/send_msg") == []
    assert step_logs(sessions) == [("suppressed", "welcome_code_expired", "wecom_welcome")]
    with sessions() as s:
        stats = service.stats(s, "企微欢迎语")
    assert stats["suppressed"] == {"welcome_code_expired": 1}


def test_a_delivery_that_reaches_the_adapter_after_the_code_expired_is_not_sent(
        sessions: sessionmaker[Session], wecom_api: FakeWeCom,
        welcome_adapters: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    """The step was on time but the send job ran late (a busy worker, a retry): the adapter
    checks the moment again and fails without calling WeCom."""
    from siyu.customers.models import Customer, Identity

    caplog.set_level(logging.DEBUG)
    with sessions() as s:
        c = Customer(name="王芳")
        s.add(c)
        s.flush()
        s.add(Identity(customer_id=c.id, kind="wecom_external_userid", value="wmSlow01"))
        past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        delivery_id = outbox.enqueue_message(
            s, key="pb:1:0", customer_id=c.id, channel="wecom_welcome", text="您好",
            source="playbook", content={"welcome_code": "CODE-slow-0b1e",
                                        "welcome_until": past.isoformat()})
        s.commit()
    run_jobs(sessions)
    assert wecom_api.calls(WELCOME) == []
    with sessions() as s:
        delivery = s.get(Delivery, delivery_id)
        assert delivery is not None and delivery.state == "failed"
        assert "expired" in (delivery.last_error or "")
        assert "CODE-slow-0b1e" not in (delivery.last_error or "")
    assert "CODE-slow-0b1e" not in caplog.text


def test_fallback_is_only_for_the_welcome_channel() -> None:
    from siyu.playbooks.errors import InvalidPlaybook

    bad = textwrap.dedent(PLAYBOOK.replace("wecom_welcome", "sms").replace(
        "FALLBACK", "fallback: wecom,"))
    with pytest.raises(InvalidPlaybook) as caught:
        service.parse_file(bad, "bad.yaml")
    assert "steps[0].send.fallback" in str(caught.value)
