"""Feedback text: clauses, the factor tree, per-factor sentiment on hand-made data."""

from __future__ import annotations

import pytest

from siyu.nlu.text import contrast_tail
from siyu.voc.text import (
    DEMO_TREE,
    TELECOM_TREE,
    FactorNode,
    FactorTree,
    FeedbackClassifier,
    split_clauses,
)
from tests.voc.builders import sentiment_rows


@pytest.fixture(scope="module")
def clf() -> FeedbackClassifier:
    examples = [(t, "positive" if y else "negative") for t, y in sentiment_rows()]
    return FeedbackClassifier(DEMO_TREE, FeedbackClassifier.train_sentiment(examples))


@pytest.mark.parametrize(("text", "clauses"), [
    ("物流很快，但是味道太差", ["物流很快", "但是味道太差"]),
    ("包装不错。价格有点贵!客服态度好", ["包装不错", "价格有点贵", "客服态度好"]),
    ("味道还行不过送得太慢了", ["味道还行", "不过送得太慢了"]),
    ("好", ["好"]),
    ("，，", []),
])
def test_split_clauses(text: str, clauses: list[str]) -> None:
    assert split_clauses(text) == clauses


def test_contrast_tail_is_the_part_after_the_last_conjunction() -> None:
    assert contrast_tail("送餐很快，但是味道太差") == "味道太差"
    assert contrast_tail("很好吃") == ""


def test_factor_tree_paths_leaves_and_keywords() -> None:
    assert DEMO_TREE.path("物流") == ["服务", "物流"]
    assert DEMO_TREE.category_of("口味") == "产品"
    assert {"产品功效", "口味", "包装", "价格", "物流", "客服", "售后"} == set(DEMO_TREE.leaves)
    assert DEMO_TREE.keyword_factors("快递小哥送货很快") == ["物流"]
    # a leaf's keyword wins over its category's
    assert DEMO_TREE.keyword_factors("这个产品味道不错") == ["口味"]
    assert TELECOM_TREE.path("装机服务") == ["服务水平", "装机服务"]
    assert len([n for n in TELECOM_TREE.nodes if n.parent is None]) == 4


def test_factor_tree_round_trips_and_refuses_bad_trees() -> None:
    assert FactorTree.from_dict(TELECOM_TREE.to_dict()).nodes == TELECOM_TREE.nodes
    with pytest.raises(ValueError, match="unique"):
        FactorTree([FactorNode("a"), FactorNode("a")])
    with pytest.raises(ValueError, match="unknown parent"):
        FactorTree([FactorNode("a", "b")])


def test_one_text_two_factors_two_sentiments(clf: FeedbackClassifier) -> None:
    result = clf.classify("物流很快，但是味道太差")
    by_factor = {m.factor: m.sentiment for m in result.mentions}
    assert by_factor == {"物流": "positive", "口味": "negative"}
    assert result.sentiment == "negative"  # the verdict sits after 但是


def test_single_clause_takes_the_overall_sentiment(clf: FeedbackClassifier) -> None:
    result = clf.classify("客服很糟")
    assert result.sentiment == "negative"
    assert [(m.factor, m.sentiment) for m in result.mentions] == [("客服", "negative")]
    assert clf.classify("今天天气").mentions == []


def test_sentiment_training_needs_both_labels() -> None:
    with pytest.raises(ValueError, match="both labels"):
        FeedbackClassifier.train_sentiment([("好", "positive"), ("很好", "positive")])
