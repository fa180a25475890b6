"""Knowledge base: import intents and FAQ, train and evaluate the intent model, and the runtime
the bot asks (intent, keyword rules, FAQ, answer templates).

Imports are all-or-nothing: a file with a bad row is refused whole, naming each bad line and
the reason. The trained model is stored in ``kb_nlu_models``; :func:`load_runtime` keeps the
active one in memory per process and reloads it when a newer one is trained.
"""

from __future__ import annotations

import csv
import io
import re
import string
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from siyu.errors import InvalidInput, NotFound
from siyu.kb.models import KEYWORD_MATCHES, FaqEntry, Intent, IntentExample, KeywordRule, NluModel
from siyu.nlu import faq as faq_index
from siyu.nlu.intent import IntentClassifier
from siyu.nlu.metrics import evaluate as evaluate_examples

NAME_RE = re.compile(r"^[A-Za-z0-9_\-\u4e00-\u9fff.]{1,60}$")
MAX_TEXT = 500
MAX_IMPORT_ERRORS = 50


# -- import ------------------------------------------------------------------------------------


def _read_csv(data: bytes | str, *, source: str, required: Sequence[str]) -> list[dict[str, str]]:
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise InvalidInput(f"{source} is not UTF-8 (byte {exc.start})", details=[
                {"field": "file", "reason": f"not UTF-8 at byte {exc.start}"}]) from exc
    else:
        text = data
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in required if c not in header]
    if missing:
        raise InvalidInput(f"{source} needs the columns {', '.join(required)}; missing "
                           f"{', '.join(missing)}", details=[
                               {"field": c, "reason": "missing column"} for c in missing])
    reader.fieldnames = header
    return [{k: (v or "") for k, v in row.items() if k is not None} for row in reader]


def _refuse(errors: list[dict[str, Any]], source: str) -> None:
    if errors:
        first = "; ".join(f"line {e['line']} {e['field']}: {e['reason']}" for e in errors[:3])
        more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
        raise InvalidInput(f"{len(errors)} bad rows in {source}, nothing was imported: "
                           f"{first}{more}", details=errors[:MAX_IMPORT_ERRORS])


def _intent_ids(session: Session, names: Iterable[str]) -> dict[str, int]:
    wanted = set(names)
    have: dict[str, int] = {name: id_ for name, id_ in session.execute(
        select(Intent.name, Intent.id).where(Intent.name.in_(wanted)))} if wanted else {}
    for name in sorted(wanted - set(have)):
        intent = Intent(name=name, title=name)
        session.add(intent)
        session.flush()
        have[name] = intent.id
    return have


@dataclass
class ImportSummary:
    rows: int
    added: int
    duplicates: int
    intents: int

    def to_dict(self) -> dict[str, int]:
        return {"rows": self.rows, "added": self.added, "duplicates": self.duplicates,
                "intents": self.intents}


def import_intents(session: Session, data: bytes | str, *, source: str = "file"
                   ) -> ImportSummary:
    """Add labelled examples from CSV ``text,intent`` (header row); unknown intents are
    created. An example already stored for its intent is skipped."""
    rows = _read_csv(data, source=source, required=("text", "intent"))
    errors: list[dict[str, Any]] = []
    pairs: list[tuple[str, str]] = []
    for line, row in enumerate(rows, start=2):
        text, name = row["text"].strip(), row["intent"].strip()
        if not text:
            errors.append({"line": line, "field": "text", "reason": "empty"})
        elif len(text) > MAX_TEXT:
            errors.append({"line": line, "field": "text",
                           "reason": f"longer than {MAX_TEXT} characters"})
        if not NAME_RE.match(name):
            errors.append({"line": line, "field": "intent",
                           "reason": "must be 1-60 letters, digits, Chinese, '_', '-' or '.'"})
        pairs.append((text, name))
    if not rows:
        errors.append({"line": 1, "field": "file", "reason": "no rows"})
    _refuse(errors, source)
    ids = _intent_ids(session, {n for _, n in pairs})
    existing = {(i, t) for i, t in session.execute(
        select(IntentExample.intent_id, IntentExample.text)
        .where(IntentExample.intent_id.in_(ids.values())))}
    added = 0
    for text, name in pairs:
        key = (ids[name], text)
        if key in existing:
            continue
        existing.add(key)
        session.add(IntentExample(intent_id=ids[name], text=text))
        added += 1
    session.flush()
    return ImportSummary(rows=len(rows), added=added, duplicates=len(rows) - added,
                         intents=len(ids))


