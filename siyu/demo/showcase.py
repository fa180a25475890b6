"""Hand-written showcase customers with fixed identities (documented in
``siyu.demo.generator``). Their histories are built relative to ``now``."""

from __future__ import annotations

import datetime as dt
from typing import Any

from siyu.demo import catalog
from siyu.demo.chunk import Chunk
from siyu.demo.world import app_user_id, external_id

VIP_PHONE = "+8613800138000"
ANGRY_PHONE = "+8613912345678"
LAPSED_PHONE = "+8613500135000"
HUSBAND_PHONE = "+8613600136000"
WIFE_PHONE = "+8613700137000"
RESERVED_PHONES = {VIP_PHONE, ANGRY_PHONE, LAPSED_PHONE, HUSBAND_PHONE, WIFE_PHONE}
VIP_ACQUIRED_DAYS_AGO = 700
_P = {p.sku: p for p in catalog.PRODUCTS}


def _naive(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC).replace(tzinfo=None)


class _Builder:
    def __init__(self, out: Chunk, now: dt.datetime):
        self.out = out
        self.now = now
        self.n_orders = 0
        self.n_events = 0

    def ago(self, days: float = 0.0, minutes: float = 0.0) -> dt.datetime:
        return _naive(self.now - dt.timedelta(days=days, minutes=minutes))

    def customer(self, cid: int, name: str, gender: str, birthday: dt.date, city: str,
                 tier: str, channel: str, advisor: int | None, since_days: float,
                 **attributes: Any) -> None:
        at = self.ago(since_days)
        self.out.customers.append({
            "id": cid, "name": name, "gender": gender, "birthday": birthday, "city": city,
            "tier": tier, "acquisition_channel": channel, "advisor_id": advisor,
            "attributes": attributes, "status": "active", "merged_into_id": None,
            "created_at": at, "updated_at": self.ago(),
        })

    def identity(self, cid: int, kind: str, value: str, since_days: float,
                 verified: bool = True) -> None:
        self.out.identities.append({"customer_id": cid, "kind": kind, "value": value,
                                    "verified": verified, "created_at": self.ago(since_days)})

    def order(self, cid: int, ts: dt.datetime, items: list[tuple[str, int]], *,
              status: str = "completed", channel: str = "miniprogram",
              discount: float = 0.0) -> str:
        self.n_orders += 1
        order_id = f"SC{cid:02d}{self.n_orders:05d}"
        rows = [{"sku": sku, "name": _P[sku].name, "quantity": q, "price": _P[sku].price}
                for sku, q in items]
        amount = round(sum(_P[sku].price * q for sku, q in items) - discount, 2)
        self.out.orders.append({
            "id": order_id, "customer_id": cid, "ts": ts, "amount": amount, "currency": "CNY",
            "status": status, "channel": channel, "items": rows, "created_at": ts,
        })
        return order_id

    def event(self, cid: int, ts: dt.datetime, type_: str, channel: str,
              **properties: Any) -> None:
        self.n_events += 1
        self.out.events.append({
            "id": f"sc{cid:02d}{self.n_events:05d}", "customer_id": cid, "type": type_,
            "ts": ts, "channel": channel, "properties": properties, "created_at": ts,
        })

    def consent(self, cid: int, channel: str, purpose: str, granted: bool, ts: dt.datetime,
                source: str) -> None:
        self.out.consents.append({"customer_id": cid, "channel": channel, "purpose": purpose,
                                  "granted": granted, "at": ts, "source": source,
                                  "created_at": ts})

    def tag(self, cid: int, tag_id: int, ts: dt.datetime) -> None:
        self.out.tags.append({"customer_id": cid, "tag_id": tag_id, "source": "manual",
                              "created_at": ts})


