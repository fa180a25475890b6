"""Small real HTTP servers standing in for WeCom's API and an SMS provider in tests.

Each runs ``http.server.ThreadingHTTPServer`` on a free loopback port in a thread, records
every request, and answers from a script (a queue of canned answers) or by default like the
real service.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass
class FakeServer:
    """Shared state of a fake server: requests seen and answers still to give."""

    url: str = ""
    requests: list[Recorded] = field(default_factory=list)
    # path -> list of answers, consumed first; an answer is a dict with optional keys
    # "status" (HTTP status), "json" (body), "sleep" (seconds before answering).
    script: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def calls(self, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.path == path]

    def then(self, path: str, *answers: dict[str, Any]) -> None:
        with self.lock:
            self.script.setdefault(path, []).extend(answers)

    def _scripted(self, path: str) -> dict[str, Any] | None:
        with self.lock:
            queue = self.script.get(path)
            return queue.pop(0) if queue else None


class FakeWeCom(FakeServer):
    """WeCom's ``gettoken``, ``message/send``, ``kf/send_msg`` and the customer-contact
    calls siyu makes (welcome, mass-send, groups, ``add_contact_way``).

    Tokens are ``TOKEN-1``, ``TOKEN-2``, ...; tokens in :attr:`expired` get errcode 42001.
    """

    def __init__(self, corp_id: str, secrets: set[str]) -> None:
        super().__init__()
        self.corp_id = corp_id
        self.secrets = secrets
        self.issued: list[str] = []
        self.expired: set[str] = set()
        # mass-send msgid -> get_groupmsg_send_result status (0 not yet sent, 1 sent, ...)
        self.mass_status: dict[str, int] = {}
        # chat_id -> groupchat/get's group_chat (customer groups)
        self.groups: dict[str, dict[str, Any]] = {}

    def answer(self, rec: Recorded) -> tuple[int, Any]:
        if rec.path == "/cgi-bin/gettoken":
            if rec.query.get("corpid") != self.corp_id or rec.query.get(
                    "corpsecret") not in self.secrets:
                return 200, {"errcode": 40001, "errmsg": "invalid credential"}
            token = f"TOKEN-{len(self.issued) + 1}"
            self.issued.append(token)
            return 200, {"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": 7200}
        presented = rec.query.get("access_token")
        if presented not in self.issued:
            return 200, {"errcode": 40014, "errmsg": "invalid access_token"}
        if presented in self.expired:
            return 200, {"errcode": 42001, "errmsg": "access_token expired"}
        if rec.path in ("/cgi-bin/message/send", "/cgi-bin/kf/send_msg"):
            n = len(self.calls(rec.path))
            return 200, {"errcode": 0, "errmsg": "ok", "msgid": f"msg-{n}",
                         "invaliduser": ""}
        if rec.path == "/cgi-bin/externalcontact/send_welcome_msg":
            return 200, {"errcode": 0, "errmsg": "ok"}
        if rec.path == "/cgi-bin/externalcontact/add_msg_template":
            n = len(self.calls(rec.path))
            return 200, {"errcode": 0, "errmsg": "ok", "fail_list": [], "msgid": f"mass-{n}"}
        if rec.path == "/cgi-bin/externalcontact/get_groupmsg_send_result":
            status = self.mass_status.get(str((rec.body or {}).get("msgid")), 0)
            return 200, {"errcode": 0, "errmsg": "ok", "send_list": [
                {"external_userid": "any", "userid": (rec.body or {}).get("userid"),
                 "status": status, "send_time": 1700000000}]}
        if rec.path == "/cgi-bin/externalcontact/add_contact_way":
            body = rec.body or {}
            if not body.get("user") or len(str(body.get("state") or "")) > 30:
                return 200, {"errcode": 40058, "errmsg": "invalid parameter"}
            n = len(self.calls(rec.path))
            return 200, {"errcode": 0, "errmsg": "ok", "config_id": f"cfg-{n}",
                         "qr_code": f"https://wework.qpic.cn/wwpic/qr-{n}/0"}
        if rec.path == "/cgi-bin/externalcontact/groupchat/get":
            group = self.groups.get(str((rec.body or {}).get("chat_id")))
            if group is None:
                return 200, {"errcode": 40050, "errmsg": "chatid not exist"}
            return 200, {"errcode": 0, "errmsg": "ok", "group_chat": group}
        if rec.path == "/cgi-bin/externalcontact/groupchat/list":
            # Two per page, so the cursor is followed.
            ids = sorted(self.groups)
            start = int((rec.body or {}).get("cursor") or 0)
            page = ids[start:start + 2]
            more = start + 2 < len(ids)
            return 200, {"errcode": 0, "errmsg": "ok",
                         "group_chat_list": [{"chat_id": c, "status": 0} for c in page],
                         "next_cursor": str(start + 2) if more else ""}
        return 404, {"errcode": 404, "errmsg": "not found"}


class FakeSms(FakeServer):
    def answer(self, rec: Recorded) -> tuple[int, Any]:
        return 200, {"ok": True}


def _handler(state: Any) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body: Any = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode("utf-8", "replace")
            rec = Recorded(self.command, parts.path,
                           {k: v[0] for k, v in parse_qs(parts.query).items()},
                           {k.lower(): v for k, v in self.headers.items()}, body)
            with state.lock:
                state.requests.append(rec)
            scripted = state._scripted(parts.path)
            if scripted is not None:
                if scripted.get("sleep"):
                    time.sleep(scripted["sleep"])
                status, payload = scripted.get("status", 200), scripted.get("json", {})
            else:
                status, payload = state.answer(rec)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            with suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(data)

        do_GET = _handle
        do_POST = _handle

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def serve(state: FakeServer) -> Iterator[FakeServer]:
    """Run ``state``'s server on a free loopback port for the block."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
