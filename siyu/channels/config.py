"""Channel settings that live beside the shared :class:`siyu.config.Settings`.

The WeCom callback credentials (``SIYU_WECOM_CORP_ID``, ``SIYU_WECOM_TOKEN``,
``SIYU_WECOM_AES_KEY``, ``SIYU_WECOM_MAX_SKEW_SECONDS``, ``SIYU_WECOM_API_BASE``,
``SIYU_WECOM_CORP_SECRET``) are fields of the shared settings; what only the channels need is
read here, with the same ``SIYU_`` prefix:

* ``SIYU_WECOM_AGENT_ID``: the self-built app used by ``message/send`` when the inbound
  message did not say which app it came through.
* ``SIYU_WECOM_KF_OPEN_KFID`` / ``SIYU_WECOM_KF_SECRET``: the 微信客服 account and its secret,
  used to answer external contacts with ``kf/send_msg`` (the secret defaults to the corp
  secret).
* ``SIYU_WEBCHAT_SECRET``: the HMAC key brand sites sign web chat tokens with.
* ``SIYU_WEBCHAT_DEMO``: ``1`` opens ``/chat/demo`` (set by ``siyu demo``).
* ``SIYU_SMS_URL`` / ``SIYU_SMS_TOKEN``: the generic JSON SMS provider (phone verification
  and outbound SMS).
* ``SIYU_SMTP_HOST`` / ``_PORT`` / ``_FROM`` / ``_USER`` / ``_PASSWORD`` / ``_STARTTLS``: the
  SMTP server outbound e-mail goes through.
* ``SIYU_WEBHOOK_ALLOW_HOSTS``: the only hosts (``host`` or ``host:port``) a playbook webhook
  may call; empty allows none. Bodies are signed with ``SIYU_WEBHOOK_SECRET``.
* ``SIYU_OA_*``: the official account (公众号): ``APPID``, ``TOKEN``, ``AES_KEY`` (safe mode;
  empty = plaintext mode), ``SECRET`` (for the customer-service message API),
  ``MAX_SKEW_SECONDS``, ``API_BASE``, the reply window (``WINDOW_HOURS``,
  ``WINDOW_MAX_MESSAGES``) and ``TEMPLATE_ID`` (the brand's template message, offered when the
  window is closed). See :mod:`siyu.channels.oa`.
* ``SIYU_PHONE_SECRET`` / ``SIYU_PHONE_MAX_SKEW_SECONDS``: the call centre webhook's HMAC
  key and timestamp skew limit (see :mod:`siyu.channels.phone.protocol`);
  ``SIYU_PHONE_CSAT_SMS`` / ``SIYU_PHONE_PUBLIC_URL``: the after-call SMS survey (see
  :mod:`siyu.channels.phone.survey`); ``SIYU_PHONE_DEMO``: ``1`` opens the console's phone
  simulator (set by ``siyu demo``).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class ChannelSettings(BaseSettings):
    """Configuration of the channel adapters; every field is ``SIYU_<NAME>`` in the env."""

    model_config = SettingsConfigDict(env_prefix="SIYU_", env_file=None, extra="ignore",
                                      hide_input_in_errors=True)

    wecom_agent_id: str = ""
    wecom_kf_open_kfid: str = ""
    wecom_kf_secret: SecretStr = SecretStr("")
    wecom_timeout_seconds: float = Field(default=10.0, gt=0)

    webchat_secret: SecretStr = SecretStr("")
    webchat_demo: bool = False
    # How long a chat session (after token, code or demo pick) stays valid.
    webchat_session_seconds: int = Field(default=12 * 3600, ge=60)
    # Longest lifetime a brand token may claim: a token valid for a year is a password.
    webchat_token_max_seconds: int = Field(default=7 * 24 * 3600, ge=60)
    webchat_max_text: int = Field(default=2000, ge=1)
    # Messages one chat visitor (one customer) may send per minute; more get 429 with a
    # Chinese notice. Counted from the stored messages, so every server process agrees.
    webchat_messages_per_minute: int = Field(default=20, ge=1)

    # The call centre's webhook: HMAC key and the timestamp skew it may have (0 = off).
    phone_secret: SecretStr = SecretStr("")
    phone_max_skew_seconds: int = Field(default=300, ge=0)
    # After-call satisfaction by SMS link (siyu.channels.phone.survey): "missed" when the
    # caller hung up on the keypad question or a person had the call, "always" for every
    # call without a keypad score, "off"; the link needs the address customers reach
    # siyu's pages at (SIYU_PHONE_PUBLIC_URL, e.g. https://cs.brand.example).
    phone_csat_sms: Literal["off", "missed", "always"] = "missed"
    phone_public_url: str = ""
    # The console's phone simulator (siyu demo sets it; it also needs SIYU_PHONE_SECRET).
    phone_demo: bool = False

    # The address customers reach siyu's pages at (e.g. https://cs.brand.example): the
    # unsubscribe links of marketing e-mail (siyu.channels.optout) need it.
    public_url: str = ""

    sms_url: str = ""
    sms_token: SecretStr = SecretStr("")
    # The SMS provider's webhook (replies such as 退订/TD, delivery reports): its HMAC key
    # and timestamp skew, signed like the call centre's (siyu.kit.signing).
    sms_webhook_secret: SecretStr = SecretStr("")
    sms_webhook_max_skew_seconds: int = Field(default=300, ge=0)
    sms_timeout_seconds: float = Field(default=10.0, gt=0)
    sms_code_ttl_seconds: int = Field(default=300, ge=30)
    sms_code_max_attempts: int = Field(default=5, ge=1)
    # At most one code per phone per resend interval, and so many per phone per hour.
    sms_resend_seconds: int = Field(default=60, ge=0)
    sms_codes_per_hour: int = Field(default=5, ge=1)

    smtp_host: str = ""
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_from: str = ""
    smtp_user: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_starttls: bool = False
    smtp_timeout_seconds: float = Field(default=15.0, gt=0)

    webhook_allow_hosts: list[str] = []
    webhook_secret: SecretStr = SecretStr("")
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    oa_appid: str = ""
    oa_token: SecretStr = SecretStr("")
    oa_aes_key: SecretStr = SecretStr("")
    oa_secret: SecretStr = SecretStr("")
    oa_max_skew_seconds: int = Field(default=300, ge=0)
    oa_api_base: str = "https://api.weixin.qq.com"
    oa_timeout_seconds: float = Field(default=10.0, gt=0)
    # The customer-service message API answers a follower for 48 hours after their last
    # message, with at most 5 messages in that window (the platform's rule as of 2026).
    oa_window_hours: float = Field(default=48.0, gt=0)
    oa_window_max_messages: int = Field(default=5, ge=1)
    oa_template_id: str = ""


@lru_cache
def get_channel_settings() -> ChannelSettings:
    """The process-wide channel settings, read once from the environment."""
    return ChannelSettings()


def channel_settings_of(state: Any) -> ChannelSettings:
    """The channel settings of an app (``app.state``): tests set ``channel_settings`` there;
    otherwise the environment's."""
    value = getattr(state, "channel_settings", None)
    if isinstance(value, ChannelSettings):
        return value
    return get_channel_settings()
