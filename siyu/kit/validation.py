"""Validate a batch record by record, naming each bad record and field."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from zoneinfo import ZoneInfo

from pydantic import TypeAdapter, ValidationError

T = TypeVar("T")


@dataclass
class RecordError:
    """Why one record of a batch or file was refused."""

    index: int
    record_id: str | None
    errors: list[dict[str, str]]
    line: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"index": self.index, "id": self.record_id, "errors": self.errors}
        if self.line is not None:
            out["line"] = self.line
        return out

    def reason(self) -> str:
        return "; ".join(f"{e['field']}: {e['reason']}" for e in self.errors)


def field_errors(exc: ValidationError) -> list[dict[str, str]]:
    """Pydantic errors as ``[{"field": "identities.0.value", "reason": "..."}]``."""
    out = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"]) or "(record)"
        msg = err["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        out.append({"field": loc, "reason": msg})
    return out


@dataclass
class Checked(Generic[T]):
    valid: list[tuple[int, T]] = field(default_factory=list)
    rejected: list[RecordError] = field(default_factory=list)


class BatchValidator(Generic[T]):
    """Validates batches of one record type (``BatchValidator(EventIn)``)."""

    def __init__(self, record_type: type[T]):
        self.one: TypeAdapter[T] = TypeAdapter(record_type)
        self.many: TypeAdapter[list[T]] = TypeAdapter(list[record_type])  # type: ignore[valid-type]


def check_records(
    validator: BatchValidator[T], records: Sequence[Any], *,
    context: dict[str, Any] | None = None,
) -> Checked[T]:
    """Validate each record on its own, so one bad record cannot hide another.

    The whole batch is tried first in one call (one trip into pydantic-core instead of one
    per record); only a batch with a bad record is validated again record by record, to
    name every bad record and keep the good ones.
    """
    checked: Checked[T] = Checked()
    if isinstance(records, list):
        try:
            valid = validator.many.validate_python(records, context=context)
        except ValidationError:
            pass
        else:
            checked.valid = list(enumerate(valid))
            return checked
    for index, raw in enumerate(records):
        try:
            checked.valid.append((index, validator.one.validate_python(raw, context=context)))
        except ValidationError as exc:
            rid = raw.get("id") if isinstance(raw, dict) else None
            checked.rejected.append(
                RecordError(index, rid if isinstance(rid, str) else None, field_errors(exc))
            )
    return checked


def validation_context(settings: Any) -> dict[str, Any]:
    """What record validators need (zone, phone region, latest allowed time), computed once
    per batch rather than per record."""
    return {
        "tz": settings.timezone,
        "zone": ZoneInfo(settings.timezone),
        "latest": dt.datetime.now(dt.UTC) + dt.timedelta(days=1),
        "region": settings.default_phone_region,
    }
