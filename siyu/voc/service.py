"""VOC service: the factor tree, training and evaluating the feedback models, classifying
and storing feedback. Functions take an explicit session and never commit.

Survey functions live in :mod:`siyu.voc.surveys`, driver analyses in
:mod:`siyu.voc.analysis`; this module re-exports nothing from them to keep imports light.
"""

from __future__ import annotations

import csv
import io
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from siyu.voc.errors import InvalidInput, ModelMissing
from siyu.voc.models import Feedback, FeedbackMention, VocFactor, VocModel

MAX_TEXT = 2000
TEXT_COLUMNS = ("text", "review")
SENTIMENT_COLUMNS = ("sentiment", "label")
FACTOR_COLUMNS = ("factor", "cat")
_POSITIVE = {"1", "positive", "pos", "正面", "好评", "积极"}
_NEGATIVE = {"0", "-1", "negative", "neg", "负面", "差评", "消极"}


# -- the factor tree --------------------------------------------------------------------------


def factor_tree(session: Session) -> Any:
    """The brand's factor tree (the demo brand's default until one is stored)."""
    from siyu.voc.text import DEMO_TREE, FactorNode, FactorTree

    rows = session.scalars(select(VocFactor).order_by(VocFactor.position, VocFactor.id)).all()
    if not rows:
        return DEMO_TREE
    return FactorTree([FactorNode(r.name, r.parent, tuple(r.keywords or ())) for r in rows])


def save_factor_tree(session: Session, tree: Any) -> int:
    """Replace the stored factor tree with ``tree`` (a :class:`FactorTree`); returns nodes."""
    session.execute(delete(VocFactor))
    for i, node in enumerate(tree.nodes):
        session.add(VocFactor(name=node.name, parent=node.parent, keywords=list(node.keywords),
                              position=i))
    session.flush()
    _invalidate()
    return len(tree.nodes)


def load_factor_tree(session: Session, data: bytes | str, *, source: str = "file") -> int:
    """Store a factor tree given as JSON ``{"categories": [{"name", "keywords",
    "children"}]}`` (see siyu/voc/data/factors_telecom.json)."""
    import json

    from siyu.voc.text import FactorTree

    try:
        tree = FactorTree.from_dict(json.loads(data))
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidInput(f"{source} is not a factor tree: {exc}", details=[
            {"field": "file", "reason": str(exc)}]) from exc
    if not tree.nodes:
        raise InvalidInput(f"{source} has no categories", details=[
            {"field": "categories", "reason": "empty"}])
    return save_factor_tree(session, tree)


# -- labelled files ---------------------------------------------------------------------------


@dataclass
class LabelledFile:
    texts: list[str]
    sentiments: list[str] | None
    factors: list[str] | None
    columns: dict[str, str]


def _pick(header: Sequence[str], wanted: str | None, defaults: Sequence[str],
          what: str) -> str | None:
    if wanted:
        if wanted not in header:
            raise InvalidInput(f"no column {wanted!r} for the {what}", details=[
                {"field": what, "reason": f"column {wanted} missing"}])
        return wanted
    return next((c for c in defaults if c in header), None)


