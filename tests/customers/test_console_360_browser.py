"""The customer 360 page in a real browser: two columns side by side, a page that stays
short for a loyal customer, and attribute keys that never run over their values."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from siyu.config import Settings
from tests.console.conftest import (  # noqa: F401  (console fixtures)
    LiveServer,
    live_server,
    make_user,
    sign_in_at,
    staff,
)
from tests.customers.builders import loyal_customer

pytestmark = pytest.mark.browser


@pytest.mark.usefixtures("staff")
def test_a_loyal_customers_360_is_two_short_columns_without_overlaps(
        page: Any, live_server: LiveServer, sessions: sessionmaker[Session],  # noqa: F811
        settings: Settings) -> None:
    cid = loyal_customer(sessions, settings, days=60, attributes={
        "wechat_nickname": "小雯爱跑步的长昵称", "preferred_sku": "HY-WHEY-01"})
    sign_in_at(page, f"{live_server.url}/customers/{cid}", "agent")
    columns = page.locator(".grid > .col").evaluate_all(
        "cols => cols.map(c => c.getBoundingClientRect().toJSON())")
    assert len(columns) == 2 and columns[1]["x"] >= columns[0]["x"] + columns[0]["width"]
    assert abs(columns[0]["y"] - columns[1]["y"]) < 2  # side by side
    height = page.evaluate("document.documentElement.scrollHeight")
    assert height < 3000, height  # 180 timeline entries, one page of them shown
    overlaps = page.locator("dl.kv").evaluate_all("""dls => dls.flatMap(dl =>
        [...dl.querySelectorAll('dt')].map(dt => {
            const dd = dt.nextElementSibling; const a = dt.getBoundingClientRect();
            const b = dd.getBoundingClientRect(); const r = document.createRange();
            r.selectNodeContents(dt); const text = r.getBoundingClientRect();
            return {key: dt.textContent, overlaps: text.right > b.left + 0.5 && a.top < b.bottom
                    && b.top < a.bottom};
        })).filter(x => x.overlaps).map(x => x.key)""")
    assert overlaps == [], overlaps
