"""Tests of the NLU core: intent classifier, metrics, FAQ retrieval, text helpers."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from siyu.nlu.faq import FaqEntry, FaqIndex
from siyu.nlu.intent import IntentClassifier, IntentPrediction
from siyu.nlu.metrics import OUT_OF_SCOPE, evaluate, score_labels
from siyu.nlu.text import normalize, word_tokens
from tests.datasets import shared_data_set

TOY: dict[str, list[str]] = {
    "order_status": [
        "我的订单到哪了",
        "帮我查一下订单",
        "查订单",
        "订单什么时候发货",
        "快递到哪里了",
        "我买的东西怎么还没到",
        "查询物流信息",
        "订单号123456的物流",
    ],
    "return": [
        "我要退货",
        "怎么申请退货",
        "这个商品可以退吗",
        "我想退款",
        "退货流程是什么",
        "买错了想退掉",
        "七天无理由退货怎么弄",
        "衣服不合适能退换吗",
    ],
    "human": [
        "转人工",
        "我要找人工客服",
        "人工服务",
        "请帮我接通客服",
        "不要机器人，找真人",
        "有没有人工",
        "叫你们客服出来",
        "我要投诉，找个人来",
    ],
}
TOY_EXAMPLES = [(text, intent) for intent, texts in TOY.items() for text in texts]


@pytest.fixture(scope="module")
def toy_model() -> IntentClassifier:
    return IntentClassifier.train(TOY_EXAMPLES, seed=0)


# ---------------------------------------------------------------- text helpers
def test_normalize_fullwidth_case_and_space() -> None:
    assert normalize("  ＡＢＣ１２３　我要　退货！ ") == "abc123 我要 退货!"
    assert normalize(normalize("ＨｅＬＬｏ  World")) == normalize("ＨｅＬＬｏ  World")


def test_word_tokens_segments_chinese_and_drops_spaces() -> None:
    tokens = word_tokens(normalize("我要退货 iphone"))
    assert "退货" in tokens and "iphone" in tokens and " " not in tokens


# ---------------------------------------------------------------- intent classifier
@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("订单到哪了", "order_status"),
        ("帮我查下物流", "order_status"),
        ("我想退货", "return"),
        ("可以退款吗", "return"),
        ("转人工客服", "human"),
        ("我要真人客服", "human"),
        ("ＷＯ想退货！！", "return"),  # full-width and mixed script
    ],
)
def test_toy_predictions(toy_model: IntentClassifier, text: str, intent: str) -> None:
    pred = toy_model.predict(text)
    assert pred.intent == intent
    assert not pred.out_of_scope
    assert pred.confidence >= toy_model.oos_threshold


@pytest.mark.parametrize("text", ["asdfghjkl", "qwerty 123!", "", "口红色号有哪些", "你好"])
def test_out_of_scope(toy_model: IntentClassifier, text: str) -> None:
    pred = toy_model.predict(text)
    assert pred.out_of_scope
    assert pred.intent is None
    assert pred.confidence < toy_model.oos_threshold


def test_prediction_shape(toy_model: IntentClassifier) -> None:
    pred = toy_model.predict("我的快递到哪里了")
    assert 0.0 <= pred.confidence <= 1.0
    assert pred.ranking[0][0] == pred.intent
    probs = [p for _, p in pred.ranking]
    assert probs == sorted(probs, reverse=True)
    assert sum(probs) <= 1.0 + 1e-9
    assert {name for name, _ in pred.ranking} == set(TOY)
    assert toy_model.intents == sorted(TOY)
    assert 0.0 <= toy_model.oos_threshold <= 1.0


def test_predict_many_matches_predict(toy_model: IntentClassifier) -> None:
    texts = ["我想退货", "asdf", "转人工", "订单到哪了"]
    assert toy_model.predict_many(texts) == [toy_model.predict(t) for t in texts]
    assert toy_model.predict_many([]) == []


def test_explicit_threshold() -> None:
    strict = IntentClassifier.train(TOY_EXAMPLES, oos_threshold=1.0)
    assert strict.oos_threshold == 1.0
    assert strict.predict("我想退货").out_of_scope
    lenient = strict.with_threshold(0.0)
    assert lenient.predict("我想退货").intent == "return"
    with pytest.raises(ValueError):
        IntentClassifier.train(TOY_EXAMPLES, oos_threshold=1.5)


def test_needs_two_intents() -> None:
    with pytest.raises(ValueError):
        IntentClassifier.train([("查订单", "a"), ("订单", "a")])


def test_dumps_loads_round_trip(toy_model: IntentClassifier) -> None:
    texts = ["订单到哪了", "我想退货", "转人工客服", "asdfghjkl", "你好", "衣服能退吗"]
    clone = IntentClassifier.loads(toy_model.dumps())
    assert clone.predict_many(texts) == toy_model.predict_many(texts)
    assert clone.oos_threshold == toy_model.oos_threshold
    with pytest.raises(ValueError):
        IntentClassifier.loads(b"\x80\x04N.")  # a pickled None, not a model


def test_training_is_deterministic() -> None:
    a = IntentClassifier.train(TOY_EXAMPLES, seed=3)
    b = IntentClassifier.train(TOY_EXAMPLES, seed=3)
    texts = ["订单到哪了", "能退吗", "人工"]
    assert a.predict_many(texts) == b.predict_many(texts)


# ---------------------------------------------------------------- metrics
class _FixedPredictor:
    def __init__(self, preds: list[IntentPrediction]) -> None:
        self.preds = preds

    def predict_many(self, texts: object) -> list[IntentPrediction]:
        return self.preds


def _pred(intent: str, *, oos: bool = False) -> IntentPrediction:
    return IntentPrediction(None if oos else intent, 0.1 if oos else 0.9, [(intent, 0.5)], oos)


def test_metrics_hand_computed() -> None:
    examples = [("t", "a"), ("t", "a"), ("t", "a"), ("t", "b"), ("t", "b"), ("t", "c")]
    predictor = _FixedPredictor(
        [_pred("a"), _pred("a"), _pred("b"), _pred("b"), _pred("b", oos=True), _pred("c")]
    )
    # With OOS: a P=1 R=2/3 F1=0.8; b P=1/2 R=1/2 F1=0.5; c F1=1.
    report = evaluate(predictor, examples)
    assert report.accuracy == pytest.approx(4 / 6)
    assert report.macro_f1 == pytest.approx((0.8 + 0.5 + 1.0) / 3)
    assert report.confusions == [("a", "b", 1), ("b", OUT_OF_SCOPE, 1)]
    assert report.n_out_of_scope == 1
    d = report.to_dict()
    assert set(d) >= {"accuracy", "macro_f1", "per_intent", "confusions", "n"}
    assert d["n"] == 6
    assert d["per_intent"]["b"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert d["per_intent"]["a"]["recall"] == pytest.approx(2 / 3)
    # Without OOS the rejected message counts as its top intent b: b P=2/3 R=1 F1=0.8.
    plain = evaluate(predictor, examples, use_oos=False)
    assert plain.accuracy == pytest.approx(5 / 6)
    assert plain.macro_f1 == pytest.approx((0.8 + 0.8 + 1.0) / 3)
    assert plain.confusions == [("a", "b", 1)]


def test_score_labels_edge_cases() -> None:
    assert score_labels([], []).accuracy == 0.0
    report = score_labels(["x", "y"], ["z", "z"])
    assert report.accuracy == 0.0 and report.macro_f1 == 0.0
    with pytest.raises(ValueError):
        score_labels(["x"], [])


# ---------------------------------------------------------------- FAQ retrieval
FAQ = [
    FaqEntry("ship", "多久发货", ["什么时候发货", "下单后几天发货"], "48小时内发货"),
    FaqEntry("return", "怎么退货", ["如何申请退货", "退货流程"], "在订单页申请退货"),
    FaqEntry("invoice", "可以开发票吗", ["怎么开发票", "发票怎么开"], "可以，在订单页申请"),
    FaqEntry("pay", "支持哪些支付方式", ["能用微信支付吗", "可以用支付宝吗"], "微信、支付宝"),
    FaqEntry("size", "尺码怎么选", ["衣服尺码对照表", "我穿多大码"], "看详情页尺码表"),
]


@pytest.mark.parametrize(
    ("text", "entry_id"),
    [
        ("我下单了什么时候能发货呀", "ship"),
        ("退货要怎么弄", "return"),
        ("能开发票不", "invoice"),
        ("可以微信付款吗", "pay"),
    ],
)
def test_faq_paraphrase(text: str, entry_id: str) -> None:
    index = FaqIndex.build(FAQ)
    hits = index.search(text, k=3)
    assert hits and hits[0].entry_id == entry_id
    assert all(index.min_score <= h.score <= 1.0 for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert len({h.entry_id for h in hits}) == len(hits)
    entry = index.get(entry_id)
    assert entry is not None
    assert hits[0].matched_question in [entry.question, *entry.variants]


def test_faq_exact_question_scores_one_and_unrelated_is_empty() -> None:
    index = FaqIndex.build(FAQ)
    top = index.search("怎么退货", k=1)
    assert len(top) == 1 and top[0].score == pytest.approx(1.0)
    assert index.search("你们老板是谁") == []
    assert index.search("hello") == []
    assert index.search("") == []
    assert FaqIndex.build([]).search("怎么退货") == []
    with pytest.raises(ValueError):
        FaqIndex.build([FAQ[0], FAQ[0]])


# ---------------------------------------------------------------- acceptance on SMP2019
def _read(path: Path) -> list[tuple[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return [(row["text"], row["intent"]) for row in csv.DictReader(fh)]


@pytest.mark.slow
def test_smp2019_accuracy_bar() -> None:
    data = shared_data_set("intent_smp2019")
    model = IntentClassifier.train(_read(data / "train.csv"), seed=0)
    report = evaluate(model, _read(data / "test.csv"), use_oos=False)
    assert report.n == 270
    # Best published deep model on this split (Stack-Propagation): 94.44 %.
    assert report.accuracy >= 0.9444, report.to_dict()
