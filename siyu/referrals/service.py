"""Create codes, attribute new customers, qualify referrals. Functions take the caller's
session and never commit.

A referral qualifies when the referred customer's first purchase (:mod:`siyu.events.purchases`)
lands within ``window_days`` (``SIYU_REFERRAL_WINDOW_DAYS``) of the attribution; then both
sides get points through the ledger with keys ``<attribution id>:referrer`` /
``:referred`` under source ``referral``, so a retried order event never rewards twice.
Self-referrals and rings (the sharer and the new customer share a phone, a device id or an
order address) are refused with the reason.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.auth.models import User
from siyu.config import Settings
from siyu.customers.identity import normalize_identity
from siyu.customers.models import Customer, Identity, Referral
from siyu.db import utcnow
from siyu.errors import InvalidInput, NotFound
from siyu.events.models import Order
from siyu.events.purchases import is_purchase
from siyu.points import service as points
from siyu.referrals.models import ReferralAttribution, ReferralCode

ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
"""Code characters without look-alikes (0/O, 1/I)."""
CODE_LENGTH = 8
"""32**8 ≈ 1.1e12 codes: not guessable by trying a few."""
RING_KINDS = ("phone", "device_id", "address")
# A first purchase this long before the attribution means the customer was no new customer
# (a little slack: the invite event may arrive after an order placed in the same visit).
EXISTING_SLACK = dt.timedelta(hours=24)
EXISTING_REASON = "existing: a paying customer before the invitation"
_STATE = re.compile(r"^[A-Za-z0-9_\-]{1,30}$")


@dataclass(frozen=True)
class Rules:
    """The qualification window and the points of each side; :meth:`from_settings` reads
    ``SIYU_REFERRAL_WINDOW_DAYS``, ``SIYU_REFERRAL_REFERRER_POINTS`` and
    ``SIYU_REFERRAL_REFERRED_POINTS`` (:mod:`siyu.referrals.config`)."""

    window_days: int
    referrer_points: int
    referred_points: int

    @classmethod
    def from_settings(cls) -> Rules:
        from siyu.referrals.config import get_referral_settings

        config = get_referral_settings()
        return cls(config.referral_window_days, config.referral_referrer_points,
                   config.referral_referred_points)


def _new_code(session: Session) -> str:
    while True:
        code = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
        if session.scalar(select(ReferralCode.id).where(ReferralCode.code == code)) is None:
            return code


def personal_code(session: Session, customer_id: int) -> ReferralCode:
    """The customer's invite code, created on first ask."""
    row = session.scalars(select(ReferralCode).where(
        ReferralCode.customer_id == customer_id).order_by(ReferralCode.id)).first()
    if row is None:
        row = ReferralCode(code=_new_code(session), kind="personal", customer_id=customer_id,
                           channel="invite")
        session.add(row)
        session.flush()
    return row


def invite_link(code: ReferralCode, base_url: str) -> str:
    return f"{base_url.rstrip('/')}/r/{code.code}"


CHANNEL_KINDS: dict[str, str] = {"store": "门店", "campaign": "活动", "advisor": "顾问"}
"""What a channel code is for (its ``channel``) and its Chinese label."""


def _advisor(session: Session, advisor_id: int | None) -> User | None:
    if advisor_id is None:
        return None
    user = session.get(User, advisor_id)
    if user is None or not user.is_active:
        raise InvalidInput(f"没有编号为 {advisor_id} 的在职员工（顾问）",
                           details=[{"field": "advisor_user_id", "reason": "not found"}])
    return user


