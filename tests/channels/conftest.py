"""Fixtures for the channel tests: WeCom's documented vector, an app configured with it,
fake provider servers, and helpers to run jobs and count rows."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

import siyu.models  # noqa: F401  (every table in the metadata, for row counts)
from siyu.app import create_app
from siyu.channels import tasks
from siyu.channels.config import ChannelSettings
from siyu.channels.wecom.adapter import WeComAdapter
from siyu.channels.wecom.client import TokenCache
from siyu.config import Settings
from siyu.db import Base
from siyu.jobs import service as jobs
from siyu.jobs.worker import load_tasks
from tests.channels.fakes import FakeSms, FakeWeCom, serve
from tests.datasets import wecom_vector

CORP_SECRET = "corp-secret-for-tests-0123456789"
WEBCHAT_SECRET = "webchat-secret-for-tests-abcdef0123456789"


@pytest.fixture(scope="session")
def vector() -> dict[str, Any]:
    """WeCom's documented callback example (see tests/data/wecom/SOURCE.md)."""
    return wecom_vector()


@pytest.fixture
def wecom_api() -> Iterator[FakeWeCom]:
    with serve(FakeWeCom("wx5823bf96d3bd56c7", {CORP_SECRET})) as fake:
        yield fake  # type: ignore[misc]


@pytest.fixture
def sms_api() -> Iterator[FakeSms]:
    with serve(FakeSms()) as fake:
        yield fake  # type: ignore[misc]


@pytest.fixture
def wecom_settings(database_url: str, vector: dict[str, Any], wecom_api: FakeWeCom) -> Settings:
    return Settings(database_url=database_url, environment="test",
                    wecom_corp_id=vector["corp_id"], wecom_token=vector["token"],
                    wecom_aes_key=vector["encoding_aes_key"], wecom_max_skew_seconds=0,
                    wecom_api_base=wecom_api.url,
                    wecom_corp_secret=SecretStr(CORP_SECRET))


@pytest.fixture
def channel_settings(sms_api: FakeSms) -> ChannelSettings:
    return ChannelSettings(webchat_secret=SecretStr(WEBCHAT_SECRET),
                           sms_url=sms_api.url + "/sms", sms_token=SecretStr("sms-token-xyz"),
                           wecom_kf_open_kfid="wkDefaultKf")


@pytest.fixture
def adapters(wecom_settings: Settings, channel_settings: ChannelSettings
             ) -> Iterator[dict[str, Any]]:
    """The outbox adapters pointed at the fake WeCom server, for the test's jobs."""
    wecom = WeComAdapter(wecom_settings, channel_settings, cache=TokenCache())
    registry = {"wecom": wecom, "webchat": tasks.outbox.WebChatAdapter()}
    tasks.use_adapters(registry)  # type: ignore[arg-type]
    yield registry
    tasks.use_adapters(None)
    wecom.close()


@pytest.fixture
def chan_client(wecom_settings: Settings, channel_settings: ChannelSettings, engine: Engine,
                sessions: sessionmaker[Session], adapters: dict[str, Any]
                ) -> Iterator[TestClient]:
    app = create_app(wecom_settings, engine=engine)
    app.state.channel_settings = channel_settings
    with TestClient(app) as client:
        yield client


def run_jobs(sessions: sessionmaker[Session], rounds: int = 10) -> jobs.RunSummary:
    """Run due jobs until none is left (the bot's reply enqueues its delivery)."""
    load_tasks()
    total = jobs.RunSummary()
    for _ in range(rounds):
        summary = jobs.run_due(sessions)
        total.done += summary.done
        total.retried += summary.retried
        total.failed += summary.failed
        if summary.done + summary.retried + summary.failed == 0:
            break
    return total


def row_counts(sessions: sessionmaker[Session]) -> dict[str, int]:
    """Rows in every table: to show that a refused request changed nothing."""
    with sessions() as session:
        return {t.name: session.scalar(select(func.count()).select_from(t)) or 0
                for t in Base.metadata.sorted_tables}


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def live_app(app: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a thread on a free loopback port; yields its base URL."""
    import threading
    import time

    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def chat_key(client: TestClient) -> str:
    """The install's web chat session key, as the app signs sessions with it."""
    from siyu.auth.secrets import purpose_key

    app: Any = client.app
    return purpose_key(app.state.settings, "chat-session", engine=app.state.engine).hex()
