"""Fixtures for the customer-group tests: the WeCom fake server and its settings (shared
with the channel tests), and a helper that stores groups as WeCom's groupchat/get returns
them."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from siyu.config import Settings
from siyu.groups import service as groups
from tests.channels.conftest import (  # noqa: F401  (fixtures)
    adapters,
    chan_client,
    channel_settings,
    sms_api,
    vector,
    wecom_api,
    wecom_settings,
)
from tests.console.conftest import (  # noqa: F401  (fixtures)
    live_server,
    login,
    make_user,
    staff,
)


def member(userid: str, kind: int, joined: dt.datetime) -> dict[str, Any]:
    """A ``member_list`` entry: kind 1 employee, 2 external contact."""
    return {"userid": userid, "type": kind, "join_time": int(joined.timestamp()),
            "join_scene": 3}


def store_group(session: Session, settings: Settings, chat_id: str, name: str,
                members: list[dict[str, Any]], *, owner: str = "advisor_chen",
                now: dt.datetime | None = None) -> dict[str, int]:
    return groups.apply_group(session, {"chat_id": chat_id, "name": name, "owner": owner,
                                        "member_list": members}, settings=settings, now=now)
