"""Survey import (created survey, idempotent re-import, bad rows named, good rows landed),
drivers over the imported survey, and signed survey links."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from siyu.config import Settings
from siyu.voc import surveys
from siyu.voc.errors import LinkRefused
from siyu.voc.models import Survey, SurveyAnswer, SurveyQuestion, SurveyResponse
from tests.cli_helpers import run_cli
from tests.voc.builders import to_csv

FACTORS = {"物流": 0.9, "口味": 0.5, "包装": 0.15}


def survey_rows(n: int, seed: int = 0) -> list[tuple[object, ...]]:
    """CSAT driven by 物流 > 口味 > 包装 with noise (known truth)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        r = rng.integers(1, 6, size=3)
        latent = sum(c * v for c, v in zip(FACTORS.values(), r, strict=True))
        latent += rng.normal(0, 0.6)
        csat = int(np.clip(np.round((latent - 1.55) / (7.75 - 1.55) * 4 + 1), 1, 5))
        nps = int(np.clip(np.round(csat * 2 + rng.normal(0, 1)), 0, 10))
        rows.append((f"r{i}", "", f"2026-11-{1 + i % 28:02d}", csat, nps, *r.tolist(), ""))
    return rows


HEADER = ["response_id", "customer_id", "submitted_at", "csat", "推荐意愿", *FACTORS, "comment"]


