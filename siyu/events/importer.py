"""Bulk import of customers, orders and events from CSV (header row, UTF-8) or JSON Lines.

File-level problems (not UTF-8, missing required columns, unreadable format) stop the import
before anything is written. Row-level problems are reported with line number and reason in a
rejects file while the good rows land; nothing is silently dropped.
"""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson
from sqlalchemy.orm import Session, sessionmaker

from siyu.config import Settings
from siyu.customers import service as customers_service
from siyu.customers.models import IDENTITY_KINDS
from siyu.db import run_unit
from siyu.errors import InvalidInput
from siyu.events import service as events_service
from siyu.kit import csvsafe, masking
from siyu.kit.perf import paused_gc
from siyu.kit.validation import RecordError

ImportKind = Literal["customers", "orders", "events"]
CHUNK = 2000

_REQUIRED: dict[str, list[set[str]]] = {
    # each set: at least one of these columns must be present
    "customers": [{"id", "customer_id", *IDENTITY_KINDS}],
    "orders": [{"order_id", "id"}, {"customer_id", *IDENTITY_KINDS}, {"ts"}, {"amount"}],
    "events": [{"event_id", "id"}, {"customer_id", *IDENTITY_KINDS}, {"type"}, {"ts"}],
}


class ImportFileError(InvalidInput):
    code = "invalid_import_file"


@dataclass
class ImportSummary:
    kind: str
    file: str
    rows: int = 0
    accepted: int = 0
    updated: int = 0
    duplicates: int = 0
    rejected: list[RecordError] = field(default_factory=list)
    rejects_file: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "file": self.file, "rows": self.rows,
                "accepted": self.accepted, "updated": self.updated,
                "duplicates": self.duplicates, "rejected": len(self.rejected),
                "rejects_file": self.rejects_file}


def _detect_format(path: Path, fmt: str | None) -> str:
    if fmt:
        if fmt not in ("csv", "jsonl"):
            raise ImportFileError("format must be csv or jsonl",
                                  details={"field": "format", "reason": fmt})
        return fmt
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    return "csv"


