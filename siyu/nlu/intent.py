"""Intent classification for Chinese and mixed Chinese/English short texts.

Recipe (each choice was compared by cross-validation on SMP2019 train and waimai_10k train):

* text is normalised with :func:`siyu.nlu.text.normalize` (full-width to half-width, NFKC,
  lower-case, whitespace collapsed);
* features are the concatenation of a character 1..n-gram TF-IDF (``char_wb``, sublinear tf)
  and a jieba word uni/bi-gram TF-IDF (sublinear tf), each block L2-normalised;
* the model is a one-vs-rest linear SVM (``LinearSVC``, balanced class weights).

At training time a small grid (character n-gram order x SVM ``C``) is evaluated with stratified
k-fold cross-validation *on the training examples only*; the best setting by out-of-fold
accuracy is refitted on all examples.  The same out-of-fold decision scores are used to

1. fit a softmax temperature, so that ``confidence`` is a calibrated probability-like score in
   ``[0, 1]`` (minimum negative log-likelihood on the out-of-fold scores), and
2. choose the default out-of-scope threshold: the confidence value that best separates correct
   out-of-fold predictions from wrong ones (maximum of ``accepted-and-correct +
   rejected-and-wrong``), clipped to :data:`THRESHOLD_BOUNDS`.  A wrong top intent is the
   closest proxy for "this message is not one of my intents" that labelled in-scope data can
   give.  Pass ``oos_threshold`` to :meth:`IntentClassifier.train` to override it.

A message whose features are all unknown to the model (no character or word n-gram seen in
training) is always out of scope with confidence 0.

Training on a couple of thousand short examples takes a few seconds on two CPU cores; nothing
is downloaded at run time.
"""

from __future__ import annotations

import pickle
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp  # type: ignore[import-untyped]
from scipy.optimize import minimize_scalar  # type: ignore[import-untyped]
from sklearn.exceptions import ConvergenceWarning  # type: ignore[import-untyped]
from sklearn.feature_extraction.text import (  # type: ignore[import-untyped]
    CountVectorizer,
    TfidfVectorizer,
)
from sklearn.model_selection import StratifiedKFold  # type: ignore[import-untyped]
from sklearn.svm import LinearSVC  # type: ignore[import-untyped]

from siyu.nlu.text import contrast_tail, ensure_jieba, normalize, word_tokens

__all__ = [
    "DEFAULT_CHAR_MAX_GRID",
    "DEFAULT_C_GRID",
    "THRESHOLD_BOUNDS",
    "IntentClassifier",
    "IntentPrediction",
    "TrainingInfo",
]

#: SVM regularisation values tried by cross-validation (larger = less regularisation).
DEFAULT_C_GRID: tuple[float, ...] = (0.3, 1.0, 3.0, 10.0)
#: Highest character n-gram orders tried by cross-validation.
DEFAULT_CHAR_MAX_GRID: tuple[int, ...] = (2, 3)
#: The automatically chosen out-of-scope threshold is clipped to this closed interval.
THRESHOLD_BOUNDS: tuple[float, float] = (0.2, 0.6)

_FORMAT = "siyu.nlu.intent/1"
_MISSING_SCORE = -1e3  # decision score for a class a CV fold never saw


def _split_space(text: str) -> list[str]:
    """Tokenizer for pre-segmented text (module level so the vectoriser pickles)."""
    return text.split(" ")


@dataclass(frozen=True)
class IntentPrediction:
    """Result of classifying one message.

    ``intent`` is the best intent, or ``None`` when ``out_of_scope`` is true.  ``confidence`` is
    the calibrated probability of the best intent, in ``[0, 1]``.  ``ranking`` lists every
    intent with its probability, best first (probabilities sum to 1 unless the message had no
    known feature, in which case the ranking is empty).
    """

    intent: str | None
    confidence: float
    ranking: list[tuple[str, float]]
    out_of_scope: bool

    @property
    def top_intent(self) -> str | None:
        """The best-ranked intent even when the prediction is out of scope."""
        return self.ranking[0][0] if self.ranking else None


