"""WeCom's documented example against a real ``siyu serve`` process (fresh SQLite file)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

import siyu.models  # noqa: F401
from siyu.db import Base, make_engine
from tests.channels.conftest import CORP_SECRET, free_port
from tests.channels.fakes import FakeWeCom, serve
from tests.cli_helpers import wait_until_healthy

SIYU = [sys.executable, "-m", "siyu.cli"]


@pytest.fixture
def served(tmp_path: Path, vector: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """``siyu serve`` on a free port with WeCom configured from the vector and its API
    pointed at a local fake; yields the base URL, an API key and the database URL."""
    with serve(FakeWeCom(vector["corp_id"], {CORP_SECRET})) as wecom:
        db_url = f"sqlite:///{tmp_path / 'serve.db'}"
        env = {**os.environ, "SIYU_DATABASE_URL": db_url, "SIYU_ENVIRONMENT": "test",
               "SIYU_WECOM_CORP_ID": vector["corp_id"], "SIYU_WECOM_TOKEN": vector["token"],
               "SIYU_WECOM_AES_KEY": vector["encoding_aes_key"],
               "SIYU_WECOM_MAX_SKEW_SECONDS": "0", "SIYU_WECOM_API_BASE": wecom.url,
               "SIYU_WECOM_CORP_SECRET": CORP_SECRET}
        created = subprocess.run([*SIYU, "apikey", "create", "wecom-test"], env=env,
                                 capture_output=True, text=True, timeout=120, check=True)
        key = created.stdout.strip().splitlines()[-1]
        port = free_port()
        log = (tmp_path / "serve.log").open("w")
        proc = subprocess.Popen([*SIYU, "serve", "--port", str(port)], env=env, stdout=log,
                                stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until_healthy(base, proc, tmp_path / "serve.log")
            yield {"base": base, "key": key, "db": db_url, "wecom": wecom}
        finally:
            proc.terminate()
            proc.wait(timeout=20)
            log.close()


# Rows the served process's background worker derives from data already stored (journey
# stages, scenarios, scores): they may appear at any moment, whatever a request did.
DERIVED = {"customer_journeys", "customer_scenarios", "repurchase_due", "customer_scores"}


def counts(db_url: str) -> dict[str, int]:
    """Rows per table, but for the derived ones a background recomputation may add."""
    engine = make_engine(db_url)
    with engine.connect() as conn:
        out = {t.name: conn.scalar(select(func.count()).select_from(t)) or 0
               for t in Base.metadata.sorted_tables if t.name not in DERIVED}
    engine.dispose()
    return out


def test_documented_example_against_siyu_serve(served: dict[str, Any],
                                               vector: dict[str, Any]) -> None:
    base = served["base"]
    api = httpx.Client(base_url=base, timeout=10,
                       headers={"Authorization": f"Bearer {served['key']}"})
    url = f"{base}/channels/wecom/callback"
    v = vector["verify_url"]
    verify = httpx.get(url, params={k: v[k] for k in
                                    ("msg_signature", "timestamp", "nonce", "echostr")})
    assert (verify.status_code, verify.text) == (200, "1616140317555161061")

    m = vector["message"]
    params = {"msg_signature": m["msg_signature"], "timestamp": m["timestamp"],
              "nonce": m["nonce"]}
    before = counts(served["db"])
    bad = dict(params, msg_signature=m["msg_signature"][:-1] + (
        "0" if m["msg_signature"][-1] != "0" else "1"))
    refused = httpx.post(url, params=bad, content=m["body"].encode())
    assert refused.status_code == 403
    assert counts(served["db"]) == before

    started = time.monotonic()
    ok = httpx.post(url, params=params, content=m["body"].encode())
    ack = time.monotonic() - started
    assert ok.status_code == 200 and ok.text == ""
    assert ack < 5.0  # WeCom's limit; the bot runs after the acknowledgement

    customer = api.get("/api/v1/customers", params={"identity": "wecom_userid:mycreate"})
    assert customer.status_code == 200
    convs = api.get("/api/v1/conversations",
                    params={"customer_id": customer.json()["id"]}).json()["items"]
    assert len(convs) == 1
    deadline = time.monotonic() + 30
    messages: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        messages = api.get(f"/api/v1/conversations/{convs[0]['id']}/messages").json()["items"]
        if any(x["direction"] == "out" and x["status"] == "sent" for x in messages):
            break
        time.sleep(0.3)
    assert messages[0]["direction"] == "in" and messages[0]["text"] == "hello"
    replies = [x for x in messages if x["direction"] == "out"]
    assert replies and replies[0]["status"] == "sent", messages
    sends = served["wecom"].calls("/cgi-bin/message/send")
    assert sends[0].body["touser"] == "mycreate"
    assert sends[0].body["text"]["content"] == replies[0]["text"]

    # WeCom's retry of the same callback stores nothing new.
    after = counts(served["db"])
    assert httpx.post(url, params=params, content=m["body"].encode()).status_code == 200
    assert counts(served["db"]) == after
    api.close()
