"""Jobs: read one group from WeCom after its callback, or every group (a full sync)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from siyu.jobs.service import enqueue, job

SYNC_CHAT, SYNC_ALL = "groups.sync_chat", "groups.sync_all"


def _client() -> Any:
    from siyu.channels.tasks import adapters
    from siyu.channels.wecom.adapter import WeComAdapter

    adapter = adapters().get("wecom")
    if not isinstance(adapter, WeComAdapter):
        raise RuntimeError("WeCom is not configured (SIYU_WECOM_CORP_ID / _CORP_SECRET)")
    return adapter.contact_client()


@job(SYNC_CHAT)
def sync_chat(session: Session, payload: dict[str, Any]) -> None:
    from siyu.config import get_settings
    from siyu.groups.service import apply_group

    chat_id = str(payload.get("chat_id") or "")
    data = _client().call("/cgi-bin/externalcontact/groupchat/get",
                          {"chat_id": chat_id, "need_name": 1})
    apply_group(session, data.get("group_chat"), settings=get_settings())


@job(SYNC_ALL)
def sync_all(session: Session, payload: dict[str, Any]) -> None:
    """Every group WeCom lists (paged by its cursor), each read by its own job."""
    client, cursor = _client(), ""
    while True:
        data = client.call("/cgi-bin/externalcontact/groupchat/list",
                           {"status_filter": 0, "cursor": cursor, "limit": 1000})
        for item in data.get("group_chat_list") or []:
            chat_id = item.get("chat_id") if isinstance(item, dict) else None
            if chat_id:
                enqueue(session, SYNC_CHAT, {"chat_id": chat_id},
                        dedup_key=f"group:{chat_id}:{payload.get('at', '')}")
        cursor = str(data.get("next_cursor") or "")
        if not cursor:
            break
