"""Content items, per-recipient links and clicks. Functions take the caller's session and
never commit.

A message links to an item through :func:`link_for` (playbook templates call
``content("名称")``): one random, unguessable token per item and delivery, stored, so a click
on ``/c/<token>`` names the customer who received it and the playbook step that sent it,
and the same send retried reuses its link. A click records ``content_clicked`` on the
customer's timeline (playbook triggers and goals can use it) and leads to the item's URL;
the item's anonymous link ``/c/i/<code>`` counts a click for no one. Conversion: a
recipient who clicked and then made a purchase within :data:`CONVERSION_DAYS` of a click.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import BigInteger, String, and_, case, cast, exists, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

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


def _bought_after_click() -> ColumnElement[bool]:
    """SQL condition on a ``content_clicks`` row: its customer made a purchase within
    :data:`CONVERSION_DAYS` after the click (never true for an anonymous click)."""
    from siyu.analytics.repository import epoch
    from siyu.events.models import Order
    from siyu.events.purchases import is_purchase

    return exists().where(
        Order.customer_id == ContentClick.customer_id, is_purchase(),
        Order.ts >= ContentClick.at,
        epoch(Order.ts) <= epoch(ContentClick.at) + CONVERSION_DAYS * 86400)


def _converted() -> ColumnElement[int]:
    """Aggregate: the customers who clicked and then bought within CONVERSION_DAYS (of any
    of their clicks in the group), counted once each."""
    return func.count(func.distinct(case((_bought_after_click(), ContentClick.customer_id))))


def item_stats(session: Session, *, base_url: str = "") -> list[ItemStats]:
    """Per item: recipients (customers sent a link), clickers, clicks, anonymous clicks,
    converted (clicked, then bought within 7 days of a click); click-through = clickers /
    recipients, conversion = converted / clickers. Set-based: a handful of grouped queries
    whatever the number of links and clicks."""
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
    converted = dict(session.execute(
        select(ContentClick.item_id, _converted()).where(ContentClick.link_id.is_not(None))
        .group_by(ContentClick.item_id)).all())
    out = []
    for item in session.scalars(select(ContentItem).order_by(ContentItem.id)):
        sent, clicked = int(recipients.get(item.id, 0)), int(clickers.get(item.id, 0))
        bought = int(converted.get(item.id, 0))
        out.append(ItemStats(
            item.id, item.name, item.kind, item.url, anonymous_link(item, base_url), sent,
            clicked, int(clicks.get(item.id, 0)), int(anonymous.get(item.id, 0)), bought,
            round(clicked / sent, 4) if sent else None,
            round(bought / clicked, 4) if clicked else None))
    return out


def step_stats(session: Session, playbook_id: int) -> list[dict[str, Any]]:
    """Per playbook step (its path in the file, ``0``, ``2.then.0``) and content item:
    ``links`` issued, ``recipients`` (customers), ``clicks``, ``clickers``, ``converted``
    (clickers who bought within :data:`CONVERSION_DAYS` of a click), ``click_through`` =
    clickers / recipients and ``conversion`` = converted / clickers (None when there is
    nothing to divide by). Rows in step order, then by item name.

    A link stores the program index (``pc``) of the step that sent it; which step that is
    depends on the version the run started on, so the link's run (from its delivery key
    ``pb:<run>:<pc>``) names the version and the versions' programs name the step. Two
    grouped queries, whatever the number of links and clicks."""
    from siyu.playbooks.models import PlaybookRun, PlaybookVersion

    # The run id inside the delivery key "pb:<run>:<pc>" (links with a playbook_id always
    # have such a key): what lies between "pb:" and ":<pc>".
    key = ContentLink.delivery_key
    run_id = cast(func.substr(key, 4, func.length(key) - 4
                              - func.length(cast(ContentLink.step, String))), BigInteger)
    ours = ContentLink.playbook_id == playbook_id
    pairs = session.execute(
        select(PlaybookRun.version_id, ContentLink.step).distinct()
        .join(PlaybookRun, PlaybookRun.id == run_id).where(ours)).all()
    if not pairs:
        return []
    programs: dict[int, list[Any]] = dict(session.execute(
        select(PlaybookVersion.id, PlaybookVersion.program)
        .where(PlaybookVersion.id.in_({v for v, _pc in pairs}))).all())

    def path_of(version_id: int, pc: int | None) -> str:
        program = programs.get(version_id) or []
        if pc is not None and 0 <= pc < len(program):
            return str(program[pc].get("path", pc))
        return str(pc)

    path = case(*[(and_(PlaybookRun.version_id == v, ContentLink.step == pc), path_of(v, pc))
                  for v, pc in pairs], else_=cast(ContentLink.step, String))
    links = (select(ContentLink.id, ContentLink.item_id, ContentLink.customer_id,
                    path.label("path"))
             .join(PlaybookRun, PlaybookRun.id == run_id).where(ours).subquery())
    rows = session.execute(
        select(links.c.path, ContentItem.name, func.count(func.distinct(links.c.id)),
               func.count(func.distinct(links.c.customer_id)), func.count(ContentClick.id),
               func.count(func.distinct(ContentClick.customer_id)), _converted())
        .select_from(links).join(ContentItem, ContentItem.id == links.c.item_id)
        .outerjoin(ContentClick, ContentClick.link_id == links.c.id)
        .group_by(links.c.path, ContentItem.name)).all()

    arms = {"then": 0, "else": 1}

    def order(row: Any) -> tuple[list[tuple[int, int, str]], str]:
        # In file order: 0, 1, 1.then.0, 1.else.0, 2.
        return ([(0, int(p), "") if p.isdigit() else (1, arms.get(p, 2), p)
                 for p in str(row[0]).split(".")], row[1])

    out = []
    for step, name, n_links, sent, clicks, clickers, converted in sorted(rows, key=order):
        sent, clickers, converted = int(sent), int(clickers), int(converted)
        out.append({"step": step, "content": name, "links": int(n_links), "recipients": sent,
                    "clicks": int(clicks), "clickers": clickers, "converted": converted,
                    "click_through": round(clickers / sent, 4) if sent else None,
                    "conversion": round(converted / clickers, 4) if clickers else None})
    return out
