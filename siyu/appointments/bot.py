"""The web chat's booking dialogue, run by the bot (:mod:`siyu.service.bot`) before intent
recognition: 「预约营养咨询」 offers the free slots of the customer's own advisor (or, when
they have none free, of the other advisors), a reply with the number books it and answers
with the confirmation and a signed calendar link; 「改约」 and 「取消预约」 likewise.

The dialogue's state is the ``appointment`` step the bot stores with its decision
(``{"mode": "book" | "reschedule" | "cancel" | "service", "offer": [ids], ...}``): the next
message is read against the last decision's offer only, so a number typed later, or in
another conversation, books nothing.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from siyu.appointments import service
from siyu.appointments.errors import SlotTaken, SlotUnavailable
from siyu.appointments.models import Appointment, ServiceType

OFFER_SIZE = 5
# Slots closer than this are not offered (the advisor needs a moment to see the booking).
LEAD_TIME = dt.timedelta(hours=1)
CANCEL_RE = re.compile(r"取消.{0,8}(预约|预定|约)|(预约|约).{0,4}(取消|不去了|去不了)|退约")
RESCHEDULE_RE = re.compile(r"改约|改期|改时间|改一下时间|换个时间|换一个时间|换时间|调整.{0,4}时间|"
                           r"重新约|推迟.{0,4}预约|预约.{0,6}(改|换|推迟|提前)")
BOOK_RE = re.compile(r"预约|约个|想约|约一下|约一个|帮我约|预定.{0,6}(咨询|服务|试用|解读)")
# The bot decision's action per dialogue (bot_decisions.action: at most 20 characters).
_ACTIONS = {"book": "book_appointment", "reschedule": "move_appointment",
            "cancel": "cancel_appointment"}
_NUMERALS = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8,
             "九": 9, "十": 10}
_PICK_RE = re.compile(r"^\s*(?:第|选|选择)?\s*([0-9]{1,2}|[一二两三四五六七八九十])\s*"
                      r"(?:个|号|个时段|项)?\s*[。.!！~～]?\s*$")


@dataclass
class Turn:
    """What the bot says and stores for one message of the dialogue."""

    action: str
    reason: str
    replies: list[str] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)


def recognise(text: str) -> str | None:
    """``cancel``, ``reschedule`` or ``book`` when the message asks for it, else None."""
    if CANCEL_RE.search(text):
        return "cancel"
    if RESCHEDULE_RE.search(text):
        return "reschedule"
    if BOOK_RE.search(text):
        return "book"
    return None


def picked(text: str, size: int) -> int | None:
    """The 0-based option a reply like 「2」「第二个」「选3」 picks among ``size``, else None."""
    m = _PICK_RE.match(text)
    if m is None:
        return None
    raw = m.group(1)
    number = int(raw) if raw.isdigit() else _NUMERALS[raw]
    return number - 1 if 1 <= number <= size else None


def calendar_link(session: Session, appointment_id: int) -> str:
    """The customer's signed link to the appointment's calendar file (absolute when the
    install's public address is configured, else relative to the chat's own origin)."""
    from siyu.auth import secrets
    from siyu.channels.config import get_channel_settings
    from siyu.config import get_settings

    key = secrets.purpose_key(get_settings(), "appointment-ics",
                              engine=session.get_bind())  # type: ignore[arg-type]
    base = get_channel_settings().public_url.rstrip("/")
    return base + service.ics_path(key.hex(), appointment_id)


def _service_named(types: list[ServiceType], text: str) -> ServiceType | None:
    """The service type the message names: its whole name, else its name without a
    trailing 咨询/服务/解读/试用 (「营养」 → 营养咨询), longest first."""
    for t in sorted(types, key=lambda t: -len(t.name)):
        if t.name in text:
            return t
    for t in sorted(types, key=lambda t: -len(t.name)):
        core = re.sub(r"(咨询|服务|解读|试用|检测)$", "", t.name)
        if len(core) >= 2 and core in text:
            return t
    return None


def _offer(session: Session, customer_id: int, stype: ServiceType, *, now: dt.datetime,
           timezone: str, mode: str, appointment: Appointment | None = None,
           lead: str = "") -> Turn:
    from siyu.customers.models import Customer

    customer = session.get(Customer, customer_id)
    own = appointment.advisor_id if appointment is not None else (
        customer.advisor_id if customer is not None else None)
    start = now + LEAD_TIME
    found = service.slots(session, advisor_ids=[own], service_type_id=stype.id, start=start,
                          free_only=True, limit=OFFER_SIZE, timezone=timezone) if own else []
    others = ""
    if not found:
        found = service.slots(session, service_type_id=stype.id, start=start, free_only=True,
                              limit=OFFER_SIZE, timezone=timezone)
        if own and found:
            others = "您的专属顾问近期已约满，"
    title = f"「{stype.name}（{stype.minutes} 分钟）」"
    if not found:
        return Turn(_ACTIONS[mode], f"{stype.name}：近期没有可预约的时段",
                    [f"{lead}抱歉，{title}近期没有可预约的时段，已为您记录需求，顾问会尽快与您联系～"],
                    {"mode": "none", "service_type_id": stype.id})
    lines = [f"{lead}{others}为您找到以下可{'改约' if mode == 'reschedule' else '预约'}"
             f"的{title}时段："]
    for n, s in enumerate(found, start=1):
        place = f" · {s.location}" if s.location else ""
        lines.append(f"{n}. {s.label} · 顾问{s.advisor}{place}")
    lines.append("请回复序号选择时段～")
    state: dict[str, Any] = {"mode": mode, "offer": [s.id for s in found],
                             "service_type_id": stype.id}
    if appointment is not None:
        state["appointment_id"] = appointment.id
    return Turn(_ACTIONS[mode], f"提供 {len(found)} 个{stype.name}时段", ["\n".join(lines)],
                state)


def _describe(session: Session, appt: Appointment, timezone: str) -> dict[str, Any]:
    return service.describe(session, [appt], show_pii=False, timezone=timezone)[0]


def _confirmation(session: Session, appt: Appointment, timezone: str, verb: str) -> str:
    view = _describe(session, appt, timezone)
    place = f"，地点{view['location']}" if view["location"] else ""
    return (f"{verb}「{view['service']}」：{view['label']}，顾问{view['advisor']}{place}。\n"
            f"添加到日历：{calendar_link(session, appt.id)}\n"
            "如需改期请回复「改约」，取消请回复「取消预约」。")


def _choose_service(types: list[ServiceType]) -> Turn:
    lines = ["请问您想预约哪项服务？"]
    lines += [f"{n}. {t.name}（{t.minutes} 分钟）" for n, t in enumerate(types, start=1)]
    lines.append("请回复序号～")
    return Turn("book_appointment", "请客户选择服务", ["\n".join(lines)],
                {"mode": "service", "offer": [t.id for t in types]})


def _book(session: Session, customer_id: int, text: str, *, now: dt.datetime,
          timezone: str) -> Turn:
    types = service.service_types(session)
    if not types:
        return Turn("book_appointment", "尚未设置可预约的服务",
                    ["抱歉，目前暂未开放线上预约，已为您记录需求，顾问会尽快与您联系～"])
    stype = _service_named(types, text) or (types[0] if len(types) == 1 else None)
    if stype is None:
        return _choose_service(types)
    return _offer(session, customer_id, stype, now=now, timezone=timezone, mode="book")


def _cancel_list(session: Session, upcoming: list[Appointment], timezone: str) -> Turn:
    lines = ["您有以下待进行的预约，请回复序号选择要取消的一项："]
    for n, a in enumerate(upcoming[:OFFER_SIZE], start=1):
        view = _describe(session, a, timezone)
        lines.append(f"{n}. {view['label']} {view['service']}（顾问{view['advisor']}）")
    return Turn("cancel_appointment", "请客户选择要取消的预约", ["\n".join(lines)],
                {"mode": "cancel", "offer": [a.id for a in upcoming[:OFFER_SIZE]]})


def _do_cancel(session: Session, appt: Appointment, *, now: dt.datetime, timezone: str
               ) -> Turn:
    view = _describe(session, appt, timezone)
    service.set_status(session, appt.id, "cancelled", reason="客户在网页聊天取消", now=now,
                       timezone=timezone)
    return Turn("cancel_appointment", f"取消预约 #{appt.id}",
                [f"已为您取消 {view['label']} 的「{view['service']}」预约。"
                 "如需重新预约，回复「预约」即可～"], {"mode": "done", "appointment_id": appt.id})


NO_UPCOMING = "您目前没有待进行的预约。如需预约，回复「预约」加服务名称即可，例如「预约营养咨询」～"


def _pick(session: Session, customer_id: int, pending: dict[str, Any], index: int, *,
          now: dt.datetime, timezone: str) -> Turn | None:
    mode, chosen = pending.get("mode"), int(pending["offer"][index])
    if mode == "service":
        stype = session.get(ServiceType, chosen)
        if stype is None:
            return None
        return _offer(session, customer_id, stype, now=now, timezone=timezone, mode="book")
    if mode == "cancel":
        appt = session.get(Appointment, chosen)
        if appt is None or appt.customer_id != customer_id or appt.status not in (
                "booked", "confirmed"):
            return Turn("cancel_appointment", "预约已不可取消", [NO_UPCOMING])
        return _do_cancel(session, appt, now=now, timezone=timezone)
    stype = session.get(ServiceType, int(pending.get("service_type_id") or 0))
    try:
        if mode == "reschedule":
            appt = session.get(Appointment, int(pending.get("appointment_id") or 0))
            if appt is None or appt.customer_id != customer_id:
                return None
            service.reschedule(session, appt.id, chosen, now=now, timezone=timezone)
            return Turn("move_appointment", f"预约 #{appt.id} 改到时段 #{chosen}",
                        [_confirmation(session, appt, timezone, "已为您改约")],
                        {"mode": "done", "appointment_id": appt.id, "slot_id": chosen})
        if mode == "book":
            appt = service.book(session, chosen, customer_id, channel="webchat", now=now,
                                timezone=timezone)
            return Turn("book_appointment", f"预约时段 #{chosen}（预约 #{appt.id}）",
                        [_confirmation(session, appt, timezone, "已为您预约")],
                        {"mode": "done", "appointment_id": appt.id, "slot_id": chosen})
    except (SlotTaken, SlotUnavailable):
        if stype is None:
            raise
        current = (session.get(Appointment, int(pending.get("appointment_id") or 0))
                   if mode == "reschedule" else None)
        return _offer(session, customer_id, stype, now=now, timezone=timezone,
                      mode=str(mode), appointment=current,
                      lead="抱歉，这个时段刚刚被约走了。")
    return None


def turn(session: Session, customer_id: int, text: str, *, pending: dict[str, Any] | None,
         now: dt.datetime, timezone: str) -> Turn | None:
    """One message of the dialogue, or None when the message is not about appointments
    (the bot goes on as usual). ``pending``: the state stored with the bot's last decision
    in this conversation."""
    text = (text or "").strip()
    if pending and pending.get("offer"):
        index = picked(text, len(pending["offer"]))
        if index is not None:
            return _pick(session, customer_id, pending, index, now=now, timezone=timezone)
    kind = recognise(text)
    if kind is None:
        return None
    if kind == "book":
        return _book(session, customer_id, text, now=now, timezone=timezone)
    upcoming = service.upcoming_for_customer(session, customer_id, now=now)
    if not upcoming:
        return Turn(_ACTIONS[kind], "客户没有待进行的预约", [NO_UPCOMING])
    if kind == "cancel":
        if len(upcoming) > 1:
            return _cancel_list(session, upcoming, timezone)
        return _do_cancel(session, upcoming[0], now=now, timezone=timezone)
    appt = upcoming[0]
    stype = session.get(ServiceType, appt.service_type_id)
    if stype is None:
        return None
    view = _describe(session, appt, timezone)
    return _offer(session, customer_id, stype, now=now, timezone=timezone, mode="reschedule",
                  appointment=appt, lead=f"您当前的预约是 {view['label']} 的「{stype.name}」。")
