"""The install's secrets and the keys derived from them, one per purpose.

No key is a constant in the source. Unless ``SIYU_SECRET_KEY`` is set, the first start
generates a random 32-byte master secret and keeps it beside the data: for SQLite in a
file next to the database (``<database>.secret``, mode 0600), for PostgreSQL in the
``install_secrets`` table. Two installs therefore never share a key.

Every use of a key names its purpose (``purpose_key(settings, "session")``): the key is
HKDF-SHA256 of the master secret with the purpose and that purpose's generation as
``info``. Rotating a purpose (``siyu secret rotate session``) raises its generation and
changes that key alone; keys whose change would break stored data or links already sent
(do-not-contact hashes, second-factor secrets, signed links, chat verification codes) are
not rotatable.

Keys are held in memory only; :class:`Keyring`'s repr and every error name the purpose,
never a key or any part of one.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import logging
import os
import re
import secrets
import threading
import time
from pathlib import Path
from typing import Any, Protocol

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import select
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import SQLAlchemyError

from siyu.config import Settings
from siyu.errors import InvalidInput, SiyuError

log = logging.getLogger("siyu.auth.secrets")

MASTER = "master"
_GENERATION = "generation."
_PURPOSE = re.compile(r"[a-z][a-z0-9-]{1,40}")
# Purposes whose key may change: what they sign is short-lived and may be thrown away
# (rotating ``session`` signs everyone out). Everything else stays stable for good.
ROTATABLE: dict[str, str] = {
    "session": "console sign-in cookies (everyone is signed out)",
    "chat-session": "web chat sessions (visitors identify again)",
}
# How long a process trusts the keys it loaded before looking for a rotation.
REFRESH_SECONDS = 5.0


class SecretStoreError(SiyuError):
    status_code = 500
    code = "secret_store"


class SecretStore(Protocol):
    def load(self) -> dict[str, str]: ...

    def add_if_absent(self, name: str, value: str) -> str: ...

    def put(self, name: str, value: str) -> None: ...


class FileStore:
    """A JSON object in a file created with mode 0600; writers hold an exclusive lock,
    so several processes starting at once agree on one master secret."""

    def __init__(self, path: Path):
        self.path = path

    def __repr__(self) -> str:
        return f"FileStore({str(self.path)!r})"

    def load(self) -> dict[str, str]:
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return {}
        with os.fdopen(fd, "rb") as fh:
            fcntl.flock(fh, fcntl.LOCK_SH)
            return self._parse(fh.read())

    def _parse(self, raw: bytes) -> dict[str, str]:
        if not raw.strip():
            return {}
        try:
            data = json.loads(raw)
        except ValueError:
            raise SecretStoreError(f"secret file {self.path} is not valid JSON; restore it "
                                   "from a backup or remove it (every key changes)") from None
        if not isinstance(data, dict):
            raise SecretStoreError(f"secret file {self.path} does not hold a JSON object")
        return {str(k): str(v) for k, v in data.items()}

    def _update(self, change: Any) -> dict[str, str]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        with os.fdopen(fd, "r+b") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            mode = os.fstat(fh.fileno()).st_mode & 0o777
            if mode & 0o077:
                log.warning("secret file %s was readable by others (mode %o); set to 0600",
                            self.path, mode)
            os.fchmod(fh.fileno(), 0o600)
            data = self._parse(fh.read())
            if change(data):
                fh.seek(0)
                fh.truncate()
                fh.write(json.dumps(data, indent=1).encode())
                fh.flush()
                os.fsync(fh.fileno())
            return data

    def add_if_absent(self, name: str, value: str) -> str:
        def change(data: dict[str, str]) -> bool:
            if name in data:
                return False
            data[name] = value
            return True

        return self._update(change)[name]

    def put(self, name: str, value: str) -> None:
        def change(data: dict[str, str]) -> bool:
            data[name] = value
            return True

        self._update(change)


class DatabaseStore:
    """Rows of the ``install_secrets`` table (PostgreSQL)."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def __repr__(self) -> str:
        return f"DatabaseStore({self.engine.url.render_as_string(hide_password=True)!r})"

    def load(self) -> dict[str, str]:
        from siyu.auth.models import InstallSecret

        try:
            with self.engine.connect() as conn:
                rows = conn.execute(select(InstallSecret.name, InstallSecret.value)).all()
        except SQLAlchemyError as exc:
            raise SecretStoreError("cannot read install_secrets (run 'siyu db upgrade'): "
                                   f"{type(exc).__name__}") from None
        return {name: value for name, value in rows}

    def add_if_absent(self, name: str, value: str) -> str:
        from sqlalchemy.dialects.postgresql import insert

        from siyu.auth.models import InstallSecret

        with self.engine.begin() as conn:
            conn.execute(insert(InstallSecret).values(name=name, value=value)
                         .on_conflict_do_nothing(index_elements=["name"]))
            stored: str = conn.execute(select(InstallSecret.value)
                                       .where(InstallSecret.name == name)).scalar_one()
        return stored

    def put(self, name: str, value: str) -> None:
        from sqlalchemy.dialects.postgresql import insert

        from siyu.auth.models import InstallSecret

        stmt = insert(InstallSecret).values(name=name, value=value)
        with self.engine.begin() as conn:
            conn.execute(stmt.on_conflict_do_update(index_elements=["name"],
                                                    set_={"value": stmt.excluded.value}))


