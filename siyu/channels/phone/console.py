"""The console's phone simulator (``siyu demo`` only): pick a demo customer's calling number
(or an unknown one), start a call, type what the caller says, press keypad digits, hang up,
and see the actions the call centre would perform (speak, listen, transfer, hangup).

It is a call centre on the server side: each step is a real webhook event, signed with the
configured ``SIYU_PHONE_SECRET`` and handed to :func:`siyu.channels.phone.api.receive` —
the webhook's own path (signature, skew and replay checks, then the call's service
functions) — so the simulator shows exactly what a provider would get.
"""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse
from sqlalchemy.orm import Session

from siyu.channels.config import channel_settings_of, get_channel_settings
from siyu.channels.phone import api, demo
from siyu.channels.phone.protocol import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from siyu.console import pages
from siyu.console.nav import register_nav
from siyu.console.routes import ConsoleRoute, StaffUser, check_csrf, permitted
from siyu.errors import SiyuError
from siyu.kit.web import get_session

_HERE = Path(__file__).resolve().parent
PERMISSION = "service.agent"
PATH = "/service/phone-simulator"
CALLED = "4008001234"
KINDS = ("start", "say", "dtmf", "hangup")

register_nav("电话模拟器", PATH, PERMISSION, order=42,
             when=lambda: get_channel_settings().phone_demo)
router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)


def _open(request: Request) -> bool:
    cs = channel_settings_of(request.app.state)
    return cs.phone_demo and bool(cs.phone_secret.get_secret_value())


@router.get(PATH)
def simulator_page(request: Request, user: StaffUser = Depends(permitted(PERMISSION)),
                   session: Session = Depends(get_session, scope="function")) -> HTMLResponse:
    if not _open(request):
        return pages.render(request, user, _HERE / "templates", "phone/simulator_off.html",
                            {}, status_code=404)
    return pages.render(request, user, _HERE / "templates", "phone/simulator.html", {
        "callers": demo.demo_callers(session), "called": CALLED,
        "skill_groups": demo.skill_group_names()})


def _event(kind: str, call_id: str, number: str, text: str, digits: str) -> dict[str, Any]:
    event: dict[str, Any] = {"event_id": f"{call_id}-{secrets.token_hex(4)}",
                             "call_id": call_id}
    if kind == "start":
        return {**event, "type": "call.started", "from": number, "to": CALLED}
    if kind == "say":
        return {**event, "type": "utterance", "text": text, "confidence": 0.95, "final": True}
    if kind == "dtmf":
        return {**event, "type": "dtmf", "digits": digits}
    return {**event, "type": "call.ended"}


@router.post(f"{PATH}/event", dependencies=[Depends(check_csrf)])
def simulator_event(
    request: Request,
    kind: str = Form(max_length=10),
    call_id: str = Form("", max_length=100),
    number: str = Form("", max_length=40),
    text: str = Form("", max_length=2000),
    digits: str = Form("", max_length=20),
    user: StaffUser = Depends(permitted(PERMISSION)),
    session: Session = Depends(get_session, scope="function"),
) -> JSONResponse:
    """Sign one event with the configured secret and send it down the webhook's path."""
    if not _open(request):
        return JSONResponse({"error": "not_found", "message": "电话模拟器仅在演示模式下可用"},
                            status_code=404)
    if kind not in KINDS:
        return JSONResponse({"error": "invalid_input", "message": "未知的操作"},
                            status_code=422)
    if kind == "start":
        call_id = f"SIM-{secrets.token_hex(6)}"
    event = _event(kind, call_id, number, text, digits)
    body = json.dumps(event, ensure_ascii=False).encode()
    ts = str(int(time.time()))
    secret = channel_settings_of(request.app.state).phone_secret.get_secret_value()
    headers = {TIMESTAMP_HEADER: ts, SIGNATURE_HEADER: sign(secret, ts, body)}
    try:
        answer = api.receive(request.app.state, headers, body, session)
    except SiyuError as exc:
        session.rollback()
        return JSONResponse({"event": event, **exc.to_dict()}, status_code=exc.status_code)
    return JSONResponse({"event": event, "answer": answer,
                         "agent": demo.agent_name(session, answer)})