def create_channel_code(session: Session, name: str, *, state: str | None = None,
                        channel: str = "campaign", advisor_id: int | None = None,
                        settings: Settings | None = None) -> ReferralCode:
    """An operator's channel code (渠道活码) for a store, a campaign or an advisor.

    ``state`` is the WeCom 联系我 ``state`` value (1 to 30 of ``A-Za-z0-9_-``, unique);
    without one it is ``<channel>_<code>``. ``advisor_id``: the staff user who receives the
    contacts (required for ``channel`` ``advisor``). With ``settings`` where WeCom is
    configured (:func:`siyu.referrals.wecom.configured`) the code gets its 联系我 QR code
    through ``externalcontact/add_contact_way`` for the advisor (then required); WeCom's
    refusal raises :class:`~siyu.channels.wecom.client.WeComApiError` after the row was
    flushed, so the caller rolls back.
    """
    from siyu.referrals import wecom

    name = (name or "").strip()
    if not name or len(name) > 100:
        raise InvalidInput("名称：请填写 1 到 100 个字符",
                           details=[{"field": "name", "reason": "length"}])
    if channel not in CHANNEL_KINDS:
        raise InvalidInput("渠道类型：请选择门店、活动或顾问",
                           details=[{"field": "channel", "reason": "choice"}])
    if state is not None and not _STATE.match(state):
        raise InvalidInput("企业微信渠道参数：请填写 1 到 30 个英文字母、数字、_ 或 -",
                           details=[{"field": "state", "reason": "format"}])
    if state is not None and session.scalar(
            select(ReferralCode.id).where(ReferralCode.state == state)) is not None:
        raise InvalidInput(f"企业微信渠道参数 {state} 已被其他渠道码使用",
                           details=[{"field": "state", "reason": "taken"}])
    advisor = _advisor(session, advisor_id)
    with_wecom = wecom.configured(settings)
    if advisor is None and (channel == "advisor" or with_wecom):
        why = ("顾问渠道码要选择顾问" if channel == "advisor" else
               "企业微信「联系我」二维码需要一位接待的员工，请选择顾问")
        raise InvalidInput(why,
                           details=[{"field": "advisor_user_id", "reason": "required"}])
    code = _new_code(session)
    row = ReferralCode(code=code, kind="channel", name=name,
                       state=state or f"{channel}_{code.lower()}", channel=channel,
                       advisor_id=advisor.id if advisor is not None else None)
    session.add(row)
    session.flush()
    if with_wecom and advisor is not None and settings is not None:
        way = wecom.add_contact_way(settings, state=str(row.state), userid=advisor.username,
                                    remark=name)
        row.wecom_config_id, row.wecom_qr_code = way.config_id, way.qr_code
        session.flush()
    return row


def find_code(session: Session, *, code: str | None = None, state: str | None = None
              ) -> ReferralCode:
    row = None
    if code:
        row = session.scalars(select(ReferralCode).where(
            ReferralCode.code == code.strip().upper())).first()
    elif state:
        row = session.scalars(select(ReferralCode).where(ReferralCode.state == state)).first()
    if row is None:
        raise NotFound("no such referral code")
    return row


def _traits(session: Session, customer_id: int) -> dict[str, set[str]]:
    """Phones (identities and order recipients), device ids (attribute ``device_id``) and
    order recipient addresses of a customer."""
    phones = set(session.scalars(select(Identity.value).where(
        Identity.customer_id == customer_id, Identity.kind == "phone")))
    addresses: set[str] = set()
    for phone, address in session.execute(select(Order.recipient_phone, Order.recipient_address)
                                          .where(Order.customer_id == customer_id)):
        if phone:
            phones.add(normalize_identity("phone", phone, "CN"))
        if address:
            addresses.add(" ".join(address.split()))
    customer = session.get(Customer, customer_id)
    device = (customer.attributes or {}).get("device_id") if customer else None
    return {"phone": phones, "device_id": {str(device)} if device else set(),
            "address": addresses}


def _ring_reason(session: Session, referrer_id: int, referred_id: int) -> str | None:
    if referrer_id == referred_id:
        return "self: the sharer is the new customer"
    mine, theirs = _traits(session, referrer_id), _traits(session, referred_id)
    for kind in RING_KINDS:
        if mine[kind] & theirs[kind]:
            return f"ring: same {kind}"
    return None


