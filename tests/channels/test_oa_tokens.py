"""The shared access token: fetched once for all workers, refreshed once when refused, and a
refresh abandoned by a dead worker is taken over. Workers are threads here, each with its
own engine and sessions on the real store (SQLite or PostgreSQL), so the only thing they
share is the database, as separate processes would."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from siyu.channels.models import AccessToken
from siyu.channels.oa.tokens import SharedTokenStore, TokenUnavailable, credentials_key
from siyu.db import make_engine, make_session_factory, utcnow

KEY = credentials_key("oa", "wxapp", "secret")


class Platform:
    """Counts fetches; each fetch takes a while so workers overlap."""

    def __init__(self, delay: float = 0.3) -> None:
        self.delay = delay
        self.fetches = 0
        self.lock = threading.Lock()

    def fetch(self) -> tuple[str, float]:
        with self.lock:
            self.fetches += 1
            n = self.fetches
        time.sleep(self.delay)
        return f"TOKEN-{n}", 7200.0


@pytest.fixture
def workers(database_url: str, sessions: sessionmaker[Session]
            ) -> Iterator[list[SharedTokenStore]]:
    engines = [make_engine(database_url) for _ in range(4)]
    yield [SharedTokenStore(make_session_factory(e), secret_key="k" * 32) for e in engines]
    for e in engines:
        e.dispose()


def _all(stores: list[SharedTokenStore], fn: object) -> list[str]:
    results: list[str] = []
    errors: list[BaseException] = []

    def run(store: SharedTokenStore) -> None:
        try:
            results.append(fn(store))  # type: ignore[operator]
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(s,)) for s in stores for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    return results


def test_eight_workers_asking_at_once_fetch_one_token(workers: list[SharedTokenStore],
                                                      sessions: sessionmaker[Session]) -> None:
    platform = Platform()
    tokens = _all(workers, lambda s: s.get(KEY, platform.fetch))
    assert platform.fetches == 1 and tokens == ["TOKEN-1"] * 8
    assert _all(workers, lambda s: s.get(KEY, platform.fetch)) == ["TOKEN-1"] * 8
    assert platform.fetches == 1
    with sessions() as s:
        row = s.scalars(select(AccessToken)).one()
        assert row.refreshes == 1 and row.lease_owner is None
        assert "TOKEN-1" not in (row.token_enc or "")  # stored encrypted


def test_a_refused_token_is_refreshed_once_for_everyone(workers: list[SharedTokenStore]
                                                        ) -> None:
    platform = Platform()
    assert workers[0].get(KEY, platform.fetch) == "TOKEN-1"
    tokens = _all(workers, lambda s: s.get(KEY, platform.fetch, invalid="TOKEN-1"))
    assert platform.fetches == 2 and set(tokens) == {"TOKEN-2"}


def test_an_expired_token_is_refreshed(workers: list[SharedTokenStore],
                                       sessions: sessionmaker[Session]) -> None:
    platform = Platform(delay=0)
    workers[0].get(KEY, platform.fetch)
    with sessions() as s:
        row = s.scalars(select(AccessToken)).one()
        row.expires_at = utcnow() - dt.timedelta(seconds=1)
        s.commit()
    assert workers[1].get(KEY, platform.fetch) == "TOKEN-2"


def test_a_refresh_left_by_a_dead_worker_is_taken_over(workers: list[SharedTokenStore],
                                                       sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        s.add(AccessToken(key=KEY, version=3, refreshes=0, lease_owner="dead",
                          lease_until=utcnow() + dt.timedelta(seconds=0.5)))
        s.commit()
    platform = Platform(delay=0)
    impatient = SharedTokenStore(make_session_factory(sessions.kw["bind"]), secret_key="k" * 32,
                                 wait_seconds=0.1)
    with pytest.raises(TokenUnavailable):
        impatient.get(KEY, platform.fetch)
    assert platform.fetches == 0
    assert workers[0].get(KEY, platform.fetch) == "TOKEN-1"  # after the lease ran out


def test_a_failed_fetch_releases_the_claim(workers: list[SharedTokenStore]) -> None:
    def broken() -> tuple[str, float]:
        raise RuntimeError("platform down")

    with pytest.raises(RuntimeError):
        workers[0].get(KEY, broken)
    assert workers[1].get(KEY, Platform(delay=0).fetch) == "TOKEN-1"
