"""``siyu demo`` for real: a fresh database is seeded, the console and API are served, and a
visitor can pick a demo customer in the web chat and get the bot's answer."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.channels.conftest import free_port
from tests.cli_helpers import wait_until_healthy

SIYU = [sys.executable, "-m", "siyu.cli"]
# The knowledge base the demo installs: its intent count is what the demo must report.
DEMO_KB = Path(__file__).resolve().parents[2] / "siyu" / "kb" / "data" / "demo_kb.json"


def test_demo_serves_the_console_and_the_web_chat_demo(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "SIYU_DATABASE_URL": f"sqlite:///{tmp_path / 'demo.db'}",
           "SIYU_ENVIRONMENT": "test"}
    env.pop("SIYU_WEBCHAT_DEMO", None)
    log_path = tmp_path / "demo.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen([*SIYU, "demo", "--customers", "300", "--port", str(port)],
                                env=env, stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until_healthy(base, proc, log_path, timeout=180)
            out = log_path.read_text()
            assert f"web chat as a demo customer: {base}/chat/demo" in out
            assert re.search(r"admin login: admin / \S+", out), out
            intents = len(json.loads(DEMO_KB.read_text(encoding="utf-8"))["intents"])
            assert f"knowledge base: {intents} intents" in out

            login = httpx.get(f"{base}/login")
            assert login.status_code == 200 and "登录" in login.text
            picker = httpx.get(f"{base}/chat/demo")
            assert picker.status_code == 200
            ids = re.findall(r'data-customer-id="(\d+)"', picker.text)
            assert len(ids) >= 5
            # Chat as the showcase VIP (siyu.demo.showcase): whoever else comes first may be
            # waiting for a person, and then the bot rightly stays quiet.
            [vip] = re.findall(r'data-customer-id="(\d+)">\s*<span class="demo-name">林晓雯<',
                               picker.text)
            started = httpx.post(f"{base}/chat/api/demo", json={"customer_id": int(vip)})
            assert started.status_code == 200, started.text
            headers = {"X-Siyu-Chat": started.json()["session"]}
            sent = httpx.post(f"{base}/chat/api/messages", headers=headers,
                              json={"text": "积分怎么用", "client_id": "demo-msg-0001"})
            assert sent.status_code == 200, sent.text
            # The bot answers through the job worker running inside `siyu demo`.
            deadline = time.monotonic() + 30
            while True:
                history = httpx.get(f"{base}/chat/api/messages", headers=headers).json()
                replies = [m["text"] for m in history["messages"] if m["sender"] == "bot"]
                # (A showcase customer's recent failed payment is addressed first.)
                if any("积分" in r for r in replies):
                    break
                assert time.monotonic() < deadline, history
                time.sleep(0.3)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