def import_faq(session: Session, data: bytes | str, *, source: str = "file") -> ImportSummary:
    """Add FAQ entries from CSV ``question,answer[,variants]`` (variants separated by
    ``|``); an entry whose question is already stored is replaced."""
    rows = _read_csv(data, source=source, required=("question", "answer"))
    errors: list[dict[str, Any]] = []
    for line, row in enumerate(rows, start=2):
        for col in ("question", "answer"):
            if not row[col].strip():
                errors.append({"line": line, "field": col, "reason": "empty"})
    _refuse(errors, source)
    added = 0
    for row in rows:
        question = row["question"].strip()
        variants = [v.strip() for v in row.get("variants", "").split("|") if v.strip()]
        session.execute(delete(FaqEntry).where(FaqEntry.question == question))
        session.add(FaqEntry(question=question, answer=row["answer"].strip(), variants=variants))
        added += 1
    session.flush()
    return ImportSummary(rows=len(rows), added=added, duplicates=0, intents=0)


def read_file(path: str | Path) -> bytes:
    p = Path(path)
    if not p.is_file():
        raise InvalidInput(f"no such file: {p}", details=[{"field": "file",
                                                            "reason": "not found"}])
    return p.read_bytes()


# -- training and evaluation ---------------------------------------------------------------


def intent_titles(session: Session) -> dict[str, str]:
    """Each intent's display name (its title) by code, for pages and reports."""
    return {name: title for name, title in session.execute(
        select(Intent.name, Intent.title)) if title}


def examples(session: Session) -> list[tuple[str, str]]:
    return [(t, n) for t, n in session.execute(
        select(IntentExample.text, Intent.name).join(Intent, Intent.id == IntentExample.intent_id)
        .order_by(IntentExample.id))]


@dataclass
class TrainReport:
    model_id: int
    examples: int
    intents: int
    seconds: float
    cv_accuracy: float | None
    oos_threshold: float

    def to_dict(self) -> dict[str, Any]:
        return {"model_id": self.model_id, "examples": self.examples, "intents": self.intents,
                "seconds": round(self.seconds, 2), "cv_accuracy": self.cv_accuracy,
                "oos_threshold": round(self.oos_threshold, 4)}


def train(session: Session) -> TrainReport:
    """Train the intent model on every stored example and make it the active one."""
    pairs = examples(session)
    names = {n for _, n in pairs}
    if len(names) < 2:
        raise InvalidInput("training needs examples of at least two intents; import some with "
                           "`siyu kb import-intents FILE`", details=[
                               {"field": "examples", "reason": f"{len(names)} intents"}])
    started = time.perf_counter()
    model = IntentClassifier.train(pairs)
    seconds = time.perf_counter() - started
    info = model.info
    session.execute(update(NluModel).values(is_active=False))
    row = NluModel(blob=model.dumps(), examples=len(pairs), intents=len(names),
                   seconds=seconds,
                   metrics={"cv_accuracy": info.cv_accuracy, "c": info.c,
                            "char_max": info.char_max, "oos_threshold": info.oos_threshold},
                   is_active=True)
    session.add(row)
    session.flush()
    return TrainReport(model_id=row.id, examples=len(pairs), intents=len(names),
                       seconds=seconds, cv_accuracy=info.cv_accuracy,
                       oos_threshold=info.oos_threshold)


def active_model(session: Session) -> NluModel | None:
    return session.scalars(select(NluModel).where(NluModel.is_active)
                           .order_by(NluModel.id.desc()).limit(1)).first()