class MemoryStore:
    """For an in-memory SQLite database: the keys live as long as the process (and the
    data) does."""

    def __init__(self) -> None:
        self.data: dict[str, str] = {}

    def __repr__(self) -> str:
        return "MemoryStore()"

    def load(self) -> dict[str, str]:
        return dict(self.data)

    def add_if_absent(self, name: str, value: str) -> str:
        return self.data.setdefault(name, value)

    def put(self, name: str, value: str) -> None:
        self.data[name] = value


def secret_file(database_url: str) -> Path | None:
    """Where a SQLite database's secrets are kept (None for an in-memory database)."""
    url = make_url(database_url)
    if not url.drivername.startswith("sqlite"):
        return None
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return None
    return Path(database).resolve().with_name(Path(database).name + ".secret")


_ENGINES: dict[str, Engine] = {}
_MEMORY: dict[str, MemoryStore] = {}
_LOCK = threading.Lock()


def store_for(settings: Settings, engine: Engine | None = None) -> SecretStore:
    """The store beside ``settings.database_url``'s data."""
    url = settings.database_url
    if url.startswith("sqlite"):
        path = secret_file(url)
        if path is None:
            return _MEMORY.setdefault(url, MemoryStore())
        return FileStore(path)
    # Never the caller's pooled engine: the keyring is re-read every few seconds, often
    # inside a request that already holds one of that pool's connections. When concurrent
    # requests had taken the rest (e.g. 30 waiting on a row the reading request locked),
    # the re-read waited the pool's whole timeout while they timed out with 500. A
    # connection of its own (no pool) cannot starve or be starved.
    del engine
    with _LOCK:
        own = _ENGINES.get(url)
        if own is None:
            from sqlalchemy import create_engine
            from sqlalchemy.pool import NullPool

            own = create_engine(url, poolclass=NullPool)
            _ENGINES[url] = own
    return DatabaseStore(own)


def check_purpose(purpose: str) -> str:
    if not _PURPOSE.fullmatch(purpose):
        raise InvalidInput("a key purpose is 2-41 lower-case letters, digits or '-'",
                           details={"field": "purpose", "reason": "format"})
    return purpose