def read_labelled(data: bytes | str, *, source: str = "file", text_col: str | None = None,
                  sentiment_col: str | None = None, factor_col: str | None = None
                  ) -> LabelledFile:
    """Read a labelled CSV: text in ``text``/``review``, sentiment in ``sentiment``/``label``
    (1/0 or positive/negative), factor in ``factor``/``cat``. A bad row refuses the file,
    naming each line and the reason (a model trained on half a file would mislead)."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise InvalidInput(f"{source} is not UTF-8 (byte {exc.start})", details=[
                {"field": "file", "reason": "not UTF-8"}]) from exc
    reader = csv.DictReader(io.StringIO(data, newline=""))
    header = [h.strip() for h in reader.fieldnames or []]
    reader.fieldnames = header
    tcol = _pick(header, text_col, TEXT_COLUMNS, "text")
    if tcol is None:
        raise InvalidInput(f"{source} needs a text column (text or review)", details=[
            {"field": "text", "reason": "missing column"}])
    scol = _pick(header, sentiment_col, SENTIMENT_COLUMNS, "sentiment")
    fcol = _pick(header, factor_col, FACTOR_COLUMNS, "factor")
    texts: list[str] = []
    sents: list[str] = []
    facts: list[str] = []
    errors: list[dict[str, Any]] = []
    for line, row in enumerate(reader, start=2):
        text = (row.get(tcol) or "").strip()
        if not text:
            errors.append({"line": line, "field": tcol, "reason": "empty"})
        elif len(text) > MAX_TEXT:
            errors.append({"line": line, "field": tcol,
                           "reason": f"longer than {MAX_TEXT} characters"})
        texts.append(text)
        if scol:
            raw = (row.get(scol) or "").strip().lower()
            if raw in _POSITIVE:
                sents.append("positive")
            elif raw in _NEGATIVE:
                sents.append("negative")
            else:
                errors.append({"line": line, "field": scol,
                               "reason": "must be 1/0 or positive/negative"})
                sents.append("")
        if fcol:
            value = (row.get(fcol) or "").strip()
            if not value or len(value) > 60:
                errors.append({"line": line, "field": fcol, "reason": "must be 1-60 characters"})
            facts.append(value)
    if not texts:
        errors.append({"line": 1, "field": "file", "reason": "no rows"})
    if errors:
        first = "; ".join(f"line {e['line']} {e['field']}: {e['reason']}" for e in errors[:3])
        raise InvalidInput(f"{len(errors)} bad rows in {source}: {first}", details=errors[:50])
    columns = {k: v for k, v in (("text", tcol), ("sentiment", scol), ("factor", fcol)) if v}
    return LabelledFile(texts, sents if scol else None, facts if fcol else None, columns)


def read_file(path: str | Path) -> bytes:
    p = Path(path)
    if not p.is_file():
        raise InvalidInput(f"no such file: {p}", details=[{"field": "file",
                                                            "reason": "not found"}])
    return p.read_bytes()


# -- training, evaluation, classification -----------------------------------------------------


def _store(session: Session, kind: str, model: Any, n: int, seconds: float,
           metrics: dict[str, Any]) -> int:
    session.execute(update(VocModel).where(VocModel.kind == kind).values(is_active=False))
    row = VocModel(kind=kind, blob=model.dumps(), examples=n, seconds=seconds, metrics=metrics,
                   is_active=True)
    session.add(row)
    session.flush()
    _invalidate()
    return row.id


def train(session: Session, data: bytes | str, *, source: str = "file",
          text_col: str | None = None, sentiment_col: str | None = None,
          factor_col: str | None = None) -> dict[str, Any]:
    """Train the models whose labels the file holds (sentiment, factor or both) and make them
    the active ones; the other model is left as it was. Factor labels the tree does not
    know are added to it as categories (listed under ``added_factors``)."""
    from siyu.voc.text import FactorNode, FactorTree, FeedbackClassifier

    f = read_labelled(data, source=source, text_col=text_col, sentiment_col=sentiment_col,
                      factor_col=factor_col)
    if f.sentiments is None and f.factors is None:
        raise InvalidInput(f"{source} has no labels: add a sentiment (sentiment/label) or a "
                           "factor (factor/cat) column", details=[
                               {"field": "labels", "reason": "no label column"}])
    out: dict[str, Any] = {"columns": f.columns, "n": len(f.texts)}
    if f.sentiments is not None:
        if len(set(f.sentiments)) < 2:
            raise InvalidInput("sentiment training needs positive and negative examples",
                               details=[{"field": f.columns["sentiment"],
                                         "reason": "one label only"}])
        started = time.perf_counter()
        model = FeedbackClassifier.train_sentiment(list(zip(f.texts, f.sentiments,
                                                            strict=True)))
        seconds = time.perf_counter() - started
        metrics = {"cv_accuracy": model.info.cv_accuracy, "c": model.info.c,
                   "char_max": model.info.char_max}
        out["sentiment"] = {"model_id": _store(session, "sentiment", model, len(f.texts),
                                               seconds, metrics),
                            "seconds": round(seconds, 2), **metrics}
    if f.factors is not None:
        if len(set(f.factors)) < 2:
            raise InvalidInput("factor training needs at least two factors", details=[
                {"field": f.columns["factor"], "reason": "one label only"}])
        tree = factor_tree(session)
        known = {n.name for n in tree.nodes}
        added = sorted(set(f.factors) - known)
        if added:
            save_factor_tree(session, FactorTree([*tree.nodes,
                                                  *(FactorNode(a) for a in added)]))
        started = time.perf_counter()
        model = FeedbackClassifier.train_factor(list(zip(f.texts, f.factors, strict=True)))
        seconds = time.perf_counter() - started
        metrics = {"cv_accuracy": model.info.cv_accuracy, "c": model.info.c,
                   "char_max": model.info.char_max, "factors": len(set(f.factors))}
        out["factor"] = {"model_id": _store(session, "factor", model, len(f.texts), seconds,
                                            metrics),
                         "seconds": round(seconds, 2), "added_factors": added, **metrics}
    return out


_cache_lock = threading.Lock()
_cache: dict[str, Any] = {}


def _invalidate() -> None:
    with _cache_lock:
        _cache.clear()


def classifier(session: Session) -> Any:
    """The active :class:`siyu.voc.text.FeedbackClassifier` (cached per process until a model
    or the tree changes)."""
    from siyu.nlu.intent import IntentClassifier
    from siyu.voc.text import FeedbackClassifier

    ids = dict(session.execute(select(VocModel.kind, VocModel.id).where(
        VocModel.is_active.is_(True))).all())
    # the tree is replaced whole (new ids), so its row count and newest id identify it
    tree_version = tuple(session.execute(select(func.count(), func.max(VocFactor.id))).one())
    version = (tuple(sorted(ids.items())), tree_version)
    with _cache_lock:
        hit = _cache.get("clf")
        if hit is not None and hit[0] == version:
            return hit[1]
    models: dict[str, Any] = {}
    for kind, id_ in ids.items():
        blob = session.get(VocModel, id_).blob  # type: ignore[union-attr]
        models[kind] = IntentClassifier.loads(blob)
    clf = FeedbackClassifier(factor_tree(session), models.get("sentiment"), models.get("factor"))
    with _cache_lock:
        _cache["clf"] = (version, clf)
    return clf


def _require_sentiment(clf: Any) -> None:
    if clf.sentiment_model is None:
        raise ModelMissing("no sentiment model yet: train one with `siyu voc train --data "
                           "FILE`", details=[{"field": "model", "reason": "not trained"}])


def classify(session: Session, texts: Sequence[str]) -> list[Any]:
    """Sentiment and factor mentions of each text (:class:`siyu.voc.text.Classified`)."""
    clf = classifier(session)
    _require_sentiment(clf)
    for t in texts:
        if not t.strip() or len(t) > MAX_TEXT:
            raise InvalidInput(f"text must be 1-{MAX_TEXT} characters", details=[
                {"field": "text", "reason": f"must be 1-{MAX_TEXT} characters"}])
    return list(clf.classify_many(list(texts)))


def evaluate(session: Session, data: bytes | str, *, source: str = "file",
             text_col: str | None = None, sentiment_col: str | None = None,
             factor_col: str | None = None) -> dict[str, Any]:
    """Accuracy and macro-F1 of the active models on a labelled file; a part only where the
    file has its labels (``per_factor`` shaped like ``nlu eval``'s ``per_intent``)."""
    from siyu.nlu.metrics import score_labels

    f = read_labelled(data, source=source, text_col=text_col, sentiment_col=sentiment_col,
                      factor_col=factor_col)
    clf = classifier(session)
    out: dict[str, Any] = {"n": len(f.texts)}
    if f.sentiments is not None:
        _require_sentiment(clf)
        started = time.perf_counter()
        pred = [label for label, _ in clf.sentiments(f.texts)]
        seconds = time.perf_counter() - started
        rep = score_labels(f.sentiments, pred).to_dict()
        out["sentiment"] = {"accuracy": rep["accuracy"], "macro_f1": rep["macro_f1"],
                            "n": rep["n"], "per_label": rep["per_intent"],
                            "texts_per_second": round(len(f.texts) / max(seconds, 1e-9), 1)}
    if f.factors is not None:
        started = time.perf_counter()
        found = clf.factors_of(f.texts) if clf.factor_model is None else None
        if clf.factor_model is not None:
            pred = [p.ranking[0][0] if p.ranking else "none"
                    for p in clf.factor_model.predict_many(f.texts)]
        else:
            pred = [fs[0][0] if fs else "none" for fs in found or []]
        seconds = time.perf_counter() - started
        rep = score_labels(f.factors, pred).to_dict()
        out["factor"] = {"accuracy": rep["accuracy"], "macro_f1": rep["macro_f1"],
                         "n": rep["n"], "per_factor": rep["per_intent"],
                         "confusions": rep["confusions"][:10],
                         "source": "model" if clf.factor_model is not None else "keywords",
                         "texts_per_second": round(len(f.texts) / max(seconds, 1e-9), 1)}
    return out


def record_feedback(session: Session, *, source: str, source_ref: str, text: str,
                    customer_id: int | None = None, response_id: int | None = None,
                    product: str | None = None, ts: Any = None,
                    classified: Any = None) -> Feedback:
    """Classify (unless ``classified`` is given) and store one feedback text with its
    mentions; a text already stored under ``(source, source_ref)`` is replaced."""
    if classified is None:
        classified = classify(session, [text])[0]
    old = session.scalar(select(Feedback).where(Feedback.source == source,
                                                Feedback.source_ref == source_ref))
    if old is not None:
        session.delete(old)
        session.flush()
    kw: dict[str, Any] = {"ts": ts} if ts is not None else {}
    sign = 1 if classified.sentiment == "positive" else -1
    score = classified.confidence if sign > 0 else 1.0 - classified.confidence
    fb = Feedback(source=source, source_ref=source_ref, customer_id=customer_id,
                  response_id=response_id, product=product, text=text, sentiment=sign,
                  score=score, **kw)
    session.add(fb)
    session.flush()
    for m in classified.mentions:
        session.add(FeedbackMention(feedback_id=fb.id, customer_id=customer_id, factor=m.factor,
                                    sentiment=1 if m.sentiment == "positive" else -1,
                                    clause=m.clause, ts=fb.ts))
    return fb
