"""Text normalisation and tokenisation helpers for Chinese / mixed Chinese-English short texts.

Everything here is deterministic and offline.  Jieba is initialised lazily, once per process,
with its logger silenced (see :func:`ensure_jieba`), so the dictionary load never shows up in
the latency of an individual message once a model has been trained or loaded.
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata

import jieba  # type: ignore[import-untyped]

__all__ = ["CONTRAST_RE", "contrast_tail", "ensure_jieba", "normalize", "word_tokens"]

_WS_RE = re.compile(r"\s+")
#: Contrastive conjunctions: in "A 但是 B" the writer's verdict usually sits in B.
CONTRAST_RE = re.compile(r"但是|但|可是|不过|然而|只是|就是|却|而是")
_jieba_lock = threading.Lock()
_jieba_ready = False


def _to_halfwidth(text: str) -> str:
    """Map full-width ASCII variants (U+FF01..U+FF5E) and the ideographic space to half-width."""
    out: list[str] = []
    for ch in text:
        code = ord(ch)
        if code == 0x3000:
            out.append(" ")
        elif 0xFF01 <= code <= 0xFF5E:
            out.append(chr(code - 0xFEE0))
        else:
            out.append(ch)
    return "".join(out)


def normalize(text: str) -> str:
    """Return a canonical form of ``text`` for feature extraction.

    Full-width ASCII becomes half-width, the text is NFKC-normalised and lower-cased, runs of
    whitespace collapse to one space and the ends are stripped.  Chinese characters are kept
    unchanged (no traditional/simplified conversion).  ``normalize(normalize(x)) == normalize(x)``.
    """
    text = unicodedata.normalize("NFKC", _to_halfwidth(text))
    return _WS_RE.sub(" ", text.lower()).strip()


def ensure_jieba() -> None:
    """Initialise jieba's dictionary once per process, without writing anything to the log.

    Safe to call repeatedly and from several threads; later calls are no-ops.
    """
    global _jieba_ready
    if _jieba_ready:
        return
    with _jieba_lock:
        if _jieba_ready:
            return
        jieba.setLogLevel(logging.WARNING)
        jieba.initialize()
        _jieba_ready = True


def word_tokens(text: str) -> list[str]:
    """Segment already-normalised ``text`` into words with jieba (precise mode, no HMM).

    Whitespace tokens are dropped.  Punctuation tokens are kept: in short utterances a final
    ``?`` or ``吗`` is informative.  Calls :func:`ensure_jieba` first.
    """
    ensure_jieba()
    return [tok for tok in jieba.lcut(text, HMM=False) if tok.strip()]


def contrast_tail(text: str) -> str:
    """The part of ``text`` after its last contrastive conjunction ("" when it has none).

    A separate feature block of this part lets a linear model weigh "送餐很快，但是味道太差"
    by its second half, which no bag of n-grams of the whole text can express.
    """
    parts = CONTRAST_RE.split(text)
    return parts[-1] if len(parts) > 1 else ""
