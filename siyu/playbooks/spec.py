"""The playbook file format: parse YAML or JSON, validate everything, or refuse naming the
place. A :class:`Spec` is only built from a file with no problem at all.

The format (see docs/playbooks.md)::

    name, status (draft|active|paused), priority (0..1000), trigger,
    audience (rule text, or {group: NAME | [NAMES]}: a group playbook),
    reentry (once | every_trigger | {after_days: N}), holdout (0..0.5),
    goal ({order_status: S | event: T, within: DURATION}), steps: [...]

Steps: ``send`` ``wait`` ``branch`` ``task`` ``wait_for`` ``tag`` ``points`` ``webhook``.
Unknown keys anywhere are refused (a typo must not silently drop a step's meaning).

A **group playbook** (``audience: {group: 禾源良品·早餐打卡群}``) targets WeCom customer groups
rather than customers: on its ``schedule`` each ``send`` step (channel ``wecom_group_mass``)
becomes one group mass-send task per group, for the group's owner to confirm. Its templates
see ``group`` (name, members) and ``now``, not a customer.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from typing import Any

from siyu.playbooks.errors import InvalidPlaybook
from siyu.playbooks.templates import TemplateProblem, check_template

STATUSES = ("draft", "active", "paused")
CHANNELS = ("email", "sms", "wecom", "wecom_welcome", "wecom_mass", "webchat", "oa",
            "wecom_group_mass")
GROUP_CHANNEL = "wecom_group_mass"  # a WeCom customer-group mass send (客户群群发)
GROUP_TEMPLATE_NAMES = frozenset({"group", "now", "years_since", "days_since"})
PURPOSES = ("marketing", "service")
TRIGGER_KINDS = ("order_status", "event", "scenario", "scenario_left", "segment_entered",
                 "segment_left", "schedule", "inactive_days", "date")
STEP_KINDS = ("send", "wait", "branch", "task", "wait_for", "tag", "points", "webhook")
TASK_KINDS = ("call", "chat", "appointment")
_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_CRON_FIELD = re.compile(r"^(\*|\d+(-\d+)?)(/\d+)?(,(\*|\d+(-\d+)?)(/\d+)?)*$")
MAX_WAIT = dt.timedelta(days=365)


def parse_duration(value: Any) -> dt.timedelta | None:
    """``30s``, ``15m``, ``2h``, ``3d`` (or a number of seconds) -> timedelta; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and value >= 0:
        return dt.timedelta(seconds=value)
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            return dt.timedelta(seconds=int(m.group(1)) * _UNITS[m.group(2)])
    return None


@dataclass(frozen=True)
class Spec:
    """A validated playbook: the file's data, normalised (durations in seconds)."""

    name: str
    status: str
    priority: int
    trigger: dict[str, Any]
    audience: str | dict[str, Any] | None  # rule text, or {"group": [names]}
    reentry: str | int  # "once", "every_trigger", or days
    holdout: float
    goal: dict[str, Any] | None
    steps: list[dict[str, Any]]
    data: dict[str, Any] = field(default_factory=dict)  # the file as parsed

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "priority": self.priority,
                "trigger": self.trigger, "audience": self.audience, "reentry": self.reentry,
                "holdout": self.holdout, "goal": self.goal, "steps": self.steps}

    @staticmethod
    def from_json(data: dict[str, Any]) -> Spec:
        return Spec(name=data["name"], status=data["status"], priority=data["priority"],
                    trigger=data["trigger"], audience=data.get("audience"),
                    reentry=data["reentry"], holdout=data["holdout"], goal=data.get("goal"),
                    steps=data["steps"], data=data)


def group_names(spec: dict[str, Any] | Spec) -> list[str] | None:
    """The group names a group playbook targets; ``None`` for a customer playbook."""
    audience = spec.audience if isinstance(spec, Spec) else spec.get("audience")
    if isinstance(audience, dict):
        return list(audience.get("group") or [])
    return None


