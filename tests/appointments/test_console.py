"""The 预约日历 console page: an advisor's week with their bookings (phones masked for an
agent, shown to an admin), publishing slots, booking for a customer, confirm / attended /
no-show, and an agent kept to their own calendar."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from siyu.appointments import service
from siyu.appointments.models import Appointment, Slot
from tests.appointments.helpers import advisor, customer, hour, nutrition, slots
from tests.console.conftest import Login, csrf_from

ZONE = ZoneInfo("Asia/Shanghai")


def _week(at: dt.datetime) -> str:
    return service.week_start(at.astimezone(ZONE).date()).isoformat()


def test_the_advisor_sees_their_week_and_manages_it(login: Login,
                                                     sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        adv = advisor(s)
        other = advisor(s, "advisor02", "王磊")
        stype = nutrition(s)
        booked, free = slots(s, adv, stype, 30, 31)
        [foreign] = slots(s, other, stype, 30)
        lin = customer(s, "林晓雯", phone="+8613800138000")
        wang = customer(s, "王芳", phone="+8613900139000")
        service.book(s, booked, lin, channel="webchat")
        service.book(s, foreign, wang, channel="console")
        s.commit()
    client = login("advisor01")
    page = client.get("/appointments", params={"week": _week(hour(30)),
                                               "advisor": other})  # an agent: own only
    assert page.status_code == 200
    html = page.text
    assert "陈静 · " in html and "林晓雯" in html and "138****8000" in html
    assert "王芳" not in html and "13800138000" not in html
    assert f'data-slot="{free}"' in html and "可预约" in html
    assert 'data-status="booked"' in html and "网页聊天预约" in html
    assert "style=" not in html.replace("<style nonce=", "")

    token = csrf_from(html)
    appt_id = int(re.search(r'data-appointment="(\d+)"', html).group(1))  # type: ignore[union-attr]
    done = client.post(f"/appointments/{appt_id}/status", data={
        "csrf_token": token, "status": "confirmed", "week": _week(hour(30))},
        follow_redirects=False)
    assert done.status_code == 303
    with sessions() as s:
        assert s.get(Appointment, appt_id).status == "confirmed"  # type: ignore[union-attr]
        foreign_appt = s.scalars(select(Appointment).where(
            Appointment.slot_id == foreign)).one()
    refused = client.post(f"/appointments/{foreign_appt.id}/status", data={
        "csrf_token": token, "status": "cancelled"}, follow_redirects=True)
    assert "只能处理自己的预约" in refused.text

    # book the free slot for 王芳 by phone: confirmed at once
    client.post("/appointments/book", data={"csrf_token": token, "slot_id": str(free),
                                            "customer": "13900139000"})
    again = client.post("/appointments/book", data={"csrf_token": token, "slot_id": str(free),
                                                    "customer": str(lin)},
                        follow_redirects=True)
    assert "未完成：该时段已被其他客户预约，请选择其他时间" in again.text
    with sessions() as s:
        held = s.scalars(select(Appointment).where(Appointment.slot_id == free)).one()
        assert (held.customer_id, held.status, held.channel) == (wang, "confirmed", "console")

    # publish four slots on a day next week
    day = (hour(24 * 8).astimezone(ZONE)).date()
    client.post("/appointments/slots", data={
        "csrf_token": token, "service_type_id": str(stype), "day": day.isoformat(),
        "start": "14:00", "count": "4", "every": "30", "location": "静安店"})
    with sessions() as s:
        starts = sorted(s.scalars(select(Slot.starts_at).where(
            Slot.advisor_id == adv, Slot.location == "静安店")))
    assert [t.astimezone(ZONE).strftime("%H:%M") for t in starts] == ["14:00", "14:30",
                                                                       "15:00", "15:30"]


def test_an_admin_picks_the_advisor_sees_phones_and_records_attendance(
        login: Login, sessions: sessionmaker[Session], make_user: object) -> None:
    with sessions() as s:
        adv = advisor(s)
        advisor(s, "boss", "管理员", role="admin")
        [slot] = slots(s, adv, nutrition(s), 2)
        lin = customer(s, "林晓雯", phone="+8613800138000")
        appt = service.book(s, slot, lin, channel="webchat")
        s.commit()
    client: TestClient = login("boss")
    with sessions() as s:  # the appointment began: move it into the past
        row = s.get(Appointment, appt.id)
        assert row is not None
        row.starts_at = hour(-1)
        s.get(Slot, slot).starts_at = hour(-1)  # type: ignore[union-attr]
        s.commit()
    html = client.get("/appointments", params={"advisor": adv,
                                               "week": _week(hour(-1))}).text
    assert "13800138000" in html and "陈静 · " in html and "到店" in html
    client.post(f"/appointments/{appt.id}/status", data={
        "csrf_token": csrf_from(html), "status": "no_show", "advisor": str(adv)})
    with sessions() as s:
        assert s.get(Appointment, appt.id).status == "no_show"  # type: ignore[union-attr]


def test_an_analyst_may_not_open_the_calendar(login: Login, make_user: object,
                                              sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        advisor(s, "reader", "分析师", role="analyst")
        s.commit()
    client = login("reader")
    assert client.get("/appointments").status_code == 403