def attribute(session: Session, referred_id: int, *, code: str | None = None,
              state: str | None = None, at: dt.datetime | None = None,
              now: dt.datetime | None = None) -> ReferralAttribution:
    """Attribute a new customer to a code (by the code itself or a channel's WeCom state).

    A customer is attributed once: a second call returns the first attribution. A refused
    attribution is stored too, with its reason, so the refusal can be seen and reported.
    ``now``: when a qualification it settles happened (default the current time).
    """
    existing = session.scalars(select(ReferralAttribution).where(
        ReferralAttribution.referred_id == referred_id)).first()
    if existing is not None:
        return existing
    row_code = find_code(session, code=code, state=state)
    moment = at or utcnow()
    referrer = row_code.customer_id
    reason = _ring_reason(session, referrer, referred_id) if referrer is not None else None
    row = ReferralAttribution(referred_id=referred_id, code_id=row_code.id,
                              referrer_id=referrer, at=moment,
                              status="refused" if reason else "pending", reason=reason)
    session.add(row)
    if referrer is not None and reason is None and session.scalar(
            select(Referral.id).where(Referral.referrer_id == referrer,
                                      Referral.referred_id == referred_id)) is None:
        session.add(Referral(referrer_id=referrer, referred_id=referred_id, at=moment,
                             channel=row_code.channel))
    session.flush()
    # An order that arrived before the attribution still counts.
    qualify(session, [referred_id], now=now)
    return row


INVITE_ACCEPTED = "invite_accepted"


def invite_page(session: Session, code: str) -> dict[str, object]:
    """What the public invite page ``/r/<code>`` shows: the code and the sharer's name with
    all but its first character hidden (the page is public). Unknown codes are NotFound."""
    if not isinstance(code, str) or not 1 <= len(code.strip()) <= 40:
        raise NotFound("no such referral code")
    row = find_code(session, code=code)
    name = None
    if row.customer_id is not None:
        full = session.scalar(select(Customer.name).where(Customer.id == row.customer_id))
        name = full[:1] + "**" if full else None  # the length of the name is hidden too
    rules = Rules.from_settings()
    return {"code": row.code, "sharer": name, "channel_name": row.name,
            "referred_points": rules.referred_points, "referrer_points": rules.referrer_points}


def accept_invite(session: Session, customer_id: int, identity: dict[str, str], code: object,
                  *, settings: Settings) -> bool:
    """A customer signed in from an invite link: record ``invite_accepted`` on their timeline
    with the code, which attributes them (the events row hook). A code that is not one of
    ours is ignored (it came from a URL anyone can edit); returns whether it was recorded.
    Recording twice is one event (the id is the code and the customer)."""
    if not isinstance(code, str) or not code.strip() or len(code) > 40:
        return False
    try:
        row = find_code(session, code=code)
    except NotFound:
        return False
    from siyu.events.service import ingest

    ingest(session, "events", [{
        "id": f"invite:{row.code}:{customer_id}", "identities": [identity],
        "type": INVITE_ACCEPTED, "ts": utcnow().isoformat(), "channel": "webchat",
        "properties": {"invite_code": row.code},
    }], settings=settings, source="webchat")
    return True


