"""Phone webhook latency per final utterance inside siyu (p50/p99): signature check, event
parsing, the replay guard, the conversation message, the whole bot pass and the
speech-shaped answer, committed — everything but the network — on a demo brand with its
trained knowledge base, on SQLite and PostgreSQL (aim: p99 < 300 ms)."""

from __future__ import annotations

import argparse
import itertools
import json
import random
import time
from typing import Any

from bench.common import demo_phones, percentile, scratch_database, service_messages, siyu
from siyu.channels.phone import calls, protocol
from siyu.config import Settings
from siyu.db import make_engine, make_session_factory

SECRET = "bench-phone-secret"
PER_CALL = 5


def _event(**fields: Any) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(fields, ensure_ascii=False).encode()
    ts = str(int(time.time()))
    return body, {protocol.TIMESTAMP_HEADER: ts,
                  protocol.SIGNATURE_HEADER: protocol.sign(SECRET, ts, body)}


def _turn(sessions: Any, settings: Settings, body: bytes, headers: dict[str, str]
          ) -> dict[str, Any]:
    protocol.verify(SECRET, headers, body, max_skew_seconds=300)
    with sessions() as s:
        answer = calls.handle(s, protocol.parse_event(body), settings=settings)
        s.commit()
    return answer


def measure(url: str, n: int) -> dict[str, Any]:
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    settings = Settings(database_url=url, environment="test")
    rng = random.Random(5)
    phones = demo_phones(sessions, n + 50)
    if not phones:
        raise SystemExit("the demo brand has no phone numbers to call from")
    # Calls end early (a transfer takes the bot out), so the numbers call again, each time
    # a new call, until ``n`` utterances are measured.
    texts = itertools.cycle(service_messages(n + 100, seed=11))
    latencies: list[float] = []
    actions: dict[str, int] = {}
    warmup = 20
    calls_made = 0
    for c, phone in enumerate(itertools.cycle(phones)):
        if len(latencies) >= n:
            break
        calls_made += 1
        call_id = f"bench-call-{c}"
        _turn(sessions, settings, *_event(event_id=f"{call_id}-start", call_id=call_id,
                                          type="call.started", **{"from": phone}))
        for u in range(PER_CALL):
            body, headers = _event(event_id=f"{call_id}-{u}", call_id=call_id,
                                   type="utterance", text=next(texts),
                                   confidence=round(rng.uniform(0.7, 1.0), 2))
            t0 = time.perf_counter()
            answer = _turn(sessions, settings, body, headers)
            elapsed = (time.perf_counter() - t0) * 1000
            if warmup > 0:
                warmup -= 1
                continue
            latencies.append(elapsed)
            last = answer["actions"][-1]["type"] if answer["actions"] else "none"
            actions[last] = actions.get(last, 0) + 1
            if len(latencies) >= n or answer["status"] != "bot":
                break  # transferred or asking for the score: the bot is out of this call
    engine.dispose()
    return {"utterances": len(latencies), "calls": calls_made,
            "p50_ms": round(percentile(latencies, 50), 2),
            "p99_ms": round(percentile(latencies, 99), 2), "max_ms": round(max(latencies), 2),
            "last_action": actions}


def run(args: argparse.Namespace) -> dict[str, Any]:
    results = []
    for store in args.stores:
        with scratch_database(store) as url:
            siyu(["demo", "seed", "--customers", str(args.customers), "--seed", "7"], url)
            figures = {"store": store, **measure(url, args.utterances)}
        print(f"[phone] {store:<10} {figures['utterances']} final utterances in "
              f"{figures['calls']} calls: p50 "
              f"{figures['p50_ms']} ms, p99 {figures['p99_ms']} ms (max {figures['max_ms']} "
              f"ms)  last action {figures['last_action']}", flush=True)
        results.append(figures)
    return {"phone": results}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stores", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--utterances", type=int, default=1000)
