"""FAQ retrieval: find the knowledge-base entries whose questions best match a message.

Every entry's question and its variants are indexed as character 1-3-gram TF-IDF vectors
(``analyzer="char"``: no word-boundary padding, so whitespace never makes unrelated texts
look alike; sublinear tf, L2-normalised) of the normalised text
(:func:`siyu.nlu.text.normalize`).  A message is scored against an entry by the highest cosine
similarity between the message and any of the entry's questions; since all weights are
non-negative the score lies in ``[0, 1]`` (1 = same n-gram profile).  Hits scoring below the
index's ``min_score`` (default :data:`DEFAULT_MIN_SCORE`) are not returned, so an unrelated
message gets an empty list rather than the least bad answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer  # type: ignore[import-untyped]

from siyu.nlu.text import normalize

__all__ = ["DEFAULT_MIN_SCORE", "FaqEntry", "FaqHit", "FaqIndex"]

#: Default minimum cosine score of a returned hit.  Chosen on a hand-made 5-entry Chinese
#: customer-service FAQ: paraphrases scored 0.32-0.71 against their entry, unrelated messages
#: at most 0.30 against any entry.  IDF comes from the FAQ itself, so with very small FAQs a
#: common character (e.g. 我) can weigh too much; tune ``min_score`` per knowledge base.
DEFAULT_MIN_SCORE = 0.3


@dataclass(frozen=True)
class FaqEntry:
    """One knowledge-base entry: a canonical question, alternative phrasings and the answer."""

    id: str
    question: str
    variants: list[str] = field(default_factory=list)
    answer: str = ""


@dataclass(frozen=True)
class FaqHit:
    """A retrieved entry: its id, the score in [0, 1] and which of its questions matched best."""

    entry_id: str
    score: float
    matched_question: str


class FaqIndex:
    """An immutable search index over FAQ entries; build it with :meth:`build`."""

    def __init__(
        self,
        entries: list[FaqEntry],
        vectorizer: Any,
        matrix: Any,
        owners: np.ndarray,
        questions: list[str],
        min_score: float,
    ) -> None:
        self._entries = entries
        self._by_id = {e.id: e for e in entries}
        self._vectorizer = vectorizer
        self._matrix = matrix
        self._owners = owners
        self._questions = questions
        self.min_score = min_score

    @classmethod
    def build(
        cls, entries: Sequence[FaqEntry], *, min_score: float = DEFAULT_MIN_SCORE
    ) -> FaqIndex:
        """Index ``entries`` (question and variants each).

        Raises ``ValueError`` on duplicate entry ids or a ``min_score`` outside ``[0, 1]``.
        Blank questions/variants are ignored; an empty index returns no hits.
        """
        if not 0.0 <= min_score <= 1.0:
            raise ValueError("min_score must be within [0, 1]")
        ids = [e.id for e in entries]
        if len(set(ids)) != len(ids):
            raise ValueError("duplicate FAQ entry id")
        questions: list[str] = []
        owners: list[int] = []
        for i, entry in enumerate(entries):
            for q in [entry.question, *entry.variants]:
                if normalize(q):
                    questions.append(q)
                    owners.append(i)
        vectorizer = TfidfVectorizer(
            analyzer="char", ngram_range=(1, 3), sublinear_tf=True, lowercase=False
        )
        matrix = vectorizer.fit_transform([normalize(q) for q in questions]) if questions else None
        return cls(
            list(entries),
            vectorizer,
            matrix,
            np.array(owners, dtype=int),
            questions,
            min_score,
        )

    @property
    def entries(self) -> list[FaqEntry]:
        """The indexed entries, in build order."""
        return list(self._entries)

    def get(self, entry_id: str) -> FaqEntry | None:
        """The entry with this id, or ``None``."""
        return self._by_id.get(entry_id)

    def search(self, text: str, k: int = 3) -> list[FaqHit]:
        """Return up to ``k`` entries best matching ``text``, best first, one hit per entry.

        Only hits with ``score >= self.min_score`` are returned (possibly none).  Ties are
        broken by build order.
        """
        norm = normalize(text)
        if self._matrix is None or k <= 0 or not norm:
            return []
        q = self._vectorizer.transform([norm])
        sims = np.clip(np.asarray((self._matrix @ q.T).toarray()).ravel(), 0.0, 1.0)
        best: dict[int, int] = {}
        for row in np.argsort(-sims, kind="stable"):
            owner = int(self._owners[row])
            if sims[row] < self.min_score:
                break
            if owner not in best:
                best[owner] = int(row)
                if len(best) == k:
                    break
        return [
            FaqHit(self._entries[o].id, float(sims[r]), self._questions[r]) for o, r in best.items()
        ]
