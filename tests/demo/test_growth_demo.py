"""The demo's growth through fans: the ledger opened from the members' imported points,
referrals through invite codes (qualified with both sides rewarded once, a self-referral
refused with its reason), three channel codes with their contacts, a rewards catalogue
with redemptions (one sold out), content in the playbooks' messages with clicks and
conversions — all consistent with the history, and quick to seed."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from siyu.config import Settings
from siyu.content import service as content
from siyu.content.models import ContentClick, ContentLink
from siyu.customers.models import Customer
from siyu.db import make_session_factory, session_scope
from siyu.demo.generator import seed_demo
from siyu.demo.growth import CHANNEL_CODES, GO_LIVE_DAYS, REWARDS, GrowthSeed, seed_demo_growth
from siyu.demo.playbooks import seed_demo_playbooks
from siyu.events.models import Event
from siyu.playbooks.models import Playbook
from siyu.points import service as points
from siyu.points.models import PointsEntry, Redemption, Reward
from siyu.referrals import service as referrals
from siyu.referrals.models import ReferralAttribution, ReferralCode
from tests.conftest import empty_all_tables

NOW = dt.datetime(2025, 6, 30, 12, 0, tzinfo=dt.UTC)
N = 2_000


def _aware(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


@pytest.fixture(scope="module")
def demo(engine: Engine, database_url: str) -> Iterator[tuple[sessionmaker[Session],
                                                             GrowthSeed]]:
    empty_all_tables(engine)
    sessions = make_session_factory(engine)
    seed_demo(sessions, Settings(database_url=database_url, environment="test"),
              customers=N, seed=7, now=NOW)
    seed_demo_playbooks(sessions, now=NOW, seed=7)
    with session_scope(sessions) as session:
        report = seed_demo_growth(session, now=NOW, seed=7)
    yield sessions, report
    empty_all_tables(engine)


def test_the_ledger_opens_with_the_imported_points(
        demo: tuple[sessionmaker[Session], GrowthSeed]) -> None:
    sessions, report = demo
    with sessions() as s:
        opening = dict(s.execute(select(PointsEntry.customer_id, PointsEntry.amount)
                                 .where(PointsEntry.source == "opening")).all())
        assert report.opened == len(opening) > N // 2
        members = dict(s.execute(select(Customer.id, Customer.attributes)
                                 .where(Customer.id.in_(list(opening)[:200]))).all())
        assert all(opening[c] == attrs["points"] for c, attrs in members.items())
        ats = set(s.scalars(select(PointsEntry.at).where(PointsEntry.source == "opening")))
        assert {_aware(a) for a in ats} == {NOW - dt.timedelta(days=GO_LIVE_DAYS)}
        # opening again opens no one twice
        assert points.open_balances(s, at=NOW) == 0
        latest = s.scalar(select(func.max(PointsEntry.at)))
        assert latest is not None and _aware(latest) <= NOW


def test_referrals_qualify_with_both_sides_rewarded_once_and_a_self_referral_is_refused(
        demo: tuple[sessionmaker[Session], GrowthSeed]) -> None:
    sessions, report = demo
    with sessions() as s:
        rows = list(s.scalars(select(ReferralAttribution)))
        statuses = Counter(r.status for r in rows)
        assert statuses == Counter(report.referrals)
        assert statuses["qualified"] > 0 and statuses["refused"] >= 1
        selfish = [r for r in rows if r.referrer_id == r.referred_id]
        assert len(selfish) == 1 and selfish[0].status == "refused"
        assert selfish[0].reason == "self: the sharer is the new customer"
        personal = [r for r in rows if r.status == "qualified" and r.referrer_id is not None]
        assert personal
        for r in personal:
            assert r.qualified_at is not None and _aware(r.at) <= _aware(r.qualified_at) <= NOW
            keys = Counter(s.scalars(select(PointsEntry.key).where(
                PointsEntry.source == "referral", PointsEntry.key.like(f"{r.id}:%"))))
            assert keys == {f"{r.id}:referrer": 1, f"{r.id}:referred": 1}
        # settling again (a retried order event) rewards no one twice
        before = s.scalar(select(func.count()).select_from(PointsEntry))
        referrals.qualify(s, [r.referred_id for r in rows])
        assert s.scalar(select(func.count()).select_from(PointsEntry)) == before
        s.rollback()


def test_three_channel_codes_attribute_their_contacts(
        demo: tuple[sessionmaker[Session], GrowthSeed]) -> None:
    sessions, report = demo
    with sessions() as s:
        codes = {c.state: c for c in s.scalars(select(ReferralCode).where(
            ReferralCode.kind == "channel"))}
        assert set(codes) == {state for _n, state, _c in CHANNEL_CODES}
        by_code = Counter(s.scalars(select(ReferralAttribution.code_id).where(
            ReferralAttribution.code_id.in_([c.id for c in codes.values()]))))
        assert all(by_code[c.id] > 0 for c in codes.values())
        assert sum(by_code.values()) == report.channel_contacts
        stats = {r.code: r for r in referrals.report(s)}
        assert all(stats[c.code].attributed == by_code[c.id] for c in codes.values())


def test_rewards_are_redeemed_and_the_limited_one_sold_out(
        demo: tuple[sessionmaker[Session], GrowthSeed]) -> None:
    sessions, report = demo
    with sessions() as s:
        catalogue = {r.name: r for r in s.scalars(select(Reward))}
        assert set(catalogue) == {name for name, *_ in REWARDS}
        assert any(r.stock is None for r in catalogue.values())
        assert [r.name for r in catalogue.values() if r.stock == 0] == ["禾源定制保温杯（限量）"]
        redeemed = list(s.scalars(select(Redemption)))
        assert len(redeemed) == report.redemptions > 50
        assert report.refused_redemptions > 0
        per_reward = Counter(r.reward_id for r in redeemed)
        for name, _cost, stock, _w in REWARDS:
            if stock is not None:
                assert per_reward[catalogue[name].id] + catalogue[name].stock == stock
        spent = dict(s.execute(select(PointsEntry.id, PointsEntry.amount).where(
            PointsEntry.source == "redeem")).all())
        assert {r.entry_id for r in redeemed} == set(spent)
        who = sorted({r.customer_id for r in redeemed})
        assert min(points.balances(s, who).values()) >= 0


def test_content_rides_in_playbook_messages_with_clicks_and_conversions(
        demo: tuple[sessionmaker[Session], GrowthSeed]) -> None:
    sessions, report = demo
    with sessions() as s:
        stats = {st.kind: st for st in content.item_stats(s)}
        assert set(stats) == {"article", "product", "miniprogram"}
        assert all(st.recipients > 0 and st.clickers > 0 for st in stats.values())
        assert stats["miniprogram"].anonymous_clicks > 0
        assert sum(st.converted for st in stats.values()) > 0
        assert s.scalar(select(func.count()).select_from(ContentLink)) == report.links
        assert s.scalar(select(func.count()).select_from(ContentClick)) == report.clicks
        timeline = s.scalar(select(func.count()).select_from(Event).where(
            Event.type == content.CLICKED))
        assert timeline == s.scalar(select(func.count()).select_from(ContentClick).where(
            ContentClick.link_id.is_not(None)))
        latest = s.scalar(select(func.max(ContentClick.at)))
        assert latest is not None and _aware(latest) <= NOW
        pb = s.scalar(select(Playbook.id).where(Playbook.name == "复购提醒"))
        assert pb is not None and content.step_stats(s, pb)
    assert report.seconds < 10
    print(f"\ngrowth demo: {report} ")
