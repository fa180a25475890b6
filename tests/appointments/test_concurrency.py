"""50 concurrent requests for the last free slot against a real ``siyu serve`` (two server
processes, each with its thread pool): exactly one booking succeeds, the 49 others get a
409 ``slot_taken`` with a Chinese message, and the database holds one appointment for the
slot. Runs on SQLite and, with ``SIYU_TEST_DATABASE_URL``, on PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from siyu.appointments.models import Appointment
from siyu.db import make_engine, make_session_factory
from tests.appointments.helpers import advisor, customer, nutrition, slots
from tests.channels.conftest import free_port
from tests.cli_helpers import wait_until_healthy

SIYU = [sys.executable, "-m", "siyu.cli"]
REQUESTS = 50


async def _race(base: str, key: str, slot_id: int, customer_ids: list[int]
                ) -> list[httpx.Response]:
    headers = {"Authorization": f"Bearer {key}"}
    limits = httpx.Limits(max_connections=REQUESTS, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60,
                                 limits=limits) as client:
        start = asyncio.Event()

        async def one(cid: int) -> httpx.Response:
            await start.wait()
            return await client.post("/api/v1/appointments",
                                     json={"slot_id": slot_id, "customer_id": cid})

        tasks = [asyncio.create_task(one(cid)) for cid in customer_ids]
        await asyncio.sleep(0.2)
        start.set()
        return list(await asyncio.gather(*tasks))


def test_fifty_concurrent_bookings_of_the_last_slot_one_wins(
        tmp_path: Path, database_url: str, sessions: sessionmaker[Session]) -> None:
    url = (f"sqlite:///{tmp_path / 'race.db'}" if database_url.startswith("sqlite")
           else database_url)
    env = {**os.environ, "SIYU_DATABASE_URL": url, "SIYU_ENVIRONMENT": "test",
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[2]),
                                          os.environ.get("PYTHONPATH", "")])}
    subprocess.run([*SIYU, "db", "upgrade"], env=env, check=True, capture_output=True)
    key = subprocess.run([*SIYU, "apikey", "create", "race"], env=env, check=True,
                         capture_output=True, text=True).stdout.strip().splitlines()[-1]
    engine = make_engine(url)
    factory = make_session_factory(engine)
    with factory() as s:
        adv = advisor(s)
        stype = nutrition(s)
        taken, last = slots(s, adv, stype, 30, 31)
        ids = [customer(s, f"客户{n:02d}") for n in range(REQUESTS + 1)]
        s.commit()
    port = free_port()
    log_path = tmp_path / "serve.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen([*SIYU, "serve", "--port", str(port), "--workers", "2",
                                 "--no-worker"], env=env, stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until_healthy(base, proc, log_path, timeout=150)
            # the first slot is booked: the second is the last free one
            first = httpx.post(f"{base}/api/v1/appointments", json={
                "slot_id": taken, "customer_id": ids[0]},
                headers={"Authorization": f"Bearer {key}"}, timeout=30)
            assert first.status_code == 201, first.text
            started = time.perf_counter()
            answers = asyncio.run(_race(base, key, last, ids[1:]))
            seconds = time.perf_counter() - started
        finally:
            proc.terminate()
            proc.wait(timeout=20)
    codes = sorted(r.status_code for r in answers)
    log_text = log_path.read_text()[-3000:]
    assert codes == [201] + [409] * (REQUESTS - 1), (codes, log_text)
    for r in answers:
        if r.status_code == 409:
            assert r.json() == {"error": "slot_taken",
                                "message": "该时段已被其他客户预约，请选择其他时间",
                                "details": [{"field": "slot_id", "reason": "already booked"}]}
    winner = next(r.json() for r in answers if r.status_code == 201)
    with factory() as s:
        held = list(s.scalars(select(Appointment).where(Appointment.slot_id == last)))
    engine.dispose()
    assert [(a.id, a.customer_id, a.status) for a in held] == [
        (winner["id"], winner["customer_id"], "booked")]
    print(f"\n{REQUESTS} concurrent bookings on {url.split(':')[0]}: "
          f"{seconds:.2f}s, 1 booked, {REQUESTS - 1} refused with 409")
