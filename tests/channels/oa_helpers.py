"""Test helpers for the official account: a local HTTP server standing in for the platform's
API, the documented vectors, and an encryption written independently of siyu's code.

The independent encryption (``independent_encrypt`` / ``independent_decrypt``) follows the
platform's 消息加解密 technical description step by step with ``cryptography``'s AES
primitive and ``hashlib``; it shares no code with ``siyu.channels.wecom.crypto``, so a
message it builds and siyu opens (and the reverse) checks siyu against the description, not
against itself.
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct
import time
from typing import Any

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from tests.channels.fakes import FakeServer, Recorded

# The platform's documented example (消息推送 · 接入指引, developers.weixin.qq.com,
# miniprogram/dev/framework/server-ability/message-push and the official account's
# guide/dev/push/encryption page, which give the same numbers).
DOC = {
    "token": "AAAAA",
    "encoding_aes_key": "A" * 43,
    "appid": "wxba5fad812f8e6fb9",
    "verify": {"signature": "f464b24fc39322e44b38aa78f5edd27bd1441696",
               "echostr": "4375120948345356249", "timestamp": "1714036504",
               "nonce": "1514711492"},
    "plain": {"signature": "899cf89e464efb63f54ddac96b0a0a235f53aa78",
              "timestamp": "1714037059", "nonce": "486452656"},
    "safe": {"signature": "6c5c811b55cc85e0e1b54100749188c20beb3f5d",
             "timestamp": "1714112445", "nonce": "415670741",
             "openid": "o9AgO5Kd5ggOC-bXrbNODIiE3bGY", "encrypt_type": "aes",
             "msg_signature": "046e02f8204d34f8ba5fa3b1db94908f3df2e9b3"},
    "encrypt": ("+qdx1OKCy+5JPCBFWw70tm0fJGb2Jmeia4FCB7kao+/Q5c/ohsOzQHi8khUOb05JCpj0JB4RvQMk"
                "Uyus8TPxLKJGQqcvZqzDpVzazhZv6JsXUnnR8XGT740XgXZUXQ7vJVnAG+tE8NUd4yFyjPy7Ggia"
                "viNrlCTj+l5kdfMuFUPpRSrfMZuMcp3Fn2Pede2IuQrKEYwKSqFIZoNqJ4M8EajAsjLY2km32IIj"
                "df8YL/P50F7mStwntrA2cPDrM1kb6mOcfBgRtWygb3VIYnSeOBrebufAlr7F9mFUPAJGj04="),
    "decrypted": ('{"ToUserName":"gh_97417a04a28d","FromUserName":"o9AgO5Kd5ggOC-bXrbNODIiE3bGY",'
                  '"CreateTime":1714112445,"MsgType":"event","Event":"debug_demo",'
                  '"debug_str":"hello world"}'),
    "reply": {"text": '{"demo_resp":"good luck"}', "random": "707722b803182950",
              "timestamp": "1713424427", "nonce": "415670741",
              "encrypt": "ELGduP2YcVatjqIS+eZbp80MNLoAUWvzzyJxgGzxZO/5sAvd070Bs6qrLARC9nVHm48Y4h"
                         "yRbtzve1L32tmxSQ==",
              "msg_signature": "1b9339964ed2e271e7c7b6ff2b0ef902fc94dea1"},
}
SECRET = "oa-secret-for-tests-0123456789"


def doc_body() -> bytes:
    return ('{"ToUserName":"gh_97417a04a28d","Encrypt":"' + DOC["encrypt"] + '"}').encode()


def _sha1(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def independent_encrypt(text: str, *, token: str, key: str, appid: str,
                        timestamp: str | None = None, nonce: str = "n0nce") -> tuple[
                            bytes, dict[str, str]]:
    """A safe-mode callback (XML body, query parameters) built from the documentation."""
    aes_key = base64.b64decode(key + "=")
    msg = text.encode()
    full = os.urandom(16) + struct.pack(">I", len(msg)) + msg + appid.encode()
    pad = 32 - len(full) % 32
    full += bytes([pad]) * pad
    enc = Cipher(algorithms.AES(aes_key), modes.CBC(aes_key[:16])).encryptor()
    encrypted = base64.b64encode(enc.update(full) + enc.finalize()).decode()
    ts = timestamp or str(int(time.time()))
    body = f"<xml><ToUserName><![CDATA[gh_test]]></ToUserName><Encrypt><![CDATA[{encrypted}]]>" \
           f"</Encrypt></xml>".encode()
    params = {"signature": _sha1(token, ts, nonce), "timestamp": ts, "nonce": nonce,
              "encrypt_type": "aes", "msg_signature": _sha1(token, ts, nonce, encrypted)}
    return body, params


def independent_decrypt(encrypted: str, *, key: str) -> tuple[str, str]:
    """``(message, appid)`` of an ``Encrypt`` value, per the documentation."""
    aes_key = base64.b64decode(key + "=")
    dec = Cipher(algorithms.AES(aes_key), modes.CBC(aes_key[:16])).decryptor()
    full = dec.update(base64.b64decode(encrypted)) + dec.finalize()
    full = full[: -full[-1]]
    (length,) = struct.unpack(">I", full[16:20])
    return full[20:20 + length].decode(), full[20 + length:].decode()


def plain_params(token: str, timestamp: str | None = None, nonce: str = "n0nce"
                 ) -> dict[str, str]:
    ts = timestamp or str(int(time.time()))
    return {"signature": _sha1(token, ts, nonce), "timestamp": ts, "nonce": nonce}


def text_xml(openid: str, content: str, msg_id: str, create_time: int | None = None,
             unionid: str | None = None) -> str:
    extra = f"<UnionId><![CDATA[{unionid}]]></UnionId>" if unionid else ""
    return (f"<xml><ToUserName><![CDATA[gh_test]]></ToUserName>"
            f"<FromUserName><![CDATA[{openid}]]></FromUserName>"
            f"<CreateTime>{create_time or int(time.time())}</CreateTime>"
            f"<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{content}]]></Content>"
            f"<MsgId>{msg_id}</MsgId>{extra}</xml>")


def event_xml(openid: str, event: str, key: str | None = None, create_time: int | None = None,
              ticket: str | None = None) -> str:
    parts = ["<xml><ToUserName><![CDATA[gh_test]]></ToUserName>",
             f"<FromUserName><![CDATA[{openid}]]></FromUserName>",
             f"<CreateTime>{create_time or int(time.time())}</CreateTime>",
             "<MsgType><![CDATA[event]]></MsgType>", f"<Event><![CDATA[{event}]]></Event>"]
    if key is not None:
        parts.append(f"<EventKey><![CDATA[{key}]]></EventKey>")
    if ticket:
        parts.append(f"<Ticket><![CDATA[{ticket}]]></Ticket>")
    return "".join(parts) + "</xml>"


class FakeOa(FakeServer):
    """The platform's ``cgi-bin/token`` and ``cgi-bin/message/custom/send``.

    Tokens are ``OATOKEN-1``, ``OATOKEN-2``, ...; issuing one retires the ones before it (as
    the platform does, minus its grace period), so workers that did not share would fail.
    """

    def __init__(self, appid: str, secret: str) -> None:
        super().__init__()
        self.appid = appid
        self.secret = secret
        self.issued: list[str] = []

    def answer(self, rec: Recorded) -> tuple[int, Any]:
        if rec.path == "/cgi-bin/token":
            if (rec.query.get("appid"), rec.query.get("secret"),
                    rec.query.get("grant_type")) != (self.appid, self.secret,
                                                     "client_credential"):
                return 200, {"errcode": 40013, "errmsg": "invalid appid"}
            token = f"OATOKEN-{len(self.issued) + 1}"
            self.issued.append(token)
            return 200, {"access_token": token, "expires_in": 7200}
        presented = rec.query.get("access_token")
        if not self.issued or presented != self.issued[-1]:
            return 200, {"errcode": 40001, "errmsg": "invalid credential"}
        if rec.path == "/cgi-bin/message/custom/send":
            return 200, {"errcode": 0, "errmsg": "ok"}
        return 404, {"errcode": 404, "errmsg": "not found"}
