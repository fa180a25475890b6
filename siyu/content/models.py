"""Content items, the per-recipient links issued for them, and the clicks on those links."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from siyu.db import Base, BigId, TimestampMixin, UTCDateTime


class ContentItem(TimestampMixin, Base):
    """Something worth reading or buying that messages link to: ``kind`` ``article``,
    ``product`` (a product card) or ``miniprogram`` (a mini-program page). ``code`` is the
    item's anonymous short link (``/c/i/<code>``: a click from whoever has it); ``url`` is
    where every link leads."""

    __tablename__ = "content_items"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(12))
    url: Mapped[str] = mapped_column(String(500))
    sku: Mapped[str | None] = mapped_column(String(64))


class ContentLink(Base):
    """A link issued to one recipient in one message (``delivery_key``: the outbox key of
    the send, e.g. a playbook step ``pb:<run>:<step>``), so a click names who received it
    and from which playbook step. Issued once per (item, delivery): a retried send reuses
    the link."""

    __tablename__ = "content_links"
    __table_args__ = (UniqueConstraint("item_id", "delivery_key"),
                      Index("ix_content_links_customer", "customer_id"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    token: Mapped[str] = mapped_column(String(16), unique=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("content_items.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    delivery_key: Mapped[str] = mapped_column(String(200))
    playbook_id: Mapped[int | None] = mapped_column(BigId)
    step: Mapped[int | None] = mapped_column()
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class ContentClick(Base):
    """One click: through a recipient's link (``link_id`` and ``customer_id`` set) or the
    item's anonymous link (both NULL)."""

    __tablename__ = "content_clicks"
    __table_args__ = (Index("ix_content_clicks_item", "item_id", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("content_items.id", ondelete="CASCADE"))
    link_id: Mapped[int | None] = mapped_column(
        ForeignKey("content_links.id", ondelete="CASCADE"))
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
