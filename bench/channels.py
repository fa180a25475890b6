"""WeCom callback acknowledgement latency (encrypted POST -> 200) against ``siyu serve``.

Each request is a distinct encrypted text message (a new MsgId) from one of 50 members,
signed and encrypted exactly as WeCom does with the documented example's keys; the clock
runs from sending the request to reading the 200. Also measured: WeCom's retry of an
already stored message (the dedup path). The server runs with its worker (the bot answers
in the background, as in production) unless ``--no-worker``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from bench.common import free_port, percentile, scratch_database
from siyu.channels.wecom.crypto import WeComCrypto, parse_xml

VECTOR = Path(__file__).resolve().parents[2] / "shared" / "data" / "wecom" / \
    "official_vector.json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--no-worker", action="store_true",
                        help="serve without the in-process worker (bot not running)")


def _request(crypto: WeComCrypto, corp_id: str, n: int) -> tuple[dict[str, str], bytes]:
    ts = str(int(time.time()))
    xml = (f"<xml><ToUserName><![CDATA[{corp_id}]]></ToUserName>"
           f"<FromUserName><![CDATA[member{n % 50:02d}]]></FromUserName>"
           f"<CreateTime>{ts}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
           f"<Content><![CDATA[我的订单到哪了 {n}]]></Content><MsgId>{7_000_000_000 + n}</MsgId>"
           "<AgentID>1000002</AgentID></xml>")
    reply = parse_xml(crypto.encrypt_message(xml, f"n{n}", ts))
    body = (f"<xml><ToUserName><![CDATA[{corp_id}]]></ToUserName><Encrypt><![CDATA["
            f"{reply.findtext('Encrypt')}]]></Encrypt><AgentID><![CDATA[1000002]]></AgentID>"
            "</xml>").encode()
    return {"msg_signature": reply.findtext("MsgSignature") or "", "timestamp": ts,
            "nonce": f"n{n}"}, body


@contextlib.contextmanager
def _serve(url: str, env: dict[str, str], *, worker: bool) -> Iterator[str]:
    """``siyu serve`` (with or without its worker thread) on a free port."""
    port = free_port()
    cmd = [sys.executable, "-m", "siyu.cli", "serve", "--port", str(port)]
    proc = subprocess.Popen([*cmd, "--worker" if worker else "--no-worker"],
                            env={**os.environ, "SIYU_DATABASE_URL": url, **env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("siyu serve did not start")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def run(args: argparse.Namespace) -> dict[str, Any]:
    vector = json.loads(VECTOR.read_text("utf-8"))
    crypto = WeComCrypto(vector["token"], vector["encoding_aes_key"], vector["corp_id"])
    env = {"SIYU_WECOM_CORP_ID": vector["corp_id"], "SIYU_WECOM_TOKEN": vector["token"],
           "SIYU_WECOM_AES_KEY": vector["encoding_aes_key"],
           "SIYU_WECOM_MAX_SKEW_SECONDS": "300",
           # Replies go to an address nothing listens on: delivery retries in the background.
           "SIYU_WECOM_API_BASE": "http://127.0.0.1:9", "SIYU_WECOM_CORP_SECRET": "bench"}
    total = args.warmup + args.requests
    prepared = [_request(crypto, vector["corp_id"], n) for n in range(total)]
    latencies: list[float] = []
    retries: list[float] = []
    with scratch_database(args.store) as url, \
            _serve(url, env, worker=not args.no_worker) as base, \
            httpx.Client(base_url=base, timeout=10) as http:
        for n, (params, body) in enumerate(prepared):
            started = time.perf_counter()
            response = http.post("/channels/wecom/callback", params=params, content=body)
            elapsed = (time.perf_counter() - started) * 1000
            if response.status_code != 200:
                raise RuntimeError(f"callback answered {response.status_code}: "
                                   f"{response.text[:200]}")
            if n >= args.warmup:
                latencies.append(elapsed)
        for params, body in prepared[-100:]:
            started = time.perf_counter()
            http.post("/channels/wecom/callback", params=params, content=body)
            retries.append((time.perf_counter() - started) * 1000)
    figures = {
        "store": args.store, "worker": not args.no_worker, "requests": len(latencies),
        "ack_p50_ms": round(percentile(latencies, 50), 2),
        "ack_p99_ms": round(percentile(latencies, 99), 2),
        "ack_max_ms": round(max(latencies), 2),
        "retry_p50_ms": round(percentile(retries, 50), 2),
        "retry_p99_ms": round(percentile(retries, 99), 2),
    }
    for key, value in figures.items():
        print(f"{key:>14}: {value}")
    return figures
