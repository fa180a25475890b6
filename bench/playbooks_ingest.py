"""Batch ingest with the demo playbooks active against ingest without them.

Two fresh databases on one store, the same customers in both; one has the six demo
playbooks applied and active (``siyu/demo/data/playbooks/`` when the tree has them, else the
representative six below with the same triggers), the other none. A ``siyu serve``
(``--no-worker``: the runs' execution is the broadcast benchmark's business; here it is the
cost the triggers add to ingest) runs on each, and batches of 10,000 fresh events are POSTed
to ``/api/v1/events`` alternately to one and the other, so both see the same machine load.
A share of the events fires triggers (new WeCom contacts, paid orders, scenarios entered,
complaints). A batch's entries beyond ``SIYU_PLAYBOOK_INLINE_ENTRIES`` (100) are recorded
in the ingest transaction as one ``playbooks.enter`` job that a worker enters; with no worker
here, the bench runs those jobs itself after the timed batches and reports how long the
deferred entering took (``deferred_enter_s``, not part of ingest's time) and the runs it
started. ``slowdown_percent`` compares the sums of the batch times; ``paired_median_percent``
is the median over batches of on / off for the same batch sent to both back to back.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench import playbook_kit as kit
from bench.common import api_key, scratch_database, server, siyu

BATCH = 10_000
WELCOME_EVENT = "wecom_add_external_contact"  # the demo welcome's trigger
DEMO_DIR = Path(__file__).resolve().parent.parent / "siyu" / "demo" / "data" / "playbooks"
# The demo's six, as triggers go: used when the demo's own files are not in the tree.
REPRESENTATIVE = {
    "welcome.yaml": """\
name: 添加欢迎
status: active
priority: 90
trigger: {event: wecom_add_external_contact}
steps:
  - send: {channel: wecom_welcome, fallback: wecom, purpose: service,
           template: "{{ customer.name }}您好，我是您的专属顾问"}
  - wait: 3d
  - branch: {if: 'orders >= 1', then: exit}
  - send: {channel: wecom, purpose: marketing, template: "送您一张新人券"}
""",
    "repurchase.yaml": """\
name: 复购提醒
status: active
priority: 60
trigger: {order_status: paid}
audience: 'has(wecom_external_userid) and not tag("投诉中")'
reentry: {after_days: 20}
holdout: 0.2
goal: {order_status: paid, within: 14d}
steps:
  - wait: 25d
  - send: {channel: wecom, purpose: marketing, template: "{{ customer.name }}，快吃完了吧"}
""",
    "invite.yaml": """\
name: 邀请好友
status: active
priority: 40
trigger: {scenario: 帮亲友购买}
audience: 'has(wecom_external_userid)'
reentry: {after_days: 60}
steps:
  - task: {kind: chat, assignee: advisor, due: 1d, note: "邀请{{ customer.name }}的亲友"}
  - wait_for: {event: invite_friend, within: 14d, else: exit}
  - points: {award: 200, reason: 邀请好友}
""",
    "complaint.yaml": """\
name: 投诉关怀
status: active
priority: 100
trigger: {event: complaint}
reentry: every_trigger
steps:
  - tag: {add: 投诉中}
  - task: {kind: call, assignee: advisor, due: 1h, note: "1 小时内致电"}
  - wait_for: {event: complaint_resolved, within: 3d, else: continue}
  - tag: {remove: 投诉中}
""",
    "winback.yaml": """\
name: 沉睡唤醒
status: active
priority: 50
trigger: {inactive_days: 60}
audience: 'orders >= 2'
reentry: {after_days: 90}
holdout: 0.2
steps:
  - send: {channel: sms, purpose: marketing, template: "好久不见，送您回归券"}
""",
    "birthday.yaml": """\
name: 生日关怀
status: active
priority: 70
trigger: {date: birthday, offset_days: 0}
audience: 'tier in ("银卡", "金卡")'
reentry: {after_days: 300}
steps:
  - points: {award: 200, reason: 生日礼}
  - send: {channel: sms, purpose: marketing, template: "生日快乐"}
