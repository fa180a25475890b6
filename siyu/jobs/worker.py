"""The worker loop: ``siyu worker`` runs it in its own process, ``siyu serve`` in a thread.

Job handlers live in each domain's ``tasks.py``; importing :data:`TASK_MODULES` registers
them.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable

from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session, sessionmaker

from siyu.jobs import service

log = logging.getLogger("siyu.jobs")

# Domains with job handlers; each module registers its handlers with @service.job on import.
TASK_MODULES: list[str] = ["siyu.segments.tasks", "siyu.channels.tasks", "siyu.analytics.tasks",
                           "siyu.service.tasks",
                           "siyu.privacy.tasks", "siyu.playbooks.tasks",
                           "siyu.journeys.tasks", "siyu.appointments.tasks",
                           "siyu.points.tasks", "siyu.groups.tasks"]

# Work other than jobs that a worker runs each round: ``fn(factory, worker) -> done``
# (e.g. the playbook engine's due runs). Registered by task modules on import.
LoopHook = Callable[[sessionmaker[Session], str], int]
_LOOP_HOOKS: dict[str, LoopHook] = {}
# Set when due work was committed in this process: the embedded worker wakes at once.
_WAKE = threading.Event()


def register_loop(name: str, fn: LoopHook) -> None:
    _LOOP_HOOKS[name] = fn


def run_loop_hooks(factory: sessionmaker[Session], worker: str) -> int:
    """Run each registered loop hook once; returns the work they did."""
    busy = 0
    for name, hook in list(_LOOP_HOOKS.items()):
        try:
            busy += hook(factory, worker)
        except Exception:
            log.exception("worker loop hook %s failed", name)
    return busy


def notify() -> None:
    """Wake this process's worker now (due work was committed)."""
    _WAKE.set()


def notify_after_commit(session: Session) -> None:
    """Wake this process's worker when ``session``'s transaction commits."""
    if session.info.get("siyu_wake"):
        return
    session.info["siyu_wake"] = True

    def _on_commit(sess: Session) -> None:
        sess.info.pop("siyu_wake", None)
        _WAKE.set()

    def _on_rollback(sess: Session) -> None:
        sess.info.pop("siyu_wake", None)

    sa_event.listen(session, "after_commit", _on_commit, once=True)
    sa_event.listen(session, "after_rollback", _on_rollback, once=True)


def _listen_postgres(factory: sessionmaker[Session], stop: threading.Event) -> None:
    """``LISTEN siyu_work`` on its own connection; each notification wakes the loop."""
    import psycopg

    url = factory.kw["bind"].url
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    while not stop.is_set():
        try:
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute("LISTEN siyu_work")
                while not stop.is_set():
                    for _ in conn.notifies(timeout=1.0, stop_after=1):
                        _WAKE.set()
        except Exception:  # the server went away: retry, polling covers the gap
            log.warning("LISTEN connection lost; retrying", exc_info=True)
            stop.wait(1.0)


def load_tasks() -> None:
    for name in TASK_MODULES:
        importlib.import_module(name)


def run_forever(factory: sessionmaker[Session], stop: threading.Event, *,
                poll_seconds: float = 0.5, worker: str | None = None) -> None:
    """Run due jobs until ``stop`` is set; sleep ``poll_seconds`` when there is nothing."""
    load_tasks()
    for name in TASK_MODULES:
        # a domain's recurring job queues its first run when a worker starts
        start = getattr(importlib.import_module(name), "on_worker_start", None)
        if start is not None:
            try:
                start(factory)
            except Exception:
                log.exception("%s.on_worker_start failed", name)
    worker = worker or service.worker_id()
    bind = factory.kw.get("bind")
    if bind is not None and bind.dialect.name == "postgresql":
        threading.Thread(target=_listen_postgres, args=(factory, stop), daemon=True,
                         name="siyu-listen").start()
    while not stop.is_set():
        _WAKE.clear()
        busy = run_loop_hooks(factory, worker)
        try:
            summary = service.run_due(factory, worker=worker)
        except Exception:  # keep the loop alive across transient database errors
            log.exception("worker loop error")
            summary = service.RunSummary()
        if busy + summary.done + summary.retried + summary.failed == 0:
            # Sleep until woken (NOTIFY or an in-process commit) or the poll interval ends:
            # the interval only matters for work that became due by the clock.
            _WAKE.wait(poll_seconds)


def start_in_thread(factory: sessionmaker[Session], *, poll_seconds: float = 0.5
                    ) -> tuple[threading.Thread, threading.Event]:
    stop = threading.Event()
    thread = threading.Thread(target=run_forever, args=(factory, stop),
                              kwargs={"poll_seconds": poll_seconds}, daemon=True,
                              name="siyu-worker")
    thread.start()
    return thread, stop
