"""Extra cards on the customer 360 page, contributed by other domains.

A domain registers a panel once at import time (``register_customer_panel("scores", "客户评分",
rows, "customers.read")``); the 360 page asks each panel the user may see for its rows, each
``{"label", "value", "why"}``, and shows them as a card. The console stays ignorant of what
the rows mean, and a domain's data never needs the console's routes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from siyu.auth.service import can

PanelRows = Callable[[Session, int], list[dict[str, str]]]


@dataclass(frozen=True)
class CustomerPanel:
    key: str
    title: str
    rows: PanelRows
    permission: str
    order: int
    empty: str


_PANELS: dict[str, CustomerPanel] = {}


def register_customer_panel(key: str, title: str, rows: PanelRows, permission: str, *,
                            order: int = 100, empty: str = "暂无数据") -> None:
    """Add (or replace, keyed by ``key``) a card on the customer 360 page."""
    _PANELS[key] = CustomerPanel(key, title, rows, permission, order, empty)


def customer_panels(session: Session, customer_id: int, role: str) -> list[dict[str, object]]:
    """The panels ``role`` may see for the customer, in order, with their rows."""
    out: list[dict[str, object]] = []
    for panel in sorted(_PANELS.values(), key=lambda p: (p.order, p.key)):
        if not can(role, panel.permission):
            continue
        out.append({"key": panel.key, "title": panel.title, "empty": panel.empty,
                    "rows": panel.rows(session, customer_id)})
    return out