def scan(path: Path) -> int:
    """Check the whole file is UTF-8 and count its lines, before anything is written."""
    if not path.is_file():
        raise ImportFileError(f"no such file: {path}", details={"field": "file",
                                                                 "reason": "not found"})
    lines = 0
    with path.open("rb") as handle:
        for lineno, raw in enumerate(handle, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ImportFileError(
                    f"{path.name} line {lineno}: not UTF-8 (byte {exc.start + 1}: "
                    f"{raw[exc.start:exc.start + 1]!r}); save the file as UTF-8 and retry. "
                    "Nothing was imported.",
                    details={"line": lineno, "reason": "encoding"},
                ) from None
            lines = lineno
    return lines


def _split_identities(row: dict[str, str]) -> list[dict[str, str]]:
    return [{"kind": kind, "value": row[kind]} for kind in IDENTITY_KINDS
            if kind != "external_id" and row.get(kind)]


def _csv_record(kind: str, row: dict[str, str]) -> dict[str, Any]:
    row = {k.strip(): (v.strip() if isinstance(v, str) else v) for k, v in row.items() if k}
    rec: dict[str, Any] = {}
    identities = _split_identities(row)
    if identities:
        rec["identities"] = identities
    known = set(IDENTITY_KINDS)
    if kind == "customers":
        cid = row.get("id") or row.get("customer_id") or row.get("external_id")
        if cid:
            rec["id"] = cid
        known |= {"id", "customer_id", "tags", "referred_by"}
        for name in ("name", "gender", "birthday", "city", "tier", "acquisition_channel",
                     "referred_by"):
            known.add(name)
            if row.get(name):
                rec[name] = row[name]
        if row.get("tags"):
            rec["tags"] = [t for t in row["tags"].split("|") if t.strip()]
        rec["attributes"] = {k.removeprefix("attr_"): v for k, v in row.items()
                             if k not in known and v not in (None, "")}
        return rec
    if row.get("customer_id"):
        rec["customer_id"] = row["customer_id"]
    rec["id"] = row.get("order_id") or row.get("event_id") or row.get("id") or ""
    rec["ts"] = row.get("ts", "")
    if row.get("channel"):
        rec["channel"] = row["channel"]
    if kind == "orders":
        rec["amount"] = row.get("amount", "")
        for name in ("currency", "status", "updated_at", "recipient_name", "recipient_phone",
                     "recipient_address"):
            if row.get(name):
                rec[name] = row[name]
        if row.get("sku") or row.get("quantity"):
            item: dict[str, Any] = {"quantity": row.get("quantity") or 1}
            if row.get("sku"):
                item["sku"] = row["sku"]
            rec["items"] = [item]
        return rec
    rec["type"] = row.get("type", "")
    props: dict[str, Any] = {}
    if row.get("properties"):
        try:
            props = orjson.loads(row["properties"])
        except orjson.JSONDecodeError:
            props = {"_invalid_properties": row["properties"]}
    props.update({k.removeprefix("prop_"): v for k, v in row.items()
                  if k.startswith("prop_") and v not in (None, "")})
    rec["properties"] = props
    return rec


def _records(path: Path, kind: str, fmt: str) -> Iterator[tuple[int, Any]]:
    """(line number, raw record) pairs; a line that is not a record yields an error string."""
    if fmt == "jsonl":
        with path.open("r", encoding="utf-8-sig") as handle:
            for lineno, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    yield lineno, orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    yield lineno, f"malformed JSON: {exc}"
        return
    with path.open("r", encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        header = {h.strip() for h in (reader.fieldnames or []) if h}
        if not header:
            raise ImportFileError(f"{path.name}: empty file or no header row; nothing imported",
                                  details={"line": 1, "reason": "no header"})
        for need in _REQUIRED[kind]:
            if not header & need:
                raise ImportFileError(
                    f"{path.name}: header lacks a required column: one of "
                    f"{', '.join(sorted(need)[:6])}; nothing imported",
                    details={"line": 1, "reason": "missing column"},
                )
        for row in reader:
            if None in row:
                yield reader.line_num, "more fields than the header has columns"
                continue
            yield reader.line_num, _csv_record(kind, row)


def import_file(
    factory: sessionmaker[Session],
    kind: ImportKind,
    path: Path,
    *,
    settings: Settings,
    fmt: str | None = None,
    rejects_path: Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> ImportSummary:
    """Import ``path`` chunk by chunk (each chunk one transaction); see the module docstring."""
    fmt = _detect_format(path, fmt)
    scan(path)
    summary = ImportSummary(kind=kind, file=str(path))
    batch: list[tuple[int, Any]] = []

    def flush() -> None:
        if not batch:
            return
        lines = [ln for ln, _ in batch]
        good = [(ln, rec) for ln, rec in batch if not isinstance(rec, str)]
        for ln, rec in batch:
            if isinstance(rec, str):
                summary.rejected.append(RecordError(-1, None, [{"field": "(line)",
                                                                "reason": rec}], line=ln))
        records = [rec for _, rec in good]
        if kind == "customers":
            res = run_unit(factory, lambda s: customers_service.upsert_customers(
                s, records, settings=settings, partial=True, source="import"))
            summary.accepted += res.created
            summary.updated += res.updated
            rejected = res.rejected
        else:
            r2 = run_unit(factory, lambda s: events_service.ingest(
                s, kind, records, settings=settings, partial=True, source="import"))
            summary.accepted += r2.accepted
            summary.updated += r2.updated
            summary.duplicates += r2.duplicates
            rejected = r2.rejected
        for err in rejected:
            err.line = good[err.index][0]
            summary.rejected.append(err)
        summary.rows += len(lines)
        if progress:
            progress(len(lines))
        batch.clear()

    records = _records(path, kind, fmt)
    while True:
        # Reading and storing a chunk allocates many short-lived objects: see paused_gc.
        with paused_gc():
            batch.extend(itertools.islice(records, CHUNK))
            if not batch:
                break
            flush()
    summary.rejected.sort(key=lambda e: e.line or 0)
    if summary.rejected:
        target = rejects_path or path.with_name(path.name + ".rejects.csv")
        buf = io.StringIO()
        writer = csvsafe.writer(buf)
        writer.writerow(["line", "id", "reason"])
        for err in summary.rejected:
            writer.writerow([err.line, err.record_id or "", masking.redact(err.reason())])
        target.write_text(buf.getvalue(), encoding="utf-8")
        summary.rejects_file = str(target)
    return summary
