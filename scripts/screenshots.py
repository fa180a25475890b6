"""``make screenshots``: run ``siyu demo`` (a small seed) on a temporary database, have a
demo customer ask the web chat for a person, and photograph the console with Playwright:
the dashboard, a customer 360, the agent desk and that conversation, into
docs/screenshots/*.png. Not part of the test run.

Uses Debian's Chromium (``SIYU_CHROMIUM``, default /usr/bin/chromium)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "screenshots"
CUSTOMERS = 300


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(tmp: Path, port: int) -> tuple[subprocess.Popen[bytes], str]:
    """Start ``siyu demo``; return the process and the admin password it printed."""
    log = tmp / "demo.log"
    env = {**os.environ, "SIYU_DATABASE_URL": f"sqlite:///{tmp / 'demo.db'}",
           "SIYU_WEBCHAT_DEMO": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "siyu.cli", "demo", "--customers", str(CUSTOMERS),
         "--port", str(port)], env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise SystemExit(f"siyu demo did not start:\n{log.read_text()}")
        time.sleep(0.5)
    found = re.search(r"admin login: admin / (\S+)", log.read_text())
    if not found:
        proc.kill()
        raise SystemExit(f"no admin password in the demo's output:\n{log.read_text()}")
    return proc, found.group(1)


def _customer_asks_for_a_person(base: str) -> None:
    """The showcase VIP (customer 1) asks where her parcel is, then for a person."""
    started = httpx.post(f"{base}/chat/api/demo", json={"customer_id": 1})
    started.raise_for_status()
    headers = {"X-Siyu-Chat": started.json()["session"]}
    for i, text in enumerate(("快递到哪了", "帮我转人工")):
        httpx.post(f"{base}/chat/api/messages", headers=headers,
                   json={"text": text, "client_id": f"screenshot-{i:04d}"}).raise_for_status()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the bot answers through the job worker
            history = httpx.get(f"{base}/chat/api/messages", headers=headers).json()
            if sum(m["sender"] != "customer" for m in history["messages"]) > i:
                break
            time.sleep(0.3)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        proc, password = _serve(Path(tmp), port)
        try:
            _customer_asks_for_a_person(base)
            with sync_playwright() as pw:
                browser = pw.chromium.launch(
                    executable_path=os.environ.get("SIYU_CHROMIUM", "/usr/bin/chromium"),
                    args=["--no-sandbox", "--disable-background-networking"])
                page = browser.new_page(viewport={"width": 1360, "height": 860},
                                        locale="zh-CN")
                page.goto(f"{base}/login")
                page.get_by_label("用户名").fill("admin")
                page.get_by_label("密码").fill(password)
                page.get_by_role("button", name="登录").click()
                page.wait_for_url(re.compile(r"/(customers|dashboard)"))
                shots = [("dashboard", "/dashboard"), ("customer-360", "/customers/1"),
                         ("agent-desk", "/service")]
                for name, path in shots:
                    page.goto(base + path)
                    page.wait_for_load_state("networkidle")
                    page.screenshot(path=str(OUT / f"{name}.png"))
                    print(f"docs/screenshots/{name}.png")
                link = page.locator("main a[href^='/service/conversations/']").first
                page.goto(base + (link.get_attribute("href") or "/service"))
                page.wait_for_load_state("networkidle")
                page.screenshot(path=str(OUT / "conversation.png"), full_page=True)
                print("docs/screenshots/conversation.png")
                browser.close()
        finally:
            proc.terminate()
            proc.wait(timeout=30)


if __name__ == "__main__":
    main()
