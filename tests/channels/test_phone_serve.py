"""A signed call against a real ``siyu serve`` (fresh SQLite file, the demo knowledge base):
the caller whose payment failed five minutes ago hears about it first, 转人工 transfers to a
skill group, the call and its transcript are stored, and the SMS survey link's answer is
its CSAT; forged and replayed events are not.
(No knowledge base is needed: asking for a person and the incident greeting work without
one.)"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from siyu.channels.models import Delivery
from siyu.channels.phone.models import PhoneCall
from siyu.channels.phone.protocol import sign
from siyu.db import make_engine, make_session_factory, utcnow
from siyu.service.models import CsatAnswer
from tests.channels.conftest import free_port
from tests.channels.test_wecom_serve import counts
from tests.cli_helpers import wait_until_healthy

SIYU = [sys.executable, "-m", "siyu.cli"]
SECRET = "phone-secret-for-serve-0123456789"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[dict[str, Any]]:
    db_url = f"sqlite:///{tmp_path / 'serve.db'}"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "SIYU_DATABASE_URL": db_url, "SIYU_ENVIRONMENT": "test",
           "SIYU_PHONE_SECRET": SECRET, "SIYU_PHONE_PUBLIC_URL": base}
    key = subprocess.run([*SIYU, "apikey", "create", "phone-test"], env=env,
                         capture_output=True, text=True, timeout=120, check=True
                         ).stdout.strip().splitlines()[-1]
    api = {"Authorization": f"Bearer {key}"}
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen([*SIYU, "serve", "--port", str(port)], env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        wait_until_healthy(base, proc, tmp_path / "serve.log")
        five_minutes_ago = (utcnow() - dt.timedelta(minutes=5)).isoformat()
        with httpx.Client(base_url=base, headers=api, timeout=30) as c:
            assert c.post("/api/v1/customers", json={"customers": [{
                "id": "C-PHONE", "name": "林晓雯", "gender": "female",
                "identities": [{"kind": "phone", "value": "13800138000"}]}]}
                ).status_code < 300
            assert c.post("/api/v1/events", json={"events": [{
                "id": "E-PAY", "customer_id": "C-PHONE", "type": "payment_failed",
                "ts": five_minutes_ago, "properties": {"amount": 776.0,
                                                       "reason": "银行卡余额不足"}}]}
                ).status_code < 300
        yield {"base": base, "db": db_url}
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


def _post(base: str, event: dict[str, Any], secret: str = SECRET) -> httpx.Response:
    body = json.dumps(event, ensure_ascii=False).encode()
    ts = str(int(time.time()))
    return httpx.post(f"{base}/channels/phone/webhook", content=body, timeout=10, headers={
        "Content-Type": "application/json", "X-Siyu-Timestamp": ts,
        "X-Siyu-Signature": sign(secret, ts, body)})


def test_a_signed_call_against_siyu_serve(served: dict[str, Any]) -> None:
    base = served["base"]
    before = counts(served["db"])
    forged = _post(base, {"event_id": "e0", "call_id": "C9", "type": "call.started",
                          "from": "13800138000"}, secret="nope")
    assert forged.status_code == 403 and counts(served["db"]) == before

    start = _post(base, {"event_id": "e1", "call_id": "C9", "type": "call.started",
                         "from": "13800138000", "to": "4008001234"})
    assert start.status_code == 200, start.text
    first = start.json()["actions"][0]
    assert first["type"] == "speak" and "付款" in first["text"] and "776元" in first["text"]
    after_start = counts(served["db"])
    assert _post(base, {"event_id": "e1", "call_id": "C9", "type": "utterance",
                        "text": "转人工"}).status_code == 409
    assert counts(served["db"]) == after_start

    partial = _post(base, {"event_id": "e2", "call_id": "C9", "type": "utterance",
                           "text": "转", "final": False})
    assert partial.json()["actions"] == []
    handoff = _post(base, {"event_id": "e3", "call_id": "C9", "type": "utterance",
                           "text": "转人工", "confidence": 0.95})
    actions = handoff.json()["actions"]
    assert actions[-1]["type"] == "transfer" and actions[-1]["queue"], actions
    assert _post(base, {"event_id": "e4", "call_id": "C9", "type": "call.ended",
                        "duration_seconds": 42}).status_code == 200

    engine = make_engine(served["db"])
    with make_session_factory(engine)() as s:
        call = s.scalars(select(PhoneCall)).one()
        assert call.status == "ended" and call.duration_seconds == 42
        assert call.customer_id is not None and call.conversation_id is not None
        assert [t["who"] for t in call.transcript][:3] == ["bot", "caller", "bot"]
        # A person had the call: the survey link went to the caller's mobile by SMS.
        sms = s.scalars(select(Delivery).where(Delivery.key == "phone-csat:C9")).one()
        link = re.search(r"http://\S+", sms.content["text"])
    engine.dispose()
    assert link is not None and link.group(0).startswith(f"{base}/channels/phone/csat/")
    page = httpx.get(link.group(0), timeout=10)
    assert page.status_code == 200 and "打分" in page.text
    assert httpx.post(link.group(0), data={"score": "4"}, timeout=10).status_code == 200
    assert httpx.post(link.group(0), data={"score": "5"}, timeout=10).status_code == 409
    engine = make_engine(served["db"])
    with make_session_factory(engine)() as s:
        call = s.scalars(select(PhoneCall)).one()
        answer = s.scalars(select(CsatAnswer)).one()
        assert call.csat == 4 and (answer.score, answer.conversation_id) == (
            4, call.conversation_id)
    engine.dispose()
