"""Service types, the slots advisors publish and the appointments booked in them."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from siyu.db import Base, BigId, TimestampMixin, UTCDateTime

STATUSES = ("booked", "confirmed", "cancelled", "attended", "no_show")
# An appointment in any of these holds its slot; only a cancelled one gives it back.
HOLDING = ("booked", "confirmed", "attended", "no_show")
UPCOMING = ("booked", "confirmed")


class ServiceType(TimestampMixin, Base):
    """What an advisor offers one to one (营养咨询 15 分钟, 新品试用, 体检报告解读)."""

    __tablename__ = "appointment_service_types"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(60), unique=True)
    minutes: Mapped[int] = mapped_column(Integer)
    description: Mapped[str | None] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Slot(TimestampMixin, Base):
    """A time an advisor offers a service type. An advisor has one slot per start time;
    ``open`` false withdraws it from booking (a booked one keeps its appointment)."""

    __tablename__ = "appointment_slots"
    __table_args__ = (UniqueConstraint("advisor_id", "starts_at"),
                      Index("ix_appointment_slots_starts_at", "starts_at"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    advisor_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    service_type_id: Mapped[int] = mapped_column(
        ForeignKey("appointment_service_types.id", ondelete="CASCADE"))
    starts_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    location: Mapped[str | None] = mapped_column(String(100))
    open: Mapped[bool] = mapped_column(Boolean, default=True)


class Appointment(TimestampMixin, Base):
    """A customer's booking of a slot. At most one appointment that is not cancelled per
    slot: the partial unique index ``uq_appointments_slot_holding`` makes a double booking
    impossible whatever the number of concurrent requests (the loser's insert or update
    fails, and the API answers 409). A reschedule moves the row to another slot (same id,
    so the customer's calendar link stays valid)."""

    __tablename__ = "appointments"
    __table_args__ = (
        Index("uq_appointments_slot_holding", "slot_id", unique=True,
              sqlite_where=text("status != 'cancelled'"),
              postgresql_where=text("status != 'cancelled'")),
        Index("ix_appointments_customer", "customer_id", "starts_at"),
        Index("ix_appointments_advisor", "advisor_id", "starts_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    slot_id: Mapped[int] = mapped_column(ForeignKey("appointment_slots.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    # Copied from the slot (the calendar and the customer's list read them without a join;
    # a reschedule copies the new slot's).
    advisor_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    service_type_id: Mapped[int] = mapped_column(
        ForeignKey("appointment_service_types.id", ondelete="CASCADE"))
    starts_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(20), default="booked")
    # Where the booking came from: webchat (the customer, through the bot), console or api
    # (staff booking for the customer), cli, demo.
    channel: Mapped[str] = mapped_column(String(20))
    booked_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    note: Mapped[str | None] = mapped_column(String(500))
    reschedules: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
