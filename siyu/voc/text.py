"""Feedback text → factors of a factor tree, each with a sentiment (no database here).

One text may name several factors with opposite feelings ("物流很快，但是味道太差" is
positive on 物流 and negative on 口味), so a text is split into clauses (at punctuation and
at contrastive conjunctions), each clause gets its factor(s) and its own sentiment, and the
whole text gets an overall sentiment. Both models are :class:`siyu.nlu.intent.IntentClassifier`
— the same core that recognises the bot's intents — trained on labelled examples:

* sentiment: labels ``positive`` / ``negative``, with the contrast-tail feature block;
* factor: labels are factor-tree leaves; a clause the model is not confident about (below
  its out-of-scope threshold) falls back to the tree's keywords, so a brand can start from
  keywords alone and add labelled examples later.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from siyu.nlu.intent import IntentClassifier
from siyu.nlu.text import CONTRAST_RE, normalize

__all__ = [
    "DEMO_TREE",
    "TELECOM_TREE",
    "Classified",
    "FactorNode",
    "FactorTree",
    "FeedbackClassifier",
    "Mention",
    "split_clauses",
]

POSITIVE, NEGATIVE = "positive", "negative"
_CLAUSE_RE = re.compile(r"[，,。.！!？?；;～~\n\r…]+|\s{2,}")
DATA_DIR = Path(__file__).resolve().parent / "data"


def split_clauses(text: str) -> list[str]:
    """Split ``text`` into clauses at punctuation and before contrastive conjunctions.

    ``split_clauses("物流很快，但是味道太差")`` is ``["物流很快", "但是味道太差"]``; the
    conjunction stays with the clause it introduces (it is a sentiment cue).
    """
    out: list[str] = []
    for part in _CLAUSE_RE.split(text):
        start = 0
        for m in CONTRAST_RE.finditer(part):
            if m.start() > start and part[start:m.start()].strip():
                out.append(part[start:m.start()].strip())
                start = m.start()
        rest = part[start:].strip()
        if rest:
            out.append(rest)
    return out


@dataclass(frozen=True)
class FactorNode:
    name: str
    parent: str | None = None
    keywords: tuple[str, ...] = ()


@dataclass
class FactorTree:
    """Categories and their subcategories (two or more levels), each with keywords."""

    nodes: list[FactorNode]

    def __post_init__(self) -> None:
        names = [n.name for n in self.nodes]
        if len(set(names)) != len(names):
            raise ValueError("factor names must be unique")
        known = set(names)
        for n in self.nodes:
            if n.parent is not None and n.parent not in known:
                raise ValueError(f"factor {n.name}: unknown parent {n.parent}")

    @classmethod
    def from_dict(cls, tree: Mapping[str, Any]) -> FactorTree:
        """Build from ``{"categories": [{"name", "keywords", "children": [...]}, ...]}``."""
        nodes: list[FactorNode] = []

        def walk(items: Iterable[Mapping[str, Any]], parent: str | None) -> None:
            for item in items:
                name = str(item["name"]).strip()
                nodes.append(FactorNode(name, parent, tuple(item.get("keywords", ()))))
                walk(item.get("children", ()), name)

        walk(tree.get("categories", ()), None)
        return cls(nodes)

    @classmethod
    def load(cls, path: str | Path) -> FactorTree:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))

    def to_dict(self) -> dict[str, Any]:
        def children(parent: str | None) -> list[dict[str, Any]]:
            return [{"name": n.name, "keywords": list(n.keywords),
                     "children": children(n.name)} for n in self.nodes if n.parent == parent]

        return {"categories": children(None)}

    @property
    def parents(self) -> dict[str, str | None]:
        return {n.name: n.parent for n in self.nodes}

    @property
    def leaves(self) -> list[str]:
        has_child = {n.parent for n in self.nodes}
        return [n.name for n in self.nodes if n.name not in has_child]

    def category_of(self, name: str) -> str:
        parents = self.parents
        while parents.get(name) is not None:
            name = parents[name]  # type: ignore[assignment]
        return name

    def path(self, name: str) -> list[str]:
        """``[category, ..., name]``."""
        parents, out = self.parents, [name]
        while parents.get(out[0]) is not None:
            out.insert(0, parents[out[0]])  # type: ignore[arg-type]
        return out

    def keyword_factors(self, clause: str) -> list[str]:
        """Factors whose keywords occur in ``clause``: the most specific node wins (a leaf's
        keyword beats its category's), longest keyword first among siblings."""
        text = normalize(clause)
        hits: dict[str, int] = {}
        for n in self.nodes:
            best = max((len(k) for k in n.keywords if k and normalize(k) in text), default=0)
            if best:
                hits[n.name] = best
        ancestors = {a for h in hits for a in self.path(h)[:-1]}
        return sorted((h for h in hits if h not in ancestors), key=lambda h: -hits[h])


DEMO_TREE = FactorTree.load(DATA_DIR / "factors_demo.json")
TELECOM_TREE = FactorTree.load(DATA_DIR / "factors_telecom.json")


@dataclass(frozen=True)
class Mention:
    factor: str
    sentiment: str
    confidence: float
    clause: str


@dataclass(frozen=True)
class Classified:
    text: str
    sentiment: str
    confidence: float  # probability of the overall sentiment
    mentions: list[Mention] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "sentiment": self.sentiment,
                "confidence": round(self.confidence, 4),
                "mentions": [{"factor": m.factor, "sentiment": m.sentiment,
                              "confidence": round(m.confidence, 4), "clause": m.clause}
                             for m in self.mentions]}


