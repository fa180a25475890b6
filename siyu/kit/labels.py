"""One place for the Chinese display names people see: event types, channels, consent
purposes, identity kinds, attribute keys, lifecycle stages, audiences, bot actions, hand-off
reasons, knowledge-base match modes, roles and statuses.

The console's ``label`` filter, the API's ``*_label`` fields, exports and the rule language
all read these tables, so a concept has one name across the product. Codes are what is
stored; :func:`code_for` maps a display name back to its code (the rule language accepts
either). Unknown codes show as themselves.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType

LIFECYCLE: tuple[tuple[str, str], ...] = (
    ("acquisition", "获取期"),
    ("growth", "成长期"),
    ("maturity", "成熟期"),
    ("decline", "衰退期"),
    ("churned", "流失期"),
    ("reactivated", "回流期"),
)
AUDIENCES: tuple[tuple[str, str], ...] = (
    ("mainstream", "主流人群"),
    ("pioneer", "先锋人群"),
    ("seed", "种子人群"),
    ("potential", "潜在人群"),
    ("influencer", "影响人群"),
    ("follower", "追随人群"),
    ("ideal", "理想人群"),
)
IDENTITY_KINDS: tuple[tuple[str, str], ...] = (
    ("phone", "手机号"),
    ("email", "邮箱"),
    ("wecom_userid", "企业微信成员账号"),
    ("wecom_external_userid", "企业微信外部联系人"),
    ("wechat_openid", "微信 OpenID"),
    ("wechat_unionid", "微信 UnionID"),
    ("app_user_id", "App 用户账号"),
    ("external_id", "品牌客户号"),
    ("voiceprint_id", "声纹"),
)
CHANNELS: tuple[tuple[str, str], ...] = (
    ("wecom", "企业微信"), ("wechat", "微信"), ("sms", "短信"), ("app", "App"),
    ("app_push", "App 推送"), ("web", "网站"), ("webchat", "网页聊天"),
    ("miniprogram", "小程序"), ("official_account", "公众号"), ("oa", "公众号"),
    ("store", "门店"), ("tmall", "天猫"), ("jd", "京东"), ("douyin", "抖音"),
    ("phone", "电话"), ("email", "邮件"), ("referral", "老客推荐"), ("ads", "广告投放"),
)
CONSENT_PURPOSES: tuple[tuple[str, str], ...] = (
    ("marketing", "营销"), ("service", "服务"), ("survey", "调研"),
)
EVENT_TYPES: tuple[tuple[str, str], ...] = (
    ("add_wecom_contact", "添加企业微信"), ("join_group", "加入社群"),
    # WeCom's change_external_contact callback, as wecom_<ChangeType>
    ("wecom_add_external_contact", "添加企业微信顾问"),
    ("wecom_add_half_external_contact", "免验证添加企业微信顾问"),
    ("wecom_edit_external_contact", "企业微信客户资料变更"),
    ("wecom_del_external_contact", "顾问删除企业微信客户"),
    ("wecom_del_follow_user", "客户删除企业微信顾问"),
    ("view_product", "浏览商品"), ("add_to_cart", "加入购物车"),
    ("coupon_received", "领取优惠券"), ("coupon_used", "使用优惠券"),
    ("payment_failed", "支付失败"), ("delivery_delayed", "物流延误"),
    ("after_sales_request", "售后申请"), ("feedback", "评价反馈"),
    ("survey_response", "问卷回复"), ("share_product", "分享商品"),
    ("invite_friend", "邀请好友"), ("invite_accepted", "接受好友邀请"),
    ("content_clicked", "点击内容"),
    ("live_stream_view", "观看直播"),
    ("points_earned", "获得积分"), ("points_redeemed", "积分兑换"),
    ("app_login", "登录 App"), ("bind_phone", "绑定手机号"), ("member_bind", "绑定会员"),
    ("order_status_changed", "订单状态变更"),
    ("oa_subscribe", "关注公众号"), ("oa_unsubscribe", "取消关注公众号"),
    ("oa_scan", "扫码（公众号）"), ("oa_menu_click", "点击公众号菜单"),
    ("oa_menu_view", "打开公众号菜单链接"), ("phone_call", "电话来电"),
    ("journey_stage_changed", "旅程阶段变化"), ("scenario_entered", "进入场景"),
    ("scenario_exited", "离开场景"), ("sms_reply", "短信回复"), ("sms_status", "短信回执"),
    ("appointment_booked", "预约成功"), ("appointment_confirmed", "预约已确认"),
    ("appointment_rescheduled", "预约改期"), ("appointment_cancelled", "预约取消"),
    ("appointment_attended", "预约到店"), ("appointment_no_show", "预约未到店"),
    ("appointment_reminder_due", "预约提醒"),
    ("complaint_resolved", "投诉已解决"),
)
ORDER_STATUSES: tuple[tuple[str, str], ...] = (
    ("created", "待支付"), ("paid", "已支付"), ("shipped", "已发货"), ("delivered", "已签收"),
    ("completed", "已完成"), ("cancelled", "已取消"), ("refunded", "已退款"),
    ("payment_failed", "支付失败"),
)
ATTRIBUTE_KEYS: tuple[tuple[str, str], ...] = (
    ("family", "家庭成员"), ("goal", "健康目标"), ("points", "积分"),
    ("preferred_sku", "常购商品"), ("wechat_nickname", "有微信昵称"), ("member_since", "入会日期"),
)
INTENTS: tuple[tuple[str, str], ...] = (
    ("complaint", "投诉"), ("greeting", "问候"), ("order_status", "订单状态"),
    ("logistics", "物流查询"), ("refund", "退款"), ("handoff", "转人工"),
    ("payment", "支付问题"), ("after_sales", "售后"), ("product", "商品咨询"),
    ("unknown", "未识别"),
)
BOT_ACTIONS: tuple[tuple[str, str], ...] = (
    ("order_status", "查询订单状态"), ("payment_help", "支付问题处理"),
    ("answer", "回答"), ("faq", "回答常见问题"),
    ("handoff", "转人工"), ("clarify", "请客户说明"), ("greet", "问候"),
    ("book_appointment", "预约顾问服务"), ("move_appointment", "预约改期"),
    ("cancel_appointment", "取消预约"), ("points_balance", "查询积分"),
    ("points_checkin", "签到领积分"),
)
POINTS_SOURCES: tuple[tuple[str, str], ...] = (
    ("order", "购物积分"), ("order_refund", "订单退款收回"), ("redeem", "积分兑换"),
    ("manual", "人工调整"), ("referral", "邀请好友"), ("playbook", "运营活动"),
    ("opening", "期初积分"), ("expiry", "积分过期"), ("checkin", "每日签到"),
    ("survey", "问卷奖励"), ("review", "评价奖励"),
)
"""Where a points ledger entry came from (``points_entries.source``)."""
HANDOFF_REASONS: tuple[tuple[str, str], ...] = (
    ("low_confidence", "机器人没有把握（置信度低）"), ("requested", "客户要求转人工"),
    ("complaint", "客户投诉"), ("negative", "客户情绪负面"), ("repeated", "问题反复未解决"),
)
KB_MATCH_MODES: tuple[tuple[str, str], ...] = (
    ("contains", "包含关键词"), ("regex", "正则表达式"), ("exact", "完全一致"),
)
EXPORT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("customer_id", "客户编号"), ("external_id", "品牌客户号"), ("name", "姓名"),
    ("phone", "手机号"),
)
"""Column headers of the CSV files people open (segment exports)."""
ROLES: tuple[tuple[str, str], ...] = (
    ("admin", "管理员"), ("operator", "运营"), ("agent", "客服"), ("analyst", "分析师"),
)
MISC: tuple[tuple[str, str], ...] = (
    ("male", "男"), ("female", "女"), ("unknown", "未知"), ("active", "正常"),
    ("merged", "已合并"), ("order", "订单"), ("event", "事件"), ("merge", "合并"),
    ("system", "系统"), ("csat", "CSAT 满意度"), ("nps", "NPS 净推荐值"),
    ("ces", "CES 费力度"), ("birthday", "生日"),
)

TABLES: Mapping[str, tuple[tuple[str, str], ...]] = MappingProxyType({
    "lifecycle": LIFECYCLE, "audience": AUDIENCES, "identity": IDENTITY_KINDS,
    "channel": CHANNELS, "purpose": CONSENT_PURPOSES, "event": EVENT_TYPES,
    "order_status": ORDER_STATUSES, "attribute": ATTRIBUTE_KEYS, "intent": INTENTS,
    "action": BOT_ACTIONS, "reason": HANDOFF_REASONS, "kb_match": KB_MATCH_MODES,
    "role": ROLES, "misc": MISC, "column": EXPORT_COLUMNS, "points_source": POINTS_SOURCES,
})

_ORDER = ("misc", "role", "identity", "channel", "purpose", "event", "order_status",
          "lifecycle", "audience", "attribute", "kb_match")
ALL: Mapping[str, str] = MappingProxyType(
    {code: name for table in _ORDER for code, name in TABLES[table]})
"""Every code's display name, for places that do not know the table (the console filter).
Earlier tables win on a clash; intents, actions and reasons must be named by table."""


def label(code: str | None, table: str | None = None) -> str:
    """The display name of ``code`` (from ``table`` when given); the code itself if unknown."""
    if code is None or code == "":
        return "—"
    if table is not None:
        return dict(TABLES[table]).get(code, code)
    return ALL.get(code, code)


def code_for(table: str, value: str) -> str | None:
    """The stored code written as ``value`` (a code or a display name), or None if neither."""
    for code, name in TABLES[table]:
        if value in (code, name):
            return code
    return None


def attribute_value(key: str, value: object) -> str:
    """An attribute value as shown: booleans as 是/否, everything else as text."""
    if isinstance(value, bool) or value in ("True", "False"):
        return "是" if value in (True, "True") else "否"
    return str(value)


_SOURCE_WORDS: Mapping[str, str] = MappingProxyType({
    "customers": "客户资料", "orders": "订单", "events": "事件", "demo seed": "演示数据",
    "api": "接口", "import": "文件导入", "referral": "推荐关系", "wecom": "企业微信",
    "oa": "公众号", "webchat": "网页聊天", "merge-undo": "撤销合并", "manual": "手动",
    "rule": "规则", "scenario": "场景", "playbook": "营销剧本", "file": "文件",
})
_SHARED_RE = re.compile(r"^shared identity (\S+) \((.*)\)$")
_REVIEWED_RE = re.compile(r"^conflict (\d+) reviewed by (.+)$")


def source(value: str | None) -> str:
    """Where data came from, as shown: ``orders demo seed`` → 订单 · 演示数据."""
    if not value:
        return "—"
    if value in _SOURCE_WORDS:
        return _SOURCE_WORDS[value]
    kind, _, rest = value.partition(" ")
    if kind in _SOURCE_WORDS and rest:
        return f"{_SOURCE_WORDS[kind]} · {_SOURCE_WORDS.get(rest, rest)}"
    return value


def merge_reason(reason: str | None) -> str:
    """A stored merge reason in words: ``shared identity phone (events demo seed)`` →
    共享身份标识「手机号」（来源：事件 · 演示数据）."""
    if not reason:
        return "—"
    if m := _SHARED_RE.match(reason):
        return f"共享身份标识「{label(m.group(1), 'identity')}」（来源：{source(m.group(2))}）"
    if m := _REVIEWED_RE.match(reason):
        return f"待审核 #{m.group(1)} 经{label(m.group(2), 'role')}确认合并"
    return reason
