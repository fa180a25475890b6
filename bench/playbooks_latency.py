"""Event through the API -> first message handed to the channel, for a welcome playbook.

``siyu serve`` runs in a subprocess (the job loop in the server process as plain ``siyu
serve`` has it, or with ``--worker process`` a separate ``siyu worker``); a local SMTP server
(aiosmtpd) in this process records when each message arrives. Each of N new contacts is one
``add_wecom_contact`` event POSTed to ``/api/v1/events`` (a new customer named by e-mail);
the welcome playbook's first step is a service e-mail. The latency is from just before the
POST to the moment the SMTP server has the message's DATA: ingest, the trigger, the engine's
batch, the outbox, the send job and the SMTP conversation. The e-mail adapter stands in for
WeCom's ``send_welcome_msg``: the same outbox path, another adapter.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from bench import playbook_kit as kit
from bench.common import api_key, percentile, scratch_database, server, siyu

WELCOME = """\
name: 添加欢迎
status: active
priority: 90
trigger: {event: add_wecom_contact}
steps:
  - send: {channel: email, purpose: service, subject: "{{ customer.name }}，欢迎",
           template: "您好，我是您的专属顾问。"}
  - wait: 3d
  - send: {channel: email, purpose: marketing, subject: "新人券", template: "送您一张新人券"}
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--gap", type=float, default=0.2,
                        help="seconds between events (open loop: they may overlap)")
    parser.add_argument("--worker", choices=["embedded", "process"], default="embedded",
                        help="the job loop in the server process, or a siyu worker process")


def run(args: argparse.Namespace) -> dict[str, Any]:
    from tests.channels.smtp import smtp_server

    arrived: dict[str, float] = {}
    lock = threading.Lock()
    load_before = kit.load()
    with scratch_database(args.store) as url, tempfile.TemporaryDirectory() as tmp, \
            smtp_server() as box:
        async def stamp_data(server_: Any, session: Any, envelope: Any) -> str:
            at = time.perf_counter()
            with lock:
                for rcpt in envelope.rcpt_tos:
                    arrived.setdefault(rcpt, at)
            return "250 OK"

        box.handle_DATA = stamp_data  # type: ignore[method-assign]
        siyu(["db", "upgrade"], url)
        key = api_key(url)
        pb, policy = Path(tmp) / "welcome.yaml", Path(tmp) / "policy.yaml"
        pb.write_text(WELCOME, encoding="utf-8")
        policy.write_text("quiet_hours: null\n", encoding="utf-8")
        siyu(["policy", "apply", str(policy)], url)
        siyu(["playbooks", "apply", str(pb)], url)
        env = {"SIYU_SMTP_HOST": "127.0.0.1", "SIYU_SMTP_PORT": str(box.port),
               "SIYU_SMTP_FROM": "care@brand.example"}
        procs = []
        if args.worker == "process":
            log = Path(tmp) / "worker.log"
            procs.append(kit.worker(url, log, env=env, poll=0.5))
            kit.wait_started(log, 1)
            kit.wait_quiet(procs)
        posted: dict[str, float] = {}
        api_ms: list[float] = []
        try:
            with server(url, extra_env=env, worker=args.worker == "embedded") as base, \
                    httpx.Client(base_url=base, timeout=30, headers={
                        "Authorization": f"Bearer {key}"}) as client:
                time.sleep(2.0)  # the worker's start-up work done
                for i in range(args.events):
                    address = f"w{i}@example.com"
                    event = {"id": f"add-{i}", "type": "add_wecom_contact",
                             "ts": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
                             "identities": [{"kind": "email", "value": address}],
                             "properties": {"welcome_code": f"wc{i}"}}
                    t0 = time.perf_counter()
                    posted[address] = t0
                    r = client.post("/api/v1/events", json={"events": [event]})
                    api_ms.append((time.perf_counter() - t0) * 1000)
                    r.raise_for_status()
                    time.sleep(max(0.0, args.gap - (time.perf_counter() - t0)))
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    with lock:
                        if all(a in arrived for a in posted):
                            break
                    time.sleep(0.1)
        finally:
            kit.stop(procs)
    with lock:
        latencies = [(arrived[a] - t) * 1000 for a, t in posted.items() if a in arrived]
    figures = {"store": args.store, "worker": args.worker, "events": args.events,
               "delivered": len(latencies),
               "p50_ms": round(percentile(latencies, 50), 1),
               "p95_ms": round(percentile(latencies, 95), 1),
               "max_ms": round(max(latencies), 1) if latencies else None,
               "api_p50_ms": round(percentile(api_ms, 50), 1),
               "slowest_ms": [round(x) for x in sorted(latencies)[-5:]],
               "first_ms": [round(x) for x in latencies[:5]],
               "load_before": load_before, "load_after": kit.load()}
    for k, v in figures.items():
        print(f"{k:14} {v}")
    return figures
