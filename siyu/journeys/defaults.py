"""The default journey stage rules and the demo brand's after-sales scenarios (seed 001).

Stage rules are tried from the last stage of the journey to the first; a customer is at the
first stage whose rule holds, and at 加微 (add_contact, everyone in the private domain)
when none does. Each rule is in the segment language and can be replaced with
``siyu journeys apply FILE``.
"""

from __future__ import annotations

from typing import Any

FIRST_STAGE = "add_contact"

STAGE_RULES: tuple[tuple[str, str], ...] = (
    # 售后: bought, and the latest purchase is a week old (it has arrived), or asked for
    # after-sales service since.
    ("after_sales", 'orders >= 1 and (orders(last 7d) = 0 or event("after_sales_request", '
                    'last 30d) >= 1)'),
    # 转化: has bought (within the last week).
    ("converted", "orders >= 1"),
    # 活跃: browses, collects coupons or watches live streams (last 30 days).
    ("active", 'event("view_product", last 30d) >= 1 or event("add_to_cart", last 30d) >= 1 '
               'or event("live_stream_view", last 30d) >= 1 '
               'or event("coupon_received", last 30d) >= 1'),
    # 留存: still in the private domain a week after joining it.
    ("retained", 'tenure_days >= 7 and (has(wecom_external_userid) or '
                 'event("join_group") >= 1)'),
    # 入群: joined a customer group.
    ("join_group", 'event("join_group") >= 1'),
)

COMPLAINT_TAG = "投诉中"
"""Carried while a customer is in 投诉; marketing (playbooks) leaves them alone meanwhile."""

DEMO_SCENARIOS: tuple[dict[str, Any], ...] = (
    {"name": "食用周期结束", "stage": "售后",
     "rule": "days_until_repurchase between -7 and 3",
     "description": "最近一次购买的商品按食用周期与数量将在 3 天内吃完（或已吃完不足 7 天）："
                    "推荐原商品的组合装"},
    {"name": "帮亲友购买", "stage": "售后",
     "rule": 'intent("帮亲友购买", last 14d) or orders_for_others(last 30d) >= 1',
     "description": "想给家人朋友也买一份，或订单寄给了别人：1V1 私聊邀请添加亲友，成功后赠送积分"},
    {"name": "换购", "stage": "售后", "rule": 'intent("换购", last 14d)',
     "description": "想换一款更适合自己的产品：顾问推荐替代商品"},
    {"name": "退换货", "stage": "售后",
     "rule": 'intent("退货", last 14d) or intent("换货", last 14d) or '
             'intent("退款进度", last 14d) or intent("商品破损", last 14d) or '
             'event("after_sales_request", last 14d) >= 1',
     "description": "申请退货、换货或退款，或收到的商品破损：售后专员跟进"},
    {"name": "投诉", "stage": "售后",
     "rule": '(intent("投诉", last 30d) or event("complaint", last 30d) >= 1) and '
             'event("complaint_resolved", last 30d) = 0',
     "tag": COMPLAINT_TAG,
     "description": "近 30 天投诉且尚未解决：专人安抚处理，期间暂停一切营销"},
)
