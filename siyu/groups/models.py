"""Customer groups and their members."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from siyu.db import Base, BigId, UTCDateTime


class CustomerGroup(Base):
    """A WeCom customer group (``chat_id``), its name and owner (an employee's userid);
    ``status`` ``active`` or ``dismissed``."""

    __tablename__ = "customer_groups"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    chat_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str | None] = mapped_column(String(100))
    owner: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(10), default="active")
    created_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    synced_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class GroupMember(Base):
    """A member of a group: a customer (``kind`` ``external``, ``customer_id`` set) or an
    employee (``employee``). ``left_at`` is set when they leave; joining again clears it."""

    __tablename__ = "customer_group_members"
    __table_args__ = (UniqueConstraint("group_id", "userid"),
                      Index("ix_customer_group_members_customer", "customer_id"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("customer_groups.id", ondelete="CASCADE"))
    userid: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(10))
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"))
    joined_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    left_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
