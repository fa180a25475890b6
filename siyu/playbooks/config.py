"""Playbook settings (``SIYU_`` prefix):

* ``SIYU_PLAYBOOK_MAX_EVENT_AGE_HOURS`` (24): an event older than this when it lands never
  fires a trigger (nor does any record of a file import: backfills are history).
* ``SIYU_PLAYBOOK_CONTEXT_URL``: the HTTP provider of template ``context`` (``GET
  URL?city=...&customer_id=...`` answering JSON, e.g. the weather for the customer's city).
* ``SIYU_PLAYBOOK_BATCH`` (500): runs claimed per transaction.
* ``SIYU_PLAYBOOK_INLINE_ENTRIES`` (100): an ingest batch whose triggers hit at most this
  many entries enters them in its own transaction; a larger one records them as one durable
  ``playbooks.enter`` job that the worker enters (0: always the job).
* ``SIYU_PLAYBOOK_DAILY_AT`` (``10:00``): the brand-time moment each day when the
  ``inactive_days`` and ``date`` triggers pick whom they start (customers silent for exactly
  N days; whose birthday, or date attribute, is ``offset_days`` away).
"""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class PlaybookSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SIYU_", env_file=None, extra="ignore")

    playbook_max_event_age_hours: float = Field(default=24.0, gt=0)
    playbook_context_url: str = ""
    playbook_context_timeout_seconds: float = Field(default=5.0, gt=0)
    playbook_batch: int = Field(default=500, ge=1, le=5000)
    playbook_inline_entries: int = Field(default=100, ge=0)
    playbook_daily_at: str = Field(default="10:00", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")


@lru_cache
def get_playbook_settings() -> PlaybookSettings:
    return PlaybookSettings()
