"""Playbook tables: playbooks and their versions, runs (one customer going through one
playbook), the step log (every step's outcome, with the reason when held back), tasks for
people, and the contact policy."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from siyu.db import Base, BigId, TimestampMixin, UTCDateTime, utcnow

RUN_STATES = ("active", "waiting", "holdout", "done", "exited", "goal", "failed")
OPEN_RUN_STATES = ("active", "waiting", "holdout")


class Playbook(TimestampMixin, Base):
    __tablename__ = "playbooks"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    status: Mapped[str] = mapped_column(String(10))
    priority: Mapped[int] = mapped_column(Integer, default=50)
    version: Mapped[int] = mapped_column(Integer, default=1)
    # The current version's trigger kind and value, for the set-based trigger lookup.
    trigger_kind: Mapped[str] = mapped_column(String(30))
    trigger_value: Mapped[str | None] = mapped_column(String(100))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow,
                                                    onupdate=utcnow)


class PlaybookVersion(TimestampMixin, Base):
    """One applied file: the source text as given, the validated spec and its program."""

    __tablename__ = "playbook_versions"
    __table_args__ = (UniqueConstraint("playbook_id", "version"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    playbook_id: Mapped[int] = mapped_column(ForeignKey("playbooks.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(Text)
    checksum: Mapped[str] = mapped_column(String(64))
    spec: Mapped[dict[str, Any]] = mapped_column()
    program: Mapped[list[Any]] = mapped_column()
    applied_by: Mapped[str | None] = mapped_column(String(60))


class PlaybookRun(TimestampMixin, Base):
    """One customer in one playbook: the version it started on, where it is (``pc``, an
    index into the version's program) and when it is due next."""

    __tablename__ = "playbook_runs"
    __table_args__ = (UniqueConstraint("playbook_id", "entry_key"),
                      Index("ix_playbook_runs_due", "status", "due_at"),
                      Index("ix_playbook_runs_customer", "customer_id", "status"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    playbook_id: Mapped[int] = mapped_column(ForeignKey("playbooks.id", ondelete="CASCADE"))
    version_id: Mapped[int] = mapped_column(ForeignKey("playbook_versions.id",
                                                       ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    # Reentry: ``c<customer>`` (once) or ``c<customer>:<trigger>`` (every trigger / after N
    # days): a repeated trigger cannot start a second run.
    entry_key: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(10))
    holdout: Mapped[bool] = mapped_column(Boolean, default=False)
    pc: Mapped[int] = mapped_column(Integer, default=0)
    due_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    wait_event: Mapped[str | None] = mapped_column(String(60))
    entered_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    goal_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    trigger: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class StepLog(TimestampMixin, Base):
    """What one step did for one run: ``outcome`` is ``queued`` (a send handed to the outbox,
    whose delivery says how it went), ``done``, ``deferred`` or ``suppressed`` (with a
    ``reason`` from :data:`siyu.playbooks.policy.REASONS`), ``failed``."""

    __tablename__ = "playbook_step_log"
    __table_args__ = (Index("ix_playbook_step_log_playbook", "playbook_id", "path", "outcome"),
                      Index("ix_playbook_step_log_customer", "customer_id", "at"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("playbook_runs.id", ondelete="CASCADE"))
    playbook_id: Mapped[int] = mapped_column(ForeignKey("playbooks.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    pc: Mapped[int] = mapped_column(Integer)
    path: Mapped[str] = mapped_column(String(60))
    kind: Mapped[str] = mapped_column(String(20))
    channel: Mapped[str | None] = mapped_column(String(20))
    outcome: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(String(40))
    delivery_id: Mapped[int | None] = mapped_column(BigId)
    detail: Mapped[str | None] = mapped_column(Text)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class PlaybookTask(TimestampMixin, Base):
    """Work for a person (call, chat, appointment invitation) with the customer and a due
    time: for the customer's advisor, or for a skill group."""

    __tablename__ = "playbook_tasks"
    __table_args__ = (Index("ix_playbook_tasks_open", "status", "due_at"),
                      UniqueConstraint("run_id", "pc"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("playbook_runs.id", ondelete="CASCADE"))
    pc: Mapped[int] = mapped_column(Integer)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"),
                                             index=True)
    playbook_id: Mapped[int] = mapped_column(ForeignKey("playbooks.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id",
                                                               ondelete="SET NULL"))
    skill_group: Mapped[str | None] = mapped_column(String(60))
    note: Mapped[str] = mapped_column(Text, default="")
    due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(10), default="open")
    done_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class ContactPolicy(TimestampMixin, Base):
    """The contact policy (one row): the applied YAML and its parsed form."""

    __tablename__ = "contact_policy"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    paused_all: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow,
                                                    onupdate=utcnow)
