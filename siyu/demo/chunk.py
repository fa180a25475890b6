"""One chunk of people: their profiles, identities, orders, events, consents and tags.

The model per person (see the ``siyu.demo.generator`` docstring for the whole world):

* purchase rate ``λ = g / cycle`` with ``g ~ Gamma(1.6)`` scaled by the acquisition channel
  and ``cycle`` the consumption cycle of the person's main product; gaps are Gamma(2)
  distributed in operational time (seasonality), so rhythms fit the product;
* after every purchase the person drops out with probability ``p ~ Beta`` whose mean
  depends on the channel (referred customers are the most loyal, live-stream buyers the
  least) and on the advisor; one in ten drop-outs comes back after 5-11 months
  (reactivated);
* spend per order comes from the basket: a per-person scale ``z ~ Gamma(4, 1/4)`` drives
  quantities and extra items, campaigns bring coupons (Gamma-Gamma-like).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from siyu.demo import catalog
from siyu.demo.world import (
    FIRST_PERSON_ID,
    Calendar,
    Population,
    app_user_id,
    external_id,
    phone_numbers,
    tokens,
)

_P = catalog.PRODUCTS
_PRICE = np.array([p.price for p in _P])
_CYCLE = np.array([p.cycle_days for p in _P], dtype=float)
_W = np.array([p.weight for p in _P])
_CAT = [p.category for p in _P]
_W_FEMALE = _W * np.array([{"collagen": 2.0, "protein": 0.5}.get(c, 1.0) for c in _CAT])
_W_MALE = _W * np.array([{"collagen": 0.2, "protein": 2.5, "meal": 0.7}.get(c, 1.0)
                         for c in _CAT])
_BASKET_W = _W / _W.sum()
_ORDER_HOURS = np.array([0.5, 0.3, 0.2, 0.1, 0.1, 0.2, 0.5, 1.2, 1.8, 1.8, 1.6, 1.7, 2.2,
                         2.0, 1.6, 1.5, 1.5, 1.6, 1.9, 2.4, 3.0, 3.3, 3.0, 1.6])
_ORDER_HOURS = _ORDER_HOURS / _ORDER_HOURS.sum()
_SURNAME_W = 1.0 / (np.arange(len(catalog.SURNAMES)) + 3.0)
_SURNAME_W = _SURNAME_W / _SURNAME_W.sum()
_CITY_W = np.array([w for _, w in catalog.CITIES])
_CITY_W = _CITY_W / _CITY_W.sum()
_MINUTE = 1.0 / 1440
LINK_SHARE = 0.027  # of eligible people, first seen twice (WeCom contact + buyer)
HISTORY_DAYS = 30.0  # orders of the last 30 days arrive paid, then change status
STATUS_STEPS = 3  # shipped, delivered, completed (or refunded)
GIFT_RECIPIENT_SHARE = 0.35  # of orders with a gift box, sent to someone else
OTHER_RECIPIENT_SHARE = 0.03  # of other purchases


@dataclass
class Chunk:
    """Rows for the bulk insert, plus what the end of the seed needs to know."""

    customers: list[dict[str, Any]] = field(default_factory=list)
    identities: list[dict[str, Any]] = field(default_factory=list)
    consents: list[dict[str, Any]] = field(default_factory=list)
    tags: list[dict[str, Any]] = field(default_factory=list)
    referrals: list[dict[str, Any]] = field(default_factory=list)
    orders: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    links: list[dict[str, Any]] = field(default_factory=list)  # ingested at the end
    # Later versions of recent orders (paid -> shipped -> delivered -> completed/refunded),
    # by step: ingested at the end, step by step, as the brand's system would send them.
    status_updates: list[list[dict[str, Any]]] = field(
        default_factory=lambda: [[] for _ in range(STATUS_STEPS)])
    members: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))


@dataclass
class Context:
    cal: Calendar
    pop: Population
    advisors: list[tuple[int, str]]  # (user id, display name)
    advisor_quality: np.ndarray
    tag_ids: dict[str, int]
    reserved_phones: set[str]


def _names(rng: np.random.Generator, female: np.ndarray) -> list[str]:
    n = len(female)
    surnames = rng.choice(len(catalog.SURNAMES), size=n, p=_SURNAME_W)
    two = rng.random(n) < 0.6
    fem, male, neu = catalog.GIVEN_FEMALE, catalog.GIVEN_MALE, catalog.GIVEN_NEUTRAL
    a = rng.integers(0, 10_000, size=n)
    b = rng.integers(0, 10_000, size=n)
    out = []
    for i in range(n):
        pool = fem if female[i] else male
        first = (neu if two[i] and a[i] % 3 == 0 else pool)
        given = first[a[i] % len(first)] + (pool[b[i] % len(pool)] if two[i] else "")
        out.append(catalog.SURNAMES[surnames[i]] + given)
    return out


def _local_hours(rng: np.random.Generator, t: np.ndarray, limit: float) -> np.ndarray:
    """Move each time to a realistic hour of its day (evenings busiest), not past ``limit``."""
    hours = rng.choice(24, size=len(t), p=_ORDER_HOURS) + rng.random(len(t))
    out = np.floor(t) + hours / 24.0
    late = out >= limit
    out[late] = limit - rng.random(int(late.sum())) * 0.02
    return out


def generate_chunk(ctx: Context, rng: np.random.Generator, chunk_no: int, lo: int, hi: int,
                   next_shadow_id: int) -> Chunk:
    """Everything about people ``lo..hi-1`` (global person indices)."""
    cal, pop = ctx.cal, ctx.pop
    n = hi - lo
    pid = np.arange(lo, hi)
    cid = FIRST_PERSON_ID + pid
    t_now = cal.t_now
    acq = pop.acq_t[lo:hi]
    chan = pop.channel[lo:hi]
    out = Chunk()

    # -- profile --------------------------------------------------------------------------
    g_roll = rng.random(n)
    gender = np.where(g_roll < 0.66, 0, np.where(g_roll < 0.97, 1, 2))  # female, male, unknown
    female = gender == 0
    age = np.clip(rng.normal(34, 8.5, n), 19, 68)
    has_birthday = rng.random(n) < 0.9
    city = rng.choice(len(catalog.CITIES), size=n, p=_CITY_W)
    main = np.where(
        female,
        rng.choice(len(_P), size=n, p=_W_FEMALE / _W_FEMALE.sum()),
        rng.choice(len(_P), size=n, p=_W_MALE / _W_MALE.sum()),
    )
    never_buys = rng.random(n) < np.array(catalog.CHANNEL_NEVER_BUYS)[chan]
    member = ~(never_buys & (rng.random(n) < 0.7))
    out.members = member

    # -- channels and identities ------------------------------------------------------------
    wecom_p = np.select([chan == catalog.WECOM_CHANNEL, chan == catalog.STORE_CHANNEL],
                        [1.0, 0.85], 0.22)
    has_wecom = rng.random(n) < wecom_p
    openid_p = np.select(
        [np.isin(chan, [0, catalog.LIVE_CHANNEL, catalog.REFERRAL_CHANNEL]),
         chan == catalog.WECOM_CHANNEL, chan == catalog.STORE_CHANNEL],
        [1.0, 0.6, 0.5], 0.3)
    has_openid = rng.random(n) < openid_p
    has_openid |= ~member & ~has_wecom
    has_app = (chan == catalog.APP_CHANNEL) | (member & (rng.random(n) < 0.16))
    has_unionid = (has_openid & (rng.random(n) < 0.75)) | (has_wecom & (rng.random(n) < 0.5))
    has_email = member & (rng.random(n) < 0.06)
    phone_verified = rng.random(n) < 0.88
    # Some buyers were first a WeCom contact of an advisor, known only by that id; an event
    # carrying both ids links them later (through the real ingest, which merges).
    linkable = member & has_openid & ~has_wecom & ~never_buys & np.isin(
        chan, [0, catalog.LIVE_CHANNEL, catalog.REFERRAL_CHANNEL])
    shadow = linkable & (rng.random(n) < LINK_SHARE / 0.55)

    first_buy = acq + np.where(np.isin(chan, [catalog.WECOM_CHANNEL]),
                               rng.exponential(9.0, n), 0.0)
    wecom_t = np.where(chan == catalog.WECOM_CHANNEL, acq,
                       np.where(chan == catalog.STORE_CHANNEL, acq + 0.02,
                                first_buy + rng.exponential(40.0, n)))
    shadow_t = acq + rng.random(n) * np.minimum(120.0, t_now - acq)
    wecom_t = np.where(shadow, shadow_t, wecom_t)
    has_wecom |= shadow
    has_wecom &= wecom_t < t_now
    advisor_idx = rng.integers(0, len(ctx.advisors), size=n)

    # -- purchases --------------------------------------------------------------------------
    g = rng.gamma(1.6, 1.0 / 1.6, n) * np.array(catalog.CHANNEL_RATE)[chan] * 0.55
    lam = g / _CYCLE[main]
    mean_p = np.array(catalog.CHANNEL_DROPOUT)[chan] * np.where(
        has_wecom, ctx.advisor_quality[advisor_idx], 1.0)
    mean_p = np.clip(mean_p, 0.03, 0.9)
    p_drop = rng.beta(2.0, 2.0 * (1 - mean_p) / mean_p)
    z = rng.gamma(4.0, 0.25, n)

    o_cust: list[np.ndarray] = []
    o_t: list[np.ndarray] = []
    active = ~never_buys & (first_buy < t_now)
    t = first_buy.copy()
    u = cal.op(t)
    reactivated = np.zeros(n, dtype=bool)
    while active.any():
        idx = np.flatnonzero(active)
        o_cust.append(idx)
        o_t.append(t[idx])
        drop = rng.random(len(idx)) < p_drop[idx]
        back = drop & ~reactivated[idx] & (rng.random(len(idx)) < 0.1)
        reactivated[idx[back]] = True
        active[idx[drop & ~back]] = False
        gap = rng.gamma(2.0, 0.5 / lam[idx]) + np.where(back, rng.uniform(150, 330, len(idx)), 0)
        u[idx] += gap
        t[idx] = cal.calendar_time(u[idx])
        active[idx[t[idx] >= t_now]] = False
    oc = np.concatenate(o_cust) if o_cust else np.zeros(0, dtype=np.int64)
    ot = np.concatenate(o_t) if o_t else np.zeros(0)
    order = np.lexsort((ot, oc))
    oc, ot = oc[order], ot[order]
    ot = np.where(np.floor(ot) == np.floor(acq[oc]), np.maximum(ot, acq[oc]),
                  _local_hours(rng, ot, t_now))
    ot = np.minimum(np.maximum(ot, acq[oc]), t_now - _MINUTE)
    m = len(oc)
    oday = cal.day(ot)

    # Baskets: the main product mostly, sometimes something else, gifts before festivals.
    first_sku = np.where(rng.random(m) < 0.8, main[oc], rng.choice(len(_P), size=m, p=_BASKET_W))
    qty1 = 1 + rng.poisson(0.45 * z[oc])
    extra = np.where(rng.random(m) < np.minimum(0.6, 0.25 * z[oc]),
                     rng.choice(len(_P), size=m, p=_BASKET_W), -1)
    gift_roll = rng.random(m)
    extra = np.where(cal.spring_gift[oday] & (gift_roll < 0.3), catalog.SPRING_GIFT, extra)
    extra = np.where(cal.autumn_gift[oday] & (gift_roll < 0.25), catalog.AUTUMN_GIFT, extra)
    extra = np.where(extra == first_sku, -1, extra)
    qty2 = 1 + rng.poisson(0.3 * z[oc])
    gross = _PRICE[first_sku] * qty1 + np.where(extra >= 0, _PRICE[np.maximum(extra, 0)] * qty2,
                                                0.0)
    camp = cal.campaign[oday]
    first_order = np.concatenate([[True], oc[1:] != oc[:-1]]) if m else np.zeros(0, dtype=bool)
    coupon_idx = np.where(camp >= 0, camp, np.where(first_order, 4, 5))
    use_coupon = rng.random(m) < np.where(camp >= 0, 0.6, np.where(first_order, 0.4, 0.06))
    discount = np.where(use_coupon, np.where(camp >= 0, 0.12 * gross, 20.0), 0.0)
    amount = np.round(np.maximum(gross - discount, 9.9), 2)
    age_days = t_now - ot
    s_roll = rng.random(m)
    status = np.where(s_roll < 0.035, 2, np.where(s_roll < 0.065, 3, 0))  # see _STATUS
    recent_fail = (age_days < 30) & (rng.random(m) < 0.015)
    status = np.where(status == 0, np.where(age_days < 2, 4, np.where(age_days < 6, 5, 0)), status)
    status = np.where(recent_fail, 1, status)
    o_chan = np.select(
        [has_app[oc] & (rng.random(m) < 0.6), has_wecom[oc] & (wecom_t[oc] <= ot)
         & (rng.random(m) < 0.25), (chan[oc] == catalog.STORE_CHANNEL) & (rng.random(m) < 0.4),
         (chan[oc] == catalog.LIVE_CHANNEL) & (rng.random(m) < 0.35)],
        [1, 2, 3, 4], 0)
    order_ids = [f"SO{chunk_no:05d}{k:06d}" for k in range(m)]
    completed = status == 0
    spend = np.bincount(oc, weights=np.where(completed | (status >= 4), amount, 0.0), minlength=n)
    n_orders = np.bincount(oc, minlength=n)
    last_order = np.full(n, -1.0)
    if m:
        np.maximum.at(last_order, oc, ot)

    o_times = cal.datetimes(ot)
    statuses = ("completed", "payment_failed", "refunded", "cancelled", "paid", "shipped")
    # Drawn from a child generator, so the rest of the chunk stays what it was.
    side = np.random.default_rng(rng.bit_generator.seed_seq.spawn(1)[0])  # type: ignore[attr-defined]
    purchase = (status == 0) | (status >= 4)
    has_gift = extra >= catalog.SPRING_GIFT
    for_other = purchase & (side.random(m) < np.where(has_gift, GIFT_RECIPIENT_SHARE,
                                                      OTHER_RECIPIENT_SHARE))
    other_idx = np.flatnonzero(for_other)
    other_names = _names(side, side.random(len(other_idx)) < 0.6)
    other_phones = phone_numbers(side.integers(10**7, 9 * 10**7, len(other_idx)),
                                 ctx.reserved_phones)
    recipient = {int(k): (other_names[j], other_phones[j]) for j, k in enumerate(other_idx)}
    steps = _status_steps(side, ot, status, t_now)
    step_times = [[t.replace(tzinfo=dt.UTC) for t in cal.datetimes(steps[s])]
                  for s in range(STATUS_STEPS)]
    moving = np.isin(status, (0, 2, 5)) & (age_days < HISTORY_DAYS)
    final = {0: "completed", 2: "refunded", 5: "shipped"}
    for k in range(m):
        items = [{"sku": _P[first_sku[k]].sku, "name": _P[first_sku[k]].name,
                  "quantity": int(qty1[k]), "price": _P[first_sku[k]].price}]
        if extra[k] >= 0:
            p = _P[extra[k]]
            items.append({"sku": p.sku, "name": p.name, "quantity": int(qty2[k]),
                          "price": p.price})
        name, phone = recipient.get(k, (None, None))
        row = {
            "id": order_ids[k], "customer_id": int(cid[oc[k]]), "ts": o_times[k],
            "amount": float(amount[k]), "currency": "CNY", "status": statuses[status[k]],
            "channel": catalog.ORDER_CHANNELS[o_chan[k]], "items": items,
            "created_at": o_times[k], "recipient_name": name, "recipient_phone": phone,
        }
        out.orders.append(row)
        if not moving[k]:
            continue
        # Stored as first paid; its later versions follow through ingest.
        row["status"] = "paid"
        path = ("shipped",) if status[k] == 5 else ("shipped", "delivered", final[int(status[k])])
        for s, to in enumerate(path):
            update = {key: row[key] for key in ("id", "amount", "currency", "channel", "items",
                                                 "recipient_name", "recipient_phone")}
            update.update(customer_id=external_id(int(cid[oc[k]])),
                          ts=o_times[k].replace(tzinfo=dt.UTC),
                          status=to, updated_at=step_times[s][k])
            out.status_updates[s].append({key: v for key, v in update.items()
                                          if v is not None})

    # -- events -------------------------------------------------------------------------------
    ev = _EventBuilder(cal, rng, cid)
    order_chan = [catalog.ORDER_CHANNELS[c] if c != 3 else "miniprogram" for c in o_chan]
    sel = np.flatnonzero(rng.random(m) < 0.55)
    ev.add(oc[sel], ot[sel] - rng.uniform(0.01, 2.0, len(sel)), "view_product",
           [order_chan[k] for k in sel], [{"sku": _P[first_sku[k]].sku} for k in sel])
    sel = np.flatnonzero((rng.random(m) < 0.3) & (o_chan != 3))
    ev.add(oc[sel], ot[sel] - rng.uniform(0.001, 0.3, len(sel)), "add_to_cart",
           [order_chan[k] for k in sel],
           [{"sku": _P[first_sku[k]].sku, "quantity": int(qty1[k])} for k in sel])
    sel = np.flatnonzero(use_coupon)
    coupons = catalog.CAMPAIGN_COUPONS
    ev.add(oc[sel], ot[sel], "coupon_used", [order_chan[k] for k in sel],
           [{"coupon": coupons[coupon_idx[k]], "order_id": order_ids[k],
             "discount": round(float(discount[k]), 2)} for k in sel])
    sel = sel[rng.random(len(sel)) < 0.7]
    ev.add(oc[sel], ot[sel] - rng.uniform(0.5, 10.0, len(sel)), "coupon_received",
           [order_chan[k] for k in sel], [{"coupon": coupons[coupon_idx[k]]} for k in sel])
    reasons = catalog.PAYMENT_FAILURES
    fail_attempt = completed & (rng.random(m) < 0.015)
    sel = np.flatnonzero((status == 1) | fail_attempt)
    reason = rng.integers(0, len(reasons), m)
    ev.add(oc[sel], ot[sel] - np.where(status[sel] == 1, 0.0, rng.uniform(1, 20, len(sel))
                                       * _MINUTE), "payment_failed",
           [order_chan[k] for k in sel],
           [{"order_id": order_ids[k], "reason": reasons[reason[k]],
             "amount": float(amount[k])} for k in sel])
    shipped = (status == 0) | (status == 2) | (status == 5)
    delayed = shipped & (o_chan != 3) & (rng.random(m) < 0.03)
    sel = np.flatnonzero(delayed)
    carrier = rng.integers(0, len(catalog.CARRIERS), m)
    parcel = rng.integers(10**11, 10**12, m)
    late = rng.integers(1, 6, m)
    ev.add(oc[sel], ot[sel] + rng.uniform(2, 4, len(sel)), "delivery_delayed", "miniprogram",
           [{"order_id": order_ids[k], "carrier": catalog.CARRIERS[carrier[k]][0],
             "parcel_no": f"{catalog.CARRIERS[carrier[k]][1]}{parcel[k]}",
             "days_late": int(late[k])} for k in sel])
    # After-sales: every refund was a return request; other orders sometimes need help.
    kinds = catalog.AFTER_SALES_KINDS
    kind = np.where(status == 2, 0, -1)
    other = (completed | (status == 5)) & (rng.random(m) < np.where(delayed, 0.3, 0.025))
    kind = np.where(other, rng.choice(4, size=m, p=[0.0, 0.3, 0.25, 0.45]), kind)
    kind = np.where(other & delayed, 2, kind)
    sel = np.flatnonzero(kind >= 0)
    text_pick = rng.integers(0, 100, m)
    ev.add(oc[sel], ot[sel] + rng.uniform(2, 10, len(sel)), "after_sales_request", "wecom",
           [{"order_id": order_ids[k], "kind": kinds[kind[k]],
             "text": _fill(catalog.AFTER_SALES[kinds[kind[k]]], text_pick[k], first_sku[k])}
            for k in sel])
    complaint = kind == 2
    # Feedback: unhappy moments ask for it more often; most comments are positive.
    fb = (completed | (status == 5)) & (
        rng.random(m) < np.where(delayed, 0.4, np.where(complaint, 0.5, 0.07)))
    topic = rng.integers(0, len(catalog.FEEDBACK_TOPICS), m)
    topic = np.where(delayed, 1, np.where(complaint, 3, topic))
    loyal = n_orders[oc] >= 4
    positive = rng.random(m) < np.where(loyal, 0.85, 0.72)
    positive &= ~delayed & ~complaint
    neutral = ~positive & ~delayed & ~complaint & (rng.random(m) < 0.35)
    score = np.where(positive, rng.integers(4, 6, m), np.where(neutral, 3,
                                                                  rng.integers(1, 3, m)))
    sel = np.flatnonzero(fb)
    ev.add(oc[sel], ot[sel] + rng.uniform(3, 12, len(sel)), "feedback",
           [order_chan[k] for k in sel],
           [{"order_id": order_ids[k], "sku": _P[first_sku[k]].sku,
             "text": _feedback(topic[k], positive[k] or neutral[k], text_pick[k], first_sku[k]),
             "score": int(score[k])} for k in sel])
    sel = np.flatnonzero(completed & member[oc] & (rng.random(m) < 0.35))
    ev.add(oc[sel], ot[sel] + 7.0, "points_earned", [order_chan[k] for k in sel],
           [{"points": int(amount[k]), "order_id": order_ids[k]} for k in sel])
    unhappy = np.zeros(n, dtype=bool)
    unhappy[oc[delayed | complaint]] = True

    # Per-person events.
    life_end = np.minimum(np.where(last_order >= 0, last_order + 25.0, acq + 60.0), t_now)
    life_len = np.maximum(life_end - acq, 0.01)
    sel = np.flatnonzero(has_wecom)
    sources = ("扫码添加", "门店导购", "包裹卡", "直播间", "朋友推荐")
    src = rng.integers(0, len(sources), n)
    ev.add(sel, wecom_t[sel], "add_wecom_contact", "wecom",
           [{"advisor_id": ctx.advisors[advisor_idx[i]][0],
             "advisor": ctx.advisors[advisor_idx[i]][1], "source": sources[src[i]]}
            for i in sel], skip=shadow)
    grp = rng.integers(0, len(catalog.GROUPS), n)
    sel = np.flatnonzero(has_wecom & (rng.random(n) < 0.45) & ~shadow)
    ev.add(sel, wecom_t[sel] + rng.exponential(3.0, len(sel)), "join_group", "wecom",
           [{"group": catalog.GROUPS[grp[i]]} for i in sel])
    logins = np.where(has_app, rng.poisson(2.5, n), 0)
    rep = np.repeat(np.arange(n), logins)
    ev.add(rep, acq[rep] + rng.random(len(rep)) * life_len[rep], "app_login", "app",
           [{} for _ in rep])
    views = np.where(chan == catalog.LIVE_CHANNEL, 1 + rng.poisson(1.2, n),
                     (rng.random(n) < 0.08).astype(np.int64))
    rep = np.repeat(np.arange(n), views)
    minutes = rng.integers(2, 90, len(rep))
    ev.add(rep, acq[rep] + rng.random(len(rep)) * np.minimum(life_len[rep], 30.0),
           "live_stream_view", "livestream",
           [{"room": "禾源健康直播间", "minutes": int(x)} for x in minutes])
    shares = np.where(pop.influence[lo:hi] > 0,
                      rng.poisson(np.minimum(6.0, 0.6 * pop.influence[lo:hi] + 0.3)), 0)
    rep = np.repeat(np.arange(n), shares)
    ev.add(rep, acq[rep] + rng.random(len(rep)) * life_len[rep], "share_product", "miniprogram",
           [{"sku": _P[main[i]].sku} for i in rep])
    buyers = np.flatnonzero((n_orders > 0) & (rng.random(n) < 0.06))
    nps = np.clip(np.round(rng.normal(7.2 + 0.25 * np.minimum(n_orders, 10)
                                      - 3.5 * unhappy, 1.8)), 0, 10).astype(int)
    ev.add(buyers, acq[buyers] + rng.random(len(buyers)) * life_len[buyers], "survey_response",
           "miniprogram", [{"survey": "nps", "score": int(nps[i])} for i in buyers])
    sel = np.flatnonzero(member & (n_orders >= 3) & (rng.random(n) < 0.2))
    pts = rng.choice([500, 1000, 2000], size=n)
    ev.add(sel, acq[sel] + rng.random(len(sel)) * life_len[sel], "points_redeemed",
           "miniprogram", [{"points": int(pts[i]), "reward": "燕麦杯兑换券"} for i in sel])
    # Invitations: the referrer's event, just before the friend arrives.
    ref = pop.referrer[lo:hi]
    sel = np.flatnonzero(ref > 0)
    ev.add_for(ref[sel], acq[sel] - rng.uniform(0.05, 3.0, len(sel)), "invite_friend",
               "miniprogram", [{"invitee_id": int(cid[i]), "reward_points": 200} for i in sel])
    ref_at = cal.datetimes(acq[sel])
    for k, i in enumerate(sel.tolist()):
        out.referrals.append({"referrer_id": int(ref[i]), "referred_id": int(cid[i]),
                              "at": ref_at[k], "channel": "invite_friend",
                              "created_at": ref_at[k]})

    # -- rows --------------------------------------------------------------------------------
    first_seen = acq.copy()
    ev.finish(out, chunk_no, t_now, first_seen)
    tiers = catalog.TIERS
    seen_dt = cal.datetimes(first_seen)
    last_dt = cal.datetimes(np.maximum(life_end, first_seen))
    today = cal.now.date()
    points = (spend * 0.6).astype(int)
    cities = [c for c, _ in catalog.CITIES]
    names = _names(rng, female)
    genders = ("female", "male", "unknown")
    bday_offset = rng.integers(0, 365, n)
    for i in range(n):
        tier = next(label for floor, label in tiers if spend[i] >= floor) if member[i] else None
        birthday = (dt.date(today.year - int(age[i]), 1, 1) + dt.timedelta(days=int(bday_offset[i]))
                    if has_birthday[i] else None)
        attrs: dict[str, Any] = {"preferred_sku": _P[main[i]].sku}
        if member[i]:
            attrs["points"] = int(points[i])
            # a date attribute, as brands keep them (the rule language's attr_days)
            attrs["member_since"] = seen_dt[i].date().isoformat()
        out.customers.append({
            "id": int(cid[i]), "name": names[i], "gender": genders[gender[i]],
            "birthday": birthday, "city": cities[city[i]], "tier": tier,
            "acquisition_channel": catalog.ACQUISITION_CHANNELS[chan[i]],
            "advisor_id": ctx.advisors[advisor_idx[i]][0] if has_wecom[i] and not shadow[i]
            else None,
            "attributes": attrs, "status": "active", "merged_into_id": None,
            "created_at": seen_dt[i], "updated_at": last_dt[i],
        })

    phones = phone_numbers(pid, ctx.reserved_phones)
    openids = tokens(rng, n, 25, "oHY")
    unionids = tokens(rng, n, 26, "oU")
    wecoms = tokens(rng, n, 30, "wm")
    mails = tokens(rng, n, 6, "")
    domain = rng.integers(0, len(catalog.EMAIL_DOMAINS), n)
    ids = out.identities
    for i in range(n):
        c, at = int(cid[i]), seen_dt[i]
        if member[i]:
            ids.append(_ident(c, "external_id", external_id(c), True, at))
            ids.append(_ident(c, "phone", phones[i], bool(phone_verified[i]), at))
        if has_openid[i]:
            ids.append(_ident(c, "wechat_openid", openids[i], False, at))
        if has_unionid[i]:
            ids.append(_ident(c, "wechat_unionid", unionids[i], False, at))
        if has_wecom[i] and not shadow[i]:
            ids.append(_ident(c, "wecom_external_userid", wecoms[i], False, at))
        if has_app[i]:
            ids.append(_ident(c, "app_user_id", app_user_id(c), True, at))
        if has_email[i]:
            mail = f"{mails[i].lower().replace('-', 'x').replace('_', 'y')}{c}"
            ids.append(_ident(c, "email", f"{mail}@{catalog.EMAIL_DOMAINS[domain[i]]}",
                              False, at))

    # The WeCom-only twins of linkable buyers, and the event that will link them.
    shadow_idx = np.flatnonzero(shadow & has_wecom)
    link_t = np.minimum(wecom_t[shadow_idx] + rng.exponential(20.0, len(shadow_idx)),
                        t_now - 0.05)
    wt = cal.datetimes(wecom_t[shadow_idx])
    lt = cal.datetimes(link_t)
    suffix = rng.integers(0, len(catalog.NICKNAME_SUFFIXES), n)
    for k, i in enumerate(shadow_idx.tolist()):
        sid = next_shadow_id + k
        adv_id, adv_name = ctx.advisors[advisor_idx[i]]
        out.customers.append({
            "id": sid, "name": names[i][1:] + catalog.NICKNAME_SUFFIXES[suffix[i]],
            "gender": genders[gender[i]], "birthday": None, "city": None, "tier": None,
            "acquisition_channel": "企业微信", "advisor_id": adv_id,
            "attributes": {"wechat_nickname": True}, "status": "active",
            "merged_into_id": None, "created_at": wt[k], "updated_at": wt[k],
        })
        ids.append(_ident(sid, "wecom_external_userid", wecoms[i], False, wt[k]))
        out.events.append({
            "id": f"ev{chunk_no:05d}w{k:05d}", "customer_id": sid, "type": "add_wecom_contact",
            "ts": wt[k], "channel": "wecom",
            "properties": {"advisor_id": adv_id, "advisor": adv_name, "source": "扫码添加"},
            "created_at": wt[k],
        })
        out.links.append({
            "id": f"link{chunk_no:05d}{k:05d}", "type": "member_bind", "ts": lt[k],
            "channel": "wecom",
            "identities": [{"kind": "wecom_external_userid", "value": wecoms[i]},
                           {"kind": "phone", "value": phones[i], "verified": True}],
            "properties": {"via": "企业微信侧边栏会员绑定", "advisor_id": adv_id},
        })

    gift = np.zeros(n, dtype=bool)
    gift[oc[extra >= catalog.SPRING_GIFT]] = True
    _consents(out, rng, cal, cid, member, has_wecom & ~shadow, has_app, acq, wecom_t)
    _tags(out, rng, ctx, cid, main, female, age, tier_of=[c["tier"] for c in out.customers[:n]],
          unhappy_recent=unhappy & (last_order > t_now - 30),
          gift=gift,
          coupon_share=np.bincount(oc, weights=use_coupon, minlength=n) / np.maximum(n_orders, 1),
          n_orders=n_orders, seen=seen_dt)
    return out


def _status_steps(rng: np.random.Generator, ot: np.ndarray, status: np.ndarray,
                  t_now: float) -> np.ndarray:
    """When each order was shipped, delivered and completed (or refunded), in days; each
    step before ``now`` and after the one before it."""
    m = len(ot)
    shipped = ot + rng.uniform(0.1, 1.2, m)
    delivered = shipped + rng.uniform(0.8, 3.0, m)
    last = delivered + np.where(status == 2, rng.uniform(1.0, 5.0, m), rng.uniform(3.0, 7.0, m))
    out = np.stack([shipped, delivered, last])
    for s in range(STATUS_STEPS):
        out[s] = np.minimum(out[s], t_now - (STATUS_STEPS - s) * _MINUTE)
    out = np.maximum.accumulate(np.maximum(out, ot + _MINUTE), axis=0)
    return out


def _ident(cid: int, kind: str, value: str, verified: bool, at: dt.datetime) -> dict[str, Any]:
    return {"customer_id": cid, "kind": kind, "value": value, "verified": verified,
            "created_at": at}


def _fill(options: tuple[str, ...], pick: int, sku: int) -> str:
    return options[pick % len(options)].replace("{p}", _P[sku].name.split(" ")[0])


def _feedback(topic: int, positive: bool, pick: int, sku: int) -> str:
    pos, neg = catalog.FEEDBACK[catalog.FEEDBACK_TOPICS[topic]]
    return _fill(pos if positive else neg, pick, sku)


class _EventBuilder:
    """Collects events as arrays per type and turns them into rows sorted by customer."""

    def __init__(self, cal: Calendar, rng: np.random.Generator, cid: np.ndarray):
        self.cal = cal
        self.rng = rng
        self.cid = cid
        self.parts: list[tuple[np.ndarray, np.ndarray, str, list[str] | str,
                               list[dict[str, Any]]]] = []

    def add(self, who: np.ndarray, t: np.ndarray, type_: str, channel: list[str] | str,
            props: list[dict[str, Any]], skip: np.ndarray | None = None) -> None:
        """Events of local people ``who``; ``skip`` marks people whose events are dropped."""
        if skip is not None:
            keep = ~skip[who]
            who, t = who[keep], t[keep]
            props = [p for p, k in zip(props, keep, strict=True) if k]
            if not isinstance(channel, str):
                channel = [c for c, k in zip(channel, keep, strict=True) if k]
        self.parts.append((self.cid[who], np.asarray(t, dtype=float), type_, channel, props))

    def add_for(self, customer_ids: np.ndarray, t: np.ndarray, type_: str, channel: str,
                props: list[dict[str, Any]]) -> None:
        """Events of customers given by id (e.g. a referrer in an earlier chunk)."""
        self.parts.append((customer_ids, np.asarray(t, dtype=float), type_, channel, props))

    def finish(self, out: Chunk, chunk_no: int, t_now: float, first_seen: np.ndarray) -> None:
        if not self.parts:
            return
        who = np.concatenate([p[0] for p in self.parts])
        t = np.concatenate([p[1] for p in self.parts])
        types = [p[2] for p in self.parts for _ in range(len(p[0]))]
        chans = [c for p in self.parts
                 for c in ([p[3]] * len(p[0]) if isinstance(p[3], str) else p[3])]
        props = [x for p in self.parts for x in p[4]]
        t = np.minimum(np.maximum(t, 0.0), t_now - _MINUTE * self.rng.uniform(1, 600, len(t)))
        local = who - self.cid[0]
        mine = (local >= 0) & (local < len(first_seen))
        li = np.where(mine, local, 0)
        np.minimum.at(first_seen, li[mine], t[mine])
        order = np.lexsort((t, who))
        times = self.cal.datetimes(t[order])
        for k, j in enumerate(order.tolist()):
            out.events.append({
                "id": f"ev{chunk_no:05d}{k:07d}", "customer_id": int(who[j]), "type": types[j],
                "ts": times[k], "channel": chans[j], "properties": props[j],
                "created_at": times[k],
            })


def _consents(out: Chunk, rng: np.random.Generator, cal: Calendar, cid: np.ndarray,
              member: np.ndarray, wecom: np.ndarray, app: np.ndarray, acq: np.ndarray,
              wecom_t: np.ndarray) -> None:
    t_now = cal.t_now
    specs = (("sms", member, acq, "小程序注册", 0.65), ("wecom", wecom, wecom_t, "企业微信", 0.8),
             ("app_push", app, acq, "App 授权", 0.55))
    for channel, has, start, source, p_marketing in specs:
        idx = np.flatnonzero(has)
        t = np.minimum(start[idx], t_now - _MINUTE)
        at = cal.datetimes(t)
        service = rng.random(len(idx)) < 0.97
        marketing = rng.random(len(idx)) < p_marketing
        withdrawn = marketing & (rng.random(len(idx)) < 0.1)
        w_t = cal.datetimes(t + rng.random(len(idx)) * (t_now - t))
        for k, i in enumerate(idx):
            c = int(cid[i])
            if service[k]:
                out.consents.append({"customer_id": c, "channel": channel, "purpose": "service",
                                     "granted": True, "at": at[k], "source": source,
                                     "created_at": at[k]})
            out.consents.append({"customer_id": c, "channel": channel, "purpose": "marketing",
                                 "granted": bool(marketing[k]), "at": at[k], "source": source,
                                 "created_at": at[k]})
            if withdrawn[k]:
                out.consents.append({"customer_id": c, "channel": channel,
                                     "purpose": "marketing", "granted": False, "at": w_t[k],
                                     "source": "用户退订", "created_at": w_t[k]})


def _tags(out: Chunk, rng: np.random.Generator, ctx: Context, cid: np.ndarray,
          main: np.ndarray, female: np.ndarray, age: np.ndarray, *, tier_of: list[str | None],
          unhappy_recent: np.ndarray, gift: np.ndarray, coupon_share: np.ndarray,
          n_orders: np.ndarray, seen: list[dt.datetime]) -> None:
    n = len(cid)
    cat = np.array(_CAT)[main]
    r = rng.random((8, n))
    tier = np.array([t or "" for t in tier_of])
    rules = {
        "健身人群": r[0] < np.where(np.isin(cat, ["protein", "meal"]), 0.5, 0.03),
        "控糖": r[1] < np.where(np.isin(cat, ["snacks", "seeds"]), 0.35, 0.03),
        "宝妈": female & (age >= 26) & (age <= 40) & (r[2] < 0.18),
        "素食": r[3] < 0.04,
        "高价值": r[4] < np.select([tier == "黑金", tier == "金卡"], [0.8, 0.3], 0.0),
        "投诉中": unhappy_recent & (r[5] < 0.8),
        "送礼需求": gift & (r[6] < 0.6),
        "价格敏感": (n_orders >= 2) & (coupon_share > 0.5) & (r[7] < 0.5),
    }
    for name, mask in rules.items():
        tag_id = ctx.tag_ids[name]
        for i in np.flatnonzero(mask):
            out.tags.append({"customer_id": int(cid[i]), "tag_id": tag_id, "source": "manual",
                             "created_at": seen[i]})
