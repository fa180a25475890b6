"""The demo brand's SOP playbooks (seed 001) and months of their history.

The six files in ``siyu/demo/data/playbooks/`` are applied through the same service as
``siyu playbooks apply`` (so they validate, and are versioned like any other): 企微添加欢迎语,
复购提醒, 邀请好友得积分, 投诉关怀, 沉睡客户唤醒 and 会员生日关怀.

Then :data:`HISTORY_DAYS` of their history are played, deterministically (seeded RNG), from
what the demo world already holds -- the customers who added an advisor on WeCom, whose
consumption cycle ran out, who bought for family and friends, who complained, who fell
silent for 60 days, whose birthday came round -- through each playbook's compiled program,
as the engine executes it:

* runs start at the trigger's moment (the ingest of the event, the journeys' recognition,
  the daily clock at 10:00) and the worker picks them up within seconds; the holdout is the
  engine's own :func:`siyu.playbooks.engine.holdout_share`, fixed per customer and playbook;
* every send asks the engine's own contact policy (:func:`siyu.playbooks.engine.check_send`)
  with the customer's consents, open complaint and earlier sends *as they were at that
  moment*: quiet hours defer (the run waits for the window to open), the daily marketing
  limit and priorities, missing consent, no address and an open complaint suppress, each
  recorded with its reason; sends become outbox rows keyed ``pb:<run>:<pc>`` that were
  delivered (a few SMS refused by the carrier);
* ``wait_for`` goes on when the awaited event happened (an invitation, a complaint marked
  resolved), branches read the orders as they were, tasks land with the customer's advisor
  (or a skill group) and were done within their due time mostly;
* goals are reached by real demo orders after the run started. Reminders work a little:
  a treated customer of 复购提醒 or 沉睡客户唤醒 who would not have bought in the goal window
  buys after the reminder with probability :data:`LIFT` (an order added to the demo), so
  the uplift over the holdout is real and a few points.

Everything due before ``now`` has been executed: nothing of the past is left for the worker
(no pending outbox row, no run due in the past). Runs still in flight at ``now`` wait for a
moment in the future, as live runs do.

Simplifications (the journeys' recognition is not replayed day by day): a consumption
cycle ends ``cycle days × quantity`` after a purchase (the item that runs out first) and the
customer enters 食用周期结束 three days before unless they bought again; an after-sales
complaint enters 投诉 within the hour; an order sent to someone else enters 帮亲友购买 within
the day; activity for ``inactive_days`` is any order or event. Lift orders start no cycle of
their own. Low satisfaction scores (``low_csat``) are not replayed.
"""

from __future__ import annotations

import datetime as dt
import heapq
import re
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast
from zoneinfo import ZoneInfo

import numpy as np
import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from siyu.db import Base, refresh_statistics, session_scope
from siyu.demo import catalog
from siyu.events.purchases import is_purchase_status
from siyu.kit.bulk import bulk_insert, insert_returning_ids

DATA = Path(__file__).resolve().parent / "data" / "playbooks"
HISTORY_DAYS = 120
# Of the treated customers who would not have bought within the goal window, the share who
# buy because of the reminder (the true effect the holdout measures).
LIFT: dict[str, float] = {"复购提醒": 0.1, "沉睡客户唤醒": 0.07, "会员生日关怀": 0.03}
_MAX_SILENCE_DAYS = 60  # the win-back file's inactive_days (checked when it is played)
DAILY_AT = dt.time(10, 0)  # SIYU_PLAYBOOK_DAILY_AT's default: the clock triggers' moment
# Of the customers the advisor invited (邀请好友得积分), the share whose friend adds the
# advisor's WeCom within two weeks.
INVITE_SUCCESS = 0.3
SMS_REFUSED = 0.008  # carrier refusals (the delivery fails)
_CYCLE = {p.sku: p.cycle_days for p in catalog.PRODUCTS}
_PRICE = {p.sku: (p.name, p.price) for p in catalog.PRODUCTS}


@dataclass
class PlaybooksSeed:
    """What the playbook seed did: runs per playbook, rows written, seconds."""

    runs: dict[str, int] = field(default_factory=dict)
    sends: int = 0
    orders_added: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def demo_playbook_files() -> list[Path]:
    return sorted(DATA.glob("*.yaml"))


def apply_demo_playbooks(session: Session) -> list[dict[str, Any]]:
    """Apply the demo brand's playbook files as ``siyu playbooks apply`` does."""
    from siyu.playbooks import service

    return [service.apply(session, path.read_text("utf-8"), file=path.name, actor="demo")
            for path in demo_playbook_files()]


def seed_demo_playbooks(sessions: sessionmaker[Session], *, now: dt.datetime, seed: int = 42,
                        timezone: str = "Asia/Shanghai") -> PlaybooksSeed:
    """Apply the demo playbooks and write :data:`HISTORY_DAYS` of their history (see the
    module docstring) in one transaction."""
    started = time.perf_counter()
    now = now.astimezone(dt.UTC)
    out = PlaybooksSeed()
    with session_scope(sessions) as session:
        apply_demo_playbooks(session)
        world = _World.load(session, now, timezone)
        sim = _Simulation(session, world, np.random.default_rng([seed, 8]))
        sim.enter_all()
        sim.run()
        _write(session, sim, out)
    out.seconds = time.perf_counter() - started
    return out


