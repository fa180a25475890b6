"""The official account callback against a real ``siyu serve`` process (fresh SQLite file),
configured with the platform's documented example credentials and its API pointed at a
local server standing in for the platform."""

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

from tests.channels.conftest import free_port
from tests.channels.fakes import serve
from tests.channels.oa_helpers import DOC, SECRET, FakeOa, doc_body, independent_encrypt, text_xml
from tests.channels.test_wecom_serve import counts
from tests.cli_helpers import wait_until_healthy

SIYU = [sys.executable, "-m", "siyu.cli"]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[dict[str, Any]]:
    with serve(FakeOa(DOC["appid"], SECRET)) as platform:
        db_url = f"sqlite:///{tmp_path / 'serve.db'}"
        env = {**os.environ, "SIYU_DATABASE_URL": db_url, "SIYU_ENVIRONMENT": "test",
               "SIYU_OA_APPID": DOC["appid"], "SIYU_OA_TOKEN": DOC["token"],
               "SIYU_OA_AES_KEY": DOC["encoding_aes_key"], "SIYU_OA_SECRET": SECRET,
               "SIYU_OA_MAX_SKEW_SECONDS": "0", "SIYU_OA_API_BASE": platform.url}
        created = subprocess.run([*SIYU, "apikey", "create", "oa-test"], env=env,
                                 capture_output=True, text=True, timeout=120, check=True)
        key = created.stdout.strip().splitlines()[-1]
        port = free_port()
        log = (tmp_path / "serve.log").open("w")
        proc = subprocess.Popen([*SIYU, "serve", "--port", str(port)], env=env, stdout=log,
                                stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until_healthy(base, proc, tmp_path / "serve.log")
            yield {"base": base, "key": key, "db": db_url, "platform": platform}
        finally:
            proc.terminate()
            proc.wait(timeout=20)
            log.close()


def test_official_account_against_siyu_serve(served: dict[str, Any]) -> None:
    base, platform = served["base"], served["platform"]
    url = f"{base}/channels/oa/callback"
    verify = httpx.get(url, params=DOC["verify"])
    assert (verify.status_code, verify.text) == (200, "4375120948345356249")

    before = counts(served["db"])
    documented = httpx.post(url, params=DOC["safe"], content=doc_body())
    assert (documented.status_code, documented.text) == (200, "success")
    forged = httpx.post(url, params=dict(DOC["safe"], msg_signature="0" * 40),
                        content=doc_body())
    assert forged.status_code == 403
    assert counts(served["db"]) == before

    body, params = independent_encrypt(text_xml("oServeFollower", "你好", "24199999999999999"),
                                       token=DOC["token"], key=DOC["encoding_aes_key"],
                                       appid=DOC["appid"])
    started = time.monotonic()
    ok = httpx.post(url, params=params, content=body)
    assert (ok.status_code, ok.text) == (200, "success")
    assert time.monotonic() - started < 5.0  # the platform's limit; the bot runs after

    api = httpx.Client(base_url=base, timeout=10,
                       headers={"Authorization": f"Bearer {served['key']}"})
    customer = api.get("/api/v1/customers", params={"identity": "wechat_openid:oServeFollower"})
    assert customer.status_code == 200
    convs = api.get("/api/v1/conversations",
                    params={"customer_id": customer.json()["id"]}).json()["items"]
    assert [c["channel"] for c in convs] == ["oa"]
    deadline = time.monotonic() + 30
    messages: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        messages = api.get(f"/api/v1/conversations/{convs[0]['id']}/messages").json()["items"]
        if any(m["direction"] == "out" and m["status"] in ("sent", "failed") for m in messages):
            break
        time.sleep(0.3)
    replies = [m for m in messages if m["direction"] == "out"]
    assert replies and replies[0]["status"] == "sent", messages
    sends = platform.calls("/cgi-bin/message/custom/send")
    assert [(s.body["touser"], s.body["text"]["content"]) for s in sends] == [
        ("oServeFollower", replies[0]["text"])]

    # The platform's retry of the same MsgId stores nothing and sends nothing.
    after = counts(served["db"])
    assert httpx.post(url, params=params, content=body).status_code == 200
    retry_body, retry_params = independent_encrypt(
        text_xml("oServeFollower", "你好", "24199999999999999"), token=DOC["token"],
        key=DOC["encoding_aes_key"], appid=DOC["appid"], nonce="another")
    assert httpx.post(url, params=retry_params, content=retry_body).status_code == 200
    time.sleep(1.0)
    assert counts(served["db"]) == after
    assert len(platform.calls("/cgi-bin/message/custom/send")) == 1
    api.close()
