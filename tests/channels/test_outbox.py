"""The ``channels.deliver`` job: one send per message, retries, permanent failures, crashes.

Messages are created through the service desk's contract (``receive_inbound`` then
``post_outbound``), delivered by the real job system to a local fake WeCom server.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from siyu.channels import desk, outbox, tasks
from siyu.channels.models import Delivery
from siyu.customers.identity import IdentityRef
from siyu.jobs import service as jobs
from siyu.jobs.models import Job
from tests.channels.conftest import run_jobs
from tests.channels.fakes import FakeWeCom


def conversation(sessions: sessionmaker[Session], *, channel: str = "wecom",
                 identity: IdentityRef | None = None, payload: dict[str, Any] | None = None,
                 external_id: str = "m-1") -> int:
    """A conversation with one inbound message; the bot's job is dropped so only the
    messages a test posts are delivered."""
    identity = identity or IdentityRef("wecom_userid", "zhangsan")
    if payload is None:
        payload = {"wecom": {"kind": identity.kind, "userid": identity.value,
                             "agent_id": "1000002"}}
    with sessions() as s:
        result = desk.receive_inbound(s, channel=channel, identities=[identity], text="在吗",
                                      external_id=external_id, payload=payload)
        s.execute(update(Job).where(Job.name == "service.handle_inbound")
                  .values(status="done"))
        s.commit()
        return int(result.conversation_id)


def post(sessions: sessionmaker[Session], conversation_id: int, text: str) -> int:
    from siyu.service import service as desk_service

    with sessions() as s:
        message_id = desk_service.post_outbound(s, conversation_id=conversation_id,
                                                sender="bot", text=text)
        s.commit()
        return int(message_id)


def status(sessions: sessionmaker[Session], message_id: int) -> tuple[str, str | None, int]:
    with sessions() as s:
        message = desk.load_outbound(s, message_id)
        delivery = outbox.delivery_of(s, message_id)
        assert message is not None
        return (message.status, delivery.state if delivery else None,
                delivery.attempts if delivery else 0)


def deliver_job(sessions: sessionmaker[Session], message_id: int) -> Job:
    with sessions() as s:
        return s.scalars(select(Job).where(Job.dedup_key == f"deliver:{message_id}")).one()


def make_due(sessions: sessionmaker[Session]) -> None:
    """Skip the backoff wait: make every queued job due now."""
    with sessions() as s:
        s.execute(update(Job).where(Job.status == "queued").values(
            run_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))
        s.commit()


def test_reply_is_sent_once_even_if_the_job_runs_again(
        sessions: sessionmaker[Session], adapters: dict[str, Any], wecom_api: FakeWeCom
        ) -> None:
    conv = conversation(sessions)
    message_id = post(sessions, conv, "您好，您的订单已发货。")
    assert status(sessions, message_id) == ("queued", None, 0)
    run_jobs(sessions)
    assert status(sessions, message_id) == ("sent", "sent", 1)
    # A duplicate job (another worker, a replayed enqueue) finds it sent and does nothing.
    with sessions() as s:
        tasks.deliver(s, {"message_id": message_id})
        s.commit()
    sends = wecom_api.calls("/cgi-bin/message/send")
    assert len(sends) == 1
    assert sends[0].body == {"touser": "zhangsan", "msgtype": "text", "agentid": 1000002,
                             "text": {"content": "您好，您的订单已发货。"}, "safe": 0}
    with sessions() as s:
        delivery = outbox.delivery_of(s, message_id)
        assert delivery is not None and delivery.provider_message_id == "msg-1"


def test_expired_token_is_refreshed_inside_one_delivery(
        sessions: sessionmaker[Session], adapters: dict[str, Any], wecom_api: FakeWeCom
        ) -> None:
    conv = conversation(sessions)
    first = post(sessions, conv, "第一条")
    run_jobs(sessions)
    wecom_api.expired.add("TOKEN-1")
    second = post(sessions, conv, "第二条")
    summary = run_jobs(sessions)
    assert (summary.done, summary.retried, summary.failed) == (1, 0, 0)
    assert status(sessions, first)[0] == status(sessions, second)[0] == "sent"
    assert [c.query["access_token"] for c in wecom_api.calls("/cgi-bin/message/send")] == [
        "TOKEN-1", "TOKEN-1", "TOKEN-2"]


def test_transient_error_is_retried_with_backoff_then_sent(
        sessions: sessionmaker[Session], adapters: dict[str, Any], wecom_api: FakeWeCom
        ) -> None:
    wecom_api.then("/cgi-bin/message/send", {"json": {"errcode": -1, "errmsg": "busy"}},
                   {"status": 503, "json": {}})
    conv = conversation(sessions)
    message_id = post(sessions, conv, "稍等")
    summary = run_jobs(sessions)
    assert summary.retried == 1
    assert status(sessions, message_id) == ("queued", "retry", 1)
    job = deliver_job(sessions, message_id)
    assert job.status == "queued" and job.run_at > dt.datetime.now(dt.UTC)
    assert "busy" in (job.last_error or "")
    make_due(sessions)
    run_jobs(sessions)
    assert status(sessions, message_id) == ("queued", "retry", 2)
    make_due(sessions)
    run_jobs(sessions)
    assert status(sessions, message_id) == ("sent", "sent", 3)
    assert len(wecom_api.calls("/cgi-bin/message/send")) == 3
    assert deliver_job(sessions, message_id).status == "done"


def test_permanent_error_fails_the_message_without_retrying(
        sessions: sessionmaker[Session], adapters: dict[str, Any], wecom_api: FakeWeCom
        ) -> None:
    wecom_api.then("/cgi-bin/message/send",
                   {"json": {"errcode": 81013, "errmsg": "user & party & tag all invalid"}})
    conv = conversation(sessions)
    message_id = post(sessions, conv, "您好")
    summary = run_jobs(sessions)
    assert (summary.done, summary.retried) == (1, 0)
    assert status(sessions, message_id) == ("failed", "failed", 1)
    with sessions() as s:
        delivery = outbox.delivery_of(s, message_id)
        assert delivery is not None
        assert delivery.last_error == ("WeCom send failed: errcode 81013 user & party & tag "
                                       "all invalid")
    assert len(wecom_api.calls("/cgi-bin/message/send")) == 1


def test_gives_up_after_max_attempts(sessions: sessionmaker[Session],
                                     adapters: dict[str, Any], wecom_api: FakeWeCom) -> None:
    wecom_api.then("/cgi-bin/message/send",
                   *[{"json": {"errcode": -1, "errmsg": "busy"}}] * outbox.MAX_ATTEMPTS)
    conv = conversation(sessions)
    message_id = post(sessions, conv, "您好")
    for _ in range(outbox.MAX_ATTEMPTS + 1):
        make_due(sessions)
        run_jobs(sessions, rounds=1)
    assert status(sessions, message_id) == ("failed", "failed", outbox.MAX_ATTEMPTS)
    assert len(wecom_api.calls("/cgi-bin/message/send")) == outbox.MAX_ATTEMPTS


def crash_mid_send(sessions: sessionmaker[Session], message_id: int) -> None:
    """What a worker that died after calling the provider leaves: ``sending``, attempt 1."""
    with sessions() as s:
        step = outbox.begin_attempt(s, message_id, tasks.adapters())
        assert isinstance(step, outbox.Attempt)
        s.commit()


def test_unknown_outcome_on_app_message_is_resent_with_duplicate_check(
        sessions: sessionmaker[Session], adapters: dict[str, Any], wecom_api: FakeWeCom
        ) -> None:
    conv = conversation(sessions)
    message_id = post(sessions, conv, "您好")
    crash_mid_send(sessions, message_id)
    assert status(sessions, message_id) == ("queued", "sending", 1)
    run_jobs(sessions)
    assert status(sessions, message_id) == ("sent", "sent", 2)
    sends = wecom_api.calls("/cgi-bin/message/send")
    assert len(sends) == 1
    assert sends[0].body["enable_duplicate_check"] == 1


def test_unknown_outcome_on_kf_message_is_not_resent(
        sessions: sessionmaker[Session], adapters: dict[str, Any], wecom_api: FakeWeCom
        ) -> None:
    ext = IdentityRef("wecom_external_userid", "wmCustomer01")
    conv = conversation(sessions, identity=ext, payload={"wecom": {
        "kind": ext.kind, "userid": ext.value, "open_kfid": "wkKf01"}})
    message_id = post(sessions, conv, "您好")
    crash_mid_send(sessions, message_id)
    run_jobs(sessions)
    assert status(sessions, message_id) == ("failed", "outcome_unknown", 1)
    assert wecom_api.calls("/cgi-bin/kf/send_msg") == []
    with sessions() as s:
        delivery = outbox.delivery_of(s, message_id)
        assert delivery is not None and (delivery.last_error or "").startswith("outcome unknown")


def test_read_timeout_is_retried_as_unknown_outcome(
        sessions: sessionmaker[Session], adapters: dict[str, Any], wecom_api: FakeWeCom
        ) -> None:
    import httpx

    from siyu.channels.wecom.adapter import WeComAdapter
    from siyu.channels.wecom.client import TokenCache

    wecom: WeComAdapter = adapters["wecom"]
    slow = WeComAdapter(wecom._settings, wecom._cs, http=httpx.Client(timeout=0.3),
                        cache=TokenCache())
    tasks.use_adapters({**adapters, "wecom": slow})
    wecom_api.then("/cgi-bin/message/send", {"sleep": 0.6, "json": {"errcode": 0}})
    conv = conversation(sessions)
    message_id = post(sessions, conv, "您好")
    assert run_jobs(sessions, rounds=1).retried == 1
    assert status(sessions, message_id) == ("queued", "sending", 1)
    make_due(sessions)
    run_jobs(sessions)
    assert status(sessions, message_id) == ("sent", "sent", 2)
    sends = wecom_api.calls("/cgi-bin/message/send")
    assert [s.body.get("enable_duplicate_check") for s in sends] == [None, 1]
    slow.close()


def test_customer_without_wecom_identity_fails_permanently(
        sessions: sessionmaker[Session], adapters: dict[str, Any], wecom_api: FakeWeCom
        ) -> None:
    conv = conversation(sessions, identity=IdentityRef("phone", "+8613800138000"),
                        payload={})
    message_id = post(sessions, conv, "您好")
    with sessions() as s:
        from siyu.service.models import Message

        s.execute(update(Message).where(Message.id == message_id).values(channel="wecom"))
        s.commit()
    run_jobs(sessions)
    assert status(sessions, message_id) == ("failed", "failed", 1)
    assert wecom_api.requests == []


def test_webchat_reply_is_marked_delivered(sessions: sessionmaker[Session],
                                           adapters: dict[str, Any], wecom_api: FakeWeCom
                                           ) -> None:
    conv = conversation(sessions, channel="webchat",
                        identity=IdentityRef("phone", "+8613800138000"), payload={})
    message_id = post(sessions, conv, "您好，请问有什么可以帮您？")
    run_jobs(sessions)
    assert status(sessions, message_id) == ("delivered", "delivered", 1)
    assert wecom_api.requests == []


def test_unknown_message_is_skipped(sessions: sessionmaker[Session],
                                    adapters: dict[str, Any]) -> None:
    with sessions() as s:
        jobs.enqueue(s, "channels.deliver", {"message_id": 424242}, dedup_key="deliver:424242")
        s.commit()
    assert run_jobs(sessions).done == 1
    with sessions() as s:
        assert s.scalars(select(Delivery)).all() == []


@pytest.mark.parametrize("state", ["sent", "failed"])
def test_settled_delivery_is_never_attempted_again(
        sessions: sessionmaker[Session], adapters: dict[str, Any], wecom_api: FakeWeCom,
        state: str) -> None:
    conv = conversation(sessions)
    message_id = post(sessions, conv, "您好")
    with sessions() as s:
        s.add(Delivery(message_id=message_id, channel="wecom", state=state, attempts=1))
        s.commit()
    run_jobs(sessions)
    assert wecom_api.calls("/cgi-bin/message/send") == []
