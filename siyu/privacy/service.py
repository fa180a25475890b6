"""The privacy domain's service functions: the audit log and who sees personal data.

Other domains call these (``from siyu.privacy import service as privacy``):

* :func:`record_audit` appends one audit entry in the caller's transaction.
* :func:`sees_pii` is the one rule deciding whether a reader (a console user, an API
  principal or a bare role name) sees personal values in full; :func:`masker` gives the
  functions that show or hide them accordingly.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from siyu.auth import service as auth_service
from siyu.db import utcnow
from siyu.kit import masking
from siyu.privacy.errors import InvalidAuditEntry, InvalidAuditFilter
from siyu.privacy.models import AuditEntry, AuditPurgePermit

PII_PERMISSION = "pii.read"
AUDIT_PERMISSION = "audit.read"
ERASE_PERMISSION = "customers.erase"
# API key scopes that see personal values in full; a key limited to other scopes (``read``)
# masks like the analyst role.
UNMASKED_SCOPES = frozenset({"admin"})

_ACTION = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)*")


# -- masking by role -------------------------------------------------------------------------


@runtime_checkable
class Reader(Protocol):
    """Anyone personal data is shown to: a console user or an API principal."""

    @property
    def role(self) -> str: ...

    def can(self, permission: str) -> bool: ...


def sees_pii(reader: Reader | str | None) -> bool:
    """Whether ``reader`` sees phone numbers and e-mail addresses in full.

    A role name or a user: when the role holds ``pii.read`` (admins). An API key: when it
    has full access or the ``admin`` scope; a key whose ``scopes`` are narrower (``read``)
    masks like the analyst role. Nobody (``None``) sees anything.
    """
    if reader is None:
        return False
    if isinstance(reader, str):
        return auth_service.can(reader, PII_PERMISSION)
    if getattr(reader, "kind", None) == "api_key":
        scopes = getattr(reader, "scopes", None)
        if scopes is not None and not (UNMASKED_SCOPES & set(scopes)):
            return False
    return bool(reader.can(PII_PERMISSION))


@dataclass(frozen=True)
class Masker:
    """Shows or hides personal values for one reader."""

    show_pii: bool

    def identity(self, kind: str, value: str) -> str:
        """An identity value as this reader may read it (``+86`` dropped when shown)."""
        if self.show_pii:
            return masking.show_value(kind, value)
        return masking.mask_value(kind, value)

    def text(self, text: str) -> str:
        """Free text with phone numbers and e-mail addresses hidden unless shown."""
        return text if self.show_pii else masking.mask_text(text)

    def deep(self, value: Any) -> Any:
        """Every string inside a JSON-like value, through :meth:`text`."""
        return value if self.show_pii else masking.mask_deep(value)


def masker(reader: Reader | str | None) -> Masker:
    """The masking functions for ``reader`` (see :func:`sees_pii`)."""
    return Masker(sees_pii(reader))


# -- audit log -------------------------------------------------------------------------------


def actor_name(actor: Any) -> str:
    """``"user:alice"``, ``"api_key:etl"``, or the string given (``"cli"``, ``"system"``)."""
    if isinstance(actor, str):
        return actor
    kind = getattr(actor, "kind", None) or "user"
    name = getattr(actor, "name", None) or getattr(actor, "username", None)
    if name is None:
        raise InvalidAuditEntry("actor must be a string or a principal with a name",
                                details={"field": "actor", "reason": "unknown actor"})
    return f"{kind}:{name}"


def record_audit(
    session: Session,
    *,
    actor: Any,
    action: str,
    target: str | None = None,
    detail: dict[str, Any] | None = None,
    ip: str | None = None,
) -> AuditEntry:
    """Append one entry to the audit log in the caller's transaction (who, when, what, from
    where). ``action`` is dotted lower case (``customer.export``, ``login.failure``);
    ``target`` names the object (``customer:42``). Never pass personal data: as a safety
    net, phone numbers and e-mail addresses in ``target`` and ``detail`` are masked."""
    name = actor_name(actor)
    if not name or len(name) > 100:
        raise InvalidAuditEntry("actor must be 1-100 characters",
                                details={"field": "actor", "reason": "length"})
    if len(action) > 60 or not _ACTION.fullmatch(action):
        raise InvalidAuditEntry("action must be dotted lower-case words, e.g. customer.export",
                                details={"field": "action", "reason": "format"})
    if target is not None and len(target) > 120:
        raise InvalidAuditEntry("target must be at most 120 characters",
                                details={"field": "target", "reason": "length"})
    if detail is not None and not isinstance(detail, dict):
        raise InvalidAuditEntry("detail must be a JSON object",
                                details={"field": "detail", "reason": "type"})
    entry = AuditEntry(
        at=utcnow(), actor=masking.mask_text(name), action=action,
        target=masking.mask_text(target) if target else None,
        detail=masking.mask_deep(detail) if detail else None,
        ip=(ip or None) and ip[:64],
    )
    session.add(entry)
    session.flush()
    return entry


_RELATIVE = re.compile(r"(\d{1,5})([mhd])")


def parse_since(text: str, *, now: dt.datetime | None = None) -> dt.datetime:
    """``7d``, ``24h``, ``30m`` before now, or an ISO date/time (UTC unless it says)."""
    text = text.strip()
    match = _RELATIVE.fullmatch(text)
    if match:
        amount, unit = int(match.group(1)), match.group(2)
        delta = {"m": dt.timedelta(minutes=amount), "h": dt.timedelta(hours=amount),
                 "d": dt.timedelta(days=amount)}[unit]
        return (now or utcnow()) - delta
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InvalidAuditFilter(
            f"since must be like 7d, 24h, 30m or an ISO date, not {text!r}",
            details={"field": "since", "reason": "format"}) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def entry_dict(entry: AuditEntry) -> dict[str, Any]:
    return {"id": entry.id, "at": entry.at.isoformat(), "actor": entry.actor,
            "action": entry.action, "target": entry.target, "detail": entry.detail,
            "ip": entry.ip}


def list_audit(
    session: Session,
    *,
    since: dt.datetime | None = None,
    actor: str | None = None,
    action: str | None = None,
    limit: int = 200,
) -> list[AuditEntry]:
    """Entries newest first. ``action`` matches itself and its dotted children (``login``
    matches ``login.success`` and ``login.failure``); ``actor`` matches exactly, or by name
    alone (``alice`` matches ``user:alice``)."""
    if not 1 <= limit <= 10_000:
        raise InvalidAuditFilter("limit must be between 1 and 10000",
                                 details={"field": "limit", "reason": "out of range"})
    stmt = select(AuditEntry)
    if since is not None:
        stmt = stmt.where(AuditEntry.at >= since)
    if actor:
        stmt = stmt.where((AuditEntry.actor == actor) | AuditEntry.actor.endswith(f":{actor}"))
    if action:
        stmt = stmt.where((AuditEntry.action == action)
                          | AuditEntry.action.startswith(f"{action}.", autoescape=True))
    return list(session.scalars(stmt.order_by(AuditEntry.id.desc()).limit(limit)))


def count_audit(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(AuditEntry)) or 0


def purge_audit(session: Session, *, before: dt.datetime, actor: str = "system:retention"
                ) -> int:
    """Delete audit entries older than ``before`` (the retention purge, the only delete the
    database allows), and record the purge itself. Returns the number deleted."""
    permit = AuditPurgePermit(reason="retention", at=utcnow())
    session.add(permit)
    session.flush()
    result = session.execute(delete(AuditEntry).where(AuditEntry.at < before))
    deleted = int(result.rowcount or 0)  # type: ignore[attr-defined]
    session.delete(permit)
    session.flush()
    record_audit(session, actor=actor, action="audit.purge",
                 detail={"before": before.isoformat(), "deleted": deleted})
    return deleted