# -- what the world holds -----------------------------------------------------------------------


def _utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _raw(session: Session, sql: str, *, since: dt.datetime | None = None) -> list[Any]:
    """Rows of a fixed query without per-value type processing (the bulk of reading every
    order, event and consent); see :func:`_when`, :func:`_json`. ``:since`` is bound as the
    store keeps UTC times."""
    from sqlalchemy import text

    params: dict[str, Any] = {}
    if since is not None:
        sqlite = session.get_bind().dialect.name == "sqlite"
        params["since"] = (since.astimezone(dt.UTC).replace(tzinfo=None).isoformat(
            sep=" ", timespec="microseconds") if sqlite else since)
    return list(session.execute(text(sql), params).all())


def _when(value: Any) -> dt.datetime:
    # SQLite hands back UTCDateTime's text (naive UTC), PostgreSQL an aware datetime.
    if isinstance(value, str):  # (appending the zone parses 7 times faster than replace)
        return dt.datetime.fromisoformat(value + "+00:00")
    return _utc(value)


def _json(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, str | bytes) else value


@dataclass
class _Playbook:
    id: int
    name: str
    priority: int
    version_id: int
    spec: dict[str, Any]
    program: list[dict[str, Any]]


@dataclass
class _World:
    now: dt.datetime
    start: dt.datetime
    tz: ZoneInfo
    playbooks: dict[str, _Playbook]
    advisor: dict[int, int | None]
    tier: dict[int, str | None]
    birthday: dict[int, dt.date]
    purchases: dict[int, list[tuple[dt.datetime, list[dict[str, Any]]]]]
    for_others: list[tuple[int, dt.datetime, str]]
    activity: dict[int, list[dt.datetime]]
    events: dict[str, list[tuple[int, dt.datetime, str, dict[str, Any]]]]
    identities: dict[int, set[str]]
    consents: dict[int, list[tuple[dt.datetime, str, str, bool, str | None]]]
    complaint_tagged: set[int]
    tag_ids: dict[str, int]

    @staticmethod
    def load(session: Session, now: dt.datetime, timezone: str) -> _World:
        from siyu.customers.models import Customer, CustomerTag, Identity, Tag
        from siyu.events.models import Event
        from siyu.playbooks.models import Playbook, PlaybookVersion

        playbooks = {}
        for p, v in session.execute(
                select(Playbook, PlaybookVersion).join(
                    PlaybookVersion, (PlaybookVersion.playbook_id == Playbook.id)
                    & (PlaybookVersion.version == Playbook.version))):
            playbooks[p.name] = _Playbook(p.id, p.name, p.priority, v.id, dict(v.spec),
                                          list(v.program))
        advisor: dict[int, int | None] = {}
        tier: dict[int, str | None] = {}
        birthday: dict[int, dt.date] = {}
        for cid, adv, t, bday in session.execute(
                select(Customer.id, Customer.advisor_id, Customer.tier, Customer.birthday)
                .where(Customer.status == "active")):
            advisor[cid], tier[cid] = adv, t
            if bday is not None:
                birthday[cid] = bday
        purchases: dict[int, list[tuple[dt.datetime, list[dict[str, Any]]]]] = defaultdict(list)
        activity: dict[int, list[dt.datetime]] = defaultdict(list)
        for_others = []
        for cid, oid, ts, status, items, recipient in _raw(
                session, "SELECT customer_id, id, ts, status, items, recipient_name FROM orders "
                "ORDER BY customer_id, ts, id"):
            if cid not in advisor:
                continue
            ts = _when(ts)
            activity[cid].append(ts)
            if not is_purchase_status(status):
                continue
            purchases[cid].append((ts, list(_json(items) or [])))
            if recipient:
                for_others.append((cid, ts, str(oid)))
        wanted = ("add_wecom_contact", "after_sales_request", "invite_friend",
                  "delivery_delayed")
        # Activity older than the window's start minus the longest silence cannot begin a
        # silence that ends inside the window.
        since = now - dt.timedelta(days=HISTORY_DAYS + _MAX_SILENCE_DAYS + 2)
        for cid, ts in _raw(session, "SELECT customer_id, ts FROM events WHERE ts >= :since",
                            since=since):
            if cid in advisor:
                activity[cid].append(_when(ts))
        events: dict[str, list[tuple[int, dt.datetime, str, dict[str, Any]]]] = {
            w: [] for w in wanted}
        for cid, eid, typ, ts, props in session.execute(
                select(Event.customer_id, Event.id, Event.type, Event.ts, Event.properties)
                .where(Event.type.in_(wanted)).order_by(Event.ts, Event.id)):
            if cid in advisor:
                events[typ].append((cid, _utc(ts), str(eid), dict(props or {})))
        for times in activity.values():
            times.sort()
        activity = {cid: activity[cid] for cid in sorted(activity)}
        identities: dict[int, set[str]] = defaultdict(set)
        for cid, kind in session.execute(select(Identity.customer_id, Identity.kind)):
            identities[cid].add(kind)
        consents: dict[int, list[tuple[dt.datetime, str, str, bool, str | None]]] = (
            defaultdict(list))
        for cid, at, channel, purpose, granted, source in _raw(
                session, "SELECT customer_id, at, channel, purpose, granted, source "
                "FROM consents ORDER BY at, id"):
            consents[cid].append((_when(at), channel, purpose, bool(granted), source))
        tag_ids = dict(session.execute(select(Tag.name, Tag.id)).all())
        from siyu.playbooks.engine import COMPLAINT_TAG

        tagged = set(session.scalars(select(CustomerTag.customer_id).where(
            CustomerTag.tag_id == tag_ids.get(COMPLAINT_TAG, -1))))
        return _World(now=now, start=now - dt.timedelta(days=HISTORY_DAYS),
                      tz=ZoneInfo(timezone), playbooks=playbooks, advisor=advisor, tier=tier,
                      birthday=birthday, purchases=purchases, for_others=for_others,
                      activity=activity, events=events, identities=identities,
                      consents=consents, complaint_tagged=tagged, tag_ids=tag_ids)

    def local_at(self, day: dt.date, clock: dt.time) -> dt.datetime:
        return dt.datetime.combine(day, clock, tzinfo=self.tz).astimezone(dt.UTC)