def qualify(session: Session, customer_ids: Sequence[int], *, rules: Rules | None = None,
            now: dt.datetime | None = None) -> list[ReferralAttribution]:
    """Settle the pending attributions of these customers whose first purchase is in."""
    rules = rules or Rules.from_settings()
    pending = list(session.scalars(select(ReferralAttribution).where(
        ReferralAttribution.status == "pending",
        ReferralAttribution.referred_id.in_(list(customer_ids)))))
    settled = []
    for attr in pending:
        first = session.execute(select(Order.id, Order.ts).where(
            Order.customer_id == attr.referred_id, is_purchase())
            .order_by(Order.ts, Order.id).limit(1)).first()
        if first is None:
            continue
        order_id, ts = first
        reason = (_ring_reason(session, attr.referrer_id, attr.referred_id)
                  if attr.referrer_id is not None else None)
        if reason:
            attr.status, attr.reason = "refused", reason
            settled.append(attr)
            continue
        deadline = attr.at + dt.timedelta(days=rules.window_days)
        if ts < attr.at - EXISTING_SLACK:
            # Already a paying customer when the link was opened: no referral to reward.
            attr.status, attr.reason = "refused", EXISTING_REASON
        elif ts > deadline:
            attr.status, attr.reason = "expired", f"first paid order after {rules.window_days} days"
        else:
            attr.status = "qualified"
            attr.order_id = str(order_id)
            attr.qualified_at = now or utcnow()
            if attr.referrer_id is not None and rules.referrer_points:
                points.add_entry(session, attr.referrer_id, rules.referrer_points,
                                 source="referral", key=f"{attr.id}:referrer",
                                 reason="邀请好友奖励", at=attr.qualified_at)
            if rules.referred_points:
                points.add_entry(session, attr.referred_id, rules.referred_points,
                                 source="referral", key=f"{attr.id}:referred",
                                 reason="受邀首单奖励", at=attr.qualified_at)
        settled.append(attr)
    session.flush()
    return settled


@dataclass(frozen=True)
class CodeStats:
    code: str
    kind: str
    name: str | None
    referrer_id: int | None
    attributed: int
    qualified: int
    refused: int
    pending: int = 0
    expired: int = 0
    conversion: float | None = None
    """qualified / attributed (None without attributions)."""
    referrer_name: str | None = None
    channel: str | None = None
    state: str | None = None


def report(session: Session) -> list[CodeStats]:
    """Conversion by code: per code, attributed customers and how many qualified, were
    refused, are pending or expired, and the conversion (qualified / attributed); most
    qualified first. Personal codes name their sharer."""
    from sqlalchemy import func

    A = ReferralAttribution
    out: dict[int, dict[str, int]] = {}
    for code_id, status, n in session.execute(select(A.code_id, A.status, func.count())
                                              .group_by(A.code_id, A.status)):
        counts = out.setdefault(int(code_id), {"attributed": 0, "qualified": 0, "refused": 0,
                                               "pending": 0, "expired": 0})
        counts["attributed"] += int(n)
        if status in counts:
            counts[status] += int(n)
    rows = []
    for start in range(0, len(out), 500):
        ids = list(out)[start:start + 500]
        for c, name in session.execute(
                select(ReferralCode, Customer.name).outerjoin(
                    Customer, Customer.id == ReferralCode.customer_id)
                .where(ReferralCode.id.in_(ids))):
            counts = out[c.id]
            rows.append(CodeStats(
                c.code, c.kind, c.name, c.customer_id, **counts,
                conversion=round(counts["qualified"] / counts["attributed"], 4),
                referrer_name=name, channel=c.channel, state=c.state))
    return sorted(rows, key=lambda r: (-r.qualified, -r.attributed, r.code))


@dataclass(frozen=True)
class ReferrerStats:
    """A customer who brings others (the 影响人群): friends attributed to their codes, how
    many qualified, were refused or are pending, the points their referrals earned them and
    what the qualified friends have spent since (purchases)."""

    customer_id: int
    name: str | None
    attributed: int
    qualified: int
    refused: int
    pending: int
    conversion: float
    points: int
    friends_spent: float


