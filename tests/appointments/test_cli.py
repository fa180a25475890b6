"""``siyu appointments``: a service type, slots published in brand time, a booking, the
second booking of the same slot refused (exit 2, the 409's message), status and list."""

from __future__ import annotations

import json

import pytest
from sqlalchemy.orm import Session, sessionmaker

from tests.appointments.helpers import advisor, customer
from tests.cli_helpers import run_cli


def test_publish_book_refuse_and_list(monkeypatch: pytest.MonkeyPatch, database_url: str,
                                      sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        advisor(s)
        lin, wang = customer(s, "林晓雯"), customer(s, "王芳")
        s.commit()
    cli = lambda *a: run_cli(monkeypatch, database_url, "appointments", *a)  # noqa: E731
    assert cli("service-type", "营养咨询", "--minutes", "15").exit_code == 0
    published = cli("publish", "--advisor", "advisor01", "--service", "营养咨询",
                    "--start", "2099-12-05T10:00", "--count", "3", "--every", "30", "--json")
    assert published.exit_code == 0, published.output
    ids = json.loads(published.output)["ids"]
    assert len(ids) == 3
    slots = json.loads(cli("slots", "--free", "--json").output)
    assert [s["label"] for s in slots] == ["12月5日（周六）10:00", "12月5日（周六）10:30",
                                           "12月5日（周六）11:00"]
    booked = cli("book", str(ids[0]), str(lin), "--json")
    assert booked.exit_code == 0 and json.loads(booked.output)["status"] == "booked"
    refused = cli("book", str(ids[0]), str(wang))
    assert refused.exit_code == 2 and "该时段已被其他客户预约" in refused.output
    appt = json.loads(booked.output)["id"]
    assert json.loads(cli("status", str(appt), "confirmed", "--json").output)["status"] == \
        "confirmed"
    listed = json.loads(cli("list", "--advisor", "advisor01", "--json").output)
    assert [(a["customer"], a["status_zh"]) for a in listed] == [("林晓雯", "已确认")]
    assert len(json.loads(cli("slots", "--free", "--json").output)) == 2
