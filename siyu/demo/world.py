"""The calendar and the population of the demo world, drawn with numpy.

Time is measured in float days since ``Calendar.t0`` (local midnight in China, two years
before ``now``). Purchases follow each customer's own Poisson-like rhythm in *operational
time*: calendar time stretched by the shopping intensity of each day, so that 双11, 618,
年货节 and 38 女神节 carry more orders without changing anyone's average rhythm.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import numpy as np

from siyu.demo import catalog

BRAND_TZ = ZoneInfo("Asia/Shanghai")
HISTORY_DAYS = 730
SPRING_FESTIVAL = {
    2020: (1, 25), 2021: (2, 12), 2022: (2, 1), 2023: (1, 22), 2024: (2, 10), 2025: (1, 29),
    2026: (2, 17), 2027: (2, 6), 2028: (1, 26), 2029: (2, 13), 2030: (2, 3), 2031: (1, 23),
}
MID_AUTUMN = {
    2020: (10, 1), 2021: (9, 21), 2022: (9, 10), 2023: (9, 29), 2024: (9, 17), 2025: (10, 6),
    2026: (9, 25), 2027: (9, 15), 2028: (10, 3), 2029: (9, 22), 2030: (9, 12), 2031: (10, 1),
}
# Campaign coupon (index into catalog.CAMPAIGN_COUPONS) handed out on campaign days.
COUPON_DOUBLE11, COUPON_618, COUPON_SPRING, COUPON_38 = 0, 1, 2, 3
# Showcase customers take the first customer ids; generated people follow.
FIRST_PERSON_ID = 6
VIP_ID = 1


@dataclass
class Calendar:
    """Days of the two-year window with their shopping intensity and campaigns."""

    now: dt.datetime
    t0: dt.datetime  # naive UTC instant of local midnight on the first day
    t_now: float
    intensity: np.ndarray  # per day, mean 1
    cum: np.ndarray  # operational time at each day boundary
    campaign: np.ndarray  # coupon index per day, -1 outside campaigns
    spring_gift: np.ndarray  # bool per day: people buy 年货礼盒
    autumn_gift: np.ndarray  # bool per day: people buy 中秋礼盒
    months: np.ndarray  # local (year*12 + month - 1) per day

    @property
    def days(self) -> int:
        return len(self.intensity)

    def op(self, t: np.ndarray) -> np.ndarray:
        """Operational time of calendar times ``t``."""
        return np.interp(t, np.arange(self.days + 1), self.cum)

    def calendar_time(self, u: np.ndarray) -> np.ndarray:
        """Calendar time of operational times ``u`` (``inf`` past the end of the window)."""
        t = np.interp(u, self.cum, np.arange(self.days + 1, dtype=float))
        return np.where(u > self.cum[-1], np.inf, t)

    def day(self, t: np.ndarray) -> np.ndarray:
        return np.clip(t.astype(np.int64), 0, self.days - 1)

    def datetimes(self, t: np.ndarray) -> list[dt.datetime]:
        """Naive UTC datetimes (second precision) of calendar times ``t``."""
        base = np.datetime64(self.t0, "s")
        secs = np.round(np.asarray(t, dtype=float) * 86400.0).astype(np.int64)
        return list((base + secs.astype("timedelta64[s]")).astype(object))


def build_calendar(now: dt.datetime) -> Calendar:
    local_now = now.astimezone(BRAND_TZ)
    start = local_now.date() - dt.timedelta(days=HISTORY_DAYS)
    t0_aware = dt.datetime.combine(start, dt.time(), tzinfo=BRAND_TZ).astimezone(dt.UTC)
    t_now = (now - t0_aware).total_seconds() / 86400.0
    days = int(np.ceil(t_now)) + 1
    intensity = np.ones(days)
    campaign = np.full(days, -1, dtype=np.int64)
    spring = np.zeros(days, dtype=bool)
    autumn = np.zeros(days, dtype=bool)
    months = np.zeros(days, dtype=np.int64)
    for d in range(days):
        date = start + dt.timedelta(days=d)
        months[d] = date.year * 12 + date.month - 1
        m, day = date.month, date.day
        if (m == 10 and day >= 20) or (m == 11 and day <= 11):
            intensity[d] = 6.0 if (m, day) == (11, 11) else (2.2 if m == 11 else 1.3)
            campaign[d] = COUPON_DOUBLE11
        elif m == 11 and day <= 14:
            intensity[d] = 0.7
        elif m == 12 and day == 12:
            intensity[d] = 1.8
        elif m == 6 and day <= 18:
            intensity[d] = 4.0 if day == 18 else 1.8
            campaign[d] = COUPON_618
        elif m == 3 and day <= 8:
            intensity[d] = 2.5 if day == 8 else 1.5
            campaign[d] = COUPON_38
        for year in (date.year, date.year + 1):
            if year in SPRING_FESTIVAL:
                sf = dt.date(year, *SPRING_FESTIVAL[year])
                delta = (date - sf).days
                if -25 <= delta <= -8:
                    intensity[d] = max(intensity[d], 2.0)
                    campaign[d] = COUPON_SPRING
                    spring[d] = True
                elif -7 <= delta <= 7:
                    # Couriers stop for the holiday.
                    intensity[d] = 0.55
        if date.year in MID_AUTUMN:
            delta = (date - dt.date(date.year, *MID_AUTUMN[date.year])).days
            if -18 <= delta <= -2:
                intensity[d] = max(intensity[d], 1.3)
                autumn[d] = True
    intensity /= intensity.mean()
    cum = np.concatenate([[0.0], np.cumsum(intensity)])
    return Calendar(now=now, t0=t0_aware.replace(tzinfo=None), t_now=t_now,
                    intensity=intensity, cum=cum, campaign=campaign, spring_gift=spring,
                    autumn_gift=autumn, months=months)


@dataclass
class Population:
    """What must be known about everyone before any chunk is generated: when each person
    arrived (sorted, so customer ids follow arrival), through which channel, and who
    referred them."""

    acq_t: np.ndarray
    channel: np.ndarray
    influence: np.ndarray
    referrer: np.ndarray  # customer id of the referrer, 0 for none

    @property
    def size(self) -> int:
        return len(self.acq_t)


def build_population(rng: np.random.Generator, cal: Calendar, size: int,
                     vip_acq_t: float) -> Population:
    days = np.arange(cal.days)
    # The brand grows: recent days bring more people, campaigns bring bursts.
    weight = (0.45 + days / cal.days) * (1.0 + 0.6 * (cal.intensity - 1.0))
    weight[-1] *= cal.t_now - (cal.days - 1)
    weight = np.clip(weight, 0.0, None)
    day = rng.choice(cal.days, size=size, p=weight / weight.sum())
    acq_t = np.sort(day + rng.random(size))
    acq_t = np.minimum(acq_t, cal.t_now - 1.0 / 1440)
    channel = rng.choice(len(catalog.ACQUISITION_CHANNELS), size=size,
                         p=np.array(catalog.CHANNEL_SHARE) / sum(catalog.CHANNEL_SHARE))
    # A few people refer many (KOL-like, Pareto tail); most refer nobody. Referred people
    # refer more often: that is what makes chains.
    refers = rng.random(size) < np.where(channel == catalog.REFERRAL_CHANNEL, 0.45, 0.2)
    influence = np.where(refers, rng.pareto(1.2, size) + 0.2, 0.0)
    influence = np.minimum(influence, 400.0)
    cand = np.concatenate([[25.0], influence])  # candidate 0 is the showcase VIP
    cum = np.cumsum(cand)
    referrer = np.zeros(size, dtype=np.int64)
    referred = np.flatnonzero(channel == catalog.REFERRAL_CHANNEL)
    # Person j may be referred by the VIP or anyone who arrived before j.
    caps = cum[referred]
    pick = np.searchsorted(cum, rng.random(len(referred)) * caps, side="right")
    pick = np.minimum(pick, referred)
    vip_too_late = (pick == 0) & (acq_t[referred] < vip_acq_t)
    referrer[referred] = np.where(pick == 0, VIP_ID, FIRST_PERSON_ID + pick - 1)
    referrer[referred[vip_too_late]] = 0
    channel[referred[referrer[referred] == 0]] = 0
    return Population(acq_t=acq_t, channel=channel, influence=influence, referrer=referrer)


def phone_numbers(pids: np.ndarray, reserved: set[str]) -> list[str]:
    """Unique, valid mainland mobile numbers (E.164) for person indices ``pids``.

    The 8-digit suffix is a bijection of the index, so numbers never repeat; a generated
    number equal to a showcase customer's moves to a prefix no showcase uses.
    """
    suffix = (pids * 48271 + 1_234_567) % 100_000_000
    prefix_idx = ((pids * 2_654_435_761) >> 7) % len(catalog.PHONE_PREFIXES)
    out = []
    for p, s in zip(prefix_idx.tolist(), suffix.tolist(), strict=True):
        number = f"+86{catalog.PHONE_PREFIXES[p]}{s:08d}"
        if number in reserved:
            number = f"+86191{s:08d}"
        out.append(number)
    return out


_TOKEN_ALPHABET = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"))


def tokens(rng: np.random.Generator, n: int, length: int, prefix: str) -> list[str]:
    """``n`` random channel ids like WeChat openids: ``prefix`` + ``length`` characters."""
    if n == 0:
        return []
    chars = _TOKEN_ALPHABET[rng.integers(0, 64, size=(n, length))]
    joined = chars.view(f"<U{length}").ravel()
    return [prefix + s for s in joined.tolist()]


def app_user_id(customer_id: int) -> str:
    # A bijection modulo a prime: unique, and does not look sequential.
    return f"{(customer_id * 7_919 + 104_729) % 1_000_000_007:010d}"


def external_id(customer_id: int) -> str:
    return f"{catalog.EXTERNAL_ID_PREFIX}{customer_id:06d}"