def count(sessions: sessionmaker[Session], model: type) -> int:
    with sessions() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def test_import_creates_the_survey_and_re_import_is_idempotent(
        monkeypatch: pytest.MonkeyPatch, database_url: str, tmp_path: Path,
        sessions: sessionmaker[Session]) -> None:
    f = tmp_path / "s.csv"
    rows = survey_rows(300)
    rows[0] = (*rows[0][:-1], "物流太慢了")
    f.write_text(to_csv(HEADER, rows), encoding="utf-8")
    args = ["import", "survey-responses", str(f), "--survey", "after_delivery",
            "--scale", "推荐意愿=nps", "--json"]
    result = run_cli(monkeypatch, database_url, *args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["created"] and report["added"] == 300 and report["rejected"] == 0
    kinds = {q["key"]: (q["kind"], q["factor"], q["scale"]) for q in report["questions"]}
    assert kinds == {"csat": ("csat", None, [1, 5]), "推荐意愿": ("nps", None, [0, 10]),
                     "物流": ("rating", "物流", [1, 5]), "口味": ("rating", "口味", [1, 5]),
                     "包装": ("rating", "包装", [1, 5]), "comment": ("text", None, None)}
    again = json.loads(run_cli(monkeypatch, database_url, *args).stdout)
    assert again["added"] == 0 and again["duplicates"] == 300 and not again["created"]
    assert count(sessions, SurveyResponse) == 300

    drivers = run_cli(monkeypatch, database_url, "voc", "drivers", "--survey", "after_delivery",
                      "--target", "csat", "--json")
    assert drivers.exit_code == 0, drivers.output
    out = json.loads(drivers.stdout)
    assert {"target", "method", "n", "r2", "drivers"} <= set(out)
    assert out["target"] == "csat" and out["method"] == "shapley" and out["n"] == 300
    assert [d["factor"] for d in out["drivers"]] == ["物流", "口味", "包装"]
    assert [d["rank"] for d in out["drivers"]] == [1, 2, 3]
    assert sum(d["importance"] for d in out["drivers"]) == pytest.approx(out["r2"], abs=1e-9)
    for d in out["drivers"]:
        assert {"factor", "importance", "share", "performance", "rank"} <= set(d)
        assert d["share"] == pytest.approx(d["importance"] / out["r2"])
        assert 0 <= d["performance"] <= 1
    assert out["categories"][0]["name"] == "服务"  # 物流's category leads
    rw = json.loads(run_cli(monkeypatch, database_url, "voc", "drivers", "--survey",
                            "after_delivery", "--target", "csat", "--method",
                            "relative_weights", "--json").stdout)
    assert sum(d["importance"] for d in rw["drivers"]) == pytest.approx(rw["r2"], abs=1e-9)
    assert rw["drivers"][0]["factor"] == "物流"
    lg = json.loads(run_cli(monkeypatch, database_url, "voc", "drivers", "--survey",
                            "after_delivery", "--target", "csat", "--method", "logistic",
                            "--json").stdout)
    assert lg["method"] == "logistic" and 0 < lg["r2"] < 1
    assert lg["drivers"][0]["factor"] == "物流"


def test_bad_rows_are_named_and_good_rows_land(
        monkeypatch: pytest.MonkeyPatch, database_url: str, tmp_path: Path,
        sessions: sessionmaker[Session]) -> None:
    rows = [("a", "", "2026-11-01", 5, 9, 5, 4, 3, "很好"),
            ("b", "", "2026-11-02", 7, 9, 5, 4, 3, ""),        # csat outside 1-5
            ("c", "", "yesterday", 4, 8, 4, 4, 4, ""),         # bad date
            ("d", "HY-NOPE", "2026-11-03", 3, 5, 2, 3, 3, ""),  # unknown brand id
            ("e", "", "2026-11-04", 2, 3, "x", 2, 2, ""),      # not a number
            ("f", "", "2026-11-05", 4, 7, 4, 5, 4, "")]
    f = tmp_path / "bad.csv"
    f.write_text(to_csv(HEADER, rows), encoding="utf-8")
    with sessions() as s:
        surveys.create_survey(s, name="s2", questions_=[
            surveys.QuestionSpec("csat", "csat"), surveys.QuestionSpec("推荐意愿", "nps"),
            *(surveys.QuestionSpec(k, "rating", factor=k) for k in FACTORS),
            surveys.QuestionSpec("comment", "text")])
        s.commit()
    result = run_cli(monkeypatch, database_url, "import", "survey-responses", str(f),
                     "--survey", "s2", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["added"] == 2 and report["rejected"] == 4
    assert {(e["line"], e["field"]) for e in report["errors"]} == {
        (3, "csat"), (4, "submitted_at"), (5, "customer_id"), (6, "物流")}
    assert "outside 1-5" in next(e["reason"] for e in report["errors"] if e["line"] == 3)
    with sessions() as s:
        assert sorted(s.scalars(select(SurveyResponse.external_id))) == ["a", "f"]


def test_import_refuses_an_unknown_scale_column(
        monkeypatch: pytest.MonkeyPatch, database_url: str, tmp_path: Path,
        sessions: sessionmaker[Session]) -> None:
    f = tmp_path / "s.csv"
    f.write_text("response_id,csat\nx,5\n", encoding="utf-8")
    result = run_cli(monkeypatch, database_url, "import", "survey-responses", str(f),
                     "--survey", "s3", "--scale", "nps_col=nps")
    assert result.exit_code == 2 and "nps_col" in result.output
    assert count(sessions, Survey) == 0


def test_signed_link_one_response_forged_and_expired_refused(
        settings: Settings, sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        survey = surveys.ensure_desk_csat(s)
        token = surveys.sign_link(settings, survey)
        link = surveys.read_link(settings, token)
        surveys.save_answer(s, link, "csat", 4)
        surveys.save_answer(s, surveys.read_link(settings, token), "csat", 5)  # changed mind
        surveys.submit(s, link)
        with pytest.raises(LinkRefused, match="已经提交"):
            surveys.submit(s, surveys.read_link(settings, token))
        with pytest.raises(LinkRefused, match="已经提交"):
            surveys.save_answer(s, link, "csat", 1)
        assert s.scalar(select(func.count()).select_from(SurveyResponse)) == 1
        assert s.scalar(select(SurveyAnswer.value_num).join(SurveyQuestion).where(
            SurveyQuestion.key == "csat")) == 5
        forged = token[:-3] + ("AAA" if token[-3:] != "AAA" else "BBB")
        with pytest.raises(LinkRefused, match="无效"):
            surveys.read_link(settings, forged)
        with pytest.raises(LinkRefused, match="过期"):
            surveys.read_link(settings, token, max_age=-1)
        other = Settings(database_url=settings.database_url, secret_key="x" * 40)
        with pytest.raises(LinkRefused):
            surveys.read_link(other, token)
