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

BEST_PUBLISHED = 0.9444


def test_smp2019_import_train_eval_reaches_the_best_published_accuracy(
        monkeypatch: pytest.MonkeyPatch, database_url: str, shared_data: Path,
        sessions: sessionmaker[Session]) -> None:
    data = shared_data / "intent_smp2019"
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
