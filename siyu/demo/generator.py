"""Seed the demo brand 禾源良品 (HeYuan, a fictional health-food brand) into an empty database.

The same ``customers``, ``seed`` and ``now`` always produce the same data. People are
generated in chunks with numpy and written with Core bulk inserts; at the end a few hundred
"first seen twice" customers are linked through the real ingest path
(:func:`siyu.events.service.ingest`), which merges them, and a handful of family members
sharing one phone land in the merge-conflict review queue.

The world (two years ending at ``now``; times in Asia/Shanghai)
------------------------------------------------------------------
* **Arrivals** grow over time and burst on campaigns; customer ids follow arrival order.
  Acquisition channels and their quality (share / mean drop-out after a purchase / rate
  multiplier / never buys): 小程序 36% / 0.30 / 1.0 / 4%, 企业微信 18% / 0.22 / 1.1 / 30%
  (advisor leads), App 10% / 0.24 / 1.15 / 6%, 门店 8% / 0.20 / 1.05 / 5%, 直播 16% / 0.42 /
  0.8 / 22%, 朋友推荐 12% / 0.13 / 1.3 / 8%. Advisors differ too: each scales the drop-out of
  their customers by 0.8-1.2.
* **Purchases** (BG/NBD-like): rate ``λ = g / cycle`` with ``g ~ Gamma(1.6, 1/1.6) × 0.55 ×
  channel multiplier`` and ``cycle`` the consumption cycle of the person's main product
  (oats 30 days, probiotics 60, protein 45, meal shakes 21 ...); Gamma(2) gaps in
  operational time, which stretches calendar time by each day's intensity: 双11 (Oct 20 -
  Nov 11, peak ×6 on 11.11), 618 (June 1-18), 年货节 (25-8 days before Spring Festival; the
  holiday week itself is slow), 38 女神节, 中秋 gift season, 12.12. After every purchase the
  person drops out with ``p ~ Beta(2, ·)`` around the channel mean; 10% of drop-outs come
  back after 5-11 months (reactivated). The result mixes loyal, declining, churned, new
  and reactivated customers.
* **Spend** (Gamma-Gamma-like): a per-person basket scale ``z ~ Gamma(4, 1/4)`` drives
  quantities and extra items; gift boxes before Spring Festival and Mid-Autumn; campaign
  coupons (12% off) and new-customer coupons. Statuses: ~3.5% refunded, 3% cancelled,
  orders of the last days paid/shipped, 1.5% of last month's orders payment_failed.
  Orders of the last 30 days are stored paid and then move (shipped, delivered, completed or
  refunded) through the ingest of order updates, so each change is an
  ``order_status_changed`` event. Gift-box orders (35%) and 3% of others are sent to another
  recipient (a 帮亲友购买 signal).
* **Catalogue**: the products with their consumption cycles and three bundles (礼盒,
  组合装), loaded through the catalogue service as ``siyu import products`` would.
* **Events** (~7 per customer): view_product, add_to_cart, coupon_received/used,
  payment_failed (reason), delivery_delayed (carrier, parcel), after_sales_request
  (return/exchange/complaint/consult + text), feedback (text + 1-5 score; delays and
  complaints make it negative), survey_response (NPS), add_wecom_contact, join_group,
  app_login, live_stream_view, share_product, invite_friend, points_earned/redeemed and
  member_bind (the linking event).
* **Identities**: members have external_id ``HY000123`` and a unique valid mobile phone;
  WeChat openid/unionid, WeCom external userid (with ``advisor_id`` on the customer), app
  user id and e-mail by channel. Leads who never registered have only a WeCom id or openid.
* **Referrals**: 20% of people (45% of referred ones) refer; how many follows a Pareto tail,
  so a few KOL-like customers bring dozens, and referred customers refer in turn (chains).
* **Consents** for sms / wecom / app_push × service / marketing, ~10% of marketing
  consents withdrawn later. **Tags** 素食 健身人群 宝妈 控糖 投诉中 高价值 送礼需求 价格敏感.
* **Staff**: admin, operator, analyst and 12-20 advisors (role agent), one demo password.

Showcase customers (fixed ids and identities)
---------------------------------------------
1. 林晓雯, ``HY000001``, phone 13800138000: 黑金 VIP since ~700 days, monthly protein + oats,
   advisor 陈静 on WeCom, refers friends, NPS 10. An order shipped 4 days ago is delayed
   (顺丰 SF1402938475612) and a payment failed 3 minutes before ``now`` (银行卡余额不足).
2. 王建国, ``HY000002``, phone 13912345678: 金卡, a gift order 12 days ago arrived 4 days late
   and damaged; complaint unanswered, feedback score 1, NPS 1, withdrew SMS marketing,
   tagged 投诉中.
3. 赵敏, ``HY000003``, phone 13500135000: bought a meal shake every 3 weeks for a year via
   her advisor 刘洋, silent for ~200 days (a win-back case).
4. 张伟, ``HY000004``, phone 13600136000, and 5. his wife 李娜, ``HY000005``, phone
   13700137000: she placed an order with his phone, so the pair waits in the merge-conflict
   queue (different external ids sharing a phone).
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from siyu.auth.models import User
from siyu.auth.service import create_user
from siyu.catalog.service import upsert_products
from siyu.config import Settings
from siyu.customers.models import (
    Consent,
    Customer,
    CustomerTag,
    Identity,
    Merge,
    MergeConflict,
    Referral,
    Tag,
)
from siyu.db import Base, refresh_statistics, session_scope
from siyu.demo import catalog
from siyu.demo.chunk import STATUS_STEPS, Chunk, Context, generate_chunk
from siyu.demo.showcase import RESERVED_PHONES, VIP_ACQUIRED_DAYS_AGO, build_showcase
from siyu.demo.world import (
    FIRST_PERSON_ID,
    build_calendar,
    build_population,
    external_id,
    phone_numbers,
)
from siyu.errors import Conflict, InvalidInput
from siyu.events.models import Event, Order
from siyu.events.service import RecordKind, ingest
from siyu.kit.bulk import bulk_insert

CHUNK_SIZE = 5_000  # part of the determinism contract: changing it changes the data
MIN_CUSTOMERS = 100
MAX_CUSTOMERS = 5_000_000
_INSERT_BATCH = 20_000
_INGEST_BATCH = 2_000
Progress = Callable[[str, int, int], None]


class DatabaseNotEmpty(Conflict):
    code = "database_not_empty"


@dataclass
class SeedResult:
    """What a seed wrote: rows per table, how long it took, and the staff password when the
    staff accounts were created by this seed (shown once, stored only as a hash)."""

    customers: int
    seconds: float
    rows: dict[str, int] = field(default_factory=dict)
    merges: int = 0
    conflicts: int = 0
    staff: list[tuple[str, str, str]] = field(default_factory=list)
    password: str | None = None


def database_is_empty(session: Session) -> bool:
    """True when no customer, order or event is stored (staff users may exist)."""
    return all(
        session.scalar(select(model).limit(1)) is None
        for model in (Customer.id, Order.id, Event.id)
    )


def ensure_staff(session: Session, *, advisors: int = 12) -> tuple[list[tuple[str, str, str]],
                                                                  str | None]:
    """Create the demo staff that do not exist yet, all with one new random password.

    Returns the (username, display name, role) of every demo staff user, and the password
    if any user was created (``None`` when all existed).
    """
    wanted = list(catalog.STAFF) + [
        (f"advisor{i + 1:02d}", f"顾问 · {name}", "agent")
        for i, name in enumerate(catalog.ADVISORS[:advisors])
    ]
    existing = set(session.scalars(select(User.username)))
    password = secrets.token_urlsafe(9)
    created = False
    for username, display, role in wanted:
        if username not in existing:
            create_user(session, username, password, role, display)
            created = True
    return wanted, password if created else None


def ensure_admin(session: Session) -> str | None:
    """Make sure an active admin exists; returns a new password when one was created."""
    if session.scalar(select(User.id).where(User.role == "admin", User.is_active)) is not None:
        return None
    password = secrets.token_urlsafe(9)
    taken = set(session.scalars(select(User.username)))
    username = "admin" if "admin" not in taken else "demo-admin"
    create_user(session, username, password, "admin", "系统管理员")
    return password


def parse_now(value: str | None) -> dt.datetime:
    """``now`` for a seed: an ISO date or datetime (naive means Asia/Shanghai; a bare date
    means 20:00 that evening), default the current time to the second."""
    from zoneinfo import ZoneInfo

    if not value:
        return dt.datetime.now(dt.UTC).replace(microsecond=0)
    tz = ZoneInfo("Asia/Shanghai")
    try:
        if len(value) == 10:
            parsed = dt.datetime.combine(dt.date.fromisoformat(value), dt.time(20), tzinfo=tz)
        else:
            parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"--now must be an ISO date or datetime, got {value!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    return parsed.astimezone(dt.UTC)


def seed_demo(
    sessions: sessionmaker[Session],
    settings: Settings,
    *,
    customers: int,
    seed: int,
    now: dt.datetime | None = None,
    progress: Progress | None = None,
) -> SeedResult:
    """Seed ``customers`` active customers of the demo brand (see the module docstring).

    Refuses (:class:`DatabaseNotEmpty`) unless the database holds no customers, orders or
    events. Commits once per chunk: a million-customer seed in one transaction would grow
    SQLite's write-ahead log to gigabytes.
    """
    started = time.perf_counter()
    now = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    if not MIN_CUSTOMERS <= customers <= MAX_CUSTOMERS:
        raise InvalidInput(f"customers must be between {MIN_CUSTOMERS} and {MAX_CUSTOMERS:,}")
    if now > dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1):
        raise InvalidInput("now must not be in the future (ingest refuses future timestamps)")
    report = progress or (lambda _phase, _done, _total: None)
    n_advisors = min(len(catalog.ADVISORS), 12 + customers // 100_000)

    with session_scope(sessions) as session:
        if not database_is_empty(session):
            raise DatabaseNotEmpty(
                "the database already holds customers, orders or events; the demo seeds "
                "only an empty database (point SIYU_DATABASE_URL at a new file)"
            )
        staff, password = ensure_staff(session, advisors=n_advisors)
        names = [u for u, _, role in staff if role == "agent"]
        by_name = dict(session.execute(select(User.username, User.id)).all())
        advisors = [(by_name[u], d.split(" · ")[-1]) for u, d, _ in staff if u in names]
        tag_ids = _ensure_tags(session)
        # The catalogue, through the catalogue service (as `siyu import products`): repurchase
        # timing reads its cycles and bundles.
        upsert_products(session, catalog.catalogue_records())

    rng = np.random.default_rng([seed, 0])
    cal = build_calendar(now)
    persons = customers - (FIRST_PERSON_ID - 1)
    pop = build_population(rng, cal, persons, cal.t_now - VIP_ACQUIRED_DAYS_AGO)
    ctx = Context(cal=cal, pop=pop, advisors=advisors,
                  advisor_quality=rng.uniform(0.8, 1.2, len(advisors)), tag_ids=tag_ids,
                  reserved_phones=RESERVED_PHONES)
    counts: dict[str, int] = {}
    show, conflict_orders = build_showcase(now, advisors, tag_ids)
    with session_scope(sessions) as session:
        _write(session, show, counts)

    members = np.zeros(persons, dtype=bool)
    links: list[dict[str, Any]] = []
    status_updates: list[list[dict[str, Any]]] = [[] for _ in range(STATUS_STEPS)]
    next_shadow = FIRST_PERSON_ID + persons
    for chunk_no, lo in enumerate(range(0, persons, CHUNK_SIZE)):
        hi = min(lo + CHUNK_SIZE, persons)
        chunk = generate_chunk(ctx, np.random.default_rng([seed, 1, chunk_no]), chunk_no, lo, hi,
                               next_shadow)
        next_shadow += len(chunk.customers) - (hi - lo)
        members[lo:hi] = chunk.members
        links.extend(chunk.links)
        for step, records in zip(status_updates, chunk.status_updates, strict=True):
            step.extend(records)
        with session_scope(sessions) as session:
            _write(session, chunk, counts)
        report("customers", hi + FIRST_PERSON_ID - 1, customers)

    conflict_orders += _family_conflicts(np.random.default_rng([seed, 2]), now, members,
                                         customers)
    with session_scope(sessions) as session:
        _fix_sequences(session)
        refresh_statistics(session)  # the linking below looks identities up by index
    merges, conflicts = _link(sessions, settings, links, conflict_orders, report)
    _move_statuses(sessions, settings, status_updates, report)
    return SeedResult(customers=customers, seconds=time.perf_counter() - started, rows=counts,
                      merges=merges, conflicts=conflicts, staff=staff, password=password)


def _ensure_tags(session: Session) -> dict[str, int]:
    found = dict(session.execute(select(Tag.name, Tag.id)).all())
    for name in catalog.TAGS:
        if name not in found:
            tag = Tag(name=name, kind="manual")
            session.add(tag)
            session.flush()
            found[name] = tag.id
    return found


def _write(session: Session, chunk: Chunk, counts: dict[str, int]) -> None:
    for model, rows in (
        (Customer, chunk.customers),
        (Identity, chunk.identities),
        (Consent, chunk.consents),
        (CustomerTag, chunk.tags),
        (Referral, chunk.referrals),
        (Order, chunk.orders),
        (Event, chunk.events),
    ):
        table = Base.metadata.tables[model.__tablename__]
        for start in range(0, len(rows), _INSERT_BATCH):
            bulk_insert(session, table, rows[start : start + _INSERT_BATCH])
        counts[table.name] = counts.get(table.name, 0) + len(rows)


def _family_conflicts(rng: np.random.Generator, now: dt.datetime, members: np.ndarray,
                      customers: int) -> list[dict[str, Any]]:
    """Orders placed under one member's id with another member's phone (a spouse's, a
    parent's): the resolver must not merge them, so they wait for review."""
    pool = np.flatnonzero(members)
    k = int(np.clip(customers // 1_000, 3, 40))
    if len(pool) < 2 * k:
        return []
    chosen = rng.choice(pool, size=2 * k, replace=False)
    phones = phone_numbers(chosen[:k], RESERVED_PHONES)
    ago = rng.uniform(0.2, 60.0, k)
    amounts = rng.choice([129.0, 199.0, 239.0, 299.0], size=k)
    orders = []
    for i in range(k):
        ts = now - dt.timedelta(days=float(ago[i]))
        buyer = FIRST_PERSON_ID + int(chosen[k + i])
        orders.append({
            "id": f"SOF{i:05d}", "customer_id": external_id(buyer), "ts": ts,
            "amount": float(amounts[i]), "status": "completed", "channel": "miniprogram",
            "identities": [{"kind": "phone", "value": phones[i], "verified": True}],
            "items": [{"sku": "HY-NUT-01", "name": "每日坚果 30 袋礼包", "quantity": 1,
                       "price": float(amounts[i])}],
        })
    return orders


def _fix_sequences(session: Session) -> None:
    """Customers were written with explicit ids; move PostgreSQL's sequence past them."""
    if session.get_bind().dialect.name != "postgresql":
        return
    session.execute(text(
        "SELECT setval(pg_get_serial_sequence('customers', 'id'), "
        "(SELECT COALESCE(MAX(id), 1) FROM customers))"
    ))


def _link(sessions: sessionmaker[Session], settings: Settings, links: Sequence[dict[str, Any]],
          orders: Sequence[dict[str, Any]], report: Progress) -> tuple[int, int]:
    merges = conflicts = 0
    batch = min(_INGEST_BATCH, settings.max_batch_records)
    total = len(links) + len(orders)
    done = 0
    plan: tuple[tuple[RecordKind, Sequence[dict[str, Any]]], ...] = (
        ("events", links), ("orders", orders))
    for kind, records in plan:
        for start in range(0, len(records), batch):
            part = list(records[start : start + batch])
            with session_scope(sessions) as session:
                result = ingest(session, kind, part, settings=settings, source="demo seed")
            merges += len(result.merges)
            conflicts += len(result.conflicts)
            done += len(part)
            report("linking", done, total)
    return merges, conflicts


def _move_statuses(sessions: sessionmaker[Session], settings: Settings,
                   steps: Sequence[Sequence[dict[str, Any]]], report: Progress) -> None:
    """Recent orders change status (shipped, delivered, completed or refunded) through the
    ingest of real order updates, one step after the other, so each change is an
    ``order_status_changed`` event."""
    batch = min(_INGEST_BATCH, settings.max_batch_records)
    total = sum(len(s) for s in steps)
    done = 0
    for records in steps:
        for start in range(0, len(records), batch):
            part = list(records[start : start + batch])
            with session_scope(sessions) as session:
                ingest(session, "orders", part, settings=settings, source="demo seed")
            done += len(part)
            report("statuses", done, total)


def table_counts(session: Session) -> dict[str, int]:
    """Rows per table, for the seed report."""
    models: list[type[Base]] = [Customer, Identity, Order, Event, Consent, CustomerTag,
                                Referral, Merge, MergeConflict, User]
    return {
        m.__tablename__: int(session.scalar(select(func.count()).select_from(m)) or 0)
        for m in models
    }