""",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--batches", type=int, default=10,
                        help="batches of 10,000 events into each database")
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--playbooks", type=Path, default=None,
                        help="directory of playbook files (default: the demo's, if present)")


def _customers(n: int) -> list[dict[str, Any]]:
    tiers = ("普通", "银卡", "金卡")
    return [{"id": f"C{i:07d}", "name": f"客户{i}", "tier": tiers[i % 3],
             "birthday": f"19{60 + i % 40}-{1 + i % 12:02d}-{1 + i % 28:02d}",
             "identities": [{"kind": "wechat_openid", "value": f"o-{i}"},
                            {"kind": "wecom_external_userid", "value": f"wm-{i}"},
                            {"kind": "phone", "value": f"+86139{i:08d}"}],
             "consents": [{"channel": "wecom", "purpose": "marketing", "granted": True},
                          {"channel": "sms", "purpose": "marketing", "granted": True}]}
            for i in range(n)]


def _events(batch_no: int, n_customers: int, now: dt.datetime) -> list[dict[str, Any]]:
    """Fresh events (``now``, so they are not history); one in ten fires a trigger."""
    out = []
    ts = now.isoformat()
    for j in range(BATCH):
        i = (batch_no * 7919 + j * 13) % n_customers
        kind = j % 100
        props: dict[str, Any] = {"sku": f"SKU{j % 40}"}
        if kind < 3:  # what WeCom's add-contact callback stores, with its welcome code
            typ, props = WELCOME_EVENT, {"member": "advisor", "welcome_code": f"W{batch_no}-{j}"}
        elif kind < 6:
            typ, props = "order_status_changed", {"order_id": f"O{batch_no}-{j}", "to": "paid"}
        elif kind < 8:
            typ, props = "scenario_entered", {"scenario": ("帮亲友购买", "食用周期结束")[kind % 2]}
        elif kind == 8:
            typ, props = "complaint", {"why": "物流慢"}
        elif kind == 9:
            typ, props = "scenario_entered", {"scenario": "投诉"}
        else:
            typ = ("view_product", "add_to_cart", "coupon_used")[j % 3]
        out.append({"id": f"b{batch_no}-{j}", "type": typ, "ts": ts, "channel": "miniprogram",
                    "identities": [{"kind": "wechat_openid", "value": f"o-{i}"}],
                    "properties": props})
    return out


def _cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of process ``pid`` so far, from ``/proc/PID/stat``."""
    import os

    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _prepare(url: str, n_customers: int, playbooks: list[Path] | None, tmp: Path) -> str:
    siyu(["db", "upgrade"], url)
    key = api_key(url)
    with server(url) as base, httpx.Client(base_url=base, timeout=300, headers={
            "Authorization": f"Bearer {key}", "content-type": "application/json"}) as client:
        for start in range(0, n_customers, BATCH):
            client.post("/api/v1/customers", content=orjson.dumps(
                {"customers": _customers(n_customers)[start:start + BATCH]})).raise_for_status()
    if playbooks:
        policy = tmp / "policy.yaml"
        policy.write_text("quiet_hours: null\n", encoding="utf-8")
        siyu(["policy", "apply", str(policy)], url)
        for path in playbooks:
            siyu(["playbooks", "apply", str(path)], url)
    return key


