"""The console shell: a Chinese 404 page for unknown pages (the API keeps JSON) and a
favicon on every page, so no page asks for a missing /favicon.ico."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient


def test_an_unknown_page_answers_with_the_chinese_404_page(app_client: TestClient) -> None:
    page = app_client.get("/nonexistent")
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "找不到页面" in page.text and "Not Found" not in page.text
    api = app_client.get("/api/v1/nonexistent")
    assert api.status_code == 404
    assert api.json() == {"error": "not_found", "message": "Not Found"}


def test_pages_link_a_favicon_that_exists(app_client: TestClient) -> None:
    html = app_client.get("/login").text
    href = re.search(r'<link rel="icon" type="image/svg\+xml" href="([^"]+)">', html)
    assert href, html
    icon = app_client.get(href.group(1))
    assert icon.status_code == 200 and icon.text.startswith("<svg")