def evaluate(session: Session, data: bytes | str, *, source: str = "file") -> dict[str, Any]:
    """Accuracy, macro-F1, per-intent precision/recall/F1 and the most frequent confusions of
    the active model on labelled CSV ``text,intent`` (rates as fractions). ``accuracy`` takes
    the best intent whatever its confidence; ``accuracy_with_oos`` counts a message rejected
    as out of scope as wrong, and ``rejected_as_oos`` says how many were."""
    rows = _read_csv(data, source=source, required=("text", "intent"))
    pairs = [(r["text"].strip(), r["intent"].strip()) for r in rows if r["text"].strip()]
    if not pairs:
        raise InvalidInput(f"{source} has no labelled rows", details=[
            {"field": "file", "reason": "no rows"}])
    model = _classifier(session)
    closed = evaluate_examples(model, pairs, use_oos=False).to_dict()
    with_oos = evaluate_examples(model, pairs, use_oos=True).to_dict()
    predictions = model.predict_many([t for t, _ in pairs])
    closed["accuracy_with_oos"] = with_oos["accuracy"]
    closed["macro_f1_with_oos"] = with_oos["macro_f1"]
    closed["rejected_as_oos"] = sum(1 for p in predictions if p.out_of_scope)
    return closed


def _classifier(session: Session) -> IntentClassifier:
    row = active_model(session)
    if row is None:
        raise NotFound("no trained intent model; run `siyu nlu train` first")
    return _load_model(row, row.blob)


# Keyed by id and training time: a test database (or a restored backup) may reuse an id.
_MODEL_CACHE: dict[tuple[int, Any], IntentClassifier] = {}
_LOCK = threading.Lock()


def _load_model(row: NluModel, blob: bytes) -> IntentClassifier:
    key = (row.id, row.trained_at)
    with _LOCK:
        model = _MODEL_CACHE.get(key)
        if model is None:
            # The blob was written by this deployment's own `train` (trusted; see dumps()).
            model = IntentClassifier.loads(blob)
            _MODEL_CACHE.clear()
            _MODEL_CACHE[key] = model
        return model


# -- the runtime the bot uses ------------------------------------------------------------


@dataclass(frozen=True)
class Prediction:
    intent: str | None
    confidence: float
    out_of_scope: bool
    alternatives: list[tuple[str, float]] = field(default_factory=list)


@dataclass(frozen=True)
class IntentInfo:
    name: str
    title: str
    answer: str | None
    action: str | None
    handoff: bool
    skill_group: str | None = None


@dataclass(frozen=True)
class KeywordHit:
    rule_id: int
    pattern: str
    reply: str | None
    handoff: bool


@dataclass(frozen=True)
class FaqHit:
    entry_id: int
    question: str
    answer: str
    score: float


class KbRuntime:
    """An immutable snapshot of the knowledge base for answering messages."""

    def __init__(self, version: tuple[Any, ...], model: IntentClassifier | None,
                 intents: dict[str, IntentInfo], rules: list[KeywordRule],
                 faq: list[FaqEntry]) -> None:
        self.version = version
        self._model = model
        self._intents = intents
        self._rules = [(r.id, r.pattern, r.match, r.reply, r.handoff) for r in rules]
        self._regex = {r.id: re.compile(r.pattern) for r in rules if r.match == "regex"}
        self._faq = {e.id: e for e in faq}
        self._faq_index = faq_index.FaqIndex.build([
            faq_index.FaqEntry(id=str(e.id), question=e.question, variants=list(e.variants),
                               answer=e.answer) for e in faq]) if faq else None

    @property
    def trained(self) -> bool:
        return self._model is not None

    def classify(self, text: str) -> Prediction:
        if self._model is None:
            return Prediction(None, 0.0, True)
        p = self._model.predict(text)
        return Prediction(p.intent, float(p.confidence), bool(p.out_of_scope),
                          [(n, float(c)) for n, c in p.ranking[:3]])

    def keyword(self, text: str) -> KeywordHit | None:
        folded = text.strip().lower()
        for rule_id, pattern, match, reply, handoff in self._rules:
            hit = (folded == pattern.lower() if match == "exact"
                   else bool(self._regex[rule_id].search(text)) if match == "regex"
                   else pattern.lower() in folded)
            if hit:
                return KeywordHit(rule_id, pattern, reply, handoff)
        return None

    def faq(self, text: str, k: int = 3) -> list[FaqHit]:
        if self._faq_index is None:
            return []
        out = []
        for hit in self._faq_index.search(text, k=k):
            entry = self._faq[int(hit.entry_id)]
            out.append(FaqHit(entry.id, entry.question, entry.answer, float(hit.score)))
        return out

    def intent(self, name: str | None) -> IntentInfo | None:
        return self._intents.get(name) if name else None