@dataclass(frozen=True)
class TrainingInfo:
    """What training chose and measured (all figures from cross-validation on the training set)."""

    n_examples: int
    n_intents: int
    char_max: int
    c: float
    cv_accuracy: float | None
    cv_scores: dict[str, float] = field(default_factory=dict)
    temperature: float = 1.0
    oos_threshold: float = 0.0
    threshold_source: str = "default"
    train_seconds: float = 0.0
    tail: bool = False
    word_max: int = 2


@dataclass
class _Featurizer:
    char_vec: Any
    word_vec: Any
    tail_vec: Any = None

    @classmethod
    def fit(
        cls, norm: Sequence[str], toks: Sequence[str], char_max: int, *, tail: bool = False,
        word_max: int = 2,
    ) -> _Featurizer:
        char_vec = TfidfVectorizer(
            analyzer="char_wb", ngram_range=(1, char_max), sublinear_tf=True, lowercase=False
        )
        word_vec = TfidfVectorizer(
            tokenizer=_split_space,
            token_pattern=None,
            lowercase=False,
            ngram_range=(1, word_max),
            sublinear_tf=True,
        )
        char_vec.fit(norm)
        word_vec.fit(toks)
        tail_vec = None
        tails = [contrast_tail(t) for t in norm] if tail else []
        if any(tails):
            tail_vec = TfidfVectorizer(
                analyzer="char_wb", ngram_range=(1, char_max), sublinear_tf=True,
                lowercase=False,
            )
            tail_vec.fit(tails)
        return cls(char_vec, word_vec, tail_vec)

    def transform(self, norm: Sequence[str], toks: Sequence[str]) -> Any:
        blocks = [self.char_vec.transform(norm), self.word_vec.transform(toks)]
        tail_vec = getattr(self, "tail_vec", None)  # models pickled before the block existed
        if tail_vec is not None:
            blocks.append(tail_vec.transform([contrast_tail(t) for t in norm]))
        return sp.hstack(blocks, format="csr")

    def known(self, x: Any) -> np.ndarray:
        """Rows of ``x`` with at least one feature other than the whitespace padding."""
        blank = self.char_vec.vocabulary_.get(" ")
        nnz = np.diff(x.indptr)
        if blank is not None:
            nnz = nnz - (x[:, blank].toarray().ravel() != 0)
        return np.asarray(nnz > 0)


def _prepare(texts: Sequence[str]) -> tuple[list[str], list[str]]:
    norm = [normalize(t) for t in texts]
    toks = [" ".join(word_tokens(t)) for t in norm]
    return norm, toks


def _count_blocks(
    norm: Sequence[str], toks: Sequence[str], char_max: int, *, tail: bool = False,
    word_max: int = 2,
) -> tuple[Any, Any, np.ndarray, Any, np.ndarray]:
    """Raw n-gram counts of all examples, computed once for the whole cross-validation.

    Returns the character counts, the word counts, the length of each character n-gram
    (so that lower orders can be selected by column) and, with ``tail``, the character
    counts of each text's contrast tail with their n-gram lengths (else ``None``).
    """
    char_cv = CountVectorizer(analyzer="char_wb", ngram_range=(1, char_max), lowercase=False)
    word_cv = CountVectorizer(
        tokenizer=_split_space, token_pattern=None, lowercase=False,
        ngram_range=(1, word_max),
    )
    char_counts = char_cv.fit_transform(norm).tocsc()
    word_counts = word_cv.fit_transform(toks).tocsr()
    char_len = np.array([len(t) for t in char_cv.get_feature_names_out()])
    tail_counts, tail_len = None, np.zeros(0, dtype=int)
    if tail:
        tails = [contrast_tail(t) for t in norm]
        if any(tails):
            tail_cv = CountVectorizer(
                analyzer="char_wb", ngram_range=(1, char_max), lowercase=False
            )
            tail_counts = tail_cv.fit_transform(tails).tocsc()
            tail_len = np.array([len(t) for t in tail_cv.get_feature_names_out()])
    return char_counts, word_counts, char_len, tail_counts, tail_len