def top_referrers(session: Session, *, limit: int = 20) -> list[ReferrerStats]:
    """The customers whose invitations brought the most qualified friends (then the most
    attributed), at most ``limit``; a self-referral is not a friend brought."""
    from sqlalchemy import func

    from siyu.points.models import PointsEntry

    A = ReferralAttribution
    counts: dict[int, dict[str, int]] = {}
    for referrer_id, status, n in session.execute(
            select(A.referrer_id, A.status, func.count())
            .where(A.referrer_id.is_not(None), A.referrer_id != A.referred_id)
            .group_by(A.referrer_id, A.status)):
        row = counts.setdefault(int(referrer_id or 0), {"attributed": 0, "qualified": 0,
                                                   "refused": 0, "pending": 0})
        row["attributed"] += int(n)
        if status in row:
            row[status] += int(n)
    top = sorted(counts, key=lambda c: (-counts[c]["qualified"], -counts[c]["attributed"],
                                        c))[:max(0, limit)]
    if not top:
        return []
    names = dict(session.execute(select(Customer.id, Customer.name)
                                 .where(Customer.id.in_(top))).all())
    earned = {int(c): int(p) for c, p in session.execute(
        select(PointsEntry.customer_id, func.sum(PointsEntry.amount)).where(
            PointsEntry.source == "referral", PointsEntry.key.like("%:referrer"),
            PointsEntry.customer_id.in_(top)).group_by(PointsEntry.customer_id))}
    spent = {int(c or 0): float(v or 0) for c, v in session.execute(
        select(A.referrer_id, func.sum(Order.amount))
        .join(Order, Order.customer_id == A.referred_id)
        .where(A.status == "qualified", A.referrer_id.in_(top), is_purchase())
        .group_by(A.referrer_id))}
    return [ReferrerStats(c, names.get(c), **counts[c],
                          conversion=round(counts[c]["qualified"] / counts[c]["attributed"], 4),
                          points=earned.get(c, 0), friends_spent=round(spent.get(c, 0.0), 2))
            for c in top]


@dataclass(frozen=True)
class ChannelCodeStats:
    """A channel code with the contacts attributed to it: how many, how many qualified,
    are pending, expired or were refused, and the conversion (qualified / attributed)."""

    id: int
    code: str
    name: str | None
    channel: str | None
    channel_label: str
    state: str | None
    advisor_user_id: int | None
    advisor_name: str | None
    wecom_config_id: str | None
    wecom_qr_code: str | None
    created_at: dt.datetime
    attributed: int
    qualified: int
    pending: int
    expired: int
    refused: int
    conversion: float | None
    """None without attributions."""


def channel_codes(session: Session) -> list[ChannelCodeStats]:
    """Every channel code, the newest first, with its attributed contacts' figures (codes
    nobody came through yet included)."""
    from sqlalchemy import func

    A = ReferralAttribution
    counts: dict[int, dict[str, int]] = {}
    for code_id, status, n in session.execute(
            select(A.code_id, A.status, func.count())
            .join(ReferralCode, ReferralCode.id == A.code_id)
            .where(ReferralCode.kind == "channel").group_by(A.code_id, A.status)):
        row = counts.setdefault(int(code_id), {"attributed": 0, "qualified": 0, "pending": 0,
                                               "expired": 0, "refused": 0})
        row["attributed"] += int(n)
        if status in row:
            row[status] += int(n)
    out = []
    for c, advisor in session.execute(
            select(ReferralCode, User.display_name)
            .outerjoin(User, User.id == ReferralCode.advisor_id)
            .where(ReferralCode.kind == "channel")
            .order_by(ReferralCode.id.desc())):
        figures = counts.get(c.id) or {"attributed": 0, "qualified": 0, "pending": 0,
                                       "expired": 0, "refused": 0}
        out.append(ChannelCodeStats(
            c.id, c.code, c.name, c.channel, CHANNEL_KINDS.get(c.channel or "", "企业微信"),
            c.state, c.advisor_id, advisor, c.wecom_config_id, c.wecom_qr_code, c.created_at,
            **figures, conversion=round(figures["qualified"] / figures["attributed"], 4)
            if figures["attributed"] else None))
    return out
