"""The points REST routes: balance, expiring points and history; awards and redemptions
once per key; 409 with Chinese reasons and nothing written; 422 naming the field; the
catalogue; the liability report; keys without the scope are refused."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from siyu.auth.service import create_api_key
from siyu.points import service as points
from tests.points.test_expiry import expiries
from tests.points.test_ledger import customer
from tests.points.test_rewards import counts


def test_award_redeem_and_read_a_customers_points(client: TestClient,
                                                  sessions: sessionmaker[Session],
                                                  one_year: None) -> None:
    this_year = dt.datetime.now(dt.UTC).year
    with sessions() as s:
        cid = customer(s)
        points.add_entry(s, cid, 120, source="order", key="o-last-year",
                         at=dt.datetime(this_year - 1, 6, 1, tzinfo=dt.UTC),
                         reason="购物积分，联系 13800138000")
        s.commit()
    base = f"/api/v1/customers/{cid}/points"
    award = client.post(f"{base}/awards", json={"amount": 500, "reason": "客服补偿",
                                                 "key": "comp-1"})
    assert award.status_code == 200, award.text
    assert (award.json()["created"], award.json()["balance"]) == (True, 620)
    again = client.post(f"{base}/awards", json={"amount": 500, "key": "comp-1"})
    assert (again.json()["created"], again.json()["balance"]) == (False, 620)

    reward = client.post("/api/v1/points/rewards", json={"name": "50 元优惠券", "cost": 500,
                                                         "stock": 1})
    assert reward.status_code == 200, reward.text
    rid = reward.json()["id"]
    first = client.post(f"{base}/redemptions", json={"reward_id": rid, "key": "req-1"})
    assert first.status_code == 200, first.text
    assert (first.json()["balance"], first.json()["reward"]) == (120, "50 元优惠券")
    replay = client.post(f"{base}/redemptions", json={"reward": "50 元优惠券", "key": "req-1"})
    assert replay.json()["created"] is False and replay.json()["balance"] == 120

    view = client.get(base).json()
    assert view["balance"] == 120 and view["blocked"] is False
    # FIFO spends the oldest first: the 500 redeemed took last year's 120 and 380 of the
    # award, so nothing expires at the end of this year
    assert view["expiring"]["points"] == 0
    assert view["expiring"]["last_day"] == f"{this_year}-12-31"
    labels = [h["source_label"] for h in view["history"]]
    assert labels == ["积分兑换", "人工调整", "购物积分"]
    assert view["history"][2]["reason"] == "购物积分，联系 13800138000"  # a full-access key
    assert client.get("/api/v1/points/rewards").json()["items"][0]["stock"] == 0
    assert client.get("/api/v1/points/redemptions").json()["items"][0]["reward"] == "50 元优惠券"


def test_refusals_answer_409_in_chinese_and_write_nothing(client: TestClient,
                                                          sessions: sessionmaker[Session]
                                                          ) -> None:
    with sessions() as s:
        cid = customer(s)
        points.add_entry(s, cid, 300, source="manual", key="m1")
        points.add_reward(s, "保温杯", 200, stock=1)
        points.add_reward(s, "大礼包", 1000)
        s.commit()
        before = counts(s)
    base = f"/api/v1/customers/{cid}/points"
    short = client.post(f"{base}/redemptions", json={"reward": "大礼包", "key": "k1"})
    assert short.status_code == 409
    assert short.json()["error"] == "insufficient_points"
    assert short.json()["message"] == "积分不足：需要 1000 积分，当前只有 300 积分"
    assert client.post(f"{base}/redemptions", json={"reward": "保温杯", "key": "k2"}
                       ).status_code == 200
    with sessions() as s:
        after_one = counts(s)
    gone = client.post(f"{base}/redemptions", json={"reward": "保温杯", "key": "k3"})
    assert gone.status_code == 409 and gone.json()["error"] == "reward_out_of_stock"
    assert gone.json()["message"] == "「保温杯」已兑完，库存不足"
    deduct = client.post(f"{base}/awards", json={"amount": -500, "key": "d1"})
    assert deduct.status_code == 409 and deduct.json()["message"].startswith("积分不足")
    unknown = client.post(f"{base}/redemptions", json={"reward": "没有这个", "key": "k4"})
    assert unknown.status_code == 404 and "没有名为「没有这个」的可兑换奖品" in unknown.text
    with sessions() as s:
        assert counts(s) == after_one and after_one[1] == before[1] + 1
        assert points.balance(s, cid) == 100


@pytest.mark.parametrize(("path", "body", "field"), [
    ("awards", {"amount": 0, "key": "k"}, "amount"),
    ("awards", {"amount": 10}, "key"),
    ("awards", {"amount": 10**9, "key": "k"}, "amount"),
    ("redemptions", {"key": "k"}, "reward"),
    ("redemptions", {"reward": "a", "reward_id": 1, "key": "k"}, "reward"),
    ("redemptions", {"reward_id": 0, "key": "k"}, "reward_id"),
])
def test_bad_input_answers_422_naming_the_field(client: TestClient,
                                                sessions: sessionmaker[Session], path: str,
                                                body: dict[str, object], field: str) -> None:
    with sessions() as s:
        cid = customer(s)
        s.commit()
    bad = client.post(f"/api/v1/customers/{cid}/points/{path}", json=body)
    assert bad.status_code == 422
    assert field in str(bad.json()["details"])


def test_the_catalogue_and_stock_changes(client: TestClient) -> None:
    made = client.post("/api/v1/points/rewards", json={"name": "试用装", "cost": 100}).json()
    assert made["stock"] is None
    capped = client.patch(f"/api/v1/points/rewards/{made['id']}", json={"stock": 5})
    assert capped.json()["stock"] == 5 and capped.json()["cost"] == 100
    priced = client.patch(f"/api/v1/points/rewards/{made['id']}", json={"cost": 80}).json()
    assert (priced["cost"], priced["stock"]) == (80, 5)
    unlimited = client.patch(f"/api/v1/points/rewards/{made['id']}", json={"stock": None})
    assert unlimited.json()["stock"] is None
    assert client.patch("/api/v1/points/rewards/999999", json={"cost": 5}).status_code == 404
    bad = client.post("/api/v1/points/rewards", json={"name": "", "cost": 1})
    assert bad.status_code == 422 and "name" in str(bad.json()["details"])


def test_liability_and_who_may_call(client: TestClient, sessions: sessionmaker[Session]
                                    ) -> None:
    with sessions() as s:
        a, b = customer(s), customer(s)
        points.add_entry(s, a, 2500, source="manual", key="m1", reason="补偿 13800138000")
        points.add_entry(s, b, -40, source="order_refund", key="x", allow_negative_balance=True)
        read_key = create_api_key(s, "reader", scopes=["read"]).key
        s.commit()
    report = client.get("/api/v1/points/liability").json()
    assert (report["outstanding"], report["value_yuan"], report["holders"],
            report["in_debt"]) == (2500, 25.0, 1, 1)
    assert client.get(f"/api/v1/customers/{a}/points",
                      headers={"Authorization": "Bearer nope"}).status_code == 401
    reader = {"Authorization": f"Bearer {read_key}"}
    masked = client.get(f"/api/v1/customers/{a}/points", headers=reader)
    assert masked.status_code == 200
    assert masked.json()["history"][0]["reason"] == "补偿 138****8000"
    assert client.post(f"/api/v1/customers/{a}/points/awards", headers=reader,
                       json={"amount": 5, "key": "r"}).status_code == 403
    assert client.get("/api/v1/customers/999999/points").status_code == 404
    with sessions() as s:
        assert points.balance(s, a) == 2500
        assert expiries(s, a) == []