def _fold_tfidf(counts: Any, train_rows: np.ndarray) -> Any:
    """Sublinear-tf, smoothed-idf, L2-normalised TF-IDF of ``counts`` with document
    frequencies from ``train_rows`` only; terms absent from those rows get weight 0.

    Equivalent to fitting ``TfidfVectorizer(sublinear_tf=True)`` on the training rows and
    transforming every row, without re-tokenising for each fold.
    """
    x = sp.csr_matrix(counts, dtype=np.float64, copy=True)
    x.data = 1.0 + np.log(x.data)
    df = np.asarray((x[train_rows] > 0).sum(axis=0)).ravel()
    n = len(train_rows)
    idf = np.where(df > 0, np.log((1.0 + n) / (1.0 + df)) + 1.0, 0.0)
    x = x @ sp.diags(idf)
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return sp.csr_matrix(sp.diags(1.0 / norms) @ x)


def _new_svm(c: float, seed: int) -> LinearSVC:
    return LinearSVC(C=c, class_weight="balanced", random_state=seed, max_iter=5000)


def _scores(model: LinearSVC, x: Any) -> np.ndarray:
    """Decision scores as an (n, n_classes) matrix, also for binary problems."""
    d = np.asarray(model.decision_function(x), dtype=float)
    if d.ndim == 1:
        d = np.column_stack([-d, d])
    return d


def _softmax(scores: np.ndarray, temperature: float) -> np.ndarray:
    """Intent probabilities: softmax over ``temperature * scores`` plus a "none" logit of 0.

    A one-vs-rest SVM score of 0 is the margin at which each binary classifier stops claiming
    the message, so the extra zero logit is the model's own "none of these intents" option:
    when every score is negative, the top intent gets a low probability however the scores
    compare among themselves.  The returned rows therefore sum to less than 1.
    """
    z = scores * temperature
    m = np.maximum(z.max(axis=1, keepdims=True), 0.0)
    e = np.exp(z - m)
    return np.asarray(e / (e.sum(axis=1, keepdims=True) + np.exp(-m)))


def _fit_temperature(scores: np.ndarray, y_idx: np.ndarray) -> float:
    """Softmax temperature (a multiplier on the scores) minimising out-of-fold NLL."""
    rows = np.arange(len(y_idx))

    def nll(log_t: float) -> float:
        p = _softmax(scores, float(np.exp(log_t)))[rows, y_idx]
        return float(-np.log(np.clip(p, 1e-12, 1.0)).mean())

    res = minimize_scalar(nll, bounds=(np.log(0.1), np.log(100.0)), method="bounded")
    return float(np.exp(res.x))


def _choose_threshold(conf: np.ndarray, correct: np.ndarray) -> float:
    """Confidence cut that best separates correct from wrong out-of-fold predictions."""
    lo, hi = THRESHOLD_BOUNDS
    candidates = np.unique(np.concatenate([[lo, hi], conf[(conf >= lo) & (conf <= hi)]]))
    best_t, best_gain = lo, -1
    for t in candidates:
        accept = conf >= t
        gain = int(np.sum(accept & correct) + np.sum(~accept & ~correct))
        if gain > best_gain:
            best_t, best_gain = float(t), gain
    return best_t


