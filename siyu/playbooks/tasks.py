"""The playbook engine inside the worker loop: each round claims and executes due runs in
batches (:func:`siyu.playbooks.engine.process_due`), one transaction per batch, until none
is due; and reads back WeCom mass-send results now and then."""

from __future__ import annotations

import logging
import time

from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from siyu.jobs import worker
from siyu.playbooks import clock, engine
from siyu.playbooks.config import get_playbook_settings

log = logging.getLogger("siyu.playbooks")


def run_batches(factory: sessionmaker[Session], worker_name: str = "", *,
                max_batches: int = 20) -> int:
    """Execute due runs, a batch per transaction, up to ``max_batches``; returns how many."""
    from siyu.config import get_settings

    size = get_playbook_settings().playbook_batch
    tz = get_settings().timezone
    total = 0
    for _ in range(max_batches):
        with factory() as session:
            try:
                n = engine.process_due(session, now=clock.now(), limit=size, timezone=tz)
                session.commit()
            # SQLite busy, or two workers racing to create one tag: the batch rolled back
            # and its runs are claimed again.
            except (OperationalError, IntegrityError):
                session.rollback()
                log.warning("playbook batch rolled back; retrying", exc_info=True)
                time.sleep(0.05)
                continue
        total += n
        if n < size:
            break
    return total


worker.register_loop("playbooks", run_batches)
