"""Referrals: invite → first paid order → both sides rewarded once; refusals with reasons."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from siyu.config import Settings
from siyu.customers.models import Referral
from siyu.customers.service import upsert_customers
from siyu.errors import InvalidInput
from siyu.events.service import ingest
from siyu.points import service as points
from siyu.referrals import service as referrals
from siyu.referrals.models import ReferralAttribution


def _customer(sessions: sessionmaker[Session], settings: Settings, ref: str, phone: str) -> int:
    with sessions() as s:
        cid = upsert_customers(s, [{"id": ref, "name": "林晓雯", "identities": [
            {"kind": "phone", "value": phone}]}], settings=settings).customer_ids[0]
        s.commit()
        return cid


def _order(sessions: sessionmaker[Session], settings: Settings, ref: str, order_id: str,
           *, status: str = "paid") -> None:
    ts = dt.datetime.now(dt.UTC)
    with sessions() as s:
        ingest(s, "orders", [{"id": order_id, "customer_id": ref, "ts": ts.isoformat(),
                              "amount": 199.0, "status": status}], settings=settings)
        s.commit()


def test_invite_then_first_paid_order_rewards_both_sides_once_even_when_retried(
        sessions: sessionmaker[Session], settings: Settings) -> None:
    sharer = _customer(sessions, settings, "C-SHARER", "13800000011")
    with sessions() as s:
        code = referrals.personal_code(s, sharer)
        again = referrals.personal_code(s, sharer)
        assert again.id == code.id and len(code.code) == referrals.CODE_LENGTH
        assert referrals.invite_link(code, "https://brand.example/") == \
            f"https://brand.example/r/{code.code}"
        s.commit()
        invite = code.code
    friend = _customer(sessions, settings, "C-FRIEND", "13800000012")
    with sessions() as s:
        attr = referrals.attribute(s, friend, code=invite.lower())
        assert (attr.status, attr.referrer_id) == ("pending", sharer)
        s.commit()
    _order(sessions, settings, "C-FRIEND", "O-1", status="created")
    with sessions() as s:
        assert points.balance(s, sharer) == 0
    _order(sessions, settings, "C-FRIEND", "O-2")
    _order(sessions, settings, "C-FRIEND", "O-2")  # the same order event, retried
    _order(sessions, settings, "C-FRIEND", "O-3")  # a second order is not a first one
    with sessions() as s:
        assert points.balance(s, sharer) == referrals.Rules.from_settings().referrer_points
        assert points.balance(s, friend) == referrals.Rules.from_settings().referred_points
        row = s.scalars(select(ReferralAttribution)).one()
        assert row.status == "qualified" and row.order_id is not None
        assert s.scalars(select(Referral)).one().referrer_id == sharer
        assert referrals.qualify(s, [friend]) == []
        [stats] = referrals.report(s)
        assert (stats.code, stats.attributed, stats.qualified) == (invite, 1, 1)


def test_self_referral_and_rings_are_refused_with_their_reasons(
        sessions: sessionmaker[Session], settings: Settings) -> None:
    sharer = _customer(sessions, settings, "C-A", "13800000021")
    other = _customer(sessions, settings, "C-B", "13800000022")
    third = _customer(sessions, settings, "C-C", "13800000023")
    with sessions() as s:
        upsert_customers(s, [{"id": "C-A", "attributes": {"device_id": "dev-1"}},
                             {"id": "C-C", "attributes": {"device_id": "dev-1"}}],
                         settings=settings)
        code = referrals.personal_code(s, sharer).code
        me = referrals.attribute(s, sharer, code=code)
        assert (me.status, me.reason) == ("refused", "self: the sharer is the new customer")
        assert referrals.attribute(s, third, code=code).reason == "ring: same device_id"
        assert referrals.attribute(s, other, code=code).status == "pending"
        s.commit()
    with sessions() as s:  # the friend's first order goes to the sharer's phone
        ingest(s, "orders", [{"id": "O-B1", "customer_id": "C-B", "amount": 99.0,
                              "ts": dt.datetime.now(dt.UTC).isoformat(),
                              "recipient_phone": "13800000021"}], settings=settings)
        s.commit()
    with sessions() as s:
        row = s.scalars(select(ReferralAttribution).where(
            ReferralAttribution.referred_id == other)).one()
        assert (row.status, row.reason) == ("refused", "ring: same phone")
        assert points.balance(s, sharer) == 0 and points.balance(s, other) == 0


def test_channel_code_by_wecom_state_and_late_first_order_expires(
        sessions: sessionmaker[Session], settings: Settings) -> None:
    with sessions() as s:
        channel = referrals.create_channel_code(s, "静安店 春季活动", state="store_jingan")
        with pytest.raises(InvalidInput):
            referrals.create_channel_code(s, "重复", state="store_jingan")
        with pytest.raises(InvalidInput):
            referrals.create_channel_code(s, "坏 state", state="有 空格")
        s.commit()
    newcomer = _customer(sessions, settings, "C-NEW", "13800000031")
    with sessions() as s:
        attr = referrals.attribute(s, newcomer, state="store_jingan", at=dt.datetime.now(
            dt.UTC) - dt.timedelta(days=referrals.Rules.from_settings().window_days + 1))
        assert (attr.code_id, attr.referrer_id) == (channel.id, None)
        s.commit()
    _order(sessions, settings, "C-NEW", "O-LATE")
    with sessions() as s:
        row = s.scalars(select(ReferralAttribution)).one()
        assert row.status == "expired" and points.balance(s, newcomer) == 0


def test_merging_two_customers_with_codes_and_attributions_keeps_both_links_and_undoes(
        sessions: sessionmaker[Session], settings: Settings) -> None:
    from siyu.customers.identity import merge_customers, undo_merge

    sharer = _customer(sessions, settings, "C-S", "13800000041")
    keep = _customer(sessions, settings, "C-K", "13800000042")
    drop = _customer(sessions, settings, "C-D", "13800000043")
    with sessions() as s:
        sharer_code = referrals.personal_code(s, sharer).code
        keep_code = referrals.personal_code(s, keep).code
        drop_code = referrals.personal_code(s, drop).code
        referrals.attribute(s, keep, code=sharer_code)
        referrals.attribute(s, drop, code=sharer_code)
        s.commit()
    with sessions() as s:
        merge = merge_customers(s, keep, drop, reason="test", actor="admin")
        s.commit()
        merge_id = merge.id
    with sessions() as s:
        # Both links already shared keep working and now credit the kept customer.
        assert referrals.find_code(s, code=drop_code).customer_id == keep
        assert referrals.find_code(s, code=keep_code).customer_id == keep
        assert referrals.personal_code(s, keep).code == keep_code
        # The kept customer is attributed once; the dropped customer's copy is set aside.
        rows = s.scalars(select(ReferralAttribution).where(
            ReferralAttribution.referred_id == keep)).all()
        assert len(rows) == 1
    with sessions() as s:
        undo_merge(s, merge_id, actor="admin")
        s.commit()
    with sessions() as s:
        assert referrals.find_code(s, code=drop_code).customer_id == drop
        assert referrals.personal_code(s, drop).code == drop_code
        assert [a.referrer_id for a in s.scalars(select(ReferralAttribution).where(
            ReferralAttribution.referred_id == drop))] == [sharer]
