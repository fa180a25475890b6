"""Settings of the segments domain, read from the environment like the main settings."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class SegmentSettings(BaseSettings):
    """``SIYU_SEGMENTS_REFRESH_MINUTES``: how often saved segments are refreshed (the job
    ``segments.refresh_all`` runs once per bucket of this many minutes)."""

    model_config = SettingsConfigDict(env_prefix="SIYU_SEGMENTS_", env_file=None,
                                      extra="ignore")

    refresh_minutes: int = Field(default=60, ge=1, le=24 * 60)


@lru_cache
def get_segment_settings() -> SegmentSettings:
    return SegmentSettings()
