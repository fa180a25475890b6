"""Group figures: set-based activity over windows, finding a group by chat id or name,
members with masked phones, members over time."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from siyu.config import Settings
from siyu.customers.models import Identity
from siyu.errors import InvalidInput, NotFound
from siyu.groups import service as groups
from siyu.groups.models import CustomerGroup
from tests.groups.conftest import member, store_group

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
DAY = dt.timedelta(days=1)


def _seed(db: Session, settings: Settings) -> None:
    store_group(db, settings, "wrA", "早餐打卡群", [
        member("advisor_chen", 1, NOW - 40 * DAY), member("wmA1", 2, NOW - 40 * DAY),
        member("wmA2", 2, NOW - 20 * DAY), member("wmA3", 2, NOW - 2 * DAY)],
        now=NOW - DAY)
    store_group(db, settings, "wrB", "宝妈营养交流群", [
        member("advisor_li", 1, NOW - 10 * DAY), member("wmB1", 2, NOW - 10 * DAY)],
        owner="advisor_li", now=NOW - DAY)
    # wmA2 left the first group today.
    store_group(db, settings, "wrA", "早餐打卡群", [
        member("advisor_chen", 1, NOW - 40 * DAY), member("wmA1", 2, NOW - 40 * DAY),
        member("wmA3", 2, NOW - 2 * DAY)], now=NOW - dt.timedelta(hours=1))
    db.flush()


def test_activity_counts_every_group_in_a_fixed_number_of_queries(
        db: Session, settings: Settings) -> None:
    _seed(db, settings)
    for n in range(5):  # more groups must not mean more queries
        store_group(db, settings, f"wrX{n}", f"群 {n}", [member(f"wmX{n}", 2, NOW - DAY)],
                    now=NOW - DAY)
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    bind = db.get_bind()
    event.listen(bind, "before_cursor_execute", count)
    try:
        rows = {r["chat_id"]: r for r in groups.activity(db, days=7, windows=(7, 30),
                                                         now=NOW)}
    finally:
        event.remove(bind, "before_cursor_execute", count)
    assert len(statements) <= 3
    a, b = rows["wrA"], rows["wrB"]
    assert (a["members"], a["external"], a["employees"]) == (2, 2, 1)
    assert (a["joined_7d"], a["left_7d"], a["joined_30d"], a["left_30d"]) == (1, 1, 2, 1)
    assert (a["joined"], a["left"]) == (a["joined_7d"], a["left_7d"])
    assert (b["members"], b["joined_7d"], b["joined_30d"], b["owner"]) == (1, 0, 1,
                                                                           "advisor_li")
    # Joining is not "doing anything else": nobody is active yet.
    assert a["active"] == 0 and a["active_share"] == 0


def test_find_a_group_by_chat_id_or_name(db: Session, settings: Settings) -> None:
    _seed(db, settings)
    assert groups.find_group(db, "wrB").name == "宝妈营养交流群"
    assert groups.find_group(db, "早餐打卡群").chat_id == "wrA"
    with pytest.raises(NotFound, match="no customer group"):
        groups.find_group(db, "没有这个群")
    store_group(db, settings, "wrA2", "早餐打卡群", [member("wmZ", 2, NOW)])
    with pytest.raises(InvalidInput, match="wrA, wrA2"):
        groups.find_group(db, "早餐打卡群")


def test_members_with_masked_phones_and_the_history(db: Session, settings: Settings) -> None:
    _seed(db, settings)
    cid = db.scalar(select(Identity.customer_id).where(Identity.value == "wmA1"))
    db.add(Identity(customer_id=cid, kind="phone", value="+8613800138000"))
    db.flush()
    group = db.scalars(select(CustomerGroup).where(CustomerGroup.chat_id == "wrA")).one()
    rows = {m["userid"]: m for m in groups.members(db, group, show_pii=False)}
    assert rows["wmA1"]["phone"] == "138****8000" and rows["wmA1"]["customer_id"] == cid
    assert rows["advisor_chen"]["kind"] == "employee"
    assert rows["wmA2"]["left_at"] is not None
    shown = {m["userid"]: m for m in groups.members(db, group, show_pii=True)}
    assert shown["wmA1"]["phone"] == "13800138000"
    assert "wmA2" not in {m["userid"] for m in groups.members(db, group, show_pii=False,
                                                              include_left=False)}
    history = groups.member_history(db, group, days=45, now=NOW)
    assert len(history) == 45
    counts = [n for _, n in history]
    assert counts[0] == 0 and max(counts) == 3 and counts[-1] == 2
