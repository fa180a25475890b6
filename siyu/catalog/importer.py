"""``siyu import products FILE``: the catalogue from CSV (header row, UTF-8) or JSON Lines.

CSV columns: ``sku``, ``name`` (required), ``category``, ``price``, ``cycle_days`` (days one
unit lasts), ``bundle_of`` (``SKU*3|SKU2``). A file that is not UTF-8 or lacks a required
column stops before anything is written; bad rows go to a rejects file with line and
reason while the good rows land, all in one transaction.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy.orm import Session, sessionmaker

from siyu.catalog import service
from siyu.db import run_unit
from siyu.errors import InvalidInput
from siyu.kit import csvsafe
from siyu.kit.validation import RecordError

_COLUMNS = ("sku", "name", "category", "price", "cycle_days", "bundle_of")


class ProductFileError(InvalidInput):
    code = "invalid_import_file"


def _read(path: Path) -> list[tuple[int, Any]]:
    if not path.is_file():
        raise ProductFileError(f"no such file: {path}", details={"field": "file",
                                                                  "reason": "not found"})
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ProductFileError(f"{path.name} line {line}: not UTF-8; nothing was imported",
                               details={"line": line, "reason": "encoding"}) from None
    out: list[tuple[int, Any]] = []
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        for lineno, line_text in enumerate(text.splitlines(), start=1):
            if not line_text.strip():
                continue
            try:
                out.append((lineno, orjson.loads(line_text)))
            except orjson.JSONDecodeError as exc:
                out.append((lineno, f"malformed JSON: {exc}"))
        return out
    reader = csv.DictReader(io.StringIO(text))
    header = {h.strip() for h in (reader.fieldnames or []) if h}
    for need in ("sku", "name"):
        if need not in header:
            raise ProductFileError(f"{path.name}: header lacks the column {need}; nothing "
                                   "imported", details={"line": 1, "reason": "missing column"})
    for row in reader:
        if None in row:
            out.append((reader.line_num, "more fields than the header has columns"))
            continue
        clean = {k.strip(): v.strip() for k, v in row.items() if k and isinstance(v, str)}
        out.append((reader.line_num, {k: clean[k] for k in _COLUMNS if clean.get(k)}))
    return out


def import_products(factory: sessionmaker[Session], path: Path,
                    rejects_path: Path | None = None) -> dict[str, Any]:
    """Import the catalogue file; returns the summary printed by the CLI."""
    rows = _read(path)
    rejected = [RecordError(-1, None, [{"field": "(line)", "reason": rec}], line=ln)
                for ln, rec in rows if isinstance(rec, str)]
    good = [(ln, rec) for ln, rec in rows if not isinstance(rec, str)]
    result = run_unit(factory, lambda s: service.upsert_products(s, [r for _, r in good]))
    for err in result.rejected:
        err.line = good[err.index][0]
        rejected.append(err)
    rejected.sort(key=lambda e: e.line or 0)
    summary: dict[str, Any] = {"kind": "products", "file": str(path), "rows": len(rows),
                               "accepted": result.created, "updated": result.updated,
                               "duplicates": 0, "rejected": len(rejected),
                               "rejects_file": None}
    if rejected:
        target = rejects_path or path.with_name(path.name + ".rejects.csv")
        buf = io.StringIO()
        writer = csvsafe.writer(buf)
        writer.writerow(["line", "id", "reason"])
        for err in rejected:
            writer.writerow([err.line, err.record_id or "", err.reason()])
        target.write_text(buf.getvalue(), encoding="utf-8")
        summary["rejects_file"] = str(target)
        summary["errors"] = [{"line": e.line, "reason": e.reason()} for e in rejected[:20]]
    return summary