def build_showcase(now: dt.datetime, advisors: list[tuple[int, str]],
                   tag_ids: dict[str, int]) -> tuple[Chunk, list[dict[str, Any]]]:
    """Rows of the five showcase customers (ids 1-5), and the order that, ingested at the
    end of the seed, puts the 张伟 / 李娜 pair in the merge-conflict queue."""
    out = Chunk()
    b = _Builder(out, now)
    chen_id, chen = advisors[0]
    liu_id, liu = advisors[1]

    # 1. 林晓雯: loyal VIP, two years of monthly protein + oats, a friend-bringer.
    vip = 1
    b.customer(vip, "林晓雯", "female", dt.date(1990, 5, 12), "上海", "黑金", "小程序", chen_id,
               VIP_ACQUIRED_DAYS_AGO, points=8620, preferred_sku="HY-WHEY-01",
               family="已婚，一个女儿（5 岁）", goal="增肌减脂")
    for kind, value in (("external_id", external_id(vip)), ("phone", VIP_PHONE),
                        ("wechat_openid", "oHYdemoLinXiaowen000000000001"),
                        ("wechat_unionid", "oUdemoLinXiaowen0000000000001"),
                        ("app_user_id", app_user_id(vip)),
                        ("email", "xiaowen.lin@example.com")):
        b.identity(vip, kind, value, VIP_ACQUIRED_DAYS_AGO)
    b.identity(vip, "wecom_external_userid", "wmdemoLinXiaowen00000000000001", 690, False)
    b.event(vip, b.ago(690), "add_wecom_contact", "wecom", advisor_id=chen_id, advisor=chen,
            source="包裹卡")
    b.event(vip, b.ago(689), "join_group", "wecom", group="禾源 VIP 会员群")
    day = VIP_ACQUIRED_DAYS_AGO - 0.3
    k = 0
    while day > 30:
        items = [("HY-WHEY-01", 1), ("HY-OAT-01", 2)]
        if k % 3 == 2:
            items.append(("HY-COL-01", 1))
        ts = b.ago(day)
        order_id = b.order(vip, ts, items, channel="app" if k % 2 else "miniprogram")
        b.event(vip, ts + dt.timedelta(days=7), "points_earned", "app", points=500,
                order_id=order_id)
        day -= 28 + (k * 7) % 6
        k += 1
    shipped = b.ago(4, 300)
    order_id = b.order(vip, shipped, [("HY-WHEY-01", 2), ("HY-NUT-01", 1)], status="shipped")
    b.event(vip, b.ago(1, 120), "delivery_delayed", "miniprogram", order_id=order_id,
            carrier="顺丰速运", parcel_no="SF1402938475612", days_late=2)
    failed = b.ago(minutes=3)
    order_id = b.order(vip, failed, [("HY-COL-01", 2), ("HY-GIFT-02", 1)],
                       status="payment_failed", channel="app")
    b.event(vip, b.ago(minutes=6), "view_product", "app", sku="HY-COL-01")
    b.event(vip, failed, "payment_failed", "app", order_id=order_id, reason="银行卡余额不足",
            amount=776.0)
    b.event(vip, b.ago(200), "feedback", "wecom", sku="HY-WHEY-01", score=5,
            text="陈静顾问每次都提醒我补货，蛋白粉冲着很顺滑，已经推荐给健身房的朋友了")
    b.event(vip, b.ago(120), "survey_response", "miniprogram", survey="nps", score=10)
    b.event(vip, b.ago(60), "share_product", "miniprogram", sku="HY-WHEY-01")
    for channel in ("sms", "wecom", "app_push"):
        for purpose in ("service", "marketing"):
            b.consent(vip, channel, purpose, True, b.ago(VIP_ACQUIRED_DAYS_AGO), "小程序注册")
    b.tag(vip, tag_ids["高价值"], b.ago(400))
    b.tag(vip, tag_ids["健身人群"], b.ago(650))

    # 2. 王建国: a good customer now angry: late, damaged gift box, no reply, complaint.
    angry = 2
    b.customer(angry, "王建国", "male", dt.date(1978, 9, 3), "北京", "金卡", "小程序", liu_id,
               420, points=3120, preferred_sku="HY-PRO-01")
    for kind, value in (("external_id", external_id(angry)), ("phone", ANGRY_PHONE),
                        ("wechat_openid", "oHYdemoWangJianguo00000000002")):
        b.identity(angry, kind, value, 420)
    b.identity(angry, "wecom_external_userid", "wmdemoWangJianguo0000000000002", 400, False)
    b.event(angry, b.ago(400), "add_wecom_contact", "wecom", advisor_id=liu_id, advisor=liu,
            source="扫码添加")
    for i, day in enumerate(range(419, 40, -45)):
        b.order(angry, b.ago(day + 0.4), [("HY-PRO-01", 1), ("HY-NUT-01", 1 + i % 2)])
    order_id = b.order(angry, b.ago(12, 200), [("HY-COL-01", 2), ("HY-GIFT-02", 1)],
                       discount=50.0)
    b.event(angry, b.ago(9), "delivery_delayed", "miniprogram", order_id=order_id,
            carrier="中通快递", parcel_no="ZT7730194628501", days_late=4)
    b.event(angry, b.ago(6, 30), "after_sales_request", "wecom", order_id=order_id,
            kind="complaint",
            text="礼盒外包装破损，两瓶胶原蛋白饮漏液，联系客服三天没人回复，要求全额退款！")
    b.event(angry, b.ago(5, 100), "feedback", "miniprogram", order_id=order_id,
            sku="HY-COL-01", score=1, text="快递晚了四天，东西还是坏的，客服一直不回，太失望了")
    b.event(angry, b.ago(5, 90), "survey_response", "miniprogram", survey="nps", score=1)
    b.consent(angry, "sms", "service", True, b.ago(420), "小程序注册")
    b.consent(angry, "sms", "marketing", True, b.ago(420), "小程序注册")
    b.consent(angry, "sms", "marketing", False, b.ago(5, 80), "用户退订")
    b.tag(angry, tag_ids["投诉中"], b.ago(6))
    b.tag(angry, tag_ids["送礼需求"], b.ago(12))

    # 3. 赵敏: bought a meal shake every three weeks for a year, silent for ~200 days.
    lapsed = 3
    b.customer(lapsed, "赵敏", "female", dt.date(1994, 2, 20), "杭州", "银卡", "企业微信",
               liu_id, 600, points=1450, preferred_sku="HY-MEAL-01", goal="产后减重")
    for kind, value in (("external_id", external_id(lapsed)), ("phone", LAPSED_PHONE),
                        ("wecom_external_userid", "wmdemoZhaoMin000000000000000003")):
        b.identity(lapsed, kind, value, 600)
    b.event(lapsed, b.ago(600), "add_wecom_contact", "wecom", advisor_id=liu_id, advisor=liu,
            source="直播间")
    for day in range(595, 200, -21):
        b.order(lapsed, b.ago(day), [("HY-MEAL-01", 1)], channel="wecom")
    b.event(lapsed, b.ago(40), "view_product", "miniprogram", sku="HY-MEAL-01")
    b.consent(lapsed, "wecom", "marketing", True, b.ago(600), "企业微信")
    b.tag(lapsed, tag_ids["宝妈"], b.ago(500))

    # 4 and 5. 张伟 and his wife 李娜: she orders with his phone (see the conflict order).
    husband, wife = 4, 5
    b.customer(husband, "张伟", "male", dt.date(1986, 11, 2), "广州", "金卡", "App", None,
               500, points=2980, preferred_sku="HY-WHEY-01", family="妻子李娜也是会员")
    for kind, value in (("external_id", external_id(husband)), ("phone", HUSBAND_PHONE),
                        ("app_user_id", app_user_id(husband))):
        b.identity(husband, kind, value, 500)
    for day in range(498, 10, -40):
        b.order(husband, b.ago(day), [("HY-WHEY-01", 1)], channel="app")
    b.customer(wife, "李娜", "female", dt.date(1988, 4, 16), "广州", "银卡", "朋友推荐", None,
               300, points=900, preferred_sku="HY-COL-01")
    for kind, value in (("external_id", external_id(wife)), ("phone", WIFE_PHONE),
                        ("wechat_openid", "oHYdemoLiNa0000000000000000005")):
        b.identity(wife, kind, value, 300)
    for day in range(298, 20, -50):
        b.order(wife, b.ago(day), [("HY-COL-01", 1), ("HY-SNK-02", 1)])
    out.referrals.append({"referrer_id": husband, "referred_id": wife, "at": b.ago(300),
                          "channel": "invite_friend", "created_at": b.ago(300)})
    b.event(husband, b.ago(300, 60), "invite_friend", "app", invitee_id=wife,
            reward_points=200)
    conflict = [{
        "id": "SC0500001X", "customer_id": external_id(wife), "ts": b.ago(2, 45),
        "amount": 478.0, "status": "completed", "channel": "miniprogram",
        "identities": [{"kind": "phone", "value": HUSBAND_PHONE, "verified": True}],
        "items": [{"sku": "HY-COL-01", "name": _P["HY-COL-01"].name, "quantity": 2,
                   "price": 239.0}],
    }]
    return out, conflict
