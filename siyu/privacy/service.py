"""The privacy domain's service functions: the audit log and who sees personal data.

Other domains call these (``from siyu.privacy import service as privacy``):

* :func:`record_audit` appends one audit entry in the caller's transaction.
* :func:`sees_pii` is the one rule deciding whether a reader (a console user, an API
  principal or a bare role name) sees personal values in full; :func:`masker` gives the
  functions that show or hide them accordingly.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from sqlalchemy import delete, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from siyu.auth import service as auth_service
from siyu.config import Settings, get_settings
from siyu.db import utcnow
from siyu.errors import Forbidden
from siyu.kit import masking
from siyu.privacy.errors import InvalidAuditEntry, InvalidAuditFilter
from siyu.privacy.models import AuditEntry, AuditPurgePermit, Suppression

if TYPE_CHECKING:
    from siyu.privacy.erasure import ErasureReport

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




def audit_pii_read(session: Session, reader: Any, target: str, *, ip: str | None = None
                   ) -> None:
    """Record that ``reader`` saw ``target``'s personal values unmasked (nothing when the
    reader sees them masked)."""
    if sees_pii(reader):
        record_audit(session, actor=reader, action="pii.read", target=target, ip=ip)


# -- who may export and erase ----------------------------------------------------------------


def _full_key(reader: Reader) -> bool:
    """An API principal with full access or the admin scope (users: always True)."""
    if getattr(reader, "kind", None) != "api_key":
        return True
    scopes = getattr(reader, "scopes", None)
    return scopes is None or "admin" in scopes


def check_may_export(reader: Reader) -> None:
    """A data-subject export holds every personal value: administrators and full-access
    keys only (a ``read`` key or an analyst is refused)."""
    if not (reader.can(PII_PERMISSION) and sees_pii(reader)):
        raise Forbidden("导出个人信息需要管理员权限")


def check_may_erase(reader: Reader) -> None:
    """Erasure is irreversible: administrators and full-access keys only."""
    if not (reader.can(ERASE_PERMISSION) and _full_key(reader)):
        raise Forbidden("删除个人信息需要管理员权限")


# -- do not contact: keyed hashes of erased identities ----------------------------------------

SUPPRESSION_PURPOSE = "do-not-contact"
# Channels on which marketing is withdrawn for a new customer carrying an erased identity.
CONTACT_CHANNELS = ("sms", "wecom", "email", "phone", "official_account", "app", "web")


def suppression_key(settings: Settings) -> bytes:
    """The key of the do-not-contact hashes: the install's stable per-purpose key (it
    outlives a rotation of the session key)."""
    from siyu.auth.secrets import purpose_key

    return purpose_key(settings, SUPPRESSION_PURPOSE)


def identity_digest(key: bytes, kind: str, value: str) -> str:
    """The keyed hash of one canonical identity value (what privacy_suppressions holds)."""
    return hmac.new(key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()


def is_suppressed(session: Session, settings: Settings, kind: str, value: str) -> bool:
    """Whether (kind, canonical value) belonged to an erased person."""
    digest = identity_digest(suppression_key(settings), kind, value)
    return session.scalar(select(Suppression.id).where(Suppression.digest == digest)
                          .limit(1)) is not None


def honour_do_not_contact(session: Session, new_identities: Sequence[tuple[int, str, str]],
                          settings: Settings | None = None) -> list[int]:
    """Called by identity resolution for identities it just created: a customer carrying
    an erased person's phone, e-mail or account gets marketing withdrawn on every channel
    at once. Returns the customer ids affected. Costs one query when nobody was erased."""
    if not new_identities:
        return []
    if session.scalar(select(Suppression.id).limit(1)) is None:
        return []
    key = suppression_key(settings or get_settings())
    by_digest = {identity_digest(key, kind, value): cid for cid, kind, value in new_identities}
    hits = set(session.scalars(select(Suppression.digest)
                               .where(Suppression.digest.in_(list(by_digest)))))
    affected = sorted({by_digest[d] for d in hits})
    if affected:
        from siyu.customers import service as customers

        for cid in affected:
            for channel in CONTACT_CHANNELS:
                customers.record_consent(session, cid, channel=channel, purpose="marketing",
                                         granted=False, source="privacy:do-not-contact")
    return affected


def may_contact(session: Session, settings: Settings, customer_id: int, *, channel: str,
                purpose: str = "marketing") -> bool:
    """Whether the customer may be contacted for ``purpose`` on ``channel`` now: the latest
    consent grants it and none of their identities belonged to an erased person."""
    from siyu.customers import service as customers
    from siyu.customers.errors import CustomerNotFound

    try:
        canonical = int(customers.get_customer_360(session, customer_id)["id"])
    except CustomerNotFound:
        return False
    granted = any(c["granted"] for c in customers.current_consents(session, canonical)
                  if c["channel"] == channel and c["purpose"] == purpose)
    return granted and contact_blocked(session, canonical, channel=channel, purpose=purpose,
                                       settings=settings) is None


def contact_blocked(session: Session, customer_id: int, *, channel: str,
                    purpose: str = "marketing", settings: Settings | None = None) -> str | None:
    """Why the customer must not be contacted for ``purpose`` on ``channel`` right now, or
    ``None``: their latest consent decision withdrew it, or one of their identities belonged
    to an erased person. The outbox asks this at send time, so a withdrawal stops messages
    already queued. (Whether an opt-in is required first is the contact policy's call.)"""
    from siyu.customers import service as customers
    from siyu.customers.models import Consent, Identity

    # The few rows the answer needs (the id holding the data, its latest consent decision
    # for this channel and purpose, its identities), not a customer 360: the outbox asks
    # this for every marketing message it sends.
    canonical = customers.canonical_customer_ids(session, [customer_id]).get(customer_id)
    if canonical is None:
        return "customer erased or unknown"
    latest = session.scalar(select(Consent.granted).where(
        Consent.customer_id == canonical, Consent.channel == channel,
        Consent.purpose == purpose).order_by(Consent.at.desc(), Consent.id.desc()).limit(1))
    if latest is not None and not latest:
        return f"consent for {purpose} on {channel} withdrawn"
    if session.scalar(select(Suppression.id).limit(1)) is None:
        return None  # nobody was ever erased: no identity can be an erased person's
    key = suppression_key(settings or get_settings())
    digests = [identity_digest(key, kind, value) for kind, value in session.execute(
        select(Identity.kind, Identity.value).where(Identity.customer_id == canonical))]
    if digests and session.scalar(select(Suppression.id).where(
            Suppression.digest.in_(digests)).limit(1)) is not None:
        return "do not contact: an identity of an erased person"
    return None


# -- export and erasure ------------------------------------------------------------------------


def _live_customer(session: Session, customer_id: int) -> int:
    from siyu.customers import service as customers

    view = customers.get_customer_360(session, customer_id)
    return int(view["id"])


def export_customer(session: Session, customer_id: int, *, actor: Any,
                    ip: str | None = None) -> dict[str, Any]:
    """The data-subject export (see :func:`siyu.privacy.erasure.export_person`), recorded
    in the audit log (the tables and row counts, not the data)."""
    from siyu.privacy import erasure

    cid = _live_customer(session, customer_id)
    document = erasure.export_person(session, cid)
    record_audit(session, actor=actor, action="customer.export", target=f"customer:{cid}",
                 ip=ip, detail={"tables": len(document["tables"]),
                                "rows": sum(len(r) for r in document["tables"].values())})
    return document


def resolve_ref(session: Session, settings: Settings, ref: str) -> int | None:
    """A customer reference as ``siyu customers show`` takes it (siyu id, or kind:value).
    ``None`` when it names an identity of a person already erased."""
    from siyu.customers import service as customers
    from siyu.customers.errors import CustomerNotFound

    ref = ref.strip()
    if ref.isdigit() and len(ref) <= 18:
        return int(ref)
    kind, value = customers.parse_identity_param(ref)
    try:
        return customers.find_by_identity(session, kind, value,
                                          region=settings.default_phone_region)
    except CustomerNotFound:
        canonical = customers.normalize_identity(kind, value, settings.default_phone_region)
        if is_suppressed(session, settings, kind, canonical):
            return None
        raise


def plan_erasure(session: Session, customer_id: int) -> dict[str, int]:
    """Rows per table that erasing the customer would remove or anonymise."""
    from siyu.privacy import erasure

    return erasure.plan_erasure(session, _live_customer(session, customer_id))


def erase_customer(session: Session, settings: Settings, customer_id: int, *, actor: Any,
                   ip: str | None = None) -> ErasureReport:
    """Erase the person (see :func:`siyu.privacy.erasure.erase_person`) and record it in the
    audit log without personal data. An already erased customer answers a report with
    nothing removed. The caller commits, then calls :func:`reclaim_space`."""
    from siyu.customers import service as customers
    from siyu.customers.errors import CustomerNotFound
    from siyu.privacy import erasure

    try:
        cid = customers.canonical_customer_id(session, customer_id)
    except CustomerNotFound:
        if erasure.customer_status(session, customer_id) != erasure.ERASED:
            raise
        cid = customer_id
    key = suppression_key(settings)
    report = erasure.erase_person(
        session, cid, digest=lambda kind, value: identity_digest(key, kind, value))
    record_audit(session, actor=actor, action="customer.erase", target=f"customer:{cid}",
                 ip=ip, detail={"customer_ids": report.customer_ids,
                                "removed_rows": sum(report.removed.values()),
                                "anonymised_rows": sum(report.anonymised.values()),
                                "tables": sorted(report.touched),
                                "already_erased": report.already_erased})
    if report.touched and session.get_bind().dialect.name == "postgresql":
        from siyu.jobs import service as jobs

        jobs.enqueue(session, VACUUM_JOB, {"tables": sorted(report.touched)})
    return report


VACUUM_JOB = "privacy.vacuum"


def reclaim_space(engine: Engine, report: ErasureReport, *, vacuum: bool = True) -> None:
    """After the erasure committed: SQLite WAL checkpoint; PostgreSQL VACUUM of the touched
    tables unless ``vacuum`` is false (the API leaves it to the ``privacy.vacuum`` job that
    :func:`erase_customer` queued, since a VACUUM of large tables takes longer than a
    request should)."""
    from siyu.privacy import erasure

    if engine.dialect.name == "postgresql" and not vacuum:
        return
    erasure.reclaim_space(engine, report.touched)
