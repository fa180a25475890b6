"""Internal codes never reach a person: the 360 page and the merge-review queue show event
types, consent channels, attribute keys, merge reasons, actors and sources by their Chinese
names (one table, siyu.kit.labels), and the API carries the names beside the codes."""

from __future__ import annotations

import datetime as dt
import html as htmllib
import re

import pytest
from sqlalchemy.orm import Session, sessionmaker

from siyu.config import Settings
from siyu.customers.service import upsert_customers
from siyu.events.service import ingest
from siyu.kit import labels
from tests.console.conftest import (  # noqa: F401  (console fixtures)
    Login,
    login,
    make_user,
    staff,
)
from tests.customers.test_console_merges import conflicts


def visible(page: str) -> str:
    """The text a person reads: tags, scripts and attribute values removed."""
    page = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S)
    return htmllib.unescape(re.sub(r"<[^>]+>", " ", page))


def demo_like_customer(sessions: sessionmaker[Session], settings: Settings) -> int:
    """A customer as the demo seeds them, then merged with a WeCom contact by an event."""
    now = dt.datetime.now(dt.UTC)
    with sessions() as s:
        kept = upsert_customers(s, [{
            "id": "HY1", "name": "李娜", "identities": [{"kind": "phone", "value": "13800138000"}],
            "attributes": {"family": "丈夫张伟也是会员", "goal": "控糖", "points": 3120,
                           "preferred_sku": "HY-PRO-01", "wechat_nickname": True},
            "consents": [{"channel": "app_push", "purpose": "marketing", "granted": True}],
        }], settings=settings).customer_ids[0]
        ingest(s, "events", [{"id": "w1", "type": "add_wecom_contact", "ts": now, "identities": [
            {"kind": "wecom_external_userid", "value": "wmABC"}]}], settings=settings,
            source="demo seed")
        ingest(s, "events", [{"id": "b1", "type": "member_bind", "ts": now, "identities": [
            {"kind": "phone", "value": "13800138000"},
            {"kind": "wecom_external_userid", "value": "wmABC"}]}], settings=settings,
            source="demo seed")
        s.commit()
    return kept


@pytest.mark.usefixtures("staff")
def test_the_360_page_names_codes_in_chinese(
        login: Login, sessions: sessionmaker[Session], settings: Settings) -> None:  # noqa: F811
    cid = demo_like_customer(sessions, settings)
    text = visible(login("admin").get(f"/customers/{cid}", follow_redirects=True).text)
    for code in ("member_bind", "app_push", "family", "goal", "preferred_sku",
                 "wechat_nickname", "shared identity", "demo seed", "system", "True"):
        assert not re.search(rf"(?<![\w-]){re.escape(code)}(?![\w-])", text), code
    for name in ("绑定会员", "App 推送", "家庭成员", "健康目标", "常购商品", "有微信昵称",
                 "共享身份标识「企业微信外部联系人」", "事件 · 演示数据"):
        assert name in text, name


def test_the_api_carries_labels_beside_codes(
        sessions: sessionmaker[Session], settings: Settings) -> None:
    from siyu.customers.service import get_customer_360
    cid = demo_like_customer(sessions, settings)
    with sessions() as s:
        view = get_customer_360(s, cid, show_pii=True)
    consent, = view["consents"]
    assert (consent["channel"], consent["channel_label"]) == ("app_push", "App 推送")
    assert consent["purpose_label"] == "营销"
    merge = view["merges"][0]
    assert merge["reason"].startswith("shared identity")  # stored as written
    assert merge["reason_label"].startswith("共享身份标识")


@pytest.mark.usefixtures("staff")
def test_the_merge_queue_names_its_source_in_chinese(
        login: Login, sessions: sessionmaker[Session], settings: Settings) -> None:  # noqa: F811
    conflicts(sessions, settings, 1)
    text = visible(login("admin").get("/merges/conflicts").text)
    assert "来源 客户资料 · 接口" in text and "customers api" not in text


def test_labels_name_each_stage_once_and_map_back() -> None:
    assert labels.code_for("lifecycle", "获取期") == "acquisition"
    assert labels.code_for("lifecycle", "acquisition") == "acquisition"
    assert labels.code_for("lifecycle", "引入期") is None
    assert labels.label("external_id", "identity") == "品牌客户号"
    assert labels.merge_reason("conflict 3 reviewed by admin") == "待审核 #3 经管理员确认合并"
    assert labels.label("contains", "kb_match") == "包含关键词"
