"""The console's left navigation: a registry every domain can add its pages to.

A domain registers its entry once at import time (``register_nav("人群", "/segments",
"segments.write", order=30)``); the console shows each user the entries their role's
permissions allow, in ``order``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from siyu.auth.service import can


@dataclass(frozen=True)
class NavEntry:
    label: str
    path: str
    permission: str
    order: int
    # Shown only while this says so (e.g. a demo-only page); ``None`` = always.
    when: Callable[[], bool] | None = None


@dataclass(frozen=True)
class NavLink:
    """An entry as one user sees it: ``active`` marks the section being viewed."""

    label: str
    path: str
    active: bool


_ENTRIES: dict[str, NavEntry] = {}


def register_nav(label: str, path: str, permission: str, order: int = 100, *,
                 when: Callable[[], bool] | None = None) -> None:
    """Add (or replace, keyed by ``path``) a navigation entry shown to roles holding
    ``permission`` (and, with ``when``, only while ``when()`` is true). Re-registering the
    same path is harmless, so importing twice is too."""
    if not path.startswith("/"):
        raise ValueError(f"navigation path must start with '/': {path!r}")
    _ENTRIES[path] = NavEntry(label=label, path=path, permission=permission, order=order,
                              when=when)


def unregister_nav(path: str) -> None:
    """Remove the entry for ``path``, if any."""
    _ENTRIES.pop(path, None)


def entries() -> list[NavEntry]:
    """Every registered entry, in display order."""
    return sorted(_ENTRIES.values(), key=lambda e: (e.order, e.path))


def nav_for(role: str, current_path: str) -> list[NavLink]:
    """The entries ``role`` may open, with the one containing ``current_path`` active: the
    most specific one only (on /service/metrics, 客服指标 and not also 客服工作台)."""
    shown = [e for e in entries() if can(role, e.permission) and (e.when is None or e.when())]
    containing = [e.path for e in shown
                  if current_path == e.path or current_path.startswith(e.path.rstrip("/") + "/")]
    active = max(containing, key=len, default=None)
    return [NavLink(e.label, e.path, e.path == active) for e in shown]

