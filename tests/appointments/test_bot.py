"""The web chat's booking dialogue through the real bot pass (``service.bot.handle_inbound``):
「预约营养咨询」 offers the free slots of the customer's own advisor, 「2」 books the second
and answers with the calendar link (which downloads without a login), 「改约」 and
「取消预约」 move and cancel it; a slot taken in between is said so and offered again."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from siyu.appointments import bot as dialogue
from siyu.appointments import service
from siyu.appointments.models import Appointment
from siyu.customers.identity import IdentityRef
from siyu.customers.models import Customer
from siyu.service import bot
from siyu.service import service as desk
from siyu.service.models import BotDecision, Message
from tests.appointments.helpers import advisor, customer, hour, slots

PHONE = IdentityRef("phone", "+8613800138000")


class Chat:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions
        self.n = 0

    def say(self, text: str) -> str:
        """Send ``text`` as the customer; the bot's reply."""
        self.n += 1
        with self.sessions() as s:
            got = desk.receive_inbound(s, channel="webchat", identities=[PHONE], text=text,
                                       external_id=f"m{self.n}")
            s.commit()
        with self.sessions() as s:
            bot.handle_inbound(s, got.message_id)
            s.commit()
            replies = list(s.scalars(select(Message.text).where(
                Message.conversation_id == got.conversation_id, Message.direction == "out",
                Message.id > got.message_id).order_by(Message.id)))
        return "\n".join(r or "" for r in replies)


def _brand(sessions: sessionmaker[Session]) -> tuple[int, list[int], list[int]]:
    """陈静 (the customer's advisor) with three 营养咨询 slots, 王磊 with one; a 新品试用 type."""
    with sessions() as s:
        own, other = advisor(s), advisor(s, "advisor02", "王磊")
        nutrition = service.save_service_type(s, "营养咨询", 15).id
        service.save_service_type(s, "新品试用", 20)
        mine = slots(s, own, nutrition, 26, 28, 50)
        theirs = slots(s, other, nutrition, 27)
        cid = customer(s, "林晓雯", phone=PHONE.value, advisor_id=own)
        s.commit()
    return cid, mine, theirs


def test_book_from_the_chat_then_reschedule_and_cancel(
        environment_settings: None, sessions: sessionmaker[Session],
        app_client: TestClient) -> None:
    cid, mine, _ = _brand(sessions)
    chat = Chat(sessions)
    offer = chat.say("我想预约营养咨询")
    labels = [service.local_label(hour(h), "Asia/Shanghai") for h in (26, 28, 50)]
    assert offer.splitlines() == [
        "为您找到以下可预约的「营养咨询（15 分钟）」时段：",
        f"1. {labels[0]} · 顾问陈静 · 静安嘉里中心店",
        f"2. {labels[1]} · 顾问陈静 · 静安嘉里中心店",
        f"3. {labels[2]} · 顾问陈静 · 静安嘉里中心店",
        "请回复序号选择时段～"]  # her own advisor's, not 王磊's
    confirmation = chat.say("2")
    with sessions() as s:
        appt = s.scalars(select(Appointment)).one()
        assert (appt.customer_id, appt.slot_id, appt.channel) == (cid, mine[1], "webchat")
        decision = s.scalars(select(BotDecision).order_by(BotDecision.id.desc())).first()
        assert decision is not None and decision.action == "book_appointment"
    assert confirmation.startswith(
        f"已为您预约「营养咨询」：{labels[1]}，顾问陈静，地点静安嘉里中心店。")
    link = re.search(r"添加到日历：(\S+)", confirmation)
    assert link is not None
    ics = TestClient(app_client.app).get(link.group(1))  # no login
    assert ics.status_code == 200 and "SUMMARY:营养咨询" in ics.text

    offer = chat.say("能帮我改个时间吗，我要改约")
    assert offer.startswith(f"您当前的预约是 {labels[1]} 的「营养咨询」。为您找到以下可改约的")
    assert f"1. {labels[0]}" in offer and f"2. {labels[2]}" in offer
    moved = chat.say("第二个")
    assert moved.startswith(f"已为您改约「营养咨询」：{labels[2]}")
    with sessions() as s:
        assert s.scalars(select(Appointment.slot_id)).one() == mine[2]

    cancelled = chat.say("取消预约")
    assert cancelled.startswith(f"已为您取消 {labels[2]} 的「营养咨询」预约。")
    with sessions() as s:
        assert s.scalars(select(Appointment.status)).one() == "cancelled"
    assert chat.say("取消预约") == dialogue.NO_UPCOMING
    # a number with no offer pending books nothing
    chat.say("1")
    with sessions() as s:
        assert len(list(s.scalars(select(Appointment)))) == 1


def test_a_slot_taken_meanwhile_is_said_and_offered_again(sessions: sessionmaker[Session]
                                                          ) -> None:
    _, mine, _ = _brand(sessions)
    chat = Chat(sessions)
    chat.say("预约营养")
    with sessions() as s:  # someone else books the first slot in the meantime
        other = customer(s, "王芳")
        service.book(s, mine[0], other, channel="console")
        s.commit()
    again = chat.say("1")
    assert again.startswith("抱歉，这个时段刚刚被约走了。为您找到以下可预约的")
    assert service.local_label(hour(26), "Asia/Shanghai") not in again
    with sessions() as s:
        assert [a.customer_id for a in s.scalars(select(Appointment))] == [other]


def test_without_a_named_service_the_customer_picks_one_and_a_full_advisor_yields_others(
        sessions: sessionmaker[Session]) -> None:
    cid, mine, theirs = _brand(sessions)
    with sessions() as s:  # 陈静 is fully booked
        for n, slot in enumerate(mine):
            service.book(s, slot, customer(s, f"客户{n}"), channel="console")
        s.commit()
    chat = Chat(sessions)
    ask = chat.say("我想预约")
    assert ask.splitlines() == ["请问您想预约哪项服务？", "1. 营养咨询（15 分钟）",
                                "2. 新品试用（20 分钟）", "请回复序号～"]
    offer = chat.say("1")
    label = service.local_label(hour(27), "Asia/Shanghai")
    assert offer.splitlines()[:2] == [
        "您的专属顾问近期已约满，为您找到以下可预约的「营养咨询（15 分钟）」时段：",
        f"1. {label} · 顾问王磊 · 静安嘉里中心店"]
    assert chat.say("1").startswith(f"已为您预约「营养咨询」：{label}，顾问王磊")
    with sessions() as s:
        assert s.get(Customer, cid) is not None
        mine_now = s.scalars(select(Appointment).where(Appointment.customer_id == cid)).one()
        assert mine_now.slot_id == theirs[0]


def test_what_the_dialogue_recognises() -> None:
    assert dialogue.recognise("我想预约营养咨询") == "book"
    assert dialogue.recognise("帮我约一下体检报告解读") == "book"
    assert dialogue.recognise("预约改到下周") == "reschedule"
    assert dialogue.recognise("我要取消预约") == "cancel"
    assert dialogue.recognise("我的订单到哪了") is None
    assert [dialogue.picked(t, 3) for t in ("2", "第二个", "选3", "3号", "4", "二十", "好的")] \
        == [1, 1, 2, 2, None, None, None]
