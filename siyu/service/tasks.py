"""Background jobs of the service desk."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from siyu.jobs.service import job
from siyu.service import bot
from siyu.service.service import BOT_JOB


@job(BOT_JOB)
def handle_inbound(session: Session, payload: dict[str, Any]) -> None:
    """Run the bot on one inbound message; idempotent (a decided message is skipped)."""
    bot.handle_inbound(session, int(payload["message_id"]))
