"""The worker loop: ``siyu worker`` runs it in its own process, ``siyu serve`` in a thread.

Job handlers live in each domain's ``tasks.py``; importing :data:`TASK_MODULES` registers
them.
"""

from __future__ import annotations

import importlib
import logging
import threading

from sqlalchemy.orm import Session, sessionmaker

from siyu.jobs import service

log = logging.getLogger("siyu.jobs")

# Domains with job handlers; each module registers its handlers with @service.job on import.
TASK_MODULES: list[str] = ["siyu.segments.tasks", "siyu.channels.tasks", "siyu.analytics.tasks",
                           "siyu.service.tasks",
                           "siyu.privacy.tasks"]


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
    while not stop.is_set():
        try:
            summary = service.run_due(factory, worker=worker)
        except Exception:  # keep the loop alive across transient database errors
            log.exception("worker loop error")
            summary = service.RunSummary()
        if summary.done + summary.retried + summary.failed == 0:
            stop.wait(poll_seconds)


def start_in_thread(factory: sessionmaker[Session], *, poll_seconds: float = 0.5
                    ) -> tuple[threading.Thread, threading.Event]:
    stop = threading.Event()
    thread = threading.Thread(target=run_forever, args=(factory, stop),
                              kwargs={"poll_seconds": poll_seconds}, daemon=True,
                              name="siyu-worker")
    thread.start()
    return thread, stop
