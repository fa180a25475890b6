"""The demo brand's growth through fans, on top of the generated history: the points ledger
opened from the members' imported balances, referrals through personal invite codes,
channel codes (渠道活码) with their contacts, a rewards catalogue with redemptions, and
tracked content in the playbooks' messages with clicks and the orders that followed.

The story: siyu's ledger and codes went live :data:`GO_LIVE_DAYS` ago. That day every
member's imported ``points`` figure opened their ledger (source ``opening``, as migration
0010 does). Since then

* the latest invitations of the history (the ``referrals`` rows the generator wrote) came
  through the referrer's personal code: each friend is attributed to it when they arrived,
  and the referral settles as the service settles it — qualified on a first paid order
  within the window (both sides get points through the ledger), expired when it came
  later, pending without one, refused for a ring;
* one member opened their own invite link: refused with the reason ``self``;
* three channel codes — a store, a campaign, an advisor — attributed the contacts who
  arrived through them;
* members redeemed rewards of the catalogue (coupons, trial sizes, gifts); the limited
  thermos sold out, so later tries were refused with nothing written;
* three content items rode in three playbooks' messages (a product card in 复购提醒, an
  article in 企微添加欢迎语, the points page of the mini program in 会员生日关怀): each
  recipient got a link of their own; some clicked (``content_clicked`` on their timeline),
  more often those who then bought, so the items show conversions; the mini-program page
  has anonymous clicks too (shared in groups).

Everything goes through the domains' service functions, so the rows are the ones the live
system writes. The first :data:`SHOWCASE` customers keep their stories as the demo tells
them. Seeding takes a few seconds at most (tests/demo/test_growth_demo measures it).
"""

from __future__ import annotations

import datetime as dt
import random
import time
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from siyu.demo.playbooks import HISTORY_DAYS as PLAYBOOK_DAYS
from siyu.errors import SiyuError

GO_LIVE_DAYS = PLAYBOOK_DAYS
"""The ledger went live with the playbooks (their history starts then)."""
SHOWCASE = 30
REFERRALS = 150
"""At most this many of the latest invitations since go-live go through personal codes."""
CHANNEL_CONTACTS = 30
"""Contacts attributed to each channel code (the latest who arrived through it)."""
REDEMPTIONS = 100
LINKS_PER_ITEM = 150
# (name, WeCom state, acquisition channel of the contacts it brought; None: the first
# advisor's own WeCom contacts)
CHANNEL_CODES: tuple[tuple[str, str, str | None], ...] = (
    ("静安嘉里中心店 门店活码", "store-jingan", "门店"),
    ("新品试吃节 直播间活码", "campaign-tasting", "直播"),
    ("顾问陈静 1V1 活码", "advisor-chenjing", None),
)
# (name, points, stock (None: unlimited), how often members pick it)
REWARDS: tuple[tuple[str, int, int | None, float], ...] = (
    ("满 199 减 30 优惠券", 800, None, 4.0),
    ("燕麦杯兑换券", 500, 300, 5.0),
    ("益生菌冻干粉 7 日试用装", 1200, 80, 2.0),
    ("胶原蛋白肽饮 体验装 2 瓶", 1500, 50, 1.5),
    ("禾源定制保温杯（限量）", 1000, 3, 3.0),
    ("中秋坚果臻选礼盒", 6000, 10, 0.5),
)
# (name, kind, url, sku, playbook whose first send carries it)
CONTENT: tuple[tuple[str, str, str, str | None, str], ...] = (
    ("健身蛋白代餐组合装 复购专享", "product", "/pages/goods/detail?sku=HY-BOX-02", "HY-BOX-02",
     "复购提醒"),
    ("新人必读：7 天健康早餐计划", "article",
     "https://heyuan.example.com/articles/7-day-breakfast", None, "企微添加欢迎语"),
    ("会员中心 · 积分兑换", "miniprogram", "/pages/member/points", None, "会员生日关怀"),
)
ANONYMOUS_CLICKS = 60
"""Clicks on the mini-program page's anonymous link (shared in groups)."""


@dataclass
class GrowthSeed:
    opened: int = 0
    referrals: dict[str, int] = field(default_factory=dict)
    channel_contacts: int = 0
    redemptions: int = 0
    refused_redemptions: int = 0
    links: int = 0
    clicks: int = 0
    seconds: float = 0.0


def seed_demo_growth(session: Session, *, now: dt.datetime, seed: int = 42) -> GrowthSeed:
    """Seed the demo's codes, referrals, rewards and content (see the module docstring)."""
    from siyu.points import service as points

    started = time.perf_counter()
    out = GrowthSeed()
    rng = random.Random(seed * 53 + 11)
    go_live = now - dt.timedelta(days=GO_LIVE_DAYS)
    out.opened = points.open_balances(session, at=go_live)
    _referrals(session, rng, now, go_live, out)
    _channel_codes(session, rng, now, go_live, out)
    _rewards(session, rng, now, go_live, out)
    _content(session, rng, now, out)
    session.flush()
    out.seconds = time.perf_counter() - started
    return out


