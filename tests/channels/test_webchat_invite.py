"""A shared invite link: ``/r/<code>`` → the web chat's phone sign-in → the new customer is
attributed to the sharer, and both are rewarded once on the first paid order."""

from __future__ import annotations

import datetime as dt

from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from siyu.channels.models import VerificationCode
from siyu.config import Settings
from siyu.customers.models import Identity
from siyu.events.models import Event
from siyu.events.service import ingest
from siyu.points import service as points
from siyu.referrals import service as referrals
from siyu.referrals.models import ReferralAttribution
from tests.channels.fakes import FakeSms
from tests.referrals.test_referrals import _customer


def _order(sessions: sessionmaker[Session], settings: Settings, phone: str, order_id: str,
           *, days_ago: float = 0) -> None:
    ts = dt.datetime.now(dt.UTC) - dt.timedelta(days=days_ago)
    with sessions() as s:
        ingest(s, "orders", [{"id": order_id, "identities": [{"kind": "phone", "value": phone}],
                              "ts": ts.isoformat(), "amount": 199.0, "status": "paid"}],
               settings=settings)
        s.commit()


def _sign_in(client: TestClient, sms: FakeSms, phone: str, invite: str | None) -> int:
    assert client.post("/chat/api/code", json={"phone": phone}).status_code == 200
    code = str(sms.calls("/sms")[-1].body["params"]["code"])
    body = {"phone": phone, "code": code, **({"invite": invite} if invite else {})}
    answer = client.post("/chat/api/verify", json=body)
    assert answer.status_code == 200, answer.text
    return answer.status_code


def _customer_of(sessions: sessionmaker[Session], phone: str) -> int:
    with sessions() as s:
        found = s.scalar(select(Identity.customer_id).where(
            Identity.kind == "phone", Identity.value == "+86" + phone))
    assert found is not None
    return int(found)


def test_invite_page_then_sign_in_attributes_and_the_first_paid_order_rewards_both_once(
        chan_client: TestClient, sms_api: FakeSms, sessions: sessionmaker[Session],
        settings: Settings) -> None:
    sharer = _customer(sessions, settings, "C-SHARER", "13800000021")
    with sessions() as s:
        code = referrals.personal_code(s, sharer).code
        s.commit()

    page = chan_client.get(f"/r/{code.lower()}")
    assert page.status_code == 200
    assert "您的好友林**邀请您加入" in page.text and "林晓雯" not in page.text
    assert f'href="/chat?invite={code}"' in page.text
    missing = chan_client.get("/r/NOSUCHCODE")
    assert missing.status_code == 404 and "邀请链接无效" in missing.text

    _sign_in(chan_client, sms_api, "13900000022", code)
    with sessions() as s:  # a minute later, the customer signs in again from the link
        s.execute(update(VerificationCode).values(
            created_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=2)))
        s.commit()
    _sign_in(chan_client, sms_api, "13900000022", code)  # which changes nothing
    friend = _customer_of(sessions, "13900000022")
    with sessions() as s:
        [row] = s.scalars(select(ReferralAttribution)).all()
        assert (row.referred_id, row.referrer_id, row.status) == (friend, sharer, "pending")
        [event] = s.scalars(select(Event).where(Event.customer_id == friend)).all()
        assert (event.type, event.properties) == ("invite_accepted", {"invite_code": code})

    _order(sessions, settings, "13900000022", "O-FRIEND-1")
    _order(sessions, settings, "13900000022", "O-FRIEND-1")  # the order event, retried
    _order(sessions, settings, "13900000022", "O-FRIEND-2")
    with sessions() as s:
        assert points.balance(s, sharer) == referrals.Rules.from_settings().referrer_points
        assert points.balance(s, friend) == referrals.Rules.from_settings().referred_points
        assert s.scalars(select(ReferralAttribution)).one().status == "qualified"


def test_self_referral_existing_customers_and_forged_codes_are_not_rewarded(
        chan_client: TestClient, sms_api: FakeSms, sessions: sessionmaker[Session],
        settings: Settings) -> None:
    sharer = _customer(sessions, settings, "C-SHARER", "13800000031")
    with sessions() as s:
        code = referrals.personal_code(s, sharer).code
        s.commit()
    # The sharer opens their own link.
    _sign_in(chan_client, sms_api, "13800000031", code)
    # A customer who has been buying for a month opens a friend's link.
    _order(sessions, settings, "13900000032", "O-OLD-1", days_ago=30)
    _sign_in(chan_client, sms_api, "13900000032", code)
    # An invite code nobody issued, typed into the URL: ignored, sign-in works.
    _sign_in(chan_client, sms_api, "13900000033", "FAKE1234")
    old = _customer_of(sessions, "13900000032")
    stranger = _customer_of(sessions, "13900000033")
    with sessions() as s:
        rows = {r.referred_id: (r.status, r.reason)
                for r in s.scalars(select(ReferralAttribution))}
        assert rows == {sharer: ("refused", "self: the sharer is the new customer"),
                        old: ("refused", referrals.EXISTING_REASON)}
        assert stranger not in rows
        assert points.balance(s, sharer) == 0 and points.balance(s, old) == 0
        assert s.scalars(select(Event).where(Event.customer_id == stranger)).all() == []
