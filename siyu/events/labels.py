"""Chinese display names for order statuses and event types (unknown types show as-is);
the names themselves live in :mod:`siyu.kit.labels`."""

from siyu.kit.labels import EVENT_TYPES, ORDER_STATUSES

ORDER_STATUS_ZH: dict[str, str] = dict(ORDER_STATUSES)
EVENT_TYPE_ZH: dict[str, str] = dict(EVENT_TYPES)


def order_status_zh(status: str) -> str:
    return ORDER_STATUS_ZH.get(status, status)


def event_type_zh(event_type: str) -> str:
    return EVENT_TYPE_ZH.get(event_type, event_type)
