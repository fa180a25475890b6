"""Opt-out honoured at once: an SMS reply 退订/TD through the provider's signed webhook, a
delivery report that the number blocks the brand, an e-mail's unsubscribe link (and RFC
8058 one-click), and a hard bounce each withdraw marketing consent on that channel; after
that, queued marketing is not sent. E-mail against a real local SMTP server, SMS against a
local HTTP server."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from siyu.app import create_app
from siyu.channels import optout, tasks
from siyu.channels.config import ChannelSettings
from siyu.channels.email import SmtpAdapter
from siyu.channels.models import Delivery
from siyu.channels.sms import SmsAdapter
from siyu.config import Settings
from siyu.customers.models import Consent, Customer
from siyu.events.models import Event
from siyu.kit import signing
from siyu.privacy import service as privacy
from tests.channels.conftest import run_jobs
from tests.channels.fakes import FakeSms
from tests.channels.smtp import Mailbox, smtp_server
from tests.channels.test_outbox_messages import customer, enqueue, state

SECRET = "sms-webhook-secret-for-tests"
PHONE = "+8613800138000"
PUBLIC = "https://cs.brand.example"


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    with smtp_server() as box:
        box.gone.add("gone@example.com")
        yield box


@pytest.fixture
def cs(mailbox: Mailbox, sms_api: FakeSms) -> ChannelSettings:
    return ChannelSettings(smtp_host=mailbox.host, smtp_port=mailbox.port,
                           smtp_from="小禾健康 <care@xiaohe.example>",
                           sms_url=sms_api.url + "/sms", sms_token=SecretStr("sms-token-xyz"),
                           sms_webhook_secret=SecretStr(SECRET), public_url=PUBLIC)


@pytest.fixture
def out(cs: ChannelSettings, settings: Settings) -> Iterator[None]:
    tasks.use_adapters({  # type: ignore[dict-item]
        "email": SmtpAdapter(cs, unsubscribe_link=lambda cid: optout.unsubscribe_url(
            settings, cs.public_url, cid, "email")),
        "sms": SmsAdapter(cs)})
    yield
    tasks.use_adapters(None)


@pytest.fixture
def web(settings: Settings, engine: Engine, sessions: sessionmaker[Session],
        cs: ChannelSettings) -> Iterator[TestClient]:
    app = create_app(settings, engine=engine)
    app.state.channel_settings = cs
    with TestClient(app) as client:
        yield client


def post(web: TestClient, event: dict[str, Any], *, secret: str = SECRET,
         at: float | None = None) -> Any:
    body = json.dumps(event, ensure_ascii=False).encode()
    return web.post("/channels/sms/webhook", content=body,
                    headers={**signing.signed_headers(secret, body, at=at),
                             "Content-Type": "application/json"})


def consents(sessions: sessionmaker[Session], cid: int) -> list[tuple[str, str, bool, str]]:
    with sessions() as s:
        return [(c.channel, c.purpose, c.granted, c.source) for c in s.scalars(
            select(Consent).where(Consent.customer_id == cid).order_by(Consent.id))]


def may_market(sessions: sessionmaker[Session], settings: Settings, cid: int, channel: str
               ) -> bool:
    with sessions() as s:
        return privacy.contact_blocked(s, cid, channel=channel) is None


@pytest.mark.parametrize(("text", "stops"), [
    ("退订", True), ("TD", True), ("td", True), (" T ", True), ("退订！", True), ("Ｔ Ｄ", True),
    ("STOP", True), ("取消订阅。", True), ("退订单", False), ("我想退货", False),
    ("谢谢", False), ("", False)])
def test_what_counts_as_an_sms_opt_out(text: str, stops: bool) -> None:
    assert optout.is_opt_out(text) is stops


def test_a_reply_td_stops_marketing_sms_at_once_and_once(
        web: TestClient, sessions: sessionmaker[Session], settings: Settings, out: None,
        sms_api: FakeSms) -> None:
    cid = customer(sessions, phone=PHONE)
    queued = enqueue(sessions, "pb:1:0", cid, "sms", "【小禾】新品上市")
    answer = post(web, {"event_id": "mo-1", "type": "reply", "from": "138 0013 8000",
                        "text": "TD"})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"matched": 1, "opted_out": 1, "duplicate": False}
    assert consents(sessions, cid) == [("sms", "marketing", False, "短信回复退订")]
    assert not may_market(sessions, settings, cid, "sms")
    # the marketing SMS queued before the reply is not sent; a service SMS still is
    with sessions() as s:
        from siyu.channels import outbox

        service = outbox.enqueue_message(s, key="desk:1", customer_id=cid, channel="sms",
                                         text="您的验证码是 123456", purpose="service")
        s.commit()
    run_jobs(sessions)
    assert state(sessions, queued)[0] == "failed"
    assert [c.body["text"] for c in sms_api.calls("/sms")] == ["您的验证码是 123456"]
    assert state(sessions, service)[0] == "sent"
    # replayed: stored once, recorded once
    again = post(web, {"event_id": "mo-1", "type": "reply", "from": PHONE, "text": "TD"})
    assert again.json()["duplicate"] is True
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Event).where(
            Event.type == "sms_reply")) == 1
    assert len(consents(sessions, cid)) == 1
    # a later 退订 from an already opted-out number records nothing new
    post(web, {"event_id": "mo-2", "type": "reply", "from": PHONE, "text": "退订"})
    assert len(consents(sessions, cid)) == 1


def test_an_ordinary_reply_is_kept_and_changes_no_consent(
        web: TestClient, sessions: sessionmaker[Session], settings: Settings) -> None:
    cid = customer(sessions, phone=PHONE)
    answer = post(web, {"event_id": "mo-3", "type": "reply", "from": PHONE,
                        "text": "退订单怎么操作"})
    assert answer.json() == {"matched": 1, "opted_out": 0, "duplicate": False}
    assert consents(sessions, cid) == []
    with sessions() as s:
        ev = s.scalars(select(Event).where(Event.type == "sms_reply")).one()
        assert ev.customer_id == cid and ev.properties["text"] == "退订单怎么操作"


def test_a_blocked_delivery_report_opts_the_number_out(
        web: TestClient, sessions: sessionmaker[Session]) -> None:
    cid = customer(sessions, phone=PHONE)
    delivered = post(web, {"event_id": "dr-1", "type": "status", "to": PHONE,
                           "status": "delivered", "provider_message_id": "p-1"})
    assert delivered.json()["opted_out"] == 0
    blocked = post(web, {"event_id": "dr-2", "type": "status", "to": PHONE,
                         "status": "BLOCKED"})
    assert blocked.json()["opted_out"] == 1
    assert consents(sessions, cid) == [("sms", "marketing", False, "运营商拦截")]


def test_the_webhook_refuses_what_is_not_the_providers_and_stores_nothing(
        web: TestClient, sessions: sessionmaker[Session], cs: ChannelSettings,
        settings: Settings, engine: Engine) -> None:
    cid = customer(sessions, phone=PHONE)
    event = {"event_id": "mo-9", "type": "reply", "from": PHONE, "text": "TD"}
    forged = post(web, event, secret="not-the-secret")
    assert forged.status_code == 403 and forged.json()["details"]["reason"] == "bad_signature"
    stale = post(web, event, at=1_000_000)
    assert stale.status_code == 403 and stale.json()["details"]["reason"] == "stale_timestamp"
    unsigned = web.post("/channels/sms/webhook", json=event)
    assert unsigned.status_code == 401
    assert SECRET not in forged.text + stale.text + unsigned.text
    bad = post(web, {"event_id": "mo-10", "type": "reply", "from": "12", "text": "TD"})
    assert bad.status_code == 422 and bad.json()["details"][0]["field"] == "from"
    wrong = post(web, {"event_id": "mo-11", "type": "shout", "from": PHONE})
    assert wrong.status_code == 422
    assert consents(sessions, cid) == []
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Event)) == 0
    # an unknown number is answered and forgotten: no customer is made from a reply
    stranger = post(web, {"event_id": "mo-12", "type": "reply", "from": "13900139000",
                          "text": "TD"})
    assert stranger.json() == {"matched": 0, "opted_out": 0, "duplicate": False}
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Customer)) == 1
    # not configured: 503, nothing stored
    app = create_app(settings, engine=engine)
    app.state.channel_settings = ChannelSettings()
    with TestClient(app) as bare:
        assert post(bare, event).status_code == 503


def test_marketing_email_carries_a_signed_unsubscribe_link_that_asks_first(
        web: TestClient, sessions: sessionmaker[Session], settings: Settings, out: None,
        mailbox: Mailbox) -> None:
    cid = customer(sessions, email="wangfang@example.com")
    enqueue(sessions, "pb:2:0", cid, "email", "益生菌第二盒半价", subject="老客专享")
    with sessions() as s:
        from siyu.channels import outbox

        outbox.enqueue_message(s, key="desk:2", customer_id=cid, channel="email",
                               text="您的售后单已受理", purpose="service")
        s.commit()
    run_jobs(sessions)
    assert mailbox.count() == 2
    by_subject = {str(m["Subject"]): m for m in mailbox.messages}
    marketing = by_subject["老客专享"]
    header = str(marketing["List-Unsubscribe"])
    link = re.fullmatch(r"<(https://cs\.brand\.example/unsubscribe/[^>]+)>", header)
    assert link is not None, header
    assert marketing["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert link.group(1) in marketing.get_content()
    service = next(m for s, m in by_subject.items() if s != "老客专享")
    assert service["List-Unsubscribe"] is None and "退订" not in service.get_content()

    path = link.group(1).removeprefix(PUBLIC)
    page = web.get(path)  # a scanner opening the link unsubscribes nobody
    assert page.status_code == 200 and "确认退订" in page.text
    assert may_market(sessions, settings, cid, "email")
    done = web.post(path, content=b"List-Unsubscribe=One-Click",
                    headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert done.status_code == 200 and "已为您退订邮件营销消息" in done.text
    assert consents(sessions, cid) == [("email", "marketing", False, "邮件退订链接")]
    assert not may_market(sessions, settings, cid, "email")
    assert web.post(path).status_code == 200 and len(consents(sessions, cid)) == 1

    token = path.rsplit("/", 1)[1]
    forged = web.get(f"/unsubscribe/{token[:-2]}xx")
    assert forged.status_code == 404 and "退订链接无效" in forged.text
    other = optout.unsubscribe_token(settings, cid + 1, "email")
    assert optout.read_unsubscribe(settings, other) == (cid + 1, "email")


def test_a_hard_bounce_withdraws_email_marketing(
        sessions: sessionmaker[Session], settings: Settings, out: None,
        mailbox: Mailbox) -> None:
    cid = customer(sessions, email="gone@example.com")
    delivery_id = enqueue(sessions, "pb:3:0", cid, "email", "新品上市", subject="新品")
    run_jobs(sessions)
    assert state(sessions, delivery_id)[0] == "failed"
    assert consents(sessions, cid) == [("email", "marketing", False, "退信（SMTP 550）")]
    later = enqueue(sessions, "pb:3:1", cid, "email", "再次提醒", subject="提醒")
    run_jobs(sessions)
    with sessions() as s:
        d = s.get(Delivery, later)
        assert d is not None and d.state == "failed" and d.attempts == 0
    assert mailbox.count() == 0


def test_marketing_sms_says_how_to_stop(
        sessions: sessionmaker[Session], out: None, sms_api: FakeSms) -> None:
    cid = customer(sessions, phone=PHONE)
    enqueue(sessions, "pb:4:0", cid, "sms", "【小禾】益生菌第二盒半价")
    enqueue(sessions, "pb:4:1", cid, "sms", "【小禾】会员日 退订回T")
    run_jobs(sessions)
    texts = sorted(c.body["text"] for c in sms_api.calls("/sms"))
    assert texts == ["【小禾】会员日 退订回T", "【小禾】益生菌第二盒半价 回T退订"]


@pytest.mark.parametrize(("source", "refused"), [
    ("短信回复退订", True), ("邮件退订链接", True), ("退信（SMTP 550）", True),
    ("运营商拦截", True), ("opt_out_import", True), ("用户退订", True),
    ("会员注册", False), ("", False)])
def test_which_withdrawals_are_the_customer_refusing(source: str, refused: bool) -> None:
    """The playbooks record ``opted_out`` for these, ``no_consent`` for the rest."""
    assert optout.is_opt_out_source(source) is refused
