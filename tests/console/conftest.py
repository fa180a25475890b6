"""Console fixtures: staff users, a sample customer with an order, a TestClient login
helper, and a live uvicorn server for the browser tests."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from siyu.app import create_app
from siyu.auth.service import create_user
from siyu.config import Settings
from siyu.customers.service import upsert_customers
from siyu.events.service import ingest

PASSWORD = "correct-horse-9"
PHONE = "+8613800138000"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')

MakeUser = Callable[[str, str], None]


@pytest.fixture
def make_user(sessions: sessionmaker[Session]) -> MakeUser:
    """Create a staff user ``username`` with ``role`` and the shared test password."""

    def make(username: str, role: str) -> None:
        with sessions() as session:
            create_user(session, username, PASSWORD, role, display_name=f"{username} 同学")
            session.commit()

    return make


@pytest.fixture
def staff(make_user: MakeUser) -> None:
    """One user per role: admin, operator, agent, analyst (username = role)."""
    for role in ("admin", "operator", "agent", "analyst"):
        make_user(role, role)


@dataclass
class Sample:
    customer_id: int


@pytest.fixture
def sample(sessions: sessionmaker[Session], settings: Settings) -> Sample:
    """张伟 (brand id C001, phone 13800138000) with one order at 2026-11-22 14:02 Beijing
    time and one event."""
    with sessions() as session:
        result = upsert_customers(session, [{
            "id": "C001", "name": "张伟", "city": "上海", "tier": "金卡", "gender": "male",
            "identities": [{"kind": "phone", "value": PHONE, "verified": True}],
            "tags": ["高价值"],
            "consents": [{"channel": "sms", "purpose": "marketing", "granted": True}],
        }], settings=settings)
        ingest(session, "orders", [{
            "id": "O-1001", "customer_id": "C001", "ts": "2026-11-22T14:02:00",
            "amount": 299.5, "channel": "tmall",
        }], settings=settings)
        ingest(session, "events", [{
            "id": "E-1", "customer_id": "C001", "type": "add_wecom_contact",
            "ts": "2026-11-20T09:30:00", "channel": "wecom",
        }], settings=settings)
        session.commit()
    return Sample(customer_id=result.customer_ids[0])


def csrf_from(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "page has no CSRF token"
    return match.group(1)


Login = Callable[..., TestClient]


@pytest.fixture
def login(app_client: TestClient) -> Login:
    """Sign ``username`` in on the shared TestClient and return it."""

    def do(username: str, password: str = PASSWORD) -> TestClient:
        page = app_client.get("/login")
        response = app_client.post(
            "/login",
            data={"username": username, "password": password, "csrf_token": csrf_from(page.text)},
            follow_redirects=False,
        )
        assert response.status_code == 303, response.text
        return app_client

    return do


class LiveServer:
    """uvicorn serving the app on 127.0.0.1 in a background thread."""

    def __init__(self, settings: Settings, engine: Engine):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        config = uvicorn.Config(create_app(settings, engine=engine), log_level="warning",
                                lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                       name="live-server", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("live server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        self.sock.close()
        if self.thread.is_alive():
            raise RuntimeError("live server did not stop")


@pytest.fixture
def live_server(settings: Settings, engine: Engine, sessions: sessionmaker[Session]
                ) -> Iterator[LiveServer]:
    # ``sessions`` is requested so the tables are emptied after the server has stopped.
    server = LiveServer(settings, engine)
    server.start()
    yield server
    server.stop()


def sign_in_at(page: Any, url: str, username: str, password: str = PASSWORD) -> None:
    """Open a console ``url`` in a browser tab, sign in on the login page it redirects to,
    and wait until the page itself is back."""
    page.goto(url)
    page.wait_for_url(re.compile(r"/login\?next="))
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(password)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(url)