def run(args: argparse.Namespace) -> dict[str, Any]:
    from sqlalchemy import func, select
    from sqlalchemy.orm import Session

    from siyu.playbooks.models import Playbook, PlaybookRun

    load_before = kit.load()
    with tempfile.TemporaryDirectory() as tmp_name, scratch_database(args.store) as off_url, \
            scratch_database(args.store) as on_url:
        tmp = Path(tmp_name)
        source = args.playbooks or (DEMO_DIR if DEMO_DIR.is_dir() else None)
        if source is not None:
            files = sorted(p for p in source.iterdir() if p.suffix in (".yaml", ".yml", ".json"))
            which = str(source)
        else:
            files = []
            for name, text in REPRESENTATIVE.items():
                (tmp / name).write_text(text, encoding="utf-8")
                files.append(tmp / name)
            which = "bench/playbooks_ingest.py REPRESENTATIVE"
        keys = {"off": _prepare(off_url, args.customers, None, tmp),
                "on": _prepare(on_url, args.customers, files, tmp)}
        times: dict[str, list[float]] = {"off": [], "on": []}
        cpu: dict[str, float] = {"off": 0.0, "on": 0.0}
        pids: dict[str, list[int]] = {"off": [], "on": []}
        with server(off_url, pids=pids["off"]) as off_base, \
                server(on_url, pids=pids["on"]) as on_base:
            clients = {name: httpx.Client(base_url=base, timeout=300, headers={
                "Authorization": f"Bearer {keys[name]}", "content-type": "application/json"})
                for name, base in (("off", off_base), ("on", on_base))}
            try:
                for b in range(args.batches + 1):  # batch 0 warms both up, not counted
                    order = ("off", "on") if b % 2 == 0 else ("on", "off")
                    payload = orjson.dumps({"events": _events(b, args.customers,
                                                              dt.datetime.now(dt.UTC))})
                    for name in order:
                        c0 = _cpu_seconds(pids[name][0])
                        t0 = time.perf_counter()
                        r = clients[name].post("/api/v1/events", content=payload)
                        r.raise_for_status()
                        assert r.json()["accepted"] == BATCH, r.text[:300]
                        if b:
                            times[name].append(time.perf_counter() - t0)
                            cpu[name] += _cpu_seconds(pids[name][0]) - c0
            finally:
                for c in clients.values():
                    c.close()
        from siyu.db import make_engine, make_session_factory
        from siyu.jobs import service as jobs
        from siyu.jobs.worker import load_tasks

        load_tasks()
        engine = make_engine(on_url)
        factory = make_session_factory(engine)
        t0 = time.perf_counter()
        deferred = 0
        while (done := jobs.run_due(factory, names={"playbooks.enter"}).done):
            deferred += done
        deferred_s = time.perf_counter() - t0
        with Session(engine) as s:
            active = s.scalar(select(func.count()).select_from(Playbook).where(
                Playbook.status == "active")) or 0
            entered = s.scalar(select(func.count()).select_from(PlaybookRun)) or 0
        engine.dispose()
    events = args.batches * BATCH
    off, on = sum(times["off"]), sum(times["on"])
    figures = {"store": args.store, "playbooks": which, "active_playbooks": int(active),
               "events": events, "runs_entered": int(entered),
               "enter_jobs": deferred, "deferred_enter_s": round(deferred_s, 2),
               "off_events_per_s": round(events / off), "on_events_per_s": round(events / on),
               "off_batch_ms_median": round(sorted(times["off"])[len(times["off"]) // 2] * 1000),
               "on_batch_ms_median": round(sorted(times["on"])[len(times["on"]) // 2] * 1000),
               "slowdown_percent": round((on / off - 1) * 100, 1),
               # The server process's own CPU time per batch (user + system): less moved by
               # other work on a shared machine than wall time; on PostgreSQL the database's
               # work is in its backends, not here.
               "off_server_cpu_ms": round(cpu["off"] / args.batches * 1000),
               "on_server_cpu_ms": round(cpu["on"] / args.batches * 1000),
               "server_cpu_percent": round((cpu["on"] / cpu["off"] - 1) * 100, 1),
               # Each batch goes to both servers back to back: the median of the pairs'
               # ratios is less moved by the shared machine's load spikes than the sums.
               "paired_median_percent": round((sorted(
                   b / a for a, b in zip(times["off"], times["on"], strict=True))[
                   len(times["off"]) // 2] - 1) * 100, 1),
               "load_before": load_before, "load_after": kit.load()}
    for k, v in figures.items():
        print(f"{k:22} {v}")
    return figures
