"""Playbooks: apply files, list, show, pause and resume, stats, dry-runs; the contact
policy; tasks and the contact log. Functions take the caller's session and never commit.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from siyu.db import utcnow
from siyu.playbooks import engine
from siyu.playbooks import policy as pol
from siyu.playbooks.errors import PlaybookNotFound
from siyu.playbooks.models import (
    ContactPolicy,
    Playbook,
    PlaybookRun,
    PlaybookTask,
    PlaybookVersion,
    StepLog,
)
from siyu.playbooks.program import compile_steps
from siyu.playbooks.spec import Spec, load_text, validate

SENT_STATES = ("sent", "delivered", "created")
PENDING_STATES = ("queued", "sending", "retry")


def _webhook_hosts() -> list[str]:
    from siyu.channels.config import get_channel_settings

    return list(get_channel_settings().webhook_allow_hosts)


def parse_file(text: str, file: str) -> Spec:
    """Validate a playbook file's text (YAML, or JSON for ``.json``); raises
    :class:`InvalidPlaybook` naming the file, the place and the reason."""
    return validate(load_text(text, file), file, webhook_hosts=_webhook_hosts())


def _checksum(spec: Spec) -> str:
    return hashlib.sha256(json.dumps(spec.to_json(), sort_keys=True, ensure_ascii=False)
                          .encode("utf-8")).hexdigest()


def apply(session: Session, text: str, *, file: str = "<playbook>",
          actor: str | None = None) -> dict[str, Any]:
    """Create or update the playbook the file names; the file is the whole truth (status
    included). An unchanged file changes nothing. Runs in flight keep the version they
    started with. Returns ``{"name", "version", "changed"}``."""
    spec = parse_file(text, file)
    _check_content(session, spec, file)
    _check_groups(session, spec, file)
    checksum = _checksum(spec)
    playbook = session.scalars(select(Playbook).where(Playbook.name == spec.name)).first()
    if playbook is not None:
        current = session.scalars(select(PlaybookVersion).where(
            PlaybookVersion.playbook_id == playbook.id,
            PlaybookVersion.version == playbook.version)).first()
        if current is not None and current.checksum == checksum:
            return {"name": spec.name, "version": playbook.version, "changed": False}
        playbook.version += 1
    else:
        playbook = Playbook(name=spec.name, version=1, status=spec.status,
                            priority=spec.priority, trigger_kind=spec.trigger["kind"],
                            trigger_value=None)
        session.add(playbook)
    playbook.status = spec.status
    playbook.priority = spec.priority
    playbook.trigger_kind = spec.trigger["kind"]
    playbook.trigger_value = str(spec.trigger.get("value"))[:100]
    playbook.updated_at = utcnow()
    session.flush()
    session.add(PlaybookVersion(playbook_id=playbook.id, version=playbook.version,
                                source=text, checksum=checksum, spec=spec.to_json(),
                                program=compile_steps(spec.steps), applied_by=actor))
    session.flush()
    if spec.status == "active" and spec.trigger["kind"] == "schedule":
        from siyu.playbooks import clock, tasks

        tasks.queue_next_schedule(session, after=clock.now())  # its first occurrence
    return {"name": spec.name, "version": playbook.version, "changed": True}


def _check_content(session: Session, spec: Any, file: str) -> None:
    """Every content item a template names (``content("名称")``) must exist."""
    from siyu.content.service import names
    from siyu.playbooks.errors import InvalidPlaybook
    from siyu.playbooks.spec import flatten
    from siyu.playbooks.templates import content_names

    wanted = [(f"steps[{path}].{field}", name) for path, step in flatten(spec.steps)
              for field in ("template", "subject") if isinstance(step.get(field), str)
              for name in sorted(content_names(step[field]))]
    if not wanted:
        return
    known = names(session)
    problems = [{"step": where, "reason": f"unknown content item {name!r}"}
                for where, name in wanted if name not in known]
    if problems:
        raise InvalidPlaybook(file, problems)


def _check_groups(session: Session, spec: Spec, file: str) -> None:
    """Every customer group an active group playbook names must be known (synced from
    WeCom): a misspelt name would otherwise send to nobody, silently. A draft or a paused
    one may name a group not synced yet (and pausing one whose group was renamed works)."""
    from siyu.playbooks import group_sends
    from siyu.playbooks.errors import InvalidPlaybook
    from siyu.playbooks.spec import group_names

    names = group_names(spec)
    if not names or spec.status != "active":
        return
    unknown = group_sends.unknown_names(session, names)
    if unknown:
        raise InvalidPlaybook(file, [{"step": "audience.group", "reason":
                                      f"no customer group named {name!r} (siyu groups list "
                                      "shows them; siyu groups sync reads them from WeCom)"}
                                     for name in unknown])


def get(session: Session, name: str) -> Playbook:
    playbook = session.scalars(select(Playbook).where(Playbook.name == name)).first()
    if playbook is None:
        raise PlaybookNotFound(f"no playbook named {name!r}")
    return playbook


def current_version(session: Session, playbook: Playbook) -> PlaybookVersion:
    return session.scalars(select(PlaybookVersion).where(
        PlaybookVersion.playbook_id == playbook.id,
        PlaybookVersion.version == playbook.version)).one()


def set_status(session: Session, name: str, status: str) -> dict[str, Any]:
    """Pause or resume (``paused`` / ``active``): a new version whose file says so, so the
    stored file stays the whole truth."""
    import yaml

    playbook = get(session, name)
    version = current_version(session, playbook)
    data = load_text(version.source, f"{name}.yaml")
    if data.get("status") == status:
        return {"name": name, "version": playbook.version, "changed": False}
    data["status"] = status
    text = yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
    return apply(session, text, file=f"{name}.yaml", actor="status")


def pause_all(session: Session, paused: bool = True) -> None:
    """Hold (or release) every outbound marketing message of every playbook."""
    row = session.get(ContactPolicy, 1)
    if row is None:
        row = ContactPolicy(id=1, source="", data={})
        session.add(row)
    row.paused_all = paused
    session.flush()


def list_playbooks(session: Session) -> list[dict[str, Any]]:
    """Every playbook with its live counters."""
    rows = session.scalars(select(Playbook).order_by(Playbook.priority.desc(), Playbook.name))
    out = []
    for p in rows:
        counts = dict(session.execute(select(PlaybookRun.status, func.count())
                                      .where(PlaybookRun.playbook_id == p.id)
                                      .group_by(PlaybookRun.status)).all())
        sent = _sent_count(session, p.id)
        out.append({"name": p.name, "status": p.status, "priority": p.priority,
                    "version": p.version, "trigger": {p.trigger_kind: p.trigger_value},
                    "entered": int(sum(counts.values())),
                    "in_flight": int(sum(counts.get(s, 0) for s in
                                         ("active", "waiting", "holdout"))),
                    "goal_reached": int(counts.get("goal", 0)) + _holdout_goals(session, p.id),
                    "sent": sent})
    return out


def _sent_count(session: Session, playbook_id: int) -> int:
    from siyu.channels import outbox

    return outbox.count_by_state(session, f"playbook:{playbook_id}").get("sent", 0)


def _holdout_goals(session: Session, playbook_id: int) -> int:
    return int(session.scalar(select(func.count()).select_from(PlaybookRun).where(
        PlaybookRun.playbook_id == playbook_id, PlaybookRun.holdout.is_(True),
        PlaybookRun.goal_at.is_not(None))) or 0)


def show(session: Session, name: str) -> dict[str, Any]:
    playbook = get(session, name)
    version = current_version(session, playbook)
    versions = session.execute(select(PlaybookVersion.version, PlaybookVersion.created_at,
                                      PlaybookVersion.applied_by)
                               .where(PlaybookVersion.playbook_id == playbook.id)
                               .order_by(PlaybookVersion.version)).all()
    return {"name": playbook.name, "status": playbook.status, "priority": playbook.priority,
            "version": playbook.version, "spec": version.spec, "source": version.source,
            "versions": [{"version": v, "at": at.isoformat(), "by": by}
                         for v, at, by in versions]}


def stats(session: Session, name: str) -> dict[str, Any]:
    """Counters of a playbook over all its versions (see the issue's ``--json`` shape):
    runs entered and in holdout, sends by outcome summed over steps, deferrals, suppressions
    by reason, goals, and the uplift of treated over holdout conversion with a 95 % CI
    (Newcombe's hybrid score interval), or ``null`` while an arm is empty; ``content``: the
    tracked content its steps sent, per step and item (links, clicks, click-through,
    conversion: :func:`siyu.content.service.step_stats`)."""
    from siyu.channels import outbox
    from siyu.content.service import step_stats

    playbook = get(session, name)
    pid = playbook.id
    entered, holdout, goal_treated, goal_holdout = session.execute(
        select(func.count(), func.count().filter(PlaybookRun.holdout.is_(True)),
               func.count().filter(PlaybookRun.holdout.is_(False),
                                   PlaybookRun.goal_at.is_not(None)),
               func.count().filter(PlaybookRun.holdout.is_(True),
                                   PlaybookRun.goal_at.is_not(None)))
        .where(PlaybookRun.playbook_id == pid)).one()
    outcomes = session.execute(select(StepLog.outcome, StepLog.reason, func.count())
                               .where(StepLog.playbook_id == pid)
                               .group_by(StepLog.outcome, StepLog.reason)).all()
    suppressed: dict[str, int] = {}
    deferred = failed_steps = 0
    for outcome, reason, n in outcomes:
        if outcome == "suppressed":
            suppressed[reason or "unknown"] = suppressed.get(reason or "unknown", 0) + int(n)
        elif outcome == "deferred":
            deferred += int(n)
        elif outcome == "failed":
            failed_steps += int(n)
    states = outbox.count_by_state(session, f"playbook:{pid}")
    treated = int(entered) - int(holdout)
    return {"entered": int(entered), "holdout": int(holdout),
            "sent": states.get("sent", 0), "pending": states.get("pending", 0),
            "deferred": deferred, "suppressed": suppressed,
            "failed": states.get("failed", 0) + failed_steps,
            "outcome_unknown": states.get("outcome_unknown", 0),
            "goal_reached": int(goal_treated) + int(goal_holdout),
            "conversion": {"treated": _rate(int(goal_treated), treated),
                           "holdout": _rate(int(goal_holdout), int(holdout))},
            "uplift": uplift(int(goal_treated), treated, int(goal_holdout), int(holdout)),
            "steps": step_counters(session, pid),
            "content": step_stats(session, pid)}


def _rate(k: int, n: int) -> float | None:
    return None if n == 0 else k / n


def uplift(k1: int, n1: int, k0: int, n0: int) -> dict[str, float] | None:
    """Treated minus holdout conversion with its 95 % confidence interval (statsmodels'
    ``confint_proportions_2indep``, Newcombe), as fractions; None while an arm is empty."""
    if n1 == 0 or n0 == 0:
        return None
    from statsmodels.stats.proportion import confint_proportions_2indep

    low, high = confint_proportions_2indep(k1, n1, k0, n0, method="newcomb", compare="diff")
    return {"difference": k1 / n1 - k0 / n0, "ci_low": float(low), "ci_high": float(high)}


def step_counters(session: Session, playbook_id: int) -> list[dict[str, Any]]:
    """Per step path: how many runs reached it and what came of it (the funnel)."""
    rows = session.execute(select(StepLog.path, StepLog.kind, StepLog.outcome,
                                  func.count(func.distinct(StepLog.run_id)))
                           .where(StepLog.playbook_id == playbook_id)
                           .group_by(StepLog.path, StepLog.kind, StepLog.outcome)).all()
    steps: dict[str, dict[str, Any]] = {}
    for path, kind, outcome, n in rows:
        entry = steps.setdefault(path, {"path": path, "kind": kind, "outcomes": {}})
        entry["outcomes"][outcome] = int(n)
    def order(path: str) -> list[Any]:
        return [int(p) if p.isdigit() else p for p in path.split(".")]
    return [steps[p] for p in sorted(steps, key=order)]


# -- dry run ----------------------------------------------------------------------------------


def dry_run(session: Session, name: str, *, days: int, now: dt.datetime | None = None,
            timezone: str = "Asia/Shanghai", limit: int = 1000) -> list[dict[str, Any]]:
    """What the playbook would do for the customers its trigger caught in the last ``days``
    days, played from now through its waits (a ``wait_for`` is assumed not answered):
    rows ``{customer_id, at, step, channel, outcome, reason, text}``. Runs the real engine
    inside a savepoint that is rolled back: nothing is stored or sent."""
    from siyu.channels import outbox

    if not 1 <= days <= 365:
        from siyu.errors import InvalidInput

        raise InvalidInput("days must be 1..365", details={"field": "days", "reason": "range"})
    now = now or utcnow()
    playbook = get(session, name)
    version = current_version(session, playbook)
    if isinstance(version.spec.get("audience"), dict):
        from siyu.playbooks import group_sends

        return [{"customer_id": None, "group": r["content"]["group"],
                 "chat_id": r["content"]["chat_id"], "at": now.isoformat(),
                 "step": r["content"]["step"], "channel": r["channel"],
                 "outcome": "would_send", "reason": None, "text": r["text"]}
                for r in group_sends.messages(session, playbook, version, "dry-run", now=now)]
    entries = _past_entries(session, version.spec, since=now - dt.timedelta(days=days),
                            now=now, limit=limit)
    out: list[dict[str, Any]] = []
    savepoint = session.begin_nested()
    try:
        status = playbook.status
        playbook.status = "active"
        session.flush()
        engine.enter(session, playbook, version, entries, now=now, timezone=timezone)
        clock = now
        horizon = now + dt.timedelta(days=days)
        for _ in range(200):
            engine.process_due(session, now=clock, limit=5000, timezone=timezone,
                               playbook_ids=[playbook.id])
            session.flush()
            nxt = session.scalar(select(func.min(PlaybookRun.due_at)).where(
                PlaybookRun.playbook_id == playbook.id,
                PlaybookRun.status.in_(("active", "waiting", "holdout"))))
            if nxt is None or nxt > horizon:
                break
            clock = max(nxt, clock)
        logs = session.execute(select(StepLog).where(StepLog.playbook_id == playbook.id)
                               .order_by(StepLog.at, StepLog.id)).scalars().all()
        texts = outbox.texts_by_id(session, [r.delivery_id for r in logs if r.delivery_id])
        for r in logs:
            if r.kind in ("goto",):
                continue
            out.append({"customer_id": r.customer_id, "at": r.at.isoformat(),
                        "step": r.path, "channel": r.channel,
                        "outcome": "would_send" if r.outcome == "queued" else r.outcome,
                        "reason": r.reason,
                        "text": texts.get(r.delivery_id) if r.delivery_id else None})
        playbook.status = status
    finally:
        savepoint.rollback()
    return out


def _past_entries(session: Session, spec: dict[str, Any], *, since: dt.datetime,
                  now: dt.datetime, limit: int) -> list[engine.Entry]:
    from siyu.events import service as events
    from siyu.segments import service as segments

    trigger = spec["trigger"]
    kind, value = trigger["kind"], trigger.get("value")
    entries: list[engine.Entry] = []
    if kind in ("event", "scenario", "scenario_left", "order_status"):
        typ = {"event": value, "scenario": "scenario_entered",
               "scenario_left": "scenario_exited", "order_status": "order_status_changed"}[kind]
        for cid, ts, t, props, eid in events.recent_events(session, typ, since, limit=limit):
            if kind in ("scenario", "scenario_left") and props.get("scenario") != value:
                continue
            if kind == "order_status" and props.get("to") != value:
                continue
            entries.append(engine.Entry(cid, f"events:{eid}", {
                "type": t, "id": eid, "ts": ts.isoformat(), "properties": props}))
        if kind == "order_status" and value == "paid":
            for cid, ts, oid, amount in events.recent_orders(session, "paid", since,
                                                             limit=limit):
                entries.append(engine.Entry(cid, f"orders:{oid}", {
                    "type": "order", "id": oid, "ts": ts.isoformat(),
                    "properties": {"amount": amount, "status": "paid"}}))
    elif kind in ("segment_entered", "segment_left"):
        ids = segments.member_ids(session, str(value), limit=limit)
        entries = [engine.Entry(c, f"dry:{c}", {"type": kind, "segment": value}) for c in ids]
    else:  # schedule, inactive days, dates: whom the audience selects now
        rule = spec.get("audience") or "orders >= 0"
        ids = sorted(segments.matching_ids(session, rule, now=now, limit=limit))
        entries = [engine.Entry(c, f"dry:{c}", {"type": kind}) for c in ids]
    return entries[:limit]


# -- policy -----------------------------------------------------------------------------------


def policy_show(session: Session) -> dict[str, Any]:
    return pol.describe(engine.load_policy(session))


def policy_apply(session: Session, text: str, *, file: str = "<policy>") -> dict[str, Any]:
    """Replace the whole contact policy with the YAML ``text``; nothing changes if invalid."""
    import yaml

    from siyu.playbooks.errors import InvalidPolicy

    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise InvalidPolicy(f"{file}: not valid YAML: {exc}",
                            details=[{"field": "", "reason": "yaml"}]) from None
    parsed = pol.parse_policy(data)
    row = session.get(ContactPolicy, 1)
    if row is None:
        row = ContactPolicy(id=1, source=text, data=data, paused_all=False)
        session.add(row)
    row.source, row.data = text, data
    session.flush()
    return pol.describe(parsed)


# -- people's tasks and the contact log -------------------------------------------------------


def open_tasks(session: Session, *, customer_id: int | None = None,
               assignee_id: int | None = None, limit: int = 100) -> list[dict[str, Any]]:
    stmt = (select(PlaybookTask, Playbook.name).join(Playbook,
                                                     Playbook.id == PlaybookTask.playbook_id)
            .where(PlaybookTask.status == "open").order_by(PlaybookTask.due_at).limit(limit))
    if customer_id is not None:
        stmt = stmt.where(PlaybookTask.customer_id == customer_id)
    if assignee_id is not None:
        stmt = stmt.where(PlaybookTask.assignee_id == assignee_id)
    return [{"id": t.id, "customer_id": t.customer_id, "kind": t.kind, "playbook": name,
             "assignee_id": t.assignee_id, "skill_group": t.skill_group, "note": t.note,
             "due_at": t.due_at.isoformat()} for t, name in session.execute(stmt)]


def complete_task(session: Session, task_id: int) -> None:
    task = session.get(PlaybookTask, task_id)
    if task is None:
        raise PlaybookNotFound(f"no task {task_id}")
    task.status, task.done_at = "done", utcnow()


def contact_log(session: Session, customer_id: int, *, limit: int = 50) -> list[dict[str, Any]]:
    """The customer's playbook contacts, newest first: each send step with its delivery
    state, and every deferred or suppressed one with its reason."""
    from siyu.channels import outbox

    rows = session.execute(
        select(StepLog, Playbook.name).join(Playbook, Playbook.id == StepLog.playbook_id)
        .where(StepLog.customer_id == customer_id,
               StepLog.outcome.in_(("queued", "deferred", "suppressed", "failed")))
        .order_by(StepLog.at.desc(), StepLog.id.desc()).limit(limit)).all()
    states = outbox.states_by_id(session, [r.delivery_id for r, _ in rows if r.delivery_id])
    out = []
    for r, name in rows:
        state = states.get(r.delivery_id) if r.delivery_id else None
        out.append({"at": r.at.isoformat(), "playbook": name, "step": r.path,
                    "channel": r.channel, "outcome": state or r.outcome,
                    "reason": r.reason, "reason_zh": pol.REASONS.get(r.reason or "")})
    return out