# -- the simulation -----------------------------------------------------------------------------


@dataclass
class _Run:
    pb: _Playbook
    cid: int
    entered: dt.datetime
    entry_key: str
    trigger: dict[str, Any]
    holdout: bool
    status: str = "active"
    pc: int = 0
    due: dt.datetime | None = None
    wait_event: str | None = None
    goal_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    lift_drawn: bool = False


_ORDERS_LAST = re.compile(r"^orders\(last (\d+)d\) >= 1$")
_ORDERS_EVER = re.compile(r"^orders >= (\d+)$")
_HAS = re.compile(r"^has\((\w+)\)$")
_EVENT_NONE = re.compile(r'^event\("(\w+)", last (\d+)d\) = 0$')


class _Simulation:
    """The engine's execution of the demo playbooks, replayed in time order."""

    def __init__(self, session: Session, world: _World, rng: np.random.Generator) -> None:
        from siyu.customers import service as customers
        from siyu.playbooks import engine

        self.session = session
        self.w = world
        self.rng = rng
        self.runs: list[_Run] = []
        self.heap: list[tuple[dt.datetime, int, int]] = []
        self.seq = 0
        self.logs: list[dict[str, Any]] = []
        self.deliveries: list[dict[str, Any]] = []  # with "run" (index) and "pc"
        self.tasks: list[dict[str, Any]] = []
        self.points: list[dict[str, Any]] = []
        self.orders: list[dict[str, Any]] = []
        self.resolved: dict[int, list[dt.datetime]] = defaultdict(list)
        self.event_rows: list[dict[str, Any]] = []
        self.tag_state: dict[int, bool] = {}
        self.woken: dict[int, dt.datetime] = {}
        self.consent_keys: dict[int, list[tuple[int, str, str]]] = {}
        self.invites: dict[int, list[dt.datetime]] = defaultdict(list)
        for cid, ts, _eid, _props in world.events["invite_friend"]:
            self.invites[cid].append(ts)
        self.tag_since: dict[int, dt.datetime] = {}
        self.batch = engine._Batch(now=world.now, policy=engine.load_policy(session))
        self.customers = customers
        # Complaints the demo world still has open now (tag 投诉中): open since the latest
        # unhappy moment of the last 30 days.
        recent = world.now - dt.timedelta(days=30)
        self.open_since: dict[int, dt.datetime] = {}
        for typ in ("after_sales_request", "delivery_delayed"):
            for cid, ts, _eid, props in world.events[typ]:
                if cid in world.complaint_tagged and ts >= recent and (
                        typ == "delivery_delayed" or props.get("kind") == "complaint"):
                    self.open_since[cid] = max(self.open_since.get(cid, ts), ts)

    # -- entering -----------------------------------------------------------------------------

    def enter_all(self) -> None:
        w = self.w
        pbs = w.playbooks
        self._welcome(pbs["企微添加欢迎语"])
        self._repurchase(pbs["复购提醒"])
        self._invite(pbs["邀请好友得积分"])
        self._complaints(pbs["投诉关怀"])
        self._winback(pbs["沉睡客户唤醒"])
        self._birthdays(pbs["会员生日关怀"])
        profiles = self.customers.profiles_for(self.session, sorted({r.cid for r in self.runs}))
        self.batch.customers = profiles
        self.batch.identities = {cid: dict.fromkeys(kinds, "x")
                                 for cid, kinds in w.identities.items()}

    def _audience(self, pb: _Playbook, cid: int) -> bool:
        """The ``has(KIND)`` audiences of the demo files (identities do not change)."""
        rule = pb.spec.get("audience")
        if rule is None:
            return True
        if m := _HAS.match(rule):
            return m.group(1) in self.w.identities.get(cid, ())
        raise ValueError(f"the demo history cannot evaluate the audience {rule!r}")

    def _in_window(self, at: dt.datetime) -> bool:
        return self.w.start <= at <= self.w.now

    def _delay(self) -> dt.timedelta:
        """How long the worker takes to pick up due work (it is woken at once)."""
        return dt.timedelta(seconds=float(self.rng.uniform(0.3, 2.0)))

    def _start(self, pb: _Playbook, cid: int, at: dt.datetime, trigger_id: str,
               trigger: dict[str, Any], last: dict[tuple[int, int], dt.datetime]) -> None:
        """engine.enter for one entry: audience (checked by the caller), reentry, holdout."""
        from siyu.playbooks.engine import holdout_share

        spec = pb.spec
        reentry = spec.get("reentry", "once")
        key = (pb.id, cid)
        if reentry == "once":
            if key in last:
                return
            entry_key = f"c{cid}"
        else:
            if isinstance(reentry, int) and key in last and (
                    at - last[key] < dt.timedelta(days=reentry)):
                return
            entry_key = f"c{cid}:{trigger_id}"[:200]
        last[key] = at
        held = holdout_share(pb.id, cid) < float(spec.get("holdout") or 0)
        goal = spec.get("goal") or {}
        within = dt.timedelta(seconds=int(goal.get("within_seconds") or 0))
        trigger = {**trigger, "ts": at.isoformat()}
        run = _Run(pb, cid, at, entry_key, trigger, held, status="holdout" if held else "active",
                   due=at + within if held else at)
        self.runs.append(run)
        self._schedule(len(self.runs) - 1, run.due or at)

    def _schedule(self, index: int, due: dt.datetime) -> None:
        at = min(due + self._delay(), max(due, self.w.now)) if due <= self.w.now else due
        self.seq += 1
        heapq.heappush(self.heap, (at, self.seq, index))

    def _welcome(self, pb: _Playbook) -> None:
        last: dict[tuple[int, int], dt.datetime] = {}
        for cid, ts, eid, props in self.w.events["add_wecom_contact"]:
            if self._in_window(ts):
                self._start(pb, cid, ts, f"events:{eid}", {
                    "type": "add_wecom_contact", "id": eid, "properties": props}, last)

    def _scenario(self, pb: _Playbook, cid: int, at: dt.datetime, why: str,
                  last: dict[tuple[int, int], dt.datetime]) -> None:
        eid = f"journey-demo-{pb.id}-{cid}-{int(at.timestamp())}"
        self._start(pb, cid, at, f"events:{eid}", {
            "type": "scenario_entered", "id": eid,
            "properties": {"scenario": pb.spec["trigger"]["value"], "why": why}}, last)

    def _repurchase(self, pb: _Playbook) -> None:
        last: dict[tuple[int, int], dt.datetime] = {}
        entries = []
        for cid, bought in self.w.purchases.items():
            for k, (ts, items) in enumerate(bought):
                cycles = [(_CYCLE.get(str(i.get("sku")), 0) * int(i.get("quantity") or 1), i)
                          for i in items if isinstance(i, dict)]
                cycles = [c for c in cycles if c[0] > 0]
                if not cycles:
                    continue
                days, item = min(cycles, key=lambda c: c[0])
                runs_out = ts + dt.timedelta(days=days)
                at = runs_out - dt.timedelta(days=3, hours=float(self.rng.uniform(0, 20)))
                if k + 1 < len(bought) and bought[k + 1][0] <= at:
                    continue
                if self._in_window(at) and self._audience(pb, cid):
                    entries.append((at, cid, f"{item.get('name') or item.get('sku')}预计 "
                                    f"{runs_out.astimezone(self.w.tz):%m-%d} 吃完"))
        for at, cid, why in sorted(entries):
            self._scenario(pb, cid, at, why, last)

    def _invite(self, pb: _Playbook) -> None:
        last: dict[tuple[int, int], dt.datetime] = {}
        for cid, ts, oid in sorted(self.w.for_others, key=lambda r: (r[1], r[0])):
            at = ts + dt.timedelta(hours=float(self.rng.uniform(1, 20)))
            if self._in_window(at) and self._audience(pb, cid):
                self._scenario(pb, cid, at, f"订单 {oid} 寄给了亲友", last)

    def _complaints(self, pb: _Playbook) -> None:
        last: dict[tuple[int, int], dt.datetime] = {}
        w = self.w
        recent = w.now - dt.timedelta(days=30)
        latest: dict[int, dt.datetime] = {}
        complaints = [(cid, ts, props) for cid, ts, _eid, props in w.events["after_sales_request"]
                      if props.get("kind") == "complaint"]
        for cid, ts, _props in complaints:
            latest[cid] = max(latest.get(cid, ts), ts)
        for cid, ts, props in complaints:
            at = ts + dt.timedelta(minutes=float(self.rng.uniform(5, 60)))
            if not self._in_window(at):
                continue
            self._scenario(pb, cid, at, f"售后投诉：{props.get('text') or '售后问题'}", last)
            # Still open now: the world's 投诉中 customers' latest complaint of the month.
            if cid in w.complaint_tagged and ts >= recent and ts == latest[cid]:
                continue
            hours = (self.rng.uniform(1.5, 68) if self.rng.random() < 0.8
                     else self.rng.uniform(77, 228))
            resolved = at + dt.timedelta(hours=float(hours))
            if resolved < w.now:
                self.resolved[cid].append(resolved)
                self.event_rows.append({
                    "id": f"pbdemo-resolved-{len(self.event_rows):06d}", "customer_id": cid,
                    "type": "complaint_resolved", "ts": resolved, "channel": "wecom",
                    "properties": {"order_id": props.get("order_id"), "result": "已解决"},
                    "created_at": resolved})
        for times in self.resolved.values():
            times.sort()

    def _winback(self, pb: _Playbook) -> None:
        w = self.w
        last: dict[tuple[int, int], dt.datetime] = {}
        days = int(pb.spec["trigger"]["value"])
        if days > _MAX_SILENCE_DAYS:
            raise ValueError(f"the demo history reads activity for silences up to "
                             f"{_MAX_SILENCE_DAYS} days, not {days}")
        entries = []
        span = dt.timedelta(days=days)
        earliest = w.start - span - dt.timedelta(days=1)
        need = int(_ORDERS_EVER.match(str(pb.spec.get("audience"))).group(1))  # type: ignore[union-attr]
        for cid, times in w.activity.items():
            bought = w.purchases.get(cid) or []
            if len(bought) < need:
                continue
            for k, t in enumerate(times):
                nxt = times[k + 1] if k + 1 < len(times) else None
                if t < earliest or (nxt is not None and nxt - t <= span):
                    continue
                day = (t + span).astimezone(w.tz).date()
                at = w.local_at(day, DAILY_AT)
                if at - t < span:
                    at = w.local_at(day + dt.timedelta(days=1), DAILY_AT)
                if (nxt is not None and nxt <= at) or not self._in_window(at):
                    continue
                if len(bought) >= need and bought[need - 1][0] <= at:  # the audience then
                    entries.append((at, cid))
        for at, cid in sorted(entries):
            self._start(pb, cid, at, f"inactive_days:{at.astimezone(w.tz).date().isoformat()}",
                        {"type": "inactive_days", "days": days}, last)

    def _birthdays(self, pb: _Playbook) -> None:
        w = self.w
        last: dict[tuple[int, int], dt.datetime] = {}
        tiers = ("银卡", "金卡", "黑金")  # the file's audience
        entries = []
        for cid, bday in w.birthday.items():
            if w.tier.get(cid) not in tiers:
                continue
            for year in range(w.start.year, w.now.year + 1):
                try:
                    day = bday.replace(year=year)
                except ValueError:  # 29 February in a common year: the 28th
                    day = dt.date(year, 2, 28)
                at = w.local_at(day, DAILY_AT)
                if self._in_window(at):
                    entries.append((at, cid, day))
        for at, cid, day in sorted(entries):
            self._start(pb, cid, at, f"date:{day.isoformat()}",
                        {"type": "date", "field": "birthday", "date": day.isoformat()}, last)

    # -- executing ----------------------------------------------------------------------------

    def run(self) -> None:
        while self.heap and self.heap[0][0] <= self.w.now:
            at, _seq, index = heapq.heappop(self.heap)
            self._process(index, at)

    def _bought(self, cid: int, lo: dt.datetime, hi: dt.datetime) -> list[dt.datetime]:
        return [ts for ts, _ in self.w.purchases.get(cid, ()) if lo <= ts <= hi]

    def _log(self, index: int, instr: dict[str, Any], outcome: str, at: dt.datetime,
             reason: str | None = None, detail: str | None = None,
             delivery: int | None = None) -> None:
        run = self.runs[index]
        self.logs.append({"run": index, "playbook_id": run.pb.id, "customer_id": run.cid,
                          "pc": run.pc, "path": instr.get("path", ""), "kind": instr["kind"],
                          "channel": instr.get("channel"), "outcome": outcome,
                          "reason": reason, "delivery": delivery, "detail": detail, "at": at})

    def _finish(self, run: _Run, status: str, at: dt.datetime) -> None:
        run.status, run.finished_at, run.due, run.wait_event = status, at, None, None

    def _process(self, index: int, now: dt.datetime) -> None:
        """engine.process_due for one claimed run at ``now``."""
        from siyu.playbooks.program import EXIT

        run = self.runs[index]
        woken = self.woken.pop(index, None)
        if woken is not None:
            run.status, run.pc, run.due, run.wait_event = "active", run.pc + 1, woken, None
        goal = run.pb.spec.get("goal")
        if goal:
            within = dt.timedelta(seconds=int(goal.get("within_seconds") or 0))
            hits = self._bought(run.cid, run.entered, min(run.entered + within, now))
            if hits:
                run.goal_at = min(hits)
                self._finish(run, "goal", now)
                return
        program = run.pb.program
        if run.status == "holdout":
            self._finish(run, "done", now)
            return
        if run.status == "waiting":
            instr = program[run.pc]
            run.wait_event = None
            if instr.get("else") == "continue":
                run.status, run.pc = "active", run.pc + 1
            else:
                self._log(index, instr, "exited", now, "wait_timeout")
                self._finish(run, "exited", now)
                return
        for _ in range(64):
            if run.pc == EXIT or run.pc >= len(program):
                self._finish(run, "exited" if run.pc == EXIT else "done", now)
                return
            instr = program[run.pc]
            kind = instr["kind"]
            if kind == "goto":
                run.pc = instr["to"]
            elif kind == "wait":
                due = now + dt.timedelta(seconds=int(instr.get("seconds") or 0))
                self._log(index, instr, "done", now)
                run.pc += 1
                if due > now:
                    run.due = due
                    self._schedule(index, due)
                    return
            elif kind == "branch":
                taken = self._rule(instr["if"], run.cid, now)
                self._log(index, instr, "done", now, detail="then" if taken else "else")
                run.pc = instr["then_pc"] if taken else instr["else_pc"]
            elif kind == "wait_for":
                self._log(index, instr, "waiting", now)
                self._wait_for(index, instr, now)
                return
            elif kind == "send":
                if not self._send(index, instr, now):
                    return
            elif kind == "tag":
                self._tag(run.cid, instr, now)
                self._log(index, instr, "done", now)
                run.pc += 1
            elif kind == "points":
                self.points.append({"run": index, "pc": run.pc, "customer_id": run.cid,
                                    "amount": int(instr["award"]),
                                    "reason": instr.get("reason") or run.pb.name, "at": now})
                self._log(index, instr, "done", now, detail=str(instr["award"]))
                run.pc += 1
            elif kind == "task":
                self._task(index, instr, now)
                run.pc += 1
            else:  # webhook: the demo playbooks have none
                raise ValueError(f"the demo history cannot replay a {kind} step")
        self._finish(run, "failed", now)

    def _rule(self, rule: str, cid: int, now: dt.datetime) -> bool:
        """The branch rules of the demo files, evaluated as of ``now``."""
        if m := _ORDERS_LAST.match(rule):
            return bool(self._bought(cid, now - dt.timedelta(days=int(m.group(1))), now))
        if m := _ORDERS_EVER.match(rule):
            return len(self._bought(cid, dt.datetime.min.replace(tzinfo=dt.UTC), now)) >= int(
                m.group(1))
        if m := _HAS.match(rule):
            return m.group(1) in self.w.identities.get(cid, ())
        if (m := _EVENT_NONE.match(rule)) and m.group(1) == "complaint_resolved":
            since = now - dt.timedelta(days=int(m.group(2)))
            return not any(since <= t <= now for t in self.resolved.get(cid, ()))
        raise ValueError(f"the demo history cannot evaluate the rule {rule!r}")

    def _wait_for(self, index: int, instr: dict[str, Any], now: dt.datetime) -> None:
        run = self.runs[index]
        run.status = "waiting"
        run.wait_event = instr.get("event") or f"reply:{instr.get('reply')}"
        bound = now + dt.timedelta(seconds=int(instr.get("within_seconds") or 0))
        run.due = bound
        times = {"complaint_resolved": self.resolved,
                 "invite_friend": self.invites}.get(str(instr.get("event")), {}).get(run.cid, [])
        woken = next((t for t in times if now < t <= bound), None)
        if woken is not None and woken <= self.w.now:
            # The event's ingest continues the run (triggers._wake_waiting): next step, due
            # at once.
            self.woken[index] = woken
            self._schedule(index, woken)
        else:
            self._schedule(index, bound)

    def _prepare(self, cid: int, now: dt.datetime) -> None:
        """The batch's view of one customer at ``now``: consents, complaint, last order."""
        b = self.batch
        b.now = now
        for key in self.consent_keys.pop(cid, ()):
            b.consents.pop(key, None)
        keys = []
        for at, channel, purpose, granted, source in self.w.consents.get(cid, ()):
            if at > now:
                break
            b.consents[(cid, channel, purpose)] = (granted, source)
            keys.append((cid, channel, purpose))
        self.consent_keys[cid] = keys
        open_ = self.tag_state.get(cid, False) or (
            cid in self.open_since and now >= self.open_since[cid])
        if open_:
            b.complaint.add(cid)
        else:
            b.complaint.discard(cid)
        bought = [(ts, items) for ts, items in self.w.purchases.get(cid, ()) if ts <= now]
        if bought:
            ts, items = bought[-1]
            b.last_orders[cid] = {"ts": ts, "amount": 0.0, "items": items,
                                  "count": len(bought)}
        else:
            b.last_orders.pop(cid, None)

    def _send(self, index: int, instr: dict[str, Any], now: dt.datetime) -> bool:
        """One send step through the engine's policy; False when the run stops (deferred)."""
        from siyu.playbooks import engine
        from siyu.playbooks.templates import TemplateProblem, render

        run = self.runs[index]
        self._prepare(run.cid, now)
        probe = cast(Any, SimpleNamespace(row=SimpleNamespace(customer_id=run.cid),
                                          playbook=SimpleNamespace(priority=run.pb.priority)))
        verdict, reason, until = engine.check_send(self.batch, probe, instr)
        if verdict == "deferred" and until is not None:
            self._log(index, instr, "deferred", now, reason)
            run.due = until
            self._schedule(index, until)
            return False
        if verdict == "suppressed":
            self._log(index, instr, "suppressed", now, reason)
            run.pc += 1
            return True
        values = engine.template_values(self.batch, cast(Any, SimpleNamespace(
            customer_id=run.cid, trigger=run.trigger)))
        try:
            text = render(instr.get("template") or "", values,
                          today=now.astimezone(self.w.tz).date())
        except TemplateProblem as exc:
            self._log(index, instr, "suppressed", now, "template_error", detail=str(exc)[:500])
            run.pc += 1
            return True
        channel, purpose = instr["channel"], instr.get("purpose") or "marketing"
        refused = channel == "sms" and self.rng.random() < SMS_REFUSED
        finished = now + dt.timedelta(seconds=float(self.rng.uniform(0.5, 4.0)))
        self.deliveries.append({
            "run": index, "pc": run.pc, "customer_id": run.cid, "channel": channel,
            "purpose": purpose, "source": f"playbook:{run.pb.id}",
            "content": {"playbook": run.pb.name, "step": instr.get("path"),
                        "priority": run.pb.priority, "text": text},
            "state": "failed" if refused else "sent", "attempts": 1,
            "last_error": "运营商拒收（号码停机或拦截）" if refused else None,
            "created_at": now, "updated_at": finished, "finished_at": finished})
        if not refused:
            self.batch.recent.setdefault(run.cid, []).append(
                (channel, now, run.pb.priority, purpose == "marketing"))
        self._log(index, instr, "queued", now, delivery=len(self.deliveries) - 1)
        run.pc += 1
        if not refused and purpose == "marketing" and not run.lift_drawn:
            run.lift_drawn = True
            self._lift(run, now)
            self._invited(run, now)
        return True

    def _lift(self, run: _Run, now: dt.datetime) -> None:
        """The reminder's effect: a customer who would not have bought, buys."""
        share = LIFT.get(run.pb.name, 0.0)
        goal = run.pb.spec.get("goal") or {}
        end = run.entered + dt.timedelta(seconds=int(goal.get("within_seconds") or 0))
        if not share or self._bought(run.cid, run.entered, end) or self.rng.random() >= share:
            return
        at = now + dt.timedelta(days=float(self.rng.exponential(1.5)))
        if at >= min(end, self.w.now - dt.timedelta(minutes=10)):
            return
        at = at.replace(microsecond=0)
        preferred = (self.batch.customers.get(run.cid) or {}).get("attributes", {}).get(
            "preferred_sku")
        sku = preferred if preferred in _PRICE else catalog.PRODUCTS[0].sku
        name, price = _PRICE[sku]
        age = self.w.now - at
        status = ("paid" if age < dt.timedelta(days=2) else
                  "shipped" if age < dt.timedelta(days=6) else "completed")
        items = [{"sku": sku, "name": name, "quantity": 1, "price": price}]
        self.orders.append({
            "id": f"SOPB{len(self.orders):07d}", "customer_id": run.cid, "ts": at,
            "amount": price, "currency": "CNY", "status": status,
            "channel": "wecom" if run.pb.name == "复购提醒" else "miniprogram",
            "items": items, "created_at": at, "updated_at": at})
        bought = self.w.purchases.setdefault(run.cid, [])
        bought.append((at, items))
        bought.sort(key=lambda p: p[0])

    def _invited(self, run: _Run, now: dt.datetime) -> None:
        """The invitation's effect: some customers bring a friend to the advisor's WeCom
        within the playbook's wait (an ``invite_friend`` on their timeline)."""
        if run.pb.name != "邀请好友得积分" or self.rng.random() >= INVITE_SUCCESS:
            return
        at = (now + dt.timedelta(days=float(self.rng.uniform(0.2, 12)))).replace(microsecond=0)
        if at >= self.w.now:
            return
        self.invites[run.cid].append(at)
        self.invites[run.cid].sort()
        self.event_rows.append({
            "id": f"pbdemo-invite-{len(self.event_rows):06d}", "customer_id": run.cid,
            "type": "invite_friend", "ts": at, "channel": "wecom",
            "properties": {"via": "顾问 1V1 邀请", "reward_points": 200},
            "created_at": at})

    def _tag(self, cid: int, instr: dict[str, Any], now: dt.datetime) -> None:
        from siyu.playbooks.engine import COMPLAINT_TAG

        if instr.get("add") == COMPLAINT_TAG:
            self.tag_state[cid] = True
            self.tag_since.setdefault(cid, now)
        if instr.get("remove") == COMPLAINT_TAG:
            self.tag_state[cid] = False
            self.tag_since.pop(cid, None)

    def _task(self, index: int, instr: dict[str, Any], now: dt.datetime) -> None:
        from siyu.playbooks import engine
        from siyu.playbooks.templates import TemplateProblem, render

        run = self.runs[index]
        assignee = instr.get("assignee") or "advisor"
        note = instr.get("note") or ""
        if note:
            self._prepare(run.cid, now)
            try:
                note = render(note, engine.template_values(self.batch, cast(Any, SimpleNamespace(
                    customer_id=run.cid, trigger=run.trigger))),
                    today=now.astimezone(self.w.tz).date())
            except TemplateProblem as exc:
                note = f"{note}（模板错误：{exc}）"
        due = now + dt.timedelta(seconds=int(instr.get("due_seconds") or 0))
        span = (due - now).total_seconds()
        late = self.rng.random() < 0.1
        took = span * (self.rng.uniform(1.05, 2.5) if late else self.rng.uniform(0.15, 0.95))
        done = now + dt.timedelta(seconds=float(took))
        kind = instr.get("task_kind") or "call"
        self.tasks.append({
            "run": index, "pc": run.pc, "customer_id": run.cid, "playbook_id": run.pb.id,
            "kind": kind,
            "assignee_id": self.w.advisor.get(run.cid) if assignee == "advisor" else None,
            "skill_group": None if assignee == "advisor" else assignee, "note": note,
            "due_at": due, "status": "done" if done <= self.w.now else "open",
            "done_at": done if done <= self.w.now else None, "created_at": now})
        self._log(index, instr, "done", now, detail=str(kind))


