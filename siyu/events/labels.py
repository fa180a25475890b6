"""Chinese display names for order statuses and common event types (unknown types show as-is)."""

ORDER_STATUS_ZH: dict[str, str] = {
    "created": "待支付", "paid": "已支付", "shipped": "已发货", "delivered": "已签收",
    "completed": "已完成", "cancelled": "已取消", "refunded": "已退款",
    "payment_failed": "支付失败",
}

EVENT_TYPE_ZH: dict[str, str] = {
    "add_wecom_contact": "添加企业微信", "join_group": "加入社群", "view_product": "浏览商品",
    "add_to_cart": "加入购物车", "coupon_received": "领取优惠券", "coupon_used": "使用优惠券",
    "payment_failed": "支付失败", "delivery_delayed": "物流延误",
    "after_sales_request": "售后申请", "feedback": "评价反馈", "survey_response": "问卷回复",
    "share_product": "分享商品", "invite_friend": "邀请好友", "live_stream_view": "观看直播",
    "points_earned": "获得积分", "points_redeemed": "积分兑换", "app_login": "登录 App",
    "bind_phone": "绑定手机号",
    "oa_subscribe": "关注公众号", "oa_unsubscribe": "取消关注公众号", "oa_scan": "扫码（公众号）",
    "oa_menu_click": "点击公众号菜单", "oa_menu_view": "打开公众号菜单链接",
}


def order_status_zh(status: str) -> str:
    return ORDER_STATUS_ZH.get(status, status)


def event_type_zh(event_type: str) -> str:
    return EVENT_TYPE_ZH.get(event_type, event_type)