_RUNTIME: KbRuntime | None = None


def _version(session: Session) -> tuple[Any, ...]:
    model = session.execute(select(NluModel.id, NluModel.trained_at).where(NluModel.is_active)
                            .order_by(NluModel.id.desc()).limit(1)).first()
    counts = tuple(session.scalar(select(func.count()).select_from(t)) or 0
                   for t in (Intent, KeywordRule, FaqEntry))
    latest = tuple(session.scalar(select(func.max(t.id))) or 0
                   for t in (Intent, KeywordRule, FaqEntry))
    return (tuple(model) if model else None, *counts, *latest)


def load_runtime(session: Session) -> KbRuntime:
    """The knowledge base as the bot sees it, rebuilt when it changed (new model, intents,
    rules or FAQ entries) and otherwise served from memory."""
    global _RUNTIME
    version = _version(session)
    current = _RUNTIME
    if current is not None and current.version == version:
        return current
    row = active_model(session)
    model = _load_model(row, row.blob) if row is not None else None
    intents = {i.name: IntentInfo(i.name, i.title or i.name, i.answer, i.action, i.handoff,
                                 i.skill_group)
               for i in session.scalars(select(Intent))}
    rules = list(session.scalars(select(KeywordRule).where(KeywordRule.enabled)
                                 .order_by(KeywordRule.priority.desc(), KeywordRule.id)))
    entries = list(session.scalars(select(FaqEntry).order_by(FaqEntry.id)))
    for entry in [*rules, *entries]:
        session.expunge(entry)
    runtime = KbRuntime(version, model, intents, rules, entries)
    _RUNTIME = runtime
    return runtime


def invalidate() -> None:
    """Forget the cached runtime (after an edit that keeps counts and ids, e.g. a changed
    answer text)."""
    global _RUNTIME
    _RUNTIME = None


class _Blank(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""


def render(template: str, context: Mapping[str, Any]) -> str:
    """Fill ``{placeholders}`` from ``context``; unknown or missing ones become empty, and a
    template that is not a valid format string is returned as written."""
    values = _Blank({k: "" if v is None else str(v) for k, v in context.items()})
    try:
        names = [f for _, f, _, _ in string.Formatter().parse(template) if f]
        if any(not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", n) for n in names):
            return template
        return template.format_map(values)
    except (ValueError, IndexError, KeyError):
        return template


def add_keyword_rule(session: Session, *, pattern: str, match: str = "contains",
                     reply: str | None = None, handoff: bool = False,
                     priority: int = 0) -> KeywordRule:
    """Add an auto-reply rule; a regex must compile, and a rule must reply or hand off."""
    pattern = (pattern or "").strip()
    errors = []
    if not pattern:
        errors.append({"field": "pattern", "reason": "empty"})
    if match not in KEYWORD_MATCHES:
        errors.append({"field": "match", "reason": f"must be one of {', '.join(KEYWORD_MATCHES)}"})
    elif match == "regex" and pattern:
        try:
            re.compile(pattern)
        except re.error as exc:
            errors.append({"field": "pattern", "reason": f"not a regular expression: {exc}"})
    if not (reply or "").strip() and not handoff:
        errors.append({"field": "reply", "reason": "a rule replies, hands off, or both"})
    if not -100 <= priority <= 100:
        errors.append({"field": "priority", "reason": "must be between -100 and 100"})
    if errors:
        raise InvalidInput("; ".join(f"{e['field']}: {e['reason']}" for e in errors),
                           details=errors)
    rule = KeywordRule(pattern=pattern, match=match, reply=(reply or "").strip() or None,
                       handoff=handoff, priority=priority, enabled=True)
    session.add(rule)
    session.flush()
    return rule