def _first_purchases(session: Session, customer_ids: list[int]) -> dict[int, dt.datetime]:
    from siyu.events.models import Order
    from siyu.events.purchases import is_purchase

    out: dict[int, dt.datetime] = {}
    for start in range(0, len(customer_ids), 500):
        out.update({int(c): ts for c, ts in session.execute(
            select(Order.customer_id, func.min(Order.ts)).where(
                Order.customer_id.in_(customer_ids[start:start + 500]), is_purchase())
            .group_by(Order.customer_id))})
    return out


def _settled_at(first: dt.datetime | None, at: dt.datetime, now: dt.datetime,
                rng: random.Random) -> dt.datetime:
    """When the service settled an attribution: just after the first paid order arrived."""
    moment = max(first or at, at) + dt.timedelta(minutes=rng.uniform(1, 30))
    return min(moment, now)


def _referrals(session: Session, rng: random.Random, now: dt.datetime, go_live: dt.datetime,
               out: GrowthSeed) -> None:
    from sqlalchemy.orm import aliased

    from siyu.customers.models import Customer, Referral
    from siyu.referrals import service as referrals

    referrer, referred = aliased(Customer), aliased(Customer)
    rows = session.execute(
        select(Referral.referrer_id, Referral.referred_id, Referral.at)
        .join(referrer, referrer.id == Referral.referrer_id)
        .join(referred, referred.id == Referral.referred_id)
        .where(Referral.at >= go_live, Referral.at <= now, referrer.status == "active",
               referred.status == "active", Referral.referrer_id > SHOWCASE,
               Referral.referred_id > SHOWCASE)
        .order_by(Referral.at.desc(), Referral.id.desc()).limit(REFERRALS)).all()
    firsts = _first_purchases(session, sorted({int(r[1]) for r in rows}))
    codes: dict[int, str] = {}
    brought: dict[int, int] = {}
    for referrer_id, referred_id, at in sorted(rows, key=lambda r: (r[2], r[1])):
        if referrer_id not in codes:
            codes[referrer_id] = referrals.personal_code(session, referrer_id).code
        row = referrals.attribute(session, referred_id, code=codes[referrer_id], at=at,
                                  now=_settled_at(firsts.get(referred_id), at, now, rng))
        out.referrals[row.status] = out.referrals.get(row.status, 0) + 1
        brought[referrer_id] = brought.get(referrer_id, 0) + 1
    # The busiest referrer who was never invited themselves tries their own link.
    invited = set(session.scalars(select(Referral.referred_id)))
    for referrer_id, _n in sorted(brought.items(), key=lambda kv: (-kv[1], kv[0])):
        if referrer_id in invited:
            continue
        row = referrals.attribute(session, referrer_id, code=codes[referrer_id],
                                  at=now - dt.timedelta(days=rng.uniform(3, 20)), now=now)
        out.referrals[row.status] = out.referrals.get(row.status, 0) + 1
        break


def _channel_codes(session: Session, rng: random.Random, now: dt.datetime,
                   go_live: dt.datetime, out: GrowthSeed) -> None:
    from siyu.auth.models import User
    from siyu.customers.models import Customer, Identity, Referral
    from siyu.referrals import service as referrals
    from siyu.referrals.models import ReferralAttribution

    first_advisor = session.scalar(select(User.id).where(
        User.role == "agent", User.is_active.is_(True)).order_by(User.id).limit(1))
    taken = select(ReferralAttribution.referred_id)
    invited = select(Referral.referred_id)
    # A channel code is a WeCom 联系我 QR code: what it brings are WeCom contacts.
    contacts = select(Identity.customer_id).where(Identity.kind == "wecom_external_userid")
    for name, state, channel in CHANNEL_CODES:
        kind = {"门店": "store", "直播": "campaign"}.get(channel or "", "advisor")
        if kind == "advisor" and first_advisor is None:
            kind = "campaign"
        code = referrals.create_channel_code(
            session, name, state=state, channel=kind,
            advisor_id=first_advisor if kind == "advisor" else None)
        who = (Customer.acquisition_channel == channel if channel is not None else
               (Customer.advisor_id == first_advisor)
               & (Customer.acquisition_channel == "企业微信"))
        rows = session.execute(select(Customer.id, Customer.created_at).where(
            who, Customer.status == "active", Customer.id > SHOWCASE,
            Customer.created_at >= go_live, Customer.created_at <= now,
            Customer.id.not_in(taken), Customer.id.not_in(invited), Customer.id.in_(contacts))
            .order_by(Customer.created_at.desc(), Customer.id.desc())
            .limit(CHANNEL_CONTACTS)).all()
        firsts = _first_purchases(session, [int(r[0]) for r in rows])
        for customer_id, created in sorted(rows, key=lambda r: (r[1], r[0])):
            row = referrals.attribute(session, customer_id, state=code.state, at=created,
                                      now=_settled_at(firsts.get(customer_id), created, now,
                                                      rng))
            out.referrals[row.status] = out.referrals.get(row.status, 0) + 1
            out.channel_contacts += 1


