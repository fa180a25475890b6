"""``siyu playbooks`` and ``siyu policy`` with the ``--json`` shapes the issue fixes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from siyu.playbooks import service
from siyu.playbooks.models import PlaybookRun
from tests.cli_helpers import run_cli
from tests.playbooks.conftest import NOON, count, make_customer

FILE = """\
name: 生日关怀
status: active
trigger: {event: birthday_soon}
holdout: 0.2
goal: {order_status: paid, within: 7d}
steps:
  - send: {channel: sms, purpose: marketing, template: "{{ customer.name }}，生日快乐"}
  - wait: 1d
  - send: {channel: sms, purpose: marketing, template: "生日券还有两天到期"}
"""


def test_apply_list_show_pause_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      database_url: str, sessions: sessionmaker[Session]
                                      ) -> None:
    path = tmp_path / "birthday.yaml"
    path.write_text(FILE, "utf-8")
    result = run_cli(monkeypatch, database_url, "playbooks", "apply", str(path), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"name": "生日关怀", "version": 1, "changed": True}
    again = run_cli(monkeypatch, database_url, "playbooks", "apply", str(path), "--json")
    assert json.loads(again.stdout)["changed"] is False
    listed = json.loads(run_cli(monkeypatch, database_url, "playbooks", "list",
                                "--json").stdout)
    assert [(p["name"], p["status"], p["entered"]) for p in listed] == [("生日关怀", "active", 0)]
    assert run_cli(monkeypatch, database_url, "playbooks", "pause", "生日关怀").exit_code == 0
    shown = json.loads(run_cli(monkeypatch, database_url, "playbooks", "show", "生日关怀",
                               "--json").stdout)
    assert shown["status"] == "paused" and shown["version"] == 2
    assert run_cli(monkeypatch, database_url, "playbooks", "pause", "--all").exit_code == 0
    policy = json.loads(run_cli(monkeypatch, database_url, "policy", "show", "--json").stdout)
    assert policy["paused_all"] is True


def test_a_malformed_file_is_refused_with_its_place(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    database_url: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(FILE.replace("channel: sms", "channel: pigeon", 1), "utf-8")
    result = run_cli(monkeypatch, database_url, "playbooks", "apply", str(path))
    assert result.exit_code == 2
    # Rich wraps long lines at a space: compare with the whitespace normalised.
    stderr = " ".join(result.stderr.split())
    assert f"{path} steps[0].send.channel: unknown channel 'pigeon'" in stderr


def test_stats_and_dry_run_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                database_url: str, sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        service.apply(s, FILE, file="b.yaml")
        ids = [make_customer(s, name=f"客户{i}", phone=f"+86138000001{i:02d}")
               for i in range(30)]
        s.commit()
    with sessions() as s:
        from siyu.config import get_settings
        from siyu.events.service import ingest

        now = NOON
        from siyu.playbooks import clock

        clock.use_clock(lambda: now)
        try:
            ingest(s, "events", [{"id": f"b{c}", "type": "birthday_soon", "ts": now.isoformat(),
                                  "identities": [{"kind": "phone",
                                                  "value": f"+86138000001{i:02d}"}]}
                                 for i, c in enumerate(ids)], settings=get_settings())
        finally:
            clock.use_clock(None)
        s.commit()
        assert count(s, PlaybookRun) == 30
    stats = json.loads(run_cli(monkeypatch, database_url, "playbooks", "stats", "生日关怀",
                               "--json").stdout)
    for key in ("entered", "holdout", "sent", "deferred", "suppressed", "failed",
                "outcome_unknown", "goal_reached", "uplift"):
        assert key in stats
    assert stats["entered"] == 30 and 0 < stats["holdout"] < 30
    assert stats["uplift"] == {"difference": 0.0, "ci_low": pytest.approx(
        stats["uplift"]["ci_low"]), "ci_high": pytest.approx(stats["uplift"]["ci_high"])}
    assert stats["uplift"]["ci_low"] < 0 < stats["uplift"]["ci_high"]
    rows = json.loads(run_cli(monkeypatch, database_url, "playbooks", "dry-run", "生日关怀",
                              "--days", "30", "--json").stdout)
    assert rows and set(rows[0]) == {"customer_id", "at", "step", "channel", "outcome",
                                     "reason", "text"}
    would = [r for r in rows if r["outcome"] == "would_send"]
    assert any(r["text"] == "客户0，生日快乐" for r in would)
    with sessions() as s:  # the dry run stored nothing
        assert count(s, PlaybookRun) == 30


def test_the_api_applies_validates_and_reads(client: object) -> None:
    from fastapi.testclient import TestClient

    assert isinstance(client, TestClient)
    bad = client.post("/api/v1/playbooks", json={"text": FILE.replace("wait: 1d", "wait: x"),
                                                 "file": "b.yaml"})
    assert bad.status_code == 422
    assert bad.json()["details"][0] == {"file": "b.yaml", "step": "steps[1].wait",
                                        "reason": "'x' is not a duration (e.g. 30s, 15m, 2h, 3d)"}
    ok = client.post("/api/v1/playbooks", json={"text": FILE, "file": "b.yaml"})
    assert ok.status_code == 200 and ok.json()["version"] == 1
    assert client.get("/api/v1/playbooks").json()["items"][0]["name"] == "生日关怀"
    assert client.get("/api/v1/playbooks/生日关怀/stats").json()["entered"] == 0
    assert client.get("/api/v1/policy").json()["daily_marketing"] == 1


def test_the_api_dry_run_and_task_notes_are_masked_for_a_read_only_key(
        app_client: object, sessions: sessionmaker[Session]) -> None:
    """A key with the ``read`` scope reads like an analyst: phone numbers in the dry-run's
    texts and in open task notes are hidden; a full key sees them."""
    import datetime as dt

    from fastapi.testclient import TestClient

    from siyu.auth import service as auth
    from siyu.playbooks.models import PlaybookTask

    assert isinstance(app_client, TestClient)
    now = dt.datetime.now(dt.UTC)
    with sessions() as s:
        full = auth.create_api_key(s, "full", None, None).key
        read = auth.create_api_key(s, "reader", ["read"], None).key
        service.apply(s, FILE.replace("status: active", "status: draft").replace(
            "生日快乐\"", "生日快乐，回电 13912345678\""), file="b.yaml")
        cid = make_customer(s, name="王芳", phone="+8613800000199")
        from siyu.config import get_settings
        from siyu.events.service import ingest

        ingest(s, "events", [{"id": "m1", "type": "birthday_soon", "ts": now.isoformat(),
                              "identities": [{"kind": "phone", "value": "+8613800000199"}]}],
               settings=get_settings())
        pb = service.get(s, "生日关怀")
        run = PlaybookRun(playbook_id=pb.id, version_id=service.current_version(s, pb).id,
                          customer_id=cid, entry_key="t", status="waiting", entered_at=now)
        s.add(run)
        s.flush()
        s.add(PlaybookTask(run_id=run.id, pc=0, playbook_id=pb.id, customer_id=cid, kind="call",
                           note="回访王芳 13800000199", due_at=now, status="open"))
        s.commit()

    def read_as(key: str, path: str) -> dict[str, object]:
        r = app_client.get(path, headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 200, r.text
        body: dict[str, object] = r.json()
        return body

    texts = {k: [row["text"] for row in read_as(k, "/api/v1/playbooks/生日关怀/dry-run?days=2")[
        "items"] if row["text"]] for k in (full, read)}  # type: ignore[index, attr-defined]
    assert any("13912345678" in t for t in texts[full])
    assert texts[read] and not any("13912345678" in t for t in texts[read])
    notes = {k: [t["note"] for t in read_as(k, f"/api/v1/customers/{cid}/contacts")["tasks"]]
             for k in (full, read)}  # type: ignore[union-attr]
    assert notes[full] == ["回访王芳 13800000199"]
    assert "13800000199" not in notes[read][0] and notes[read][0].startswith("回访王芳")
