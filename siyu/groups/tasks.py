"""Jobs: read one group from WeCom after its callback, or every group (a full sync)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from siyu.config import Settings
from siyu.jobs.service import enqueue, job

SYNC_CHAT, SYNC_ALL = "groups.sync_chat", "groups.sync_all"


def require_wecom(settings: Settings) -> None:
    """Refuse, naming the settings, when the customer-contact API cannot be called."""
    from siyu.channels.wecom.inbound import WeComNotConfigured

    missing = [name for name, value in (
        ("SIYU_WECOM_CORP_ID", settings.wecom_corp_id),
        ("SIYU_WECOM_CORP_SECRET", settings.wecom_corp_secret.get_secret_value()))
        if not value]
    if missing:
        raise WeComNotConfigured("WeCom is not configured: set " + " and ".join(missing)
                                 + " to read customer groups")


def _client() -> Any:
    from siyu.channels.tasks import adapters
    from siyu.channels.wecom.adapter import WeComAdapter

    adapter = adapters().get("wecom")
    if not isinstance(adapter, WeComAdapter):
        raise RuntimeError("WeCom is not configured (SIYU_WECOM_CORP_ID / _CORP_SECRET)")
    require_wecom(adapter._settings)
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


def queue_full_sync(session: Session) -> str:
    """Queue a full sync (at most one per minute: the dedup key is the minute); returns the
    ``at`` its group reads are keyed by."""
    from siyu.db import utcnow

    at = utcnow().strftime("%Y%m%dT%H%M")
    enqueue(session, SYNC_ALL, {"at": at}, dedup_key=f"groups:sync_all:{at}")
    return at


def run_sync_jobs(sessions: sessionmaker[Session], *, rounds: int = 1000) -> dict[str, Any]:
    """Run the due group-sync jobs here until none is left: ``{"done", "retried",
    "failed", "groups", "error"}`` (``error``: the last failure's last line)."""
    from siyu.groups.models import CustomerGroup
    from siyu.jobs import service as jobs
    from siyu.jobs.models import Job

    totals = {"done": 0, "retried": 0, "failed": 0}
    names = {SYNC_ALL, SYNC_CHAT}
    for _ in range(rounds):
        summary = jobs.run_due(sessions, names=names)
        totals["done"] += summary.done
        totals["retried"] += summary.retried
        totals["failed"] += summary.failed
        if summary.done + summary.retried + summary.failed == 0:
            break
    with sessions() as s:
        groups = s.scalar(select(func.count()).select_from(CustomerGroup)) or 0
        error = None
        if totals["retried"] or totals["failed"]:
            last = s.scalar(select(Job.last_error).where(
                Job.name.in_(names), Job.last_error.is_not(None)).order_by(Job.id.desc())
                .limit(1))
            lines = [line for line in (last or "").strip().splitlines() if line.strip()]
            error = lines[-1] if lines else None
    return {**totals, "groups": int(groups), "error": error}
