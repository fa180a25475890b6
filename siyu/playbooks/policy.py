"""The contact policy: when, how often and whether a customer may be contacted.

``siyu policy apply FILE`` replaces the whole policy with a YAML document::

    timezone: Asia/Shanghai            # customers without attributes.timezone
    quiet_hours: {start: "22:00", end: "08:00"}   # or null; in the customer's zone;
                                       # add `purposes: [marketing, service]` to hold service too
    daily_marketing: 1                 # marketing messages per customer per local day (0: off)
    caps: [{channel: all, max: 3, per: 7d}]        # marketing, per channel or all channels
    marketing_consent: opt_in          # opt_in: marketing needs a grant; opt_out: unless withdrawn
    low_csat: {max_score: 2, days: 30} # marketing suppressed after a low satisfaction score
    platform:
      wecom_mass_per_month: days_in_month   # or a number (7 a week ~ 30, 1 a day = days)
      session_window_hours: 48         # oa / 微信客服: only within 48 h of the last inbound
      session_window_messages: 5       # ... and at most 5 in that window
      welcome_code_seconds: 20

Caps never apply to the service desk's replies (they do not pass here) nor to
``purpose: service`` steps. Quiet hours hold marketing only by default: a service message
answers something the customer just did (added the advisor, whose WeCom welcome code lasts
20 s; complained, and was promised a call within the hour), and holding it until morning
would break that promise. ``quiet_hours.purposes`` widens the hold to service messages.
Every message held back gets one reason from :data:`REASONS`.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from siyu.playbooks.errors import InvalidPolicy
from siyu.playbooks.spec import parse_duration

# The fixed list of reasons a send is deferred (held, goes out later) or suppressed (never).
REASONS: dict[str, str] = {
    "quiet_hours": "免打扰时段，延后发送",
    "global_pause": "全部营销已暂停，延后发送",
    "no_consent": "未获得该渠道营销许可",
    "opted_out": "客户已退订",
    "complaint_open": "投诉处理中，暂停营销",
    "low_csat": "近期满意度低，暂停营销",
    "daily_limit": "已达每日营销上限",
    "frequency_cap": "已达频次上限",
    "priority": "同日更高优先级的剧本已触达",
    "platform_limit": "超出平台限制（群发次数/会话窗口）",
    "no_address": "客户没有该渠道的联系方式",
    "template_error": "模板无法渲染",
    "welcome_code_expired": "企微欢迎语 welcome_code 缺失或已超时（添加后 20 秒内有效）",
}
DEFERRED = frozenset({"quiet_hours", "global_pause"})
CHANNELS_FOR_CAPS = ("all", "email", "sms", "wecom", "wecom_welcome", "wecom_mass",
                     "webchat", "oa")
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


@dataclass(frozen=True)
class Cap:
    channel: str
    max: int
    per_seconds: int


@dataclass(frozen=True)
class Policy:
    timezone: str = "Asia/Shanghai"
    quiet_start: dt.time | None = dt.time(22, 0)
    quiet_end: dt.time | None = dt.time(8, 0)
    quiet_purposes: frozenset[str] = frozenset({"marketing"})
    daily_marketing: int = 1
    caps: tuple[Cap, ...] = ()
    marketing_consent: str = "opt_in"
    low_csat_score: int | None = 2
    low_csat_days: int = 30
    wecom_mass_per_month: int | None = None  # None: as many as the month has days
    session_window_hours: int = 48
    session_window_messages: int = 5
    welcome_code_seconds: int = 20
    paused_all: bool = False
    data: dict[str, Any] = field(default_factory=dict)

    def local(self, at: dt.datetime, zone: str | None) -> dt.datetime:
        try:
            return at.astimezone(ZoneInfo(zone or self.timezone))
        except (ZoneInfoNotFoundError, ValueError):
            return at.astimezone(ZoneInfo(self.timezone))

    def quiet_until(self, at: dt.datetime, zone: str | None,
                    purpose: str = "marketing") -> dt.datetime | None:
        """When the quiet window that ``at`` falls in ends (UTC), or None outside it (or
        when quiet hours do not hold messages of ``purpose``)."""
        if self.quiet_start is None or self.quiet_end is None:
            return None
        if purpose not in self.quiet_purposes:
            return None
        local = self.local(at, zone)
        t = local.time()
        start, end = self.quiet_start, self.quiet_end
        inside = (start <= t < end) if start < end else (t >= start or t < end)
        if not inside:
            return None
        day = local.date() if (start < end or t < end) else local.date() + dt.timedelta(days=1)
        opens = dt.datetime.combine(day, end, tzinfo=local.tzinfo)
        return opens.astimezone(dt.UTC)

    def mass_limit(self, at: dt.datetime) -> int:
        if self.wecom_mass_per_month is not None:
            return self.wecom_mass_per_month
        first = at.replace(day=1)
        nxt = (first + dt.timedelta(days=32)).replace(day=1)
        return (nxt - first).days


def _clock(value: Any, where: str) -> dt.time:
    if not isinstance(value, str) or not _CLOCK.match(value):
        raise InvalidPolicy(f"{where} must be a local time HH:MM",
                            details=[{"field": where, "reason": "HH:MM"}])
    h, m = value.split(":")
    return dt.time(int(h), int(m))


def _int(data: dict[str, Any], key: str, default: int | None, lo: int, hi: int,
         where: str) -> int | None:
    value = data.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise InvalidPolicy(f"{where} must be a whole number {lo}..{hi}",
                            details=[{"field": where, "reason": "range"}])
    return value


def parse_policy(data: dict[str, Any], *, paused_all: bool = False) -> Policy:
    """A :class:`Policy` from its document; :class:`InvalidPolicy` naming the field."""
    if not isinstance(data, dict):
        raise InvalidPolicy("a policy is a mapping", details=[{"field": "", "reason": "type"}])
    known = {"timezone", "quiet_hours", "daily_marketing", "caps", "marketing_consent",
             "low_csat", "platform"}
    for key in data:
        if key not in known:
            raise InvalidPolicy(f"unknown policy field {key!r}",
                                details=[{"field": key, "reason": "unknown field"}])
    tz = data.get("timezone", "Asia/Shanghai")
    try:
        ZoneInfo(str(tz))
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidPolicy(f"unknown time zone {tz!r}",
                            details=[{"field": "timezone", "reason": "unknown zone"}]) from None
    quiet_start: dt.time | None = dt.time(22, 0)
    quiet_end: dt.time | None = dt.time(8, 0)
    quiet_purposes = frozenset({"marketing"})
    if "quiet_hours" in data:
        qh = data["quiet_hours"]
        if qh is None:
            quiet_start = quiet_end = None
        elif isinstance(qh, dict) and {"start", "end"} <= set(qh) <= {"start", "end",
                                                                      "purposes"}:
            purposes = qh.get("purposes", ["marketing"])
            if (not isinstance(purposes, list) or not purposes
                    or not set(purposes) <= {"marketing", "service"}):
                raise InvalidPolicy("quiet_hours.purposes is a list of marketing, service",
                                    details=[{"field": "quiet_hours.purposes",
                                              "reason": "value"}])
            quiet_purposes = frozenset(str(p) for p in purposes)
            quiet_start = _clock(qh["start"], "quiet_hours.start")
            quiet_end = _clock(qh["end"], "quiet_hours.end")
            if quiet_start == quiet_end:
                raise InvalidPolicy("quiet_hours start and end must differ",
                                    details=[{"field": "quiet_hours", "reason": "empty"}])
        else:
            raise InvalidPolicy("quiet_hours is {start: HH:MM, end: HH:MM[, purposes]} or null",
                                details=[{"field": "quiet_hours", "reason": "shape"}])
    caps: list[Cap] = []
    raw_caps = data.get("caps", [])
    if not isinstance(raw_caps, list):
        raise InvalidPolicy("caps is a list", details=[{"field": "caps", "reason": "type"}])
    for i, cap in enumerate(raw_caps):
        where = f"caps[{i}]"
        if not isinstance(cap, dict) or set(cap) != {"channel", "max", "per"}:
            raise InvalidPolicy(f"{where} is {{channel, max, per}}",
                                details=[{"field": where, "reason": "shape"}])
        if cap["channel"] not in CHANNELS_FOR_CAPS:
            raise InvalidPolicy(f"{where}.channel is one of {', '.join(CHANNELS_FOR_CAPS)}",
                                details=[{"field": f"{where}.channel", "reason": "unknown"}])
        per = parse_duration(cap["per"])
        if per is None or per.total_seconds() <= 0:
            raise InvalidPolicy(f"{where}.per is a duration such as 7d",
                                details=[{"field": f"{where}.per", "reason": "duration"}])
        mx = _int(cap, "max", None, 0, 1000, f"{where}.max")
        caps.append(Cap(str(cap["channel"]), int(mx or 0), int(per.total_seconds())))
    consent = data.get("marketing_consent", "opt_in")
    if consent not in ("opt_in", "opt_out"):
        raise InvalidPolicy("marketing_consent is opt_in or opt_out",
                            details=[{"field": "marketing_consent", "reason": "value"}])
    low = data.get("low_csat", {"max_score": 2, "days": 30})
    low_score: int | None = None
    low_days = 30
    if low is not None:
        if not isinstance(low, dict):
            raise InvalidPolicy("low_csat is {max_score, days} or null",
                                details=[{"field": "low_csat", "reason": "shape"}])
        low_score = _int(low, "max_score", 2, 1, 5, "low_csat.max_score")
        low_days = _int(low, "days", 30, 1, 365, "low_csat.days") or 30
    platform = data.get("platform", {}) or {}
    if not isinstance(platform, dict):
        raise InvalidPolicy("platform is a mapping",
                            details=[{"field": "platform", "reason": "type"}])
    mass = platform.get("wecom_mass_per_month", "days_in_month")
    mass_limit = None if mass == "days_in_month" else _int(
        platform, "wecom_mass_per_month", None, 0, 31, "platform.wecom_mass_per_month")
    return Policy(
        timezone=str(tz), quiet_start=quiet_start, quiet_end=quiet_end,
        quiet_purposes=quiet_purposes,
        daily_marketing=_int(data, "daily_marketing", 1, 0, 100, "daily_marketing") or 0,
        caps=tuple(caps), marketing_consent=str(consent), low_csat_score=low_score,
        low_csat_days=low_days, wecom_mass_per_month=mass_limit,
        session_window_hours=_int(platform, "session_window_hours", 48, 1, 168,
                                  "platform.session_window_hours") or 48,
        session_window_messages=_int(platform, "session_window_messages", 5, 1, 100,
                                     "platform.session_window_messages") or 5,
        welcome_code_seconds=_int(platform, "welcome_code_seconds", 20, 1, 3600,
                                  "platform.welcome_code_seconds") or 20,
        paused_all=paused_all, data=data)


def describe(policy: Policy) -> dict[str, Any]:
    """The policy in force, as ``siyu policy show --json`` prints it."""
    qh = (None if policy.quiet_start is None or policy.quiet_end is None else
          {"start": policy.quiet_start.strftime("%H:%M"),
           "end": policy.quiet_end.strftime("%H:%M"),
           "purposes": sorted(policy.quiet_purposes)})
    return {"timezone": policy.timezone, "quiet_hours": qh,
            "daily_marketing": policy.daily_marketing,
            "caps": [{"channel": c.channel, "max": c.max, "per_seconds": c.per_seconds}
                     for c in policy.caps],
            "marketing_consent": policy.marketing_consent,
            "low_csat": (None if policy.low_csat_score is None else
                         {"max_score": policy.low_csat_score, "days": policy.low_csat_days}),
            "platform": {"wecom_mass_per_month": policy.wecom_mass_per_month or
                         "days_in_month",
                         "session_window_hours": policy.session_window_hours,
                         "session_window_messages": policy.session_window_messages,
                         "welcome_code_seconds": policy.welcome_code_seconds},
            "paused_all": policy.paused_all, "reasons": REASONS}
