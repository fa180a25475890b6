"""``siyu clv fit`` on the CDNOW sample (the published estimates), ``siyu scores`` and
``siyu analytics``, and refused inputs that change nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from siyu.analytics.models import ClvModel, CustomerScore
from siyu.config import Settings
from tests.analytics.builders import add_customers, add_orders
from tests.cli_helpers import run_cli
from tests.datasets import write_cdnow_orders_csv

PUBLISHED_BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426, "log_likelihood": -9582.4}
PUBLISHED_GG = {"p": 6.25, "q": 3.74, "gamma": 15.44}


def _models(sessions: sessionmaker[Session]) -> int:
    with sessions() as s:
        return int(s.scalar(select(func.count()).select_from(ClvModel)) or 0)


def test_cdnow_fit_reproduces_the_published_estimates(
        monkeypatch: pytest.MonkeyPatch, database_url: str, tmp_path: Path,
        sessions: sessionmaker[Session]) -> None:
    orders = write_cdnow_orders_csv(tmp_path / "cdnow_orders.csv")
    imported = run_cli(monkeypatch, database_url, "import", "orders", str(orders))
    assert imported.exit_code == 0, imported.output
    result = run_cli(monkeypatch, database_url, "clv", "fit", "--calibration-end", "1997-09-30",
                     "--time-unit", "week", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) == {"bgnbd", "gamma_gamma"}
    assert set(data["bgnbd"]) == set(PUBLISHED_BGNBD)
    assert set(data["gamma_gamma"]) == set(PUBLISHED_GG)
    for key, value in PUBLISHED_BGNBD.items():
        assert data["bgnbd"][key] == pytest.approx(value, rel=0.01), key
    for key, value in PUBLISHED_GG.items():
        assert data["gamma_gamma"][key] == pytest.approx(value, rel=0.01), key

    holdout = run_cli(monkeypatch, database_url, "clv", "fit", "--calibration-end",
                      "1997-09-30", "--time-unit", "week", "--holdout-end", "1998-06-30",
                      "--json")
    body = json.loads(holdout.stdout)
    # Weeks 40-78: the repeat transactions (same-day purchases as one) actually made, and
    # the BG/NBD conditional expectation summed over the 2,357 customers.
    assert body["holdout"]["actual"] == 1882.0
    assert body["holdout"]["predicted"] == pytest.approx(1653.4, abs=0.5)
    text = run_cli(monkeypatch, database_url, "clv", "fit", "--calibration-end", "1997-09-30",
                   "--holdout-end", "1998-06-30")
    assert "r = 0.2426  alpha = 4.4136  a = 0.7929  b = 2.4259" in text.stdout
    assert "log-likelihood = -9582.43" in text.stdout
    assert "p = 6.2496  q = 3.7442  gamma = 15.4435" in text.stdout
    assert "holdout (39 weeks): actual repeat purchases 1882, predicted 1653.4" in text.stdout
    with sessions() as s:
        models = s.scalars(select(ClvModel).order_by(ClvModel.id)).all()
        assert [m.is_active for m in models] == [False, False, True]
        assert models[-1].n_customers == 2357

    listed = run_cli(monkeypatch, database_url, "clv", "models", "--json")
    assert [m["id"] for m in json.loads(listed.stdout)] == [m.id for m in reversed(models)]


@pytest.mark.parametrize(("args", "message"), [
    (["--calibration-end", "1997-09-30", "--holdout-end", "1997-09-01"],
     "holdout_end 1997-09-01 must be after calibration_end 1997-09-30"),
    (["--calibration-end", "2999-01-01"], "is after today"),
    (["--calibration-end", "1990-01-01"], "no purchases on or before 1990-01-01"),
    (["--calibration-end", "30/09/1997"], "not an ISO date"),
    (["--calibration-end", "1997-09-30", "--time-unit", "month"], "must be 'day' or 'week'"),
])
def test_refused_fits_store_nothing(monkeypatch: pytest.MonkeyPatch, database_url: str,
                                    sessions: sessionmaker[Session], settings: Settings,
                                    args: list[str], message: str) -> None:
    with sessions() as s:
        add_customers(s, settings, {"id": "A"})
        add_orders(s, settings, "A", {"id": "o1", "ts": "1997-05-01T10:00:00", "amount": 10})
        s.commit()
    result = run_cli(monkeypatch, database_url, "clv", "fit", *args)
    assert result.exit_code == 2
    assert message in " ".join(result.stderr.split())
    assert result.stdout == ""
    assert _models(sessions) == 0


def test_scores_recompute_show_and_ltv_cac(
        monkeypatch: pytest.MonkeyPatch, database_url: str, tmp_path: Path,
        sessions: sessionmaker[Session], settings: Settings) -> None:
    with sessions() as s:
        (cid,) = add_customers(s, settings, {"id": "A", "acquisition_channel": "直播"})
        add_orders(s, settings, "A", (30, 100.0), (10, 300.0))
        s.commit()
    result = run_cli(monkeypatch, database_url, "scores", "recompute", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["customers"], data["buyers"], data["by_lifecycle"]["growth"]) == (1, 1, 1)
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(CustomerScore)) == 1
    shown = run_cli(monkeypatch, database_url, "scores", "show", str(cid))
    assert "成长期" in shown.stdout and "RFM 分层" in shown.stdout
    config = tmp_path / "scoring.json"
    config.write_text(json.dumps({"acquisition_cost": {"直播": 80}}), encoding="utf-8")
    monkeypatch.setenv("SIYU_SCORING_CONFIG", str(config))
    report = json.loads(run_cli(monkeypatch, database_url, "analytics", "ltv-cac",
                                "--json").stdout)
    assert report["channels"] == [{"channel": "直播", "customers": 1, "scored": 1,
                                   "ltv": 400.0, "cac": 80.0, "ltv_cac": 5.0}]
    summary = json.loads(run_cli(monkeypatch, database_url, "analytics", "summary",
                                 "--json").stdout)
    assert summary["scored"] == 1


def test_bad_inputs_to_scores_are_refused(
        monkeypatch: pytest.MonkeyPatch, database_url: str, tmp_path: Path,
        sessions: sessionmaker[Session], settings: Settings) -> None:
    with sessions() as s:
        add_customers(s, settings, {"id": "A"})
        s.commit()
    bad_now = run_cli(monkeypatch, database_url, "scores", "recompute", "--now", "yesterday")
    assert bad_now.exit_code == 2 and "not an ISO date or date-time" in bad_now.stderr
    config = tmp_path / "bad.json"
    config.write_text('{"lifecycle": {"churned_ratio": 1.0}}', encoding="utf-8")
    monkeypatch.setenv("SIYU_SCORING_CONFIG", str(config))
    refused = run_cli(monkeypatch, database_url, "scores", "recompute")
    assert refused.exit_code == 2
    assert "churned_ratio must be at least decline_ratio" in refused.stderr
    missing = run_cli(monkeypatch, database_url, "scores", "show", "12345")
    assert missing.exit_code == 2
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(CustomerScore)) == 0