# -- writing ------------------------------------------------------------------------------------


def _table(name: str) -> Any:
    import siyu.channels.models
    import siyu.playbooks.models
    import siyu.points.models  # noqa: F401  (their tables)

    return Base.metadata.tables[name]


def _write(session: Session, sim: _Simulation, out: PlaybooksSeed) -> None:
    from siyu.customers.models import CustomerTag
    from siyu.events.models import Event, Order
    from siyu.playbooks.engine import COMPLAINT_TAG

    # A run's last position: everything due before now was executed; what is left waits for
    # a moment after now.
    run_rows = [{
        "playbook_id": r.pb.id, "version_id": r.pb.version_id, "customer_id": r.cid,
        "entry_key": r.entry_key, "status": r.status, "holdout": r.holdout, "pc": r.pc,
        "due_at": r.due, "wait_event": r.wait_event, "entered_at": r.entered,
        "goal_at": r.goal_at, "finished_at": r.finished_at, "trigger": r.trigger,
        "created_at": r.entered, "updated_at": r.finished_at or r.entered}
        for r in sim.runs]
    run_ids = _insert_ids(session, "playbook_runs", run_rows)
    for d in sim.deliveries:
        d["key"] = f"pb:{run_ids[d.pop('run')]}:{d.pop('pc')}"
    cols = ("key", "customer_id", "channel", "purpose", "source", "content", "state",
            "attempts", "last_error", "created_at", "updated_at", "finished_at")
    delivery_ids = _insert_ids(session, "channel_deliveries",
                               [{c: d[c] for c in cols} for d in sim.deliveries])
    logs = []
    for log in sim.logs:
        delivery = log.pop("delivery")
        log["run_id"] = run_ids[log.pop("run")]
        log["delivery_id"] = delivery_ids[delivery] if delivery is not None else None
        log["created_at"] = log["at"]
        logs.append(log)
    for t in sim.tasks:
        t["run_id"] = run_ids[t.pop("run")]
    points = [{"customer_id": p["customer_id"], "amount": p["amount"], "source": "playbook",
               "key": f"pb:{run_ids[p['run']]}:{p['pc']}", "reason": p["reason"][:200],
               "at": p["at"], "created_at": p["at"]} for p in sim.points]
    tag_id = sim.w.tag_ids.get(COMPLAINT_TAG)
    tags = [{"customer_id": cid, "tag_id": tag_id, "source": "playbook",
             "created_at": sim.tag_since.get(cid, sim.w.now)}
            for cid, on in sorted(sim.tag_state.items())
            if on and tag_id is not None and cid not in sim.w.complaint_tagged]
    for name, rows in (("playbook_step_log", logs), ("playbook_tasks", sim.tasks),
                       ("points_entries", points), (Event.__tablename__, sim.event_rows),
                       (Order.__tablename__, sim.orders),
                       (CustomerTag.__tablename__, tags)):
        for start in range(0, len(rows), 20_000):
            bulk_insert(session, _table(name), rows[start:start + 20_000])
        out.rows[name] = len(rows)
    out.rows["playbook_runs"] = len(run_rows)
    out.rows["channel_deliveries"] = len(delivery_ids)
    for r in sim.runs:
        out.runs[r.pb.name] = out.runs.get(r.pb.name, 0) + 1
    out.sends = len(sim.deliveries)
    out.orders_added = len(sim.orders)
    refresh_statistics(session, ["playbook_runs", "playbook_step_log", "channel_deliveries"])


def _insert_ids(session: Session, table: str, rows: list[dict[str, Any]]) -> list[int]:
    ids: list[int] = []
    for start in range(0, len(rows), 5_000):
        ids.extend(insert_returning_ids(session, _table(table), rows[start:start + 5_000]))
    return ids
