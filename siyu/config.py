"""One settings object, read from the environment (prefix ``SIYU_``) and validated at start-up."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?")
# Values that must never be accepted as a key (the last one was the source's old default).
_PLACEHOLDER_SECRETS = {"", "changeme", "change-me", "secret", "dev-secret-key-change-me"}


class Settings(BaseSettings):
    """Runtime configuration. Every field can be set as ``SIYU_<NAME>`` in the environment."""

    # A validation error never echoes the input: it holds every secret of the environment.
    model_config = SettingsConfigDict(env_prefix="SIYU_", env_file=None, extra="ignore",
                                      hide_input_in_errors=True)

    environment: Literal["development", "test", "production"] = "development"
    database_url: str = "sqlite:///./siyu.db"
    # The master secret the per-purpose keys derive from (siyu.auth.secrets). Unset, the
    # install generates its own on first start and keeps it beside the data.
    secret_key: SecretStr | None = None
    # Largest request body accepted by the API, in bytes (a 10,000-record batch is ~3 MB).
    max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    max_batch_records: int = Field(default=10_000, ge=1)
    default_phone_region: str = "CN"
    # Naive timestamps in ingested data are read in this zone; the console shows this zone.
    timezone: str = "Asia/Shanghai"
    # Identity kinds that name exactly one person: two customers carrying different values of
    # one of these are never merged silently (phone only when both numbers are verified).
    exclusive_identity_kinds: list[str] = ["external_id", "app_user_id", "wechat_unionid"]
    log_level: str = "INFO"
    # Retention in days (0 keeps forever): raw events, conversation messages, audit entries.
    # The daily privacy.retention job purges older rows (docs/privacy.md).
    retention_events_days: int = Field(default=0, ge=0, le=36_500)
    retention_messages_days: int = Field(default=0, ge=0, le=36_500)
    retention_audit_days: int = Field(default=1095, ge=0, le=36_500)
    # A worker's claim on a job lasts this long; a running job's worker renews it (a
    # heartbeat every third of it), so a dead worker's jobs are taken over within seconds.
    job_lease_seconds: int = Field(default=30, ge=2, le=3600)

    # Console sessions (siyu.auth.sessions): ended after this long without a request, and
    # in any case this long after sign-in.
    session_idle_minutes: int = Field(default=120, ge=1, le=7 * 24 * 60)
    session_max_hours: int = Field(default=12, ge=1, le=30 * 24)
    # scrypt cost of new password hashes as log2(N) (OWASP: N=2^17, r=8, p=1). Tests lower
    # it; production refuses less than 17. Older hashes are re-hashed at the next sign-in.
    password_scrypt_log2n: int = Field(default=17, ge=10, le=20)
    # Sign-in throttling (siyu.auth.throttle): after ``delay_after`` failures in a row each
    # attempt waits 1, 2, 4 ... s; after ``lock_after`` the name (or address) is locked
    # for ``login_lock_minutes``. Addresses get more room (an office shares one).
    login_delay_after: int = Field(default=5, ge=1, le=100)
    login_lock_after: int = Field(default=10, ge=2, le=1000)
    login_address_delay_after: int = Field(default=20, ge=1, le=1000)
    login_address_lock_after: int = Field(default=50, ge=2, le=10_000)
    login_lock_minutes: int = Field(default=15, ge=1, le=24 * 60)
    # Second factor (TOTP, siyu.auth.mfa): "admin" requires it of administrators, "all"
    # of everyone; otherwise each user may turn it on for themselves.
    require_mfa: Literal["off", "admin", "all"] = "off"

    # A conversation waiting longer than this for a person is marked late in the inbox.
    service_sla_seconds: int = Field(default=120, ge=10, le=86_400)
    wecom_corp_id: str = ""
    wecom_token: SecretStr = SecretStr("")
    wecom_aes_key: SecretStr = SecretStr("")
    wecom_max_skew_seconds: int = Field(default=300, ge=0)
    wecom_api_base: str = "https://qyapi.weixin.qq.com"
    wecom_corp_secret: SecretStr = SecretStr("")

    # Brand sites allowed to frame the web chat (embed.js), space- or comma-separated
    # origins such as ``https://shop.example.com``; the console is never framed.
    chat_embed_origins: str = ""

    @field_validator("chat_embed_origins")
    @classmethod
    def _origins(cls, value: str) -> str:
        for origin in value.replace(",", " ").split():
            if not _ORIGIN.fullmatch(origin):
                raise ValueError(f"SIYU_CHAT_EMBED_ORIGINS: {origin!r} is not an origin "
                                 "like https://shop.example.com (scheme, host, optional port)")
        return value

    @property
    def chat_embed_origin_list(self) -> tuple[str, ...]:
        return tuple(self.chat_embed_origins.replace(",", " ").split())

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgresql")):
            raise ValueError("SIYU_DATABASE_URL must be a sqlite:// or postgresql:// URL")
        return value

    @model_validator(mode="after")
    def _login_limits(self) -> Settings:
        if self.login_lock_after <= self.login_delay_after:
            raise ValueError("SIYU_LOGIN_LOCK_AFTER must be greater than SIYU_LOGIN_DELAY_AFTER")
        if self.login_address_lock_after <= self.login_address_delay_after:
            raise ValueError("SIYU_LOGIN_ADDRESS_LOCK_AFTER must be greater than "
                             "SIYU_LOGIN_ADDRESS_DELAY_AFTER")
        if self.environment == "production" and self.password_scrypt_log2n < 17:
            raise ValueError("SIYU_PASSWORD_SCRYPT_LOG2N must be at least 17 in production "
                             "(OWASP: scrypt N=2^17)")
        return self

    @model_validator(mode="after")
    def _no_weak_secret_key(self) -> Settings:
        if self.secret_key is None:
            return self
        value = self.secret_key.get_secret_value()
        if value.strip().lower() in _PLACEHOLDER_SECRETS:
            raise ValueError("SIYU_SECRET_KEY is a placeholder; unset it (the install then "
                             "generates its own) or set a random value")
        if self.environment == "production" and len(value) < 32:
            raise ValueError("SIYU_SECRET_KEY must be a random value of at least 32 "
                             "characters in production (or unset: the install generates "
                             "its own)")
        return self


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
