"""``siyu kb`` and ``siyu nlu`` on real data: the SMP2019 intent benchmark, and refused
imports that store nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from siyu.kb.models import Intent, IntentExample
from tests.cli_helpers import run_cli
from tests.datasets import shared_data_set

BEST_PUBLISHED = 0.9444


def test_smp2019_import_train_eval_reaches_the_best_published_accuracy(
        monkeypatch: pytest.MonkeyPatch, database_url: str,
        sessions: sessionmaker[Session]) -> None:
    data = shared_data_set("intent_smp2019")
    imported = run_cli(monkeypatch, database_url, "kb", "import-intents",
                       str(data / "train.csv"), "--json")
    assert imported.exit_code == 0, imported.output
    assert json.loads(imported.stdout) == {"rows": 2053, "added": 2053, "duplicates": 0,
                                           "intents": 21}
    trained = run_cli(monkeypatch, database_url, "nlu", "train", "--json")
    assert trained.exit_code == 0, trained.output
    report = json.loads(trained.stdout)
    assert report["examples"] == 2053 and report["seconds"] < 60
    evaluated = run_cli(monkeypatch, database_url, "nlu", "eval", "--data",
                        str(data / "test.csv"), "--json")
    assert evaluated.exit_code == 0, evaluated.output
    result = json.loads(evaluated.stdout)
    assert result["accuracy"] >= BEST_PUBLISHED
    assert result["accuracy_with_oos"] >= BEST_PUBLISHED
    assert 0 < result["macro_f1"] <= 1
    assert all(0 <= v["precision"] <= 1 and 0 <= v["recall"] <= 1
               for v in result["per_intent"].values())
    predicted = run_cli(monkeypatch, database_url, "nlu", "predict", "播放周杰伦的歌", "--json")
    assert json.loads(predicted.stdout)["intent"] is not None
    # Importing the same file again adds nothing.
    again = run_cli(monkeypatch, database_url, "kb", "import-intents", str(data / "train.csv"),
                    "--json")
    assert json.loads(again.stdout)["added"] == 0


# Hand-made intents in SMP2019's shape (text,intent, upper-case labels): the same import,
# train, eval and predict path as the SMP2019 benchmark above, on data that always ships.
HANDMADE_TRAIN = {
    "QUERY": ["查一下我的订单", "订单到哪了", "帮我查物流", "快递什么时候到", "查询快递信息",
              "我的包裹在哪里", "物流信息怎么看", "订单发货了吗"],
    "RETURN": ["我要退货", "怎么申请退货", "这个能退吗", "我想退款", "退货流程是什么",
               "申请售后退货", "不想要了能退吗", "退款多久到账"],
    "INVOICE": ["开发票", "怎么开票", "我要电子发票", "发票抬头怎么改", "能开专票吗",
                "发票什么时候给", "补开发票", "发票开错了"],
}
HANDMADE_TEST = [("帮我查一下订单物流", "QUERY"), ("我想申请退货", "RETURN"),
                 ("电子发票怎么开", "INVOICE"), ("快递到哪里了", "QUERY")]


def test_handmade_intents_import_train_eval_predict(
        monkeypatch: pytest.MonkeyPatch, database_url: str, tmp_path: Path,
        sessions: sessionmaker[Session]) -> None:
    train = tmp_path / "train.csv"
    train.write_text("text,intent\n" + "".join(
        f"{text},{intent}\n" for intent, texts in HANDMADE_TRAIN.items() for text in texts),
        "utf-8")
    test = tmp_path / "test.csv"
    test.write_text("text,intent\n" + "".join(f"{t},{i}\n" for t, i in HANDMADE_TEST), "utf-8")
    imported = run_cli(monkeypatch, database_url, "kb", "import-intents", str(train), "--json")
    assert imported.exit_code == 0, imported.output
    assert json.loads(imported.stdout) == {"rows": 24, "added": 24, "duplicates": 0,
                                           "intents": 3}
    trained = run_cli(monkeypatch, database_url, "nlu", "train", "--json")
    assert trained.exit_code == 0, trained.output
    assert json.loads(trained.stdout)["examples"] == 24
    evaluated = run_cli(monkeypatch, database_url, "nlu", "eval", "--data", str(test), "--json")
    assert evaluated.exit_code == 0, evaluated.output
    result = json.loads(evaluated.stdout)
    assert result["accuracy"] == 1.0
    assert set(result["per_intent"]) >= {"QUERY", "RETURN", "INVOICE"}
    predicted = run_cli(monkeypatch, database_url, "nlu", "predict", "我想退货退款", "--json")
    assert json.loads(predicted.stdout)["intent"] == "RETURN"
    again = run_cli(monkeypatch, database_url, "kb", "import-intents", str(train), "--json")
    assert json.loads(again.stdout)["added"] == 0
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(IntentExample)) == 24


@pytest.mark.parametrize(("content", "message"), [
    (b"text,label\n\xe4\xbd\xa0\xe5\xa5\xbd,greet\n", "missing intent"),
    (b"text,intent\n,greet\n", "line 2 text: empty"),
    (b"text,intent\nhello,bad name!\n", "line 2 intent: must be"),
    (b"text,intent\n\xff\xfe,greet\n", "not UTF-8"),
    (b"text,intent\n", "line 1 file: no rows"),
])
def test_bad_intent_files_are_refused_whole(
        monkeypatch: pytest.MonkeyPatch, database_url: str, tmp_path: Path,
        sessions: sessionmaker[Session], content: bytes, message: str) -> None:
    path = tmp_path / "intents.csv"
    # A good row after the bad one: refused whole, so it is not stored either.
    good = b"good example,greet\n" if content.count(b"\n") > 1 else b""
    path.write_bytes(content + good)
    result = run_cli(monkeypatch, database_url, "kb", "import-intents", str(path))
    assert result.exit_code != 0
    assert message in " ".join(result.output.split())
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Intent)) == 0
        assert s.scalar(select(func.count()).select_from(IntentExample)) == 0


def test_eval_without_a_model_says_to_train_first(
        monkeypatch: pytest.MonkeyPatch, database_url: str, tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("text,intent\n你好,greet\n", "utf-8")
    result = run_cli(monkeypatch, database_url, "nlu", "eval", "--data", str(path))
    assert result.exit_code != 0 and "siyu nlu train" in result.output