class Keyring:
    """The master secret and each purpose's generation; hands out derived keys."""

    __slots__ = ("_generations", "_master", "source")

    def __init__(self, master: bytes, generations: dict[str, int], source: str):
        self._master = master
        self._generations = dict(generations)
        self.source = source

    def __repr__(self) -> str:
        return f"Keyring(source={self.source!r}, generations={self._generations!r})"

    def generation(self, purpose: str) -> int:
        return self._generations.get(purpose, 0)

    def key(self, purpose: str) -> bytes:
        check_purpose(purpose)
        info = f"siyu:{purpose}:{self.generation(purpose)}".encode()
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"siyu purpose keys",
                    info=info).derive(self._master)


def _master_from(settings: Settings, data: dict[str, str], store: SecretStore) -> tuple[bytes,
                                                                                         str]:
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value().encode(), "SIYU_SECRET_KEY"
    encoded = data.get(MASTER)
    if encoded is None:
        encoded = store.add_if_absent(MASTER, base64.urlsafe_b64encode(
            secrets.token_bytes(32)).decode())
        log.info("generated this install's secret key in %r", store)
    try:
        master = base64.urlsafe_b64decode(encoded.encode())
    except ValueError:
        master = b""
    if len(master) < 32:
        raise SecretStoreError(f"the stored master secret in {store!r} is damaged")
    return master, repr(store)


def load_keyring(settings: Settings, engine: Engine | None = None) -> Keyring:
    """Read (on first start: create) the install's secrets."""
    store = store_for(settings, engine)
    data = store.load()
    master, source = _master_from(settings, data, store)
    generations = {name[len(_GENERATION):]: int(value) for name, value in data.items()
                   if name.startswith(_GENERATION) and value.isdigit()}
    return Keyring(master, generations, source)


_CACHE: dict[tuple[str, str], tuple[float, Keyring]] = {}


def _cache_key(settings: Settings) -> tuple[str, str]:
    own = settings.secret_key.get_secret_value() if settings.secret_key else ""
    return settings.database_url, hashlib.sha256(own.encode()).hexdigest()


def keyring(settings: Settings, engine: Engine | None = None) -> Keyring:
    """The install's keyring, re-read every few seconds so a rotation made by another
    process (``siyu secret rotate``) reaches this one."""
    cache_key = _cache_key(settings)
    now = time.monotonic()
    cached = _CACHE.get(cache_key)
    if cached is not None and now - cached[0] < REFRESH_SECONDS:
        return cached[1]
    try:
        ring = load_keyring(settings, engine)
    except SecretStoreError:
        if cached is None:
            raise
        # A store briefly unreadable (database restart): keep the keys already known.
        log.warning("could not re-read the install's secrets; keeping the loaded keys")
        ring = cached[1]
    _CACHE[cache_key] = (now, ring)
    return ring


def purpose_key(settings: Settings, purpose: str, *, engine: Engine | None = None) -> bytes:
    """The 32-byte key of ``purpose`` for this install (e.g. ``"session"``,
    ``"chat-session"``, ``"chat-code"``, ``"dnc-hash"``, ``"totp"``, ``"survey-link"``).

    Domains that sign, hash or encrypt call this, never ``settings.secret_key``. A purpose
    not in :data:`ROTATABLE` keeps its key for the life of the install."""
    return keyring(settings, engine).key(purpose)


def rotate(settings: Settings, purpose: str, *, engine: Engine | None = None) -> int:
    """Change ``purpose``'s key (a rotatable one only); returns its new generation."""
    check_purpose(purpose)
    if purpose not in ROTATABLE:
        raise InvalidInput(
            f"the {purpose!r} key cannot be rotated: stored data and links already sent "
            f"depend on it. Rotatable: {', '.join(ROTATABLE)}",
            details={"field": "purpose", "reason": "not rotatable"})
    store = store_for(settings, engine)
    current = keyring(settings, engine).generation(purpose)
    store.put(_GENERATION + purpose, str(current + 1))
    forget_cached()
    return current + 1


def forget_cached() -> None:
    """Drop the keys this process loaded (after a rotation, and between tests)."""
    _CACHE.clear()
