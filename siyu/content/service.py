"""Content items, per-recipient links and clicks. Functions take the caller's session and
never commit.

A message links to an item through :func:`link_for` (playbook templates call
``content("名称")``): one random, unguessable token per item and delivery, stored, so a click
on ``/c/<token>`` names the customer who received it and the playbook step that sent it,
and the same send retried reuses its link. A click records ``content_clicked`` on the
customer's timeline (playbook triggers and goals can use it) and leads to the item's URL;
the item's anonymous link ``/c/i/<code>`` counts a click for no one. Conversion: a
recipient who clicked and then made a purchase within :data:`CONVERSION_DAYS`.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from siyu.content.models import ContentClick, ContentItem, ContentLink
from siyu.db import utcnow
from siyu.errors import InvalidInput, NotFound

KINDS = {"article": "文章", "product": "商品卡片", "miniprogram": "小程序页面"}
CLICKED = "content_clicked"
CONVERSION_DAYS = 7
_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"
_TOKEN = re.compile(r"^[2-9a-hjkmnp-z]{12}$")
_CODE = re.compile(r"^[2-9a-hjkmnp-z]{8}$")
_KEY = re.compile(r"^pb:(\d+):(\d+)$")


def _random(n: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(n))


def _invalid(field: str, reason: str) -> InvalidInput:
    return InvalidInput(f"{field}: {reason}", details=[{"field": field, "reason": reason}])


def _check_url(url: Any) -> str:
    if not isinstance(url, str) or not url.strip():
        raise _invalid("url", "required")
    url = url.strip()
    if len(url) > 500:
        raise _invalid("url", "at most 500 characters")
    parts = urlsplit(url)
    # Only web addresses and mini-program paths: never javascript:, data: or the like.
    if parts.scheme in ("http", "https") and parts.netloc:
        return url
    if not parts.scheme and url.startswith("/") and not url.startswith("//"):
        return url
    raise _invalid("url", "must be an http(s) address or a mini-program path starting with /")


def create_item(session: Session, name: Any, kind: Any, url: Any, *, sku: Any = None
                ) -> ContentItem:
    """A new content item; the name is what templates call it by (``content("名称")``)."""
    if not isinstance(name, str) or not name.strip():
        raise _invalid("name", "required")
    name = name.strip()
    if len(name) > 100:
        raise _invalid("name", "at most 100 characters")
    if kind not in KINDS:
        raise _invalid("kind", f"one of {', '.join(KINDS)}")
    checked = _check_url(url)
    if sku is not None and (not isinstance(sku, str) or len(sku) > 64):
        raise _invalid("sku", "a text of at most 64 characters")
    if session.scalar(select(ContentItem.id).where(ContentItem.name == name)) is not None:
        raise _invalid("name", "already used by another content item")
    item = ContentItem(code=_random(8), name=name, kind=kind, url=checked, sku=sku or None)
    session.add(item)
    session.flush()
    return item


def get_item(session: Session, name: str) -> ContentItem:
    item = session.scalar(select(ContentItem).where(ContentItem.name == name))
    if item is None:
        raise NotFound(f"内容「{name}」不存在")
    return item


def names(session: Session) -> set[str]:
    return set(session.scalars(select(ContentItem.name)))


def link_for(session: Session, name: str, *, customer_id: int, delivery_key: str,
             base_url: str = "", now: dt.datetime | None = None) -> str:
    """The recipient's link to item ``name`` in the delivery ``delivery_key`` (created on
    first ask, the same on a retry; ``now``: when it was issued, default the current
    time)."""
    item = get_item(session, name)
    token = session.scalar(select(ContentLink.token).where(
        ContentLink.item_id == item.id, ContentLink.delivery_key == delivery_key))
    if token is None:
        token = _random(12)
        playbook_id = step = None
        matched = _KEY.match(delivery_key)
        if matched:
            playbook_id = _playbook_of_run(session, int(matched.group(1)))
            step = int(matched.group(2))
        session.add(ContentLink(token=token, item_id=item.id, customer_id=customer_id,
                                delivery_key=delivery_key[:200], playbook_id=playbook_id,
                                step=step, at=now or utcnow()))
        session.flush()
    return f"{base_url.rstrip('/')}/c/{token}"


def _playbook_of_run(session: Session, run_id: int) -> int | None:
    from siyu.playbooks.models import PlaybookRun

    return session.scalar(select(PlaybookRun.playbook_id).where(PlaybookRun.id == run_id))


def anonymous_link(item: ContentItem, base_url: str = "") -> str:
    return f"{base_url.rstrip('/')}/c/i/{item.code}"


def click(session: Session, token: str, *, now: dt.datetime | None = None) -> str:
    """A click on a recipient's link: recorded (and ``content_clicked`` on the customer's
    timeline); returns where to send the visitor. Unknown tokens are NotFound."""
    from siyu.events.service import record

    if not _TOKEN.match(token or ""):
        raise NotFound("链接无效")
    row = session.execute(select(ContentLink, ContentItem).join(
        ContentItem, ContentItem.id == ContentLink.item_id).where(
        ContentLink.token == token)).first()
    if row is None:
        raise NotFound("链接无效")
    link, item = row
    moment = now or utcnow()
    entry = ContentClick(item_id=item.id, link_id=link.id, customer_id=link.customer_id,
                         at=moment)
    session.add(entry)
    session.flush()
    properties: dict[str, Any] = {"content": item.name, "kind": item.kind}
    if link.playbook_id is not None:
        properties.update({"playbook_id": link.playbook_id, "step": link.step})
    # One timeline entry per click.
    record(session, link.customer_id, CLICKED, id=f"content-click:{entry.id}", ts=moment,
           properties=properties, source="content")
    return item.url


def anonymous_click(session: Session, code: str, *, now: dt.datetime | None = None) -> str:
    if not _CODE.match(code or ""):
        raise NotFound("链接无效")
    item = session.scalar(select(ContentItem).where(ContentItem.code == code))
    if item is None:
        raise NotFound("链接无效")
    session.add(ContentClick(item_id=item.id, at=now or utcnow()))
    session.flush()
    return item.url


@dataclass(frozen=True)
class ItemStats:
    id: int
    name: str
    kind: str
    url: str
    anonymous_link: str
    recipients: int
    clickers: int
    clicks: int
    anonymous_clicks: int
    converted: int
    click_through: float | None
    conversion: float | None


def _purchases_after_click(session: Session, playbook_id: int | None = None
                           ) -> dict[tuple[int, int | None], int]:
    """Customers who clicked and then bought within CONVERSION_DAYS, per (item, step)."""
    from siyu.events.models import Order
    from siyu.events.purchases import is_purchase

    query = (select(ContentClick.item_id, ContentLink.step, ContentClick.customer_id,
                    func.min(ContentClick.at))
             .join(ContentLink, ContentLink.id == ContentClick.link_id)
             .group_by(ContentClick.item_id, ContentLink.step, ContentClick.customer_id))
    if playbook_id is not None:
        query = query.where(ContentLink.playbook_id == playbook_id)
    # Clicks through a recipient's link always name the customer.
    firsts = [(int(i), s, int(c), at) for i, s, c, at in session.execute(query)
              if c is not None]
    if not firsts:
        return {}
    customers = sorted({c for _i, _s, c, _at in firsts})
    earliest = min(at for *_rest, at in firsts)
    orders: dict[int, list[dt.datetime]] = {}
    for start in range(0, len(customers), 500):
        for cid, ts in session.execute(select(Order.customer_id, Order.ts).where(
                Order.customer_id.in_(customers[start:start + 500]), is_purchase(),
                Order.ts >= earliest)):
            orders.setdefault(int(cid), []).append(ts)
    window = dt.timedelta(days=CONVERSION_DAYS)
    out: dict[tuple[int, int | None], int] = {}
    for item_id, step, cid, at in firsts:
        if any(at <= ts <= at + window for ts in orders.get(cid, [])):
            key = (item_id, step)
            out[key] = out.get(key, 0) + 1
    return out


def item_stats(session: Session, *, base_url: str = "") -> list[ItemStats]:
    """Per item: recipients (customers sent a link), clickers, clicks, anonymous clicks,
    converted (clicked, then bought within 7 days); click-through = clickers / recipients."""
    recipients = dict(session.execute(
        select(ContentLink.item_id, func.count(func.distinct(ContentLink.customer_id)))
        .group_by(ContentLink.item_id)).all())
    clickers = dict(session.execute(
        select(ContentClick.item_id, func.count(func.distinct(ContentClick.customer_id)))
        .where(ContentClick.customer_id.is_not(None)).group_by(ContentClick.item_id)).all())
    clicks = dict(session.execute(
        select(ContentClick.item_id, func.count()).where(ContentClick.link_id.is_not(None))
        .group_by(ContentClick.item_id)).all())
    anonymous = dict(session.execute(
        select(ContentClick.item_id, func.count()).where(ContentClick.link_id.is_(None))
        .group_by(ContentClick.item_id)).all())
    converted: dict[int, int] = {}
    for (item_id, _step), n in _purchases_after_click(session).items():
        converted[item_id] = converted.get(item_id, 0) + n
    out = []
    for item in session.scalars(select(ContentItem).order_by(ContentItem.id)):
        sent, clicked = int(recipients.get(item.id, 0)), int(clickers.get(item.id, 0))
        bought = min(converted.get(item.id, 0), clicked)
        out.append(ItemStats(
            item.id, item.name, item.kind, item.url, anonymous_link(item, base_url), sent,
            clicked, int(clicks.get(item.id, 0)), int(anonymous.get(item.id, 0)), bought,
            round(clicked / sent, 4) if sent else None,
            round(bought / clicked, 4) if clicked else None))
    return out


def step_stats(session: Session, playbook_id: int) -> list[dict[str, Any]]:
    """Per playbook step and item: recipients, clickers, converted."""
    sent = session.execute(
        select(ContentLink.step, ContentLink.item_id,
               func.count(func.distinct(ContentLink.customer_id)))
        .where(ContentLink.playbook_id == playbook_id)
        .group_by(ContentLink.step, ContentLink.item_id)).all()
    clicked = {(s, i): int(n) for s, i, n in session.execute(
        select(ContentLink.step, ContentLink.item_id,
               func.count(func.distinct(ContentClick.customer_id)))
        .join(ContentClick, ContentClick.link_id == ContentLink.id)
        .where(ContentLink.playbook_id == playbook_id)
        .group_by(ContentLink.step, ContentLink.item_id))}
    converted = _purchases_after_click(session, playbook_id=playbook_id)
    item_names = dict(session.execute(select(ContentItem.id, ContentItem.name)).all())
    rows = []
    for step, item_id, n in sorted(sent, key=lambda r: (r[0] or 0, r[1])):
        c = clicked.get((step, item_id), 0)
        rows.append({"step": step, "content": item_names.get(item_id), "recipients": int(n),
                     "clickers": c, "converted": min(converted.get((item_id, step), 0), c),
                     "click_through": round(c / n, 4) if n else None})
    return rows
