"""Shared fixtures: a migrated temporary database (SQLite, or PostgreSQL when
SIYU_TEST_DATABASE_URL points at a server), emptied after each test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from siyu import migrate
from siyu.app import create_app
from siyu.config import Settings
from siyu.db import Base, make_engine, make_session_factory

# Password hashing at a test cost (production refuses less than OWASP's 2^17, asserted in
# tests/auth/test_passwords.py); set before any settings are read, inherited by the
# subprocesses tests start.
os.environ.setdefault("SIYU_PASSWORD_SCRYPT_LOG2N", "12")


def _create_pg_database(server_url: str) -> tuple[str, str]:
    url = make_url(server_url)
    name = f"siyu_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False), name


def _drop_pg_database(server_url: str, name: str) -> None:
    admin = create_engine(make_url(server_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = os.environ.get("SIYU_TEST_DATABASE_URL", "")
    if server.startswith("postgresql"):
        url, name = _create_pg_database(server)
        yield url
        _drop_pg_database(server, name)
    else:
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'siyu-test.db'}"


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    eng = make_engine(database_url)
    migrate.upgrade(eng)
    yield eng
    eng.dispose()


def empty_all_tables(engine: Engine) -> None:
    """Delete every row but the install's secrets (also for module-scoped fixtures)."""
    # The install's secrets stay: they are the install's, not a test's data (a key that
    # changed under a running test would sign its browser out).
    tables = [t for t in reversed(Base.metadata.sorted_tables) if t.name != "install_secrets"]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            names = ", ".join(f'"{t.name}"' for t in tables)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            # The audit log refuses deletes unless a purge permit row exists (see
            # siyu.privacy.models); the permits table is emptied last.
            conn.execute(text("INSERT INTO audit_purge_permits (reason, at) "
                              "VALUES ('tests', CURRENT_TIMESTAMP)"))
            for table in sorted(tables, key=lambda t: t.name == "audit_purge_permits"):
                conn.execute(table.delete())


@pytest.fixture
def sessions(engine: Engine) -> Iterator[sessionmaker[Session]]:
    yield make_session_factory(engine)
    empty_all_tables(engine)


@pytest.fixture
def db(sessions: sessionmaker[Session]) -> Iterator[Session]:
    session = sessions()
    yield session
    session.rollback()
    session.close()


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, environment="test")


@pytest.fixture
def app_client(settings: Settings, engine: Engine, sessions: sessionmaker[Session]
               ) -> Iterator[TestClient]:
    app = create_app(settings, engine=engine)
    with TestClient(app) as client:
        yield client


@pytest.fixture
def api_key(sessions: sessionmaker[Session]) -> str:
    from siyu.auth.service import create_api_key

    with sessions() as session:
        key = create_api_key(session, "tests").key
        session.commit()
    return key


@pytest.fixture
def client(app_client: TestClient, api_key: str) -> TestClient:
    """An API client that sends a valid bearer key."""
    app_client.headers["Authorization"] = f"Bearer {api_key}"
    return app_client


CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, driven by Playwright (never a downloaded browser)."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium fonts-noto-cjk)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-background-networking", "--disable-gpu",
                  "--disable-component-update", "--no-first-run"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh desktop-sized zh-CN tab."""
    context = browser.new_context(viewport={"width": 1360, "height": 900}, locale="zh-CN")
    tab = context.new_page()
    tab.set_default_timeout(10_000)
    yield tab
    context.close()