def _rewards(session: Session, rng: random.Random, now: dt.datetime, go_live: dt.datetime,
             out: GrowthSeed) -> None:
    from siyu.points import service as points
    from siyu.points.models import PointsEntry

    for name, cost, stock, _weight in REWARDS:
        points.add_reward(session, name, cost, stock=stock)
    cheapest = min(cost for _n, cost, _s, _w in REWARDS)
    pool = session.execute(
        select(PointsEntry.customer_id, func.sum(PointsEntry.amount))
        .where(PointsEntry.customer_id > SHOWCASE).group_by(PointsEntry.customer_id)
        .having(func.sum(PointsEntry.amount) >= cheapest)
        .order_by(PointsEntry.customer_id)).all()
    chosen = rng.sample(pool, min(REDEMPTIONS, len(pool)))
    moments = sorted(go_live + dt.timedelta(days=rng.uniform(1, GO_LIVE_DAYS - 0.1))
                     for _ in chosen)
    for n, ((customer_id, have), at) in enumerate(zip(chosen, moments, strict=True)):
        # A member picks among what their points buy (the sold-out thermos included: the
        # shop still lists it, and the redemption is refused).
        within = [r for r in REWARDS if r[1] <= have]
        name = rng.choices([r[0] for r in within], weights=[r[3] for r in within])[0]
        try:
            points.redeem(session, customer_id, name, key=f"demo:{customer_id}:{n}", at=at)
            out.redemptions += 1
        except SiyuError:  # sold out: refused, nothing written
            out.refused_redemptions += 1


def _content(session: Session, rng: random.Random, now: dt.datetime, out: GrowthSeed) -> None:
    from siyu.channels.models import Delivery as ChannelDelivery
    from siyu.content import service as content
    from siyu.events.models import Order
    from siyu.events.purchases import is_purchase
    from siyu.playbooks.models import Playbook

    window = dt.timedelta(days=content.CONVERSION_DAYS)
    for name, kind, url, sku, playbook in CONTENT:
        item = content.create_item(session, name, kind, url, sku=sku)
        pb_id = session.scalar(select(Playbook.id).where(Playbook.name == playbook))
        if pb_id is None:
            continue
        sends = session.execute(
            select(ChannelDelivery.key, ChannelDelivery.customer_id, ChannelDelivery.created_at)
            .where(ChannelDelivery.source == f"playbook:{pb_id}",
                   ChannelDelivery.state == "sent", ChannelDelivery.customer_id > SHOWCASE)
            .order_by(ChannelDelivery.created_at.desc(), ChannelDelivery.id.desc())
            .limit(LINKS_PER_ITEM * 2)).all()
        # One send per customer (their latest).
        first: dict[int, tuple[str, dt.datetime]] = {}
        for key, customer_id, at in sends:
            if key and customer_id is not None and customer_id not in first:
                first[int(customer_id)] = (key, at)
        picked = sorted(first.items(), key=lambda kv: (kv[1][1], kv[0]))[-LINKS_PER_ITEM:]
        if not picked:
            continue
        earliest = min(at for _c, (_k, at) in picked)
        bought: dict[int, list[dt.datetime]] = {}
        for start in range(0, len(picked), 500):
            ids = [c for c, _ in picked[start:start + 500]]
            for cid, ts in session.execute(select(Order.customer_id, Order.ts).where(
                    Order.customer_id.in_(ids), is_purchase(), Order.ts >= earliest)):
                bought.setdefault(int(cid), []).append(ts)
        for customer_id, (key, at) in picked:
            link = content.link_for(session, item.name, customer_id=customer_id,
                                    delivery_key=key, now=at)
            out.links += 1
            after = sorted(ts for ts in bought.get(customer_id, []) if at < ts <= at + window)
            # Those who bought afterwards mostly clicked first; others now and then.
            if rng.random() >= (0.75 if after else 0.22):
                continue
            latest = min(after[0] if after else at + dt.timedelta(hours=8), now)
            moment = at + (latest - at) * rng.uniform(0.05, 0.9)
            token = link.rsplit("/", 1)[1]
            content.click(session, token, now=moment)
            out.clicks += 1
            if rng.random() < 0.15:  # opened it again later
                content.click(session, token, now=min(moment + dt.timedelta(
                    hours=rng.uniform(1, 30)), now))
                out.clicks += 1
        if kind == "miniprogram":
            for _ in range(ANONYMOUS_CLICKS):
                content.anonymous_click(session, item.code, now=now - dt.timedelta(
                    days=rng.uniform(0, 60)))
                out.clicks += 1
