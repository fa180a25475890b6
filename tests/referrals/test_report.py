"""The referral report: top referrers (影响人群) and conversion by code, from the API and
the console page 邀请与渠道码 (in the navigation for roles that read analytics)."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from siyu.config import Settings
from siyu.customers.service import upsert_customers
from siyu.events.service import ingest
from siyu.referrals import service as referrals
from tests.cli_helpers import run_cli
from tests.console.conftest import Login


def _customer(sessions: sessionmaker[Session], settings: Settings, ref: str, name: str,
              phone: str) -> int:
    with sessions() as s:
        cid = upsert_customers(s, [{"id": ref, "name": name, "identities": [
            {"kind": "phone", "value": phone}]}], settings=settings).customer_ids[0]
        s.commit()
        return cid


def _order(sessions: sessionmaker[Session], settings: Settings, ref: str, order_id: str,
           amount: float) -> None:
    with sessions() as s:
        ingest(s, "orders", [{"id": order_id, "customer_id": ref,
                              "ts": dt.datetime.now(dt.UTC).isoformat(), "amount": amount,
                              "status": "paid"}], settings=settings)
        s.commit()


def _world(sessions: sessionmaker[Session], settings: Settings) -> dict[str, int]:
    """林晓雯 brings three friends (two buy) and tries her own link; 王建国 brings one who
    buys; the store's channel code brings two contacts (one buys)."""
    ids = {ref: _customer(sessions, settings, ref, name, f"1380000{n:04d}")
           for n, (ref, name) in enumerate((("A", "林晓雯"), ("B", "王建国"), ("F1", "好友一"),
                                           ("F2", "好友二"), ("F3", "好友三"), ("F4", "好友四"),
                                           ("S1", "到店一"), ("S2", "到店二")))}
    with sessions() as s:
        mine = referrals.personal_code(s, ids["A"]).code
        his = referrals.personal_code(s, ids["B"]).code
        referrals.create_channel_code(s, "静安嘉里中心店 门店活码", state="store-jingan")
        for friend in ("F1", "F2", "F3"):
            referrals.attribute(s, ids[friend], code=mine)
        referrals.attribute(s, ids["A"], code=mine)  # her own link: refused
        referrals.attribute(s, ids["F4"], code=his)
        for contact in ("S1", "S2"):
            referrals.attribute(s, ids[contact], state="store-jingan")
        s.commit()
    for ref, order, amount in (("F1", "O-1", 199.0), ("F2", "O-2", 299.0),
                               ("F4", "O-4", 89.0), ("S1", "O-5", 59.0)):
        _order(sessions, settings, ref, order, amount)
    return ids


def test_the_report_names_the_top_referrers_and_the_conversion_by_code(
        client: TestClient, sessions: sessionmaker[Session], settings: Settings) -> None:
    ids = _world(sessions, settings)
    answer = client.get("/api/v1/referrals/report")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    top = body["top_referrers"]
    assert [r["customer_id"] for r in top] == [ids["A"], ids["B"]]
    assert {k: top[0][k] for k in ("name", "attributed", "qualified", "pending", "refused",
                                   "points", "friends_spent")} == {
        "name": "林晓雯", "attributed": 3, "qualified": 2, "pending": 1, "refused": 0,
        "points": 2 * referrals.Rules.from_settings().referrer_points, "friends_spent": 498.0}
    assert top[0]["conversion"] == round(2 / 3, 4)
    codes = {c["name"] or c["referrer_name"]: c for c in body["codes"]}
    store = codes["静安嘉里中心店 门店活码"]
    assert (store["kind"], store["state"], store["attributed"], store["qualified"],
            store["pending"], store["conversion"]) == ("channel", "store-jingan", 2, 1, 1, 0.5)
    hers = codes["林晓雯"]
    assert (hers["attributed"], hers["qualified"], hers["refused"]) == (4, 2, 1)
    assert client.get("/api/v1/referrals/report?limit=1").json()["top_referrers"][0][
        "customer_id"] == ids["A"]
    assert client.get("/api/v1/referrals/report?limit=0").status_code == 422


def test_the_console_page_is_in_the_navigation_and_shows_the_report(
        app_client: TestClient, sessions: sessionmaker[Session], settings: Settings,
        staff: None, login: Login) -> None:
    ids = _world(sessions, settings)
    web = login("analyst")
    home = web.get("/")
    assert 'href="/referrals"' in home.text and "邀请与渠道码" in home.text
    page = web.get("/referrals")
    assert page.status_code == 200, page.text
    assert "影响人群" in page.text and f'data-customer="{ids["A"]}"' in page.text
    assert page.text.index(f'data-customer="{ids["A"]}"') < page.text.index(
        f'data-customer="{ids["B"]}"')
    assert "静安嘉里中心店 门店活码" in page.text and "50.0%" in page.text
    assert 'id="channel-chart"' in page.text


def test_the_console_page_of_an_empty_install_says_what_to_do(
        app_client: TestClient, staff: None, login: Login) -> None:
    page = login("operator").get("/referrals")
    assert page.status_code == 200
    assert "还没有通过邀请码来的客户" in page.text and "还没有渠道码。用下面的表单" in page.text


def test_the_cli_report_shows_the_conversion(
        monkeypatch: pytest.MonkeyPatch, database_url: str, sessions: sessionmaker[Session],
        settings: Settings) -> None:
    _world(sessions, settings)
    result = run_cli(monkeypatch, database_url, "referrals", "report")
    assert result.exit_code == 0, result.output
    assert "门店活码" in result.output and "50.0%" in result.output and "林晓雯" in result.output