class _Checker:
    def __init__(self, webhook_hosts: list[str] | None) -> None:
        self.problems: list[dict[str, Any]] = []
        self.webhook_hosts = webhook_hosts
        self.group = False  # checking a group playbook (its templates see the group)

    def bad(self, where: str, reason: str) -> None:
        self.problems.append({"step": where, "reason": reason})

    def keys(self, where: str, value: dict[str, Any], allowed: set[str],
             required: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        for key in value:
            if key not in allowed:
                self.bad(f"{where}.{key}" if where else str(key),
                         f"unknown field {key!r} (allowed: {', '.join(sorted(allowed))})")
        for key in sorted(required - set(value)):
            self.bad(f"{where}.{key}" if where else key, f"{key!r} is required")

    def duration(self, where: str, value: Any) -> int | None:
        d = parse_duration(value)
        if d is None:
            self.bad(where, f"{value!r} is not a duration (e.g. 30s, 15m, 2h, 3d)")
            return None
        if d > MAX_WAIT:
            self.bad(where, "durations are at most 365d")
            return None
        return int(d.total_seconds())

    def rule(self, where: str, text: Any) -> str | None:
        from siyu.errors import SiyuError
        from siyu.segments import service as segments

        if not isinstance(text, str) or not text.strip():
            self.bad(where, "a rule must be non-empty rule text")
            return None
        try:
            segments.read_rule(text=text)
        except SiyuError as exc:
            position = getattr(exc, "position", None)
            at = f" at position {position}" if position is not None else ""
            message = exc.message.split(": ", 1)[-1]
            self.bad(where, f"rule error{at}: {message}")
            return None
        return text

    def template(self, where: str, text: Any) -> str | None:
        if not isinstance(text, str):
            self.bad(where, "a template must be text")
            return None
        try:
            check_template(text, names=GROUP_TEMPLATE_NAMES if self.group else None)
        except TemplateProblem as exc:
            self.bad(where, f"template does not compile: {exc}")
            return None
        return text


def _trigger(c: _Checker, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict) or not value:
        c.bad("trigger", "trigger must be a mapping such as {order_status: paid}")
        return {}
    kinds = [k for k in value if k in TRIGGER_KINDS]
    if len(kinds) != 1:
        c.bad("trigger", f"trigger needs exactly one of: {', '.join(TRIGGER_KINDS)}")
        return {}
    kind = kinds[0]
    allowed = {kind, "offset_days"} if kind == "date" else {kind}
    c.keys("trigger", value, allowed)
    arg = value[kind]
    out: dict[str, Any] = {"kind": kind}
    if kind == "inactive_days":
        if not isinstance(arg, int) or isinstance(arg, bool) or not 1 <= arg <= 3650:
            c.bad("trigger.inactive_days", "inactive_days must be a whole number 1..3650")
        out["value"] = arg
    elif kind == "schedule":
        fields = str(arg).split()
        if len(fields) != 5 or not all(_CRON_FIELD.match(f) for f in fields):
            c.bad("trigger.schedule", f"{arg!r} is not a cron expression "
                  "(minute hour day month weekday)")
        out["value"] = str(arg)
    elif kind == "date":
        if not isinstance(arg, str) or not arg:
            c.bad("trigger.date", "date names a date field (birthday or a date attribute)")
        offset = value.get("offset_days", 0)
        if not isinstance(offset, int) or isinstance(offset, bool) or abs(offset) > 366:
            c.bad("trigger.offset_days", "offset_days must be a whole number -366..366")
            offset = 0
        out["value"], out["offset_days"] = arg, offset
    else:
        if not isinstance(arg, str) or not arg.strip() or len(arg) > 100:
            c.bad(f"trigger.{kind}", f"{kind} must be a name of 1 to 100 characters")
        out["value"] = str(arg).strip()
    return out


def _send(c: _Checker, where: str, body: dict[str, Any]) -> dict[str, Any]:
    c.keys(where, body, {"channel", "purpose", "subject", "template", "context", "fallback"},
           {"channel", "template"})
    channel = body.get("channel")
    if channel is not None and channel not in CHANNELS:
        c.bad(f"{where}.channel", f"unknown channel {channel!r} (known: {', '.join(CHANNELS)})")
    elif c.group and channel is not None and channel != GROUP_CHANNEL:
        c.bad(f"{where}.channel", f"a group playbook sends on {GROUP_CHANNEL} (a WeCom "
              f"group mass send), not {channel!r}")
    elif not c.group and channel == GROUP_CHANNEL:
        c.bad(f"{where}.channel", f"{GROUP_CHANNEL} sends to customer groups: the playbook's "
              "audience must be {group: NAME}")
    purpose = body.get("purpose", "marketing")
    if purpose not in PURPOSES:
        c.bad(f"{where}.purpose", f"purpose must be one of {', '.join(PURPOSES)}")
    if "template" in body:
        c.template(f"{where}.template", body["template"])
    if "subject" in body:
        c.template(f"{where}.subject", body["subject"])
    elif channel == "email":
        c.bad(f"{where}.subject", "an e-mail needs a subject")
    context = body.get("context")
    if context is not None and context not in ("weather",):
        c.bad(f"{where}.context", "context must be 'weather' (the configured HTTP provider)")
    fallback = body.get("fallback")
    if fallback is not None and (channel != "wecom_welcome" or fallback != "wecom"):
        c.bad(f"{where}.fallback", "fallback: wecom is for channel wecom_welcome only (an app "
              "message when the welcome code is missing or expired)")
    out = {"channel": channel, "purpose": purpose, "subject": body.get("subject"),
           "template": body.get("template"), "context": context}
    if fallback is not None:
        out["fallback"] = fallback
    return out


def _steps(c: _Checker, where: str, value: Any, depth: int = 0) -> list[dict[str, Any]]:
    if not isinstance(value, list) or (depth == 0 and not value):
        c.bad(where, "steps must be a non-empty list" if depth == 0 else "must be a list")
        return []
    out: list[dict[str, Any]] = []
    for i, raw in enumerate(value):
        here = f"{where}[{i}]"
        if not isinstance(raw, dict) or len(raw) != 1:
            c.bad(here, f"each step is a mapping with one of: {', '.join(STEP_KINDS)}")
            continue
        kind, body = next(iter(raw.items()))
        if kind not in STEP_KINDS:
            c.bad(here, f"unknown step {kind!r} (known: {', '.join(STEP_KINDS)})")
            continue
        if c.group and kind != "send":
            c.bad(f"{here}.{kind}", "a group playbook's steps are send steps (each one group "
                  f"mass send on {GROUP_CHANNEL}), not {kind}")
            continue
        here = f"{here}.{kind}"
        step = _step(c, here, kind, body, depth)
        if step is not None:
            out.append(step)
    return out


def _step(c: _Checker, here: str, kind: str, body: Any, depth: int) -> dict[str, Any] | None:
    if kind == "wait":
        if isinstance(body, dict):
            c.keys(here, body, {"until"}, {"until"})
            until = body.get("until")
            if not isinstance(until, str) or not _CLOCK.match(until):
                c.bad(f"{here}.until", "until is a local time HH:MM")
            return {"kind": "wait", "until": until}
        seconds = c.duration(here, body)
        return {"kind": "wait", "seconds": seconds}
    if not isinstance(body, dict):
        c.bad(here, f"{kind} takes a mapping")
        return None
    if kind == "send":
        return {"kind": "send", **_send(c, here, body)}
    if kind == "branch":
        c.keys(here, body, {"if", "then", "else"}, {"if", "then"})
        rule = c.rule(f"{here}.if", body.get("if"))
        arms: dict[str, Any] = {}
        for arm in ("then", "else"):
            if arm not in body:
                continue
            v = body[arm]
            if v in ("exit", "continue"):
                arms[arm] = v
            elif depth >= 3:
                c.bad(f"{here}.{arm}", "branches nest at most three deep")
            else:
                arms[arm] = _steps(c, f"{here}.{arm}", v, depth + 1)
        return {"kind": "branch", "if": rule, **arms}
    if kind == "task":
        c.keys(here, body, {"kind", "assignee", "due", "note"}, {"kind"})
        if body.get("kind") not in TASK_KINDS:
            c.bad(f"{here}.kind", f"task kind must be one of {', '.join(TASK_KINDS)}")
        assignee = body.get("assignee", "advisor")
        if not isinstance(assignee, str) or not assignee:
            c.bad(f"{here}.assignee", "assignee is 'advisor' or a skill group name")
        due = c.duration(f"{here}.due", body.get("due", "1d"))
        note = body.get("note", "")
        if note:
            c.template(f"{here}.note", note)
        return {"kind": "task", "task_kind": body.get("kind"), "assignee": assignee,
                "due_seconds": due, "note": note}
    if kind == "wait_for":
        c.keys(here, body, {"event", "reply", "within", "else"})
        if "within" not in body:
            c.bad(f"{here}.within", "wait_for needs a bound: within (e.g. 3d)")
            within = None
        else:
            within = c.duration(f"{here}.within", body["within"])
        event, reply = body.get("event"), body.get("reply")
        if (event is None) == (reply is None):
            c.bad(here, "wait_for waits for exactly one of: event, reply")
        if event is not None and (not isinstance(event, str) or not event):
            c.bad(f"{here}.event", "event names an event type")
        if reply is not None and (reply not in CHANNELS or reply == GROUP_CHANNEL):
            c.bad(f"{here}.reply", f"reply names a channel ({', '.join(CHANNELS)})")
        otherwise = body.get("else", "exit")
        if otherwise not in ("exit", "continue"):
            c.bad(f"{here}.else", "else is exit or continue")
        return {"kind": "wait_for", "event": event, "reply": reply, "within_seconds": within,
                "else": otherwise}
    if kind == "tag":
        c.keys(here, body, {"add", "remove"})
        if not body:
            c.bad(here, "tag needs add or remove")
        for k in ("add", "remove"):
            v = body.get(k)
            if v is not None and (not isinstance(v, str) or not 1 <= len(v) <= 60):
                c.bad(f"{here}.{k}", "a tag name is 1 to 60 characters")
        return {"kind": "tag", "add": body.get("add"), "remove": body.get("remove")}
    if kind == "points":
        c.keys(here, body, {"award", "reason"}, {"award"})
        award = body.get("award")
        if not isinstance(award, int) or isinstance(award, bool) or not 0 < award <= 100_000:
            c.bad(f"{here}.award", "award is a whole number 1..100000")
        return {"kind": "points", "award": award, "reason": str(body.get("reason") or "")}
    # webhook
    from siyu.channels.webhook import host_allowed

    c.keys(here, body, {"url", "body"}, {"url"})
    url = body.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        c.bad(f"{here}.url", "url must be an http(s) URL")
    elif c.webhook_hosts is not None and not host_allowed(url, c.webhook_hosts):
        c.bad(f"{here}.url", "the host is not on SIYU_WEBHOOK_ALLOW_HOSTS")
    payload = body.get("body", {})
    if not isinstance(payload, dict):
        c.bad(f"{here}.body", "body is a mapping")
    return {"kind": "webhook", "url": url, "body": payload}


def _goal(c: _Checker, value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        c.bad("goal", "goal is a mapping such as {order_status: paid, within: 14d}")
        return None
    c.keys("goal", value, {"order_status", "event", "within"}, {"within"})
    kinds = [k for k in ("order_status", "event") if k in value]
    if len(kinds) != 1:
        c.bad("goal", "goal needs exactly one of: order_status, event")
        return None
    within = c.duration("goal.within", value.get("within")) if "within" in value else None
    return {"kind": kinds[0], "value": str(value[kinds[0]]), "within_seconds": within}


def _group_audience(c: _Checker, value: dict[str, Any], data: dict[str, Any]
                    ) -> dict[str, Any] | None:
    """``{group: NAME}`` or ``{group: [NAMES]}``: the WeCom customer groups (by name) a
    group playbook sends to; on a schedule, without a goal or a holdout (a group has no
    conversion to measure per person)."""
    c.keys("audience", value, {"group"}, {"group"})
    raw = value.get("group")
    names = [raw] if isinstance(raw, str) else raw
    if not isinstance(names, list) or not names or not all(
            isinstance(n, str) and 1 <= len(n.strip()) <= 100 for n in names):
        c.bad("audience.group", "group is a customer group's name (1 to 100 characters) or "
              "a list of them")
        names = []
    trigger = data.get("trigger")
    if isinstance(trigger, dict) and trigger and "schedule" not in trigger:
        c.bad("trigger", "a group playbook runs on a schedule (e.g. {schedule: '0 8 * * *'})")
    for key in ("goal", "holdout"):
        if data.get(key):
            c.bad(key, f"a group playbook has no {key} (it sends to groups, not customers)")
    return {"group": [n.strip() for n in names]}


def load_text(text: str, file: str) -> dict[str, Any]:
    """YAML or JSON text -> a mapping, or :class:`InvalidPlaybook` naming the line."""
    import yaml

    try:
        data = json.loads(text) if file.endswith(".json") else yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise InvalidPlaybook(file, [{"step": f"line {exc.lineno}", "reason":
                                      f"not valid JSON: {exc.msg}"}]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else ""
        reason = getattr(exc, "problem", None) or str(exc)
        raise InvalidPlaybook(file, [{"step": where, "reason": f"not valid YAML: {reason}"}]
                              ) from None
    if not isinstance(data, dict):
        raise InvalidPlaybook(file, [{"step": "", "reason": "a playbook file is a mapping"}])
    return data


def validate(data: dict[str, Any], file: str = "<playbook>", *,
             webhook_hosts: list[str] | None = None) -> Spec:
    """A :class:`Spec`, or :class:`InvalidPlaybook` listing every problem."""
    c = _Checker(webhook_hosts)
    c.keys("", data, {"name", "status", "priority", "trigger", "audience", "reentry",
                      "holdout", "goal", "steps", "description"}, {"name", "trigger", "steps"})
    name = data.get("name")
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= 100:
        c.bad("name", "name is 1 to 100 characters")
        name = ""
    status = data.get("status", "draft")
    if status not in STATUSES:
        c.bad("status", f"status must be one of {', '.join(STATUSES)}")
    priority = data.get("priority", 50)
    if not isinstance(priority, int) or isinstance(priority, bool) or not 0 <= priority <= 1000:
        c.bad("priority", "priority is a whole number 0..1000")
        priority = 50
    audience = data.get("audience")
    if isinstance(audience, dict):
        c.group = True
        audience = _group_audience(c, audience, data)
    elif audience is not None:
        audience = c.rule("audience", audience)
    trigger = _trigger(c, data.get("trigger"))
    reentry_raw = data.get("reentry", "once")
    reentry: str | int = "once"
    if reentry_raw in ("once", "every_trigger"):
        reentry = reentry_raw
    elif isinstance(reentry_raw, dict) and set(reentry_raw) == {"after_days"} and isinstance(
            reentry_raw["after_days"], int) and 1 <= reentry_raw["after_days"] <= 3650:
        reentry = int(reentry_raw["after_days"])
    else:
        c.bad("reentry", "reentry is once, every_trigger or {after_days: N}")
    holdout = data.get("holdout", 0)
    if isinstance(holdout, bool) or not isinstance(holdout, int | float) or not (
            0 <= holdout <= 0.5):
        c.bad("holdout", "holdout is a share from 0 to 0.5")
        holdout = 0
    goal = _goal(c, data.get("goal"))
    steps = _steps(c, "steps", data.get("steps"))
    if c.problems:
        raise InvalidPlaybook(file, c.problems)
    return Spec(name=str(name).strip(), status=str(status), priority=int(priority),
                trigger=trigger, audience=audience, reentry=reentry, holdout=float(holdout),
                goal=goal, steps=steps, data=data)


def flatten(steps: list[dict[str, Any]], prefix: str = "") -> list[tuple[str, dict[str, Any]]]:
    """Every step with its path (``0``, ``2.then.0``), depth first: the path is a step's
    stable address in a version (the outbox key and the counters use it)."""
    out: list[tuple[str, dict[str, Any]]] = []
    for i, step in enumerate(steps):
        path = f"{prefix}{i}"
        out.append((path, step))
        if step["kind"] == "branch":
            for arm in ("then", "else"):
                if isinstance(step.get(arm), list):
                    out.extend(flatten(step[arm], f"{path}.{arm}."))
    return out
