"""Evaluation of an intent classifier on labelled examples."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from siyu.nlu.intent import IntentPrediction

__all__ = ["OUT_OF_SCOPE", "EvalReport", "IntentScores", "evaluate", "score_labels"]

#: Label used for a prediction that was rejected as out of scope.
OUT_OF_SCOPE = "out_of_scope"


class _Predictor(Protocol):
    def predict_many(self, texts: Sequence[str]) -> list[IntentPrediction]: ...


@dataclass(frozen=True)
class IntentScores:
    """Precision, recall and F1 (fractions in [0, 1]) and support (count of true examples)."""

    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class EvalReport:
    """Accuracy, macro-F1 (over the true intents), per-intent scores and top confusions.

    ``confusions`` holds ``(true, predicted, count)`` for wrong predictions, most frequent
    first (ties by label order); a rejected prediction appears as :data:`OUT_OF_SCOPE`.
    """

    accuracy: float
    macro_f1: float
    per_intent: dict[str, IntentScores]
    confusions: list[tuple[str, str, int]]
    n: int
    n_out_of_scope: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: ``accuracy``, ``macro_f1``, ``per_intent``, ``confusions``, ``n``
        (plus ``n_out_of_scope``).  Rates are fractions between 0 and 1."""
        return {
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "per_intent": {
                k: {"precision": v.precision, "recall": v.recall, "f1": v.f1, "support": v.support}
                for k, v in self.per_intent.items()
            },
            "confusions": [list(c) for c in self.confusions],
            "n": self.n,
            "n_out_of_scope": self.n_out_of_scope,
        }


def score_labels(
    y_true: Sequence[str], y_pred: Sequence[str], *, max_confusions: int = 20
) -> EvalReport:
    """Compute an :class:`EvalReport` from parallel lists of true and predicted labels.

    Macro-F1 is the unweighted mean of F1 over the intents present in ``y_true``; a predicted
    label that never occurs in ``y_true`` (such as :data:`OUT_OF_SCOPE`) lowers the precision
    of nothing but the recall of the true intent.  Precision of an intent that is never
    predicted is 0, as is F1 when precision + recall is 0.  An empty input gives zeros.
    """
    if len(y_true) != len(y_pred):
        raise ValueError("y_true and y_pred must have the same length")
    n = len(y_true)
    true_count = Counter(y_true)
    pred_count = Counter(y_pred)
    hits = Counter(t for t, p in zip(y_true, y_pred, strict=True) if t == p)
    per_intent: dict[str, IntentScores] = {}
    for label in sorted(true_count):
        tp = hits[label]
        precision = tp / pred_count[label] if pred_count[label] else 0.0
        recall = tp / true_count[label]
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_intent[label] = IntentScores(precision, recall, f1, true_count[label])
    errors = Counter((t, p) for t, p in zip(y_true, y_pred, strict=True) if t != p)
    confusions = sorted(
        ((t, p, c) for (t, p), c in errors.items()), key=lambda r: (-r[2], r[0], r[1])
    )
    accuracy = sum(hits.values()) / n if n else 0.0
    macro_f1 = sum(s.f1 for s in per_intent.values()) / len(per_intent) if per_intent else 0.0
    return EvalReport(
        accuracy=accuracy,
        macro_f1=macro_f1,
        per_intent=per_intent,
        confusions=confusions[:max_confusions],
        n=n,
        n_out_of_scope=pred_count[OUT_OF_SCOPE],
    )


def evaluate(
    classifier: _Predictor,
    examples: Sequence[tuple[str, str]],
    *,
    use_oos: bool = True,
    max_confusions: int = 20,
) -> EvalReport:
    """Classify ``(text, intent)`` examples and score the predictions.

    With ``use_oos=True`` a prediction rejected as out of scope counts as the label
    :data:`OUT_OF_SCOPE` (wrong for every in-scope example).  With ``use_oos=False`` the best
    ranked intent is used whatever its confidence (a message without any known feature still
    counts as :data:`OUT_OF_SCOPE`, since the model has no intent to offer).
    """
    preds = classifier.predict_many([t for t, _ in examples])
    y_pred: list[str] = []
    for p in preds:
        label = p.intent if use_oos else (p.ranking[0][0] if p.ranking else None)
        y_pred.append(label if label is not None else OUT_OF_SCOPE)
    return score_labels([y for _, y in examples], y_pred, max_confusions=max_confusions)


def read_csv_examples(
    path: str, *, text_col: str = "text", label_col: str = "intent"
) -> list[tuple[str, str]]:
    """Read ``(text, label)`` pairs from a UTF-8 CSV file with a header row."""
    import csv

    with open(path, encoding="utf-8", newline="") as fh:
        return [(row[text_col], row[label_col]) for row in csv.DictReader(fh)]


def _benchmark(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Command-line benchmark: train on one CSV, evaluate on others, print JSON."""
    import argparse
    import json
    import time

    import numpy as np

    from siyu.nlu.intent import IntentClassifier

    ap = argparse.ArgumentParser(
        prog="python -m siyu.nlu.metrics",
        description="Train an intent model on a CSV and evaluate it on other CSVs.",
    )
    ap.add_argument("train")
    ap.add_argument("evals", nargs="+")
    ap.add_argument("--text-col", default="text")
    ap.add_argument("--label-col", default="intent")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--latency-n", type=int, default=500, help="messages timed one by one")
    args = ap.parse_args(argv)
    cols = {"text_col": args.text_col, "label_col": args.label_col}

    train = read_csv_examples(args.train, **cols)
    start = time.perf_counter()
    clf = IntentClassifier.train(train, seed=args.seed)
    train_s = time.perf_counter() - start
    out: dict[str, Any] = {
        "train": args.train,
        "n_train": len(train),
        "train_seconds": round(train_s, 3),
        "chosen": {"char_max": clf.info.char_max, "C": clf.info.c},
        "cv_accuracy": clf.info.cv_accuracy,
        "oos_threshold": clf.oos_threshold,
        "temperature": clf.info.temperature,
        "eval": {},
    }
    for path in args.evals:
        ex = read_csv_examples(path, **cols)
        plain = evaluate(clf, ex, use_oos=False).to_dict()
        oos = evaluate(clf, ex, use_oos=True).to_dict()
        out["eval"][path] = {
            "n": plain["n"],
            "accuracy": plain["accuracy"],
            "macro_f1": plain["macro_f1"],
            "accuracy_with_oos": oos["accuracy"],
            "macro_f1_with_oos": oos["macro_f1"],
            "n_out_of_scope": oos["n_out_of_scope"],
            "top_confusions": plain["confusions"][:5],
        }
    texts = [t for t, _ in read_csv_examples(args.evals[-1], **cols)][: args.latency_n]
    clf.predict(texts[0])  # warm-up
    lat = []
    for t in texts:
        t0 = time.perf_counter()
        clf.predict(t)
        lat.append((time.perf_counter() - t0) * 1000)
    out["predict_latency_ms"] = {
        "p50": round(float(np.percentile(lat, 50)), 3),
        "p99": round(float(np.percentile(lat, 99)), 3),
        "n": len(lat),
    }
    print(json.dumps(out, ensure_ascii=False, indent=2))
    return out


if __name__ == "__main__":
    _benchmark()
