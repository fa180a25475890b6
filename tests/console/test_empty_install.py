"""A fresh install before any data: every page in every role's navigation, and each page's
own links one level down, answers without a server error (the crawl test walks the demo
brand, where every page has something to show; 客户之声 once answered 500 here)."""

from __future__ import annotations

import re
from urllib.parse import urljoin

import pytest
from fastapi.testclient import TestClient

from tests.console.conftest import Login, login, make_user, staff  # noqa: F401

_LINK = re.compile(r'<a [^>]*href="(/[^"#?]*)')


@pytest.mark.parametrize("role", ["admin", "operator", "agent", "analyst"])
def test_every_page_of_an_empty_install_answers(app_client: TestClient, staff: None,  # noqa: F811
                                                login: Login, role: str) -> None:  # noqa: F811
    client = login(role)
    home = client.get("/")
    assert home.status_code == 200
    nav = home.text.split("<nav", 1)[1].split("</nav>", 1)[0]
    pages = sorted(set(_LINK.findall(nav)))
    assert len(pages) >= 4, pages
    seen: dict[str, int] = {}
    for path in pages:
        response = client.get(path)
        seen[path] = response.status_code
        if response.status_code == 200:  # one level down: the page's own links
            for link in sorted(set(_LINK.findall(response.text)))[:40]:
                if link not in seen and link not in pages and not link.startswith(
                        ("/logout", "/static")):
                    seen[link] = client.get(urljoin(path, link)).status_code
    errors = {p: s for p, s in seen.items() if s >= 500}
    assert not errors, errors
    assert all(seen[p] == 200 for p in pages), {p: seen[p] for p in pages}