class IntentClassifier:
    """A trained intent model; build one with :meth:`train` or :meth:`loads`.

    Instances are immutable after training and safe to share between threads for prediction.
    """

    def __init__(
        self,
        featurizer: _Featurizer,
        model: LinearSVC,
        classes: list[str],
        info: TrainingInfo,
    ) -> None:
        self._featurizer = featurizer
        self._model = model
        self._classes = classes
        self.info = info
        ensure_jieba()

    # ------------------------------------------------------------------ properties
    @property
    def intents(self) -> list[str]:
        """The intent labels the model knows, sorted."""
        return list(self._classes)

    @property
    def oos_threshold(self) -> float:
        """Predictions with ``confidence`` below this value are out of scope."""
        return self.info.oos_threshold

    # ------------------------------------------------------------------ training
    @classmethod
    def train(
        cls,
        examples: Sequence[tuple[str, str]],
        *,
        oos_threshold: float | None = None,
        seed: int = 0,
        c_grid: Sequence[float] = DEFAULT_C_GRID,
        char_max_grid: Sequence[int] = DEFAULT_CHAR_MAX_GRID,
        n_folds: int = 5,
        tail: bool = False,
        word_max: int = 2,
    ) -> IntentClassifier:
        """Train on ``(text, intent)`` pairs and return the classifier.

        Needs at least two distinct intents and one non-empty text.  Hyper-parameters are
        picked from ``c_grid`` x ``char_max_grid`` by ``n_folds``-fold cross-validation on
        ``examples`` (skipped when the grid has a single point or data is too small, in which
        case the temperature is 1 and the threshold defaults to the lower bound).
        ``oos_threshold`` overrides the threshold chosen from cross-validation.  With ``tail``
        the part of each text after its last contrastive conjunction (see
        :func:`siyu.nlu.text.contrast_tail`) gets a feature block of its own (used for review
        sentiment).  The result is deterministic for a given ``seed``.
        """
        import time

        start = time.perf_counter()
        texts = [t for t, _ in examples]
        labels = [str(y) for _, y in examples]
        classes = sorted(set(labels))
        if len(classes) < 2:
            raise ValueError("intent training needs at least two distinct intents")
        if oos_threshold is not None and not 0.0 <= oos_threshold <= 1.0:
            raise ValueError("oos_threshold must be within [0, 1]")
        ensure_jieba()
        norm, toks = _prepare(texts)
        class_idx = {c: i for i, c in enumerate(classes)}
        y_idx = np.array([class_idx[y] for y in labels])
        y_arr = np.array(labels)

        grid = [(cm, float(c)) for cm in char_max_grid for c in c_grid]
        if not grid:
            raise ValueError("empty hyper-parameter grid")
        counts = np.bincount(y_idx)
        folds = min(n_folds, int(counts.max()))
        cv_scores: dict[str, float] = {}
        best = grid[0]
        temperature, threshold, source, cv_acc = 1.0, THRESHOLD_BOUNDS[0], "default", None

        if folds >= 2 and len(labels) >= 2 * len(classes):
            oof = {g: np.full((len(labels), len(classes)), _MISSING_SCORE) for g in grid}
            skf = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # classes smaller than n_folds
                splits = list(skf.split(np.zeros(len(labels)), y_arr))
            char_counts, word_counts, char_len, tail_counts, tail_len = _count_blocks(
                norm, toks, max(char_max_grid), tail=tail, word_max=word_max
            )
            for tr, te in splits:
                fold_classes = sorted(set(y_arr[tr]))
                if len(fold_classes) < 2:
                    continue
                cols = [class_idx[c] for c in fold_classes]
                word_block = _fold_tfidf(word_counts, tr)
                for cm in char_max_grid:
                    blocks = [_fold_tfidf(char_counts[:, char_len <= cm], tr), word_block]
                    if tail_counts is not None:
                        blocks.append(_fold_tfidf(tail_counts[:, tail_len <= cm], tr))
                    x = sp.hstack(blocks, format="csr")
                    for c in c_grid:
                        svm = _fit_svm(x[tr], y_arr[tr], float(c), seed)
                        oof[(cm, float(c))][np.ix_(te, cols)] = _scores(svm, x[te])
            for g in grid:
                cv_scores[f"char_max={g[0]},C={g[1]:g}"] = float(
                    np.mean(oof[g].argmax(axis=1) == y_idx)
                )
            best = max(grid, key=lambda g: cv_scores[f"char_max={g[0]},C={g[1]:g}"])
            cv_acc = cv_scores[f"char_max={best[0]},C={best[1]:g}"]
            temperature = _fit_temperature(oof[best], y_idx)
            probs = _softmax(oof[best], temperature)
            threshold = _choose_threshold(probs.max(axis=1), probs.argmax(axis=1) == y_idx)
            source = "cross-validation"
        if oos_threshold is not None:
            threshold, source = float(oos_threshold), "explicit"

        char_max, c_best = best
        featurizer = _Featurizer.fit(norm, toks, char_max, tail=tail, word_max=word_max)
        model = _fit_svm(featurizer.transform(norm, toks), y_arr, c_best, seed)
        info = TrainingInfo(
            n_examples=len(labels),
            n_intents=len(classes),
            char_max=char_max,
            c=c_best,
            cv_accuracy=cv_acc,
            cv_scores=cv_scores,
            temperature=temperature,
            oos_threshold=threshold,
            threshold_source=source,
            train_seconds=time.perf_counter() - start,
            tail=tail,
            word_max=word_max,
        )
        return cls(featurizer, model, [str(c) for c in model.classes_], info)

    def with_threshold(self, oos_threshold: float) -> IntentClassifier:
        """Return a copy of this classifier that uses another out-of-scope threshold."""
        if not 0.0 <= oos_threshold <= 1.0:
            raise ValueError("oos_threshold must be within [0, 1]")
        info = TrainingInfo(
            **{**self.info.__dict__, "oos_threshold": oos_threshold, "threshold_source": "explicit"}
        )
        return IntentClassifier(self._featurizer, self._model, self._classes, info)

    # ------------------------------------------------------------------ prediction
    def predict(self, text: str) -> IntentPrediction:
        """Classify one message (see :class:`IntentPrediction`)."""
        return self.predict_many([text])[0]

    def predict_many(self, texts: Sequence[str]) -> list[IntentPrediction]:
        """Classify several messages at once; same results as calling :meth:`predict` on each."""
        if not texts:
            return []
        norm, toks = _prepare(texts)
        x = self._featurizer.transform(norm, toks)
        probs = _softmax(_scores(self._model, x), self.info.temperature)
        known = self._featurizer.known(x)
        out: list[IntentPrediction] = []
        for row, has_features in zip(probs, known, strict=True):
            if not has_features:
                out.append(IntentPrediction(None, 0.0, [], True))
                continue
            order = np.argsort(-row, kind="stable")
            ranking = [(self._classes[i], float(row[i])) for i in order]
            conf = ranking[0][1]
            oos = conf < self.info.oos_threshold
            out.append(IntentPrediction(None if oos else ranking[0][0], conf, ranking, oos))
        return out

    # ------------------------------------------------------------------ persistence
    def dumps(self) -> bytes:
        """Serialise the model to bytes (pickle).

        Only load bytes produced by your own deployment with :meth:`loads`: unpickling data
        from an untrusted source can execute arbitrary code.
        """
        payload = {
            "format": _FORMAT,
            "featurizer": self._featurizer,
            "model": self._model,
            "classes": self._classes,
            "info": self.info,
        }
        return pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def loads(cls, data: bytes) -> IntentClassifier:
        """Rebuild a classifier from :meth:`dumps` output.  TRUSTED INPUT ONLY (pickle)."""
        payload = pickle.loads(data)
        if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
            raise ValueError("not a siyu intent model (or an incompatible version)")
        return cls(payload["featurizer"], payload["model"], payload["classes"], payload["info"])


def _fit_svm(x: Any, y: np.ndarray, c: float, seed: int) -> LinearSVC:
    svm = _new_svm(c, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        svm.fit(x, y)
    return svm
