"""The outbox for messages without a conversation (playbook sends): e-mail at a real local
SMTP server, SMS and WeCom at local HTTP servers, signed webhooks; one send per key, unknown
outcomes recorded as ``outcome_unknown`` and never re-sent."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from siyu.channels import outbox, tasks
from siyu.channels.config import ChannelSettings
from siyu.channels.email import SmtpAdapter
from siyu.channels.models import Delivery
from siyu.channels.sms import SmsAdapter
from siyu.channels.webhook import WebhookAdapter
from siyu.channels.wecom.client import TokenCache
from siyu.channels.wecom.mass import WeComMassAdapter, refresh_results
from siyu.config import Settings
from siyu.customers.models import Customer, Identity
from tests.channels.conftest import run_jobs
from tests.channels.fakes import FakeServer, FakeSms, FakeWeCom, serve
from tests.channels.smtp import Mailbox, smtp_server


class FakeHook(FakeServer):
    def answer(self, rec: Any) -> tuple[int, Any]:
        return 200, {"ok": True}


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    with smtp_server() as box:
        yield box


@pytest.fixture
def hook() -> Iterator[FakeHook]:
    with serve(FakeHook()) as fake:
        yield fake  # type: ignore[misc]


@pytest.fixture
def out_adapters(mailbox: Mailbox, sms_api: FakeSms, wecom_settings: Settings,
                 hook: FakeHook) -> Iterator[dict[str, Any]]:
    host = hook.url.split("//", 1)[1]
    cs = ChannelSettings(smtp_host=mailbox.host, smtp_port=mailbox.port,
                         smtp_from="小禾健康 <care@xiaohe.example>",
                         sms_url=sms_api.url + "/sms", sms_token=SecretStr("sms-token-xyz"),
                         webhook_allow_hosts=[host], webhook_secret=SecretStr("hook-secret"))
    registry: dict[str, Any] = {
        "email": SmtpAdapter(cs), "sms": SmsAdapter(cs),
        "wecom_mass": WeComMassAdapter(wecom_settings, cs, cache=TokenCache()),
        "webhook": WebhookAdapter(wecom_settings, cs)}
    tasks.use_adapters(registry)
    yield registry
    tasks.use_adapters(None)


def customer(sessions: sessionmaker[Session], **ids: str) -> int:
    with sessions() as s:
        row = Customer(name="王芳")
        s.add(row)
        s.flush()
        for kind, value in ids.items():
            s.add(Identity(customer_id=row.id, kind=kind, value=value))
        s.commit()
        return row.id


def enqueue(sessions: sessionmaker[Session], key: str, cid: int, channel: str, text: str,
            **content: Any) -> int:
    with sessions() as s:
        delivery_id = outbox.enqueue_message(s, key=key, customer_id=cid, channel=channel,
                                             text=text, source="playbook", content=content)
        s.commit()
        return delivery_id


def state(sessions: sessionmaker[Session], delivery_id: int) -> tuple[str, int, str | None]:
    with sessions() as s:
        d = s.get(Delivery, delivery_id)
        assert d is not None
        return d.state, d.attempts, d.last_error


def test_email_goes_out_once_per_key_with_a_message_id_per_key(
        sessions: sessionmaker[Session], out_adapters: dict[str, Any], mailbox: Mailbox) -> None:
    cid = customer(sessions, email="wangfang@example.com")
    first = enqueue(sessions, "run-1:step-0", cid, "email", "您的益生菌快吃完了",
                    subject="王芳，您的益生菌快吃完了",
                    unsubscribe_url="https://brand.example/u/1")
    again = enqueue(sessions, "run-1:step-0", cid, "email", "您的益生菌快吃完了")
    other = enqueue(sessions, "run-1:step-2", cid, "email", "第二封")
    assert first == again != other
    run_jobs(sessions)
    assert mailbox.count() == 2
    mail = mailbox.messages[0]
    assert mail["To"] == "wangfang@example.com"
    assert mail["Subject"] == "王芳，您的益生菌快吃完了"
    assert mail["List-Unsubscribe"] == "<https://brand.example/u/1>"
    assert mail["Message-ID"] != mailbox.messages[1]["Message-ID"]
    assert mail["Message-ID"].endswith("@xiaohe.example>")
    assert state(sessions, first)[:2] == ("sent", 1)
    run_jobs(sessions)
    assert mailbox.count() == 2


def test_email_killed_after_handing_over_is_outcome_unknown_and_not_resent(
        sessions: sessionmaker[Session], out_adapters: dict[str, Any], mailbox: Mailbox) -> None:
    cid = customer(sessions, email="wangfang@example.com")
    delivery_id = enqueue(sessions, "run-2:step-0", cid, "email", "您好")
    with sessions() as s:  # what a worker killed mid-call leaves behind
        assert isinstance(outbox.begin_send(s, delivery_id, tasks.adapters()), outbox.Attempt)
        s.commit()
    run_jobs(sessions)
    assert state(sessions, delivery_id)[0] == "outcome_unknown"
    assert mailbox.count() == 0


def test_smtp_deferral_is_retried_and_a_customer_without_address_fails(
        sessions: sessionmaker[Session], out_adapters: dict[str, Any], mailbox: Mailbox) -> None:
    cid = customer(sessions, email="wangfang@example.com")
    mailbox.refuse_with = "451 try again later"
    delivery_id = enqueue(sessions, "run-3:step-0", cid, "email", "您好")
    run_jobs(sessions, rounds=1)
    assert state(sessions, delivery_id)[0] == "retry"
    nobody = customer(sessions, phone="+8613800138000")
    failed = enqueue(sessions, "run-4:step-0", nobody, "email", "您好")
    run_jobs(sessions, rounds=1)
    assert state(sessions, failed)[0] == "failed"
    assert mailbox.count() == 0


def test_sms_goes_to_the_provider_with_the_key(
        sessions: sessionmaker[Session], out_adapters: dict[str, Any], sms_api: FakeSms) -> None:
    cid = customer(sessions, phone="+8613800138000")
    delivery_id = enqueue(sessions, "run-5:step-1", cid, "sms",
                          "【小禾】您的益生菌快吃完了 退订回T")
    run_jobs(sessions)
    calls = sms_api.calls("/sms")
    assert len(calls) == 1
    assert calls[0].body["to"] == "+8613800138000"
    assert calls[0].body["params"] == {"key": "run-5:step-1"}
    assert calls[0].headers["authorization"] == "Bearer sms-token-xyz"
    assert state(sessions, delivery_id)[0] == "sent"


def test_sms_provider_down_is_retried(sessions: sessionmaker[Session],
                                      out_adapters: dict[str, Any], sms_api: FakeSms) -> None:
    cid = customer(sessions, phone="+8613800138000")
    sms_api.then("/sms", {"status": 503})
    delivery_id = enqueue(sessions, "run-6:step-1", cid, "sms", "您好")
    run_jobs(sessions, rounds=1)
    assert state(sessions, delivery_id)[0] == "retry"


def test_wecom_mass_send_is_created_then_sent_when_read_back(
        sessions: sessionmaker[Session], out_adapters: dict[str, Any],
        wecom_api: FakeWeCom) -> None:
    cid = customer(sessions, wecom_external_userid="wmCust01")
    delivery_id = enqueue(sessions, "run-7:step-0", cid, "wecom_mass", "新品试用邀请",
                          sender="advisor.li")
    run_jobs(sessions)
    calls = wecom_api.calls("/cgi-bin/externalcontact/add_msg_template")
    assert len(calls) == 1
    assert calls[0].body == {"chat_type": "single", "external_userid": ["wmCust01"],
                             "sender": "advisor.li", "text": {"content": "新品试用邀请"}}
    assert state(sessions, delivery_id)[0] == "created"
    adapter = out_adapters["wecom_mass"]
    with sessions() as s:
        assert refresh_results(s, adapter) == 0  # the employee has not confirmed yet
        s.commit()
    assert state(sessions, delivery_id)[0] == "created"
    wecom_api.mass_status["mass-1"] = 1
    with sessions() as s:
        assert refresh_results(s, adapter) == 1
        s.commit()
    assert state(sessions, delivery_id)[0] == "sent"


def test_webhook_is_signed_and_only_goes_to_allowed_hosts(
        sessions: sessionmaker[Session], out_adapters: dict[str, Any], hook: FakeHook) -> None:
    cid = customer(sessions)
    ok = enqueue(sessions, "run-8:step-4", cid, "webhook", "", url=hook.url + "/crm",
                 body={"customer": cid, "event": "复购提醒"})
    refused = enqueue(sessions, "run-8:step-5", cid, "webhook", "",
                      url="http://evil.example/steal", body={})
    run_jobs(sessions)
    calls = hook.calls("/crm")
    assert len(calls) == 1
    head = calls[0].headers
    import json
    raw = json.dumps(calls[0].body, ensure_ascii=False, sort_keys=True).encode()
    expected = hmac.new(b"hook-secret", head["x-siyu-timestamp"].encode() + b"." + raw,
                        hashlib.sha256).hexdigest()
    assert head["x-siyu-signature"] == "sha256=" + expected
    assert head["idempotency-key"] == "run-8:step-4"
    assert state(sessions, ok)[0] == "sent"
    assert state(sessions, refused)[0] == "failed"


def test_enqueue_many_is_set_based_and_idempotent(sessions: sessionmaker[Session],
                                                   out_adapters: dict[str, Any],
                                                   mailbox: Mailbox) -> None:
    ids = [customer(sessions, email=f"c{i}@example.com") for i in range(3)]
    rows = [{"key": f"bulk:{c}", "customer_id": c, "channel": "email", "text": "您好",
             "content": {"subject": "问候"}} for c in ids]
    with sessions() as s:
        assert outbox.enqueue_many(s, rows) == 3
        assert outbox.enqueue_many(s, rows) == 0
        s.commit()
    run_jobs(sessions)
    assert mailbox.count() == 3
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Delivery)) == 3
