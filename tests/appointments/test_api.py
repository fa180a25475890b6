"""The REST routes: publish, book (201, then 409 with the Chinese message), reschedule,
status changes, role checks, and the customer's calendar file by its signed link."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from siyu.appointments.models import Appointment
from siyu.auth.service import create_api_key
from tests.appointments.helpers import advisor, customer, hour


def _setup(sessions: sessionmaker[Session]) -> tuple[int, int, int]:
    with sessions() as s:
        adv = advisor(s)
        a, b = customer(s, "林晓雯", phone="+8613800138000"), customer(s, "王芳")
        s.commit()
    return adv, a, b


def test_publish_book_conflict_reschedule_and_status(client: TestClient,
                                                    sessions: sessionmaker[Session]) -> None:
    adv, lin, wang = _setup(sessions)
    stype = client.post("/api/v1/appointments/service-types",
                        json={"name": "体检报告解读", "minutes": 30}).json()
    published = client.post("/api/v1/appointments/slots", json={
        "advisor_id": adv, "service_type_id": stype["id"], "location": "线上视频",
        "starts": [hour(30).isoformat(), hour(31).isoformat(), hour(30).isoformat()]})
    assert published.status_code == 201
    assert published.json()["created"] == 2 and published.json()["skipped"] == 1
    first, second = published.json()["ids"]
    free = client.get("/api/v1/appointments/slots", params={"free": "true"}).json()["items"]
    assert [s["id"] for s in free] == [first, second]
    assert free[0]["service"] == "体检报告解读" and free[0]["advisor"] == "陈静"

    booked = client.post("/api/v1/appointments", json={"slot_id": first, "customer_id": lin})
    assert booked.status_code == 201, booked.text
    body = booked.json()
    assert (body["status"], body["customer"], body["customer_phone"]) == (
        "booked", "林晓雯", "13800138000")  # a full-access key sees the phone
    assert body["ics_url"].startswith(f"/appointments/{body['id']}.ics?sig=")

    again = client.post("/api/v1/appointments", json={"slot_id": first, "customer_id": wang})
    assert again.status_code == 409
    assert again.json()["error"] == "slot_taken"
    assert again.json()["message"] == "该时段已被其他客户预约，请选择其他时间"

    moved = client.post(f"/api/v1/appointments/{body['id']}/reschedule",
                        json={"slot_id": second})
    assert moved.status_code == 200 and moved.json()["slot_id"] == second
    assert client.post("/api/v1/appointments", json={
        "slot_id": first, "customer_id": wang}).status_code == 201  # freed by the move
    confirmed = client.post(f"/api/v1/appointments/{body['id']}/status",
                            json={"status": "confirmed"})
    assert confirmed.json()["status_zh"] == "已确认"
    early = client.post(f"/api/v1/appointments/{body['id']}/status",
                        json={"status": "attended"})
    assert early.status_code == 409 and "尚未开始" in early.json()["message"]
    listed = client.get("/api/v1/appointments", params={"advisor_id": adv}).json()["items"]
    assert [(a["customer"], a["status"]) for a in listed] == [("王芳", "booked"),
                                                              ("林晓雯", "confirmed")]
    assert client.get("/api/v1/appointments/999999").status_code == 404


def test_a_read_key_sees_masked_phones_and_may_not_book(
        app_client: TestClient, sessions: sessionmaker[Session]) -> None:
    adv, lin, _ = _setup(sessions)
    with sessions() as s:
        read_key = create_api_key(s, "reader", scopes=["read"]).key
        service_key = create_api_key(s, "desk", scopes=["service"]).key
        from siyu.appointments import service

        stype = service.save_service_type(s, "营养咨询", 15).id
        [slot] = service.publish_slots(s, adv, stype, [hour(30)])
        appt = service.book(s, slot, lin, channel="console")
        s.commit()
    reader = {"Authorization": f"Bearer {read_key}"}
    refused = app_client.post("/api/v1/appointments", headers=reader,
                              json={"slot_id": slot, "customer_id": lin})
    assert refused.status_code == 403
    shown = app_client.get(f"/api/v1/appointments/{appt.id}", headers=reader).json()
    assert shown["customer_phone"] == "138****8000"
    desk = {"Authorization": f"Bearer {service_key}"}
    cancelled = app_client.post(f"/api/v1/appointments/{appt.id}/status", headers=desk,
                                json={"status": "cancelled", "reason": "客户改主意"})
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"


def test_the_calendar_link_needs_its_signature(client: TestClient,
                                             sessions: sessionmaker[Session]) -> None:
    adv, lin, _ = _setup(sessions)
    with sessions() as s:
        from siyu.appointments import service

        [slot] = service.publish_slots(s, adv, service.save_service_type(s, "新品试用", 20).id,
                                       [hour(40)])
        s.commit()
    body = client.post("/api/v1/appointments",
                       json={"slot_id": slot, "customer_id": lin, "confirm": True}).json()
    anonymous = TestClient(client.app)
    ics = anonymous.get(body["ics_url"])
    assert ics.status_code == 200
    assert ics.headers["content-type"] == "text/calendar; charset=utf-8"
    assert "SUMMARY:新品试用 · 私域客户平台" in ics.text and "STATUS:CONFIRMED" in ics.text
    forged = body["ics_url"].replace(f"/appointments/{body['id']}.ics",
                                     f"/appointments/{body['id'] + 1}.ics")
    assert anonymous.get(forged).status_code == 404
    assert anonymous.get(f"/appointments/{body['id']}.ics").status_code == 404
    with sessions() as s:
        assert s.scalars(select(Appointment.status)).one() == "confirmed"