def _positive_probability(model: IntentClassifier, texts: Sequence[str]) -> list[float]:
    out = []
    for p in model.predict_many(texts):
        probs = dict(p.ranking)
        pos, neg = probs.get(POSITIVE, 0.0), probs.get(NEGATIVE, 0.0)
        out.append(pos / (pos + neg) if pos + neg > 0 else 0.5)
    return out


class FeedbackClassifier:
    """Sentiment and factors of feedback texts (see the module docstring)."""

    def __init__(self, tree: FactorTree, sentiment: IntentClassifier | None = None,
                 factor: IntentClassifier | None = None) -> None:
        self.tree = tree
        self.sentiment_model = sentiment
        self.factor_model = factor

    @staticmethod
    def train_sentiment(examples: Sequence[tuple[str, str]], *, seed: int = 0
                        ) -> IntentClassifier:
        """Train on ``(text, positive|negative)``: the intent core with the contrast-tail
        block and word n-grams up to trigrams (negations and intensifiers span words:
        "不 是 很 好"), a small grid (character n-grams up to 3, C in 0.3 / 1) picked by
        3-fold cross-validation on the examples only."""
        labels = {y for _, y in examples}
        if not labels <= {POSITIVE, NEGATIVE} or len(labels) < 2:
            raise ValueError("sentiment examples need both labels: positive and negative")
        return IntentClassifier.train(examples, seed=seed, tail=True, c_grid=(0.3, 1.0),
                                      char_max_grid=(3,), n_folds=3, word_max=3)

    @staticmethod
    def train_factor(examples: Sequence[tuple[str, str]], *, seed: int = 0) -> IntentClassifier:
        """Train on ``(text, factor)`` with the intent recipe as it is."""
        return IntentClassifier.train(examples, seed=seed)

    def sentiments(self, texts: Sequence[str]) -> list[tuple[str, float]]:
        """Overall ``(label, probability of that label)`` of each text."""
        if self.sentiment_model is None:
            raise ValueError("no sentiment model: train one with `siyu voc train`")
        probs = _positive_probability(self.sentiment_model, texts)
        return [(POSITIVE, p) if p >= 0.5 else (NEGATIVE, 1.0 - p) for p in probs]

    def factors_of(self, clauses: Sequence[str]) -> list[list[tuple[str, float]]]:
        """Factors of each clause: the factor model's when confident, else the keywords'."""
        preds = self.factor_model.predict_many(clauses) if self.factor_model else None
        out: list[list[tuple[str, float]]] = []
        for i, clause in enumerate(clauses):
            intent = preds[i].intent if preds is not None else None
            if preds is not None and intent is not None:
                out.append([(intent, preds[i].confidence)])
                continue
            out.append([(f, 1.0) for f in self.tree.keyword_factors(clause)])
        return out

    def classify_many(self, texts: Sequence[str]) -> list[Classified]:
        overall = self.sentiments(texts)
        clauses = [split_clauses(t) or [t] for t in texts]
        flat = [c for cs in clauses for c in cs]
        factors = self.factors_of(flat)
        clause_sent = self.sentiments(flat) if flat else []
        out: list[Classified] = []
        i = 0
        for text, (label, conf), cs in zip(texts, overall, clauses, strict=True):
            mentions: dict[str, Mention] = {}
            for clause in cs:
                for factor, _fconf in factors[i]:
                    s_label, s_conf = clause_sent[i]
                    if len(cs) == 1:
                        s_label, s_conf = label, conf
                    prev = mentions.get(factor)
                    if prev is None or s_conf > prev.confidence:
                        mentions[factor] = Mention(factor, s_label, s_conf, clause)
                i += 1
            out.append(Classified(text, label, conf, list(mentions.values())))
        return out

    def classify(self, text: str) -> Classified:
        return self.classify_many([text])[0]
