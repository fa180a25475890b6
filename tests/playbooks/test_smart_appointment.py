"""The seed's smart appointment outside the demo: car owners due for service are invited in
words that fit each, wait for their confirmation, and get a booking card with their city's
weather from a local HTTP provider; the dry-run shows the same personalised texts."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlparse

import pytest
from sqlalchemy.orm import Session

from siyu.config import Settings
from siyu.playbooks import service, triggers
from siyu.playbooks.config import get_playbook_settings
from siyu.privacy.service import masker
from tests.playbooks.conftest import (
    Clock,
    apply,
    fire,
    logs,
    make_customer,
    outbox_rows,
    runs,
    tick,
)

NAME = "智能保养预约"
PLAYBOOK = """\
name: 智能保养预约
status: active
trigger: {schedule: "0 10 * * *"}
audience: 'attr("mileage_km") > 5000 and attr_days("car_purchase_date") > 365'
steps:
  - send:
      channel: sms
      purpose: marketing
      template: >-
        {{ customer.name[0] }}{{ customer.salutation }}，您的
        {{- customer.attributes.car_model }}已陪伴您
        {{ years_since(customer.attributes.car_purchase_date) }} 年、行驶
        {{ customer.attributes.mileage_km }} 公里，该做保养了，回复 1 确认预约。
  - wait_for: {event: appointment_confirmed, within: 3d, else: exit}
  - send:
      channel: sms
      purpose: service
      context: weather
      template: >-
        【预约卡】{{ customer.name[0] }}{{ customer.salutation }}，
        {{- customer.attributes.car_model }}保养项目：机油、机滤、空气滤芯、刹车检查；
        {{- customer.city }}明日{{ context.weather }}，{{ context.temp }}°C。
"""

WEATHER = {"上海": {"weather": "小雨", "temp": 18}, "北京": {"weather": "晴", "temp": 6}}


class _Weather(BaseHTTPRequestHandler):
    asked: ClassVar[list[dict[str, list[str]]]] = []

    def do_GET(self) -> None:
        query = parse_qs(urlparse(self.path).query)
        type(self).asked.append(query)
        body = json.dumps(WEATHER.get(query.get("city", [""])[0], {}),
                          ensure_ascii=False).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def weather(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, list[str]]]]:
    _Weather.asked = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Weather)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("SIYU_PLAYBOOK_CONTEXT_URL",
                       f"http://127.0.0.1:{server.server_address[1]}/weather")
    get_playbook_settings.cache_clear()
    yield _Weather.asked
    server.shutdown()
    server.server_close()
    get_playbook_settings.cache_clear()


def _owners(db: Session) -> dict[str, int]:
    def owner(name: str, gender: str, city: str, phone: str, **car: Any) -> int:
        return make_customer(db, name=name, gender=gender, city=city, phone=phone,
                             consent=("sms",), attributes=car)

    return {
        "张": owner("张伟", "male", "上海", "+8613800000001", car_model="宝马 X3",
                   car_purchase_date="2023-05-10", mileage_km=12000),
        "李": owner("李娜", "female", "北京", "+8613800000002", car_model="奥迪 A4L",
                   car_purchase_date="2024-01-15", mileage_km="8000"),
        "低里程": owner("王强", "male", "上海", "+8613800000003", car_model="奔驰 C260",
                     car_purchase_date="2022-03-01", mileage_km=3000),
        "新车": owner("赵敏", "female", "北京", "+8613800000004", car_model="宝马 X1",
                    car_purchase_date="2025-09-02", mileage_km=9000),
        "不知道": owner("钱程", "male", "上海", "+8613800000005", car_model="奥迪 Q5",
                     car_purchase_date="不知道", mileage_km=20000),
    }


# The clock is 2026-03-02 10:00 in Shanghai: the X3 is 2 years 9 months old, the A4L 2 years.
INVITE_ZHANG = ("张先生，您的宝马 X3已陪伴您 2 年、行驶 12000 公里，该做保养了，回复 1 确认预约。")
INVITE_LI = "李女士，您的奥迪 A4L已陪伴您 2 年、行驶 8000 公里，该做保养了，回复 1 确认预约。"
CARD_ZHANG = ("【预约卡】张先生，宝马 X3保养项目：机油、机滤、空气滤芯、刹车检查；"
              "上海明日小雨，18°C。")


def test_due_owners_are_invited_personally_and_the_confirmed_one_gets_the_booking_card(
        db: Session, settings: Settings, clock: Clock,
        weather: list[dict[str, list[str]]]) -> None:
    apply(db, PLAYBOOK)
    ids = _owners(db)
    assert triggers.on_minute(db, clock()) == 2
    assert {r.customer_id for r in runs(db)} == {ids["张"], ids["李"]}
    tick(db, clock)
    assert [(d.customer_id, d.content["text"]) for d in outbox_rows(db)] == sorted(
        [(ids["张"], INVITE_ZHANG), (ids["李"], INVITE_LI)])
    assert {r.status for r in runs(db)} == {"waiting"}
    assert weather == []  # the invitation asks no provider

    clock.advance(hours=5)
    fire(db, settings, ids["张"], "appointment_confirmed", clock())
    tick(db, clock)
    cards = [(d.customer_id, d.content["text"]) for d in outbox_rows(db)
             if d.content["text"].startswith("【预约卡】")]
    assert cards == [(ids["张"], CARD_ZHANG)]
    assert [(q["city"], q["customer_id"]) for q in weather] == [(["上海"], [str(ids["张"])])]

    clock.advance(days=3)
    tick(db, clock)
    assert {r.customer_id: r.status for r in runs(db)} == {ids["张"]: "done",
                                                          ids["李"]: "exited"}
    assert [(lg.customer_id, lg.reason) for lg in logs(db, "exited")] == [
        (ids["李"], "wait_timeout")]
    assert len(outbox_rows(db)) == 3  # two invitations, one card
    assert len(weather) == 1
    # The same minute again starts nobody twice.
    assert triggers.on_minute(db, clock().replace(day=2, hour=2, minute=0)) == 0


def test_dry_run_shows_each_owners_personalised_text_and_stores_nothing(
        db: Session, clock: Clock, weather: list[dict[str, list[str]]]) -> None:
    apply(db, PLAYBOOK)
    ids = _owners(db)
    rows = service.dry_run(db, NAME, days=5, now=clock())
    sends = {(r["customer_id"], r["text"]) for r in rows if r["outcome"] == "would_send"}
    assert sends == {(ids["张"], INVITE_ZHANG), (ids["李"], INVITE_LI)}
    # A wait_for is assumed unanswered: both exit after three days, no card, no provider.
    exits = [(r["customer_id"], r["reason"]) for r in rows if r["outcome"] == "exited"]
    assert sorted(exits) == sorted([(ids["张"], "wait_timeout"), (ids["李"], "wait_timeout")])
    assert weather == []
    assert runs(db) == [] and outbox_rows(db) == []
    # The console passes the texts through the role's masker; these hold no phone or e-mail,
    # so an operator without the PII permission reads the same words.
    assert masker("agent").text(INVITE_ZHANG) == INVITE_ZHANG
    assert masker("agent").text("致电 13800000001") != "致电 13800000001"


def test_template_dates_count_to_the_engines_clock_not_the_machines(
        db: Session, clock: Clock) -> None:
    """Regression: years_since/days_since counted to the machine's date, so a run at an
    injected (or a dry-run's) moment told the wrong car age."""
    clock.at = clock.at.replace(year=2020, month=1, day=1)
    apply(db, """\
    name: 车龄
    status: active
    trigger: {schedule: "0 10 * * *"}
    steps:
      - send:
          channel: sms
          purpose: service
          template: >-
            {{ years_since(customer.attributes.bought) }}/
            {{- days_since(customer.attributes.bought) }}
    """)
    make_customer(db, phone="+8613800000009", attributes={"bought": "2018-12-31"})
    assert triggers.on_minute(db, clock()) == 1
    tick(db, clock)
    assert [d.content["text"] for d in outbox_rows(db)] == ["1/366"]


def test_an_sms_reply_is_the_confirmation_too(
        db: Session, settings: Settings, clock: Clock,
        weather: list[dict[str, list[str]]]) -> None:
    """With ``wait_for: {reply: sms}``, the owner's answer to the invitation through the SMS
    provider's webhook confirms: 李女士 replies and gets the card with 北京's weather."""
    from siyu.channels import optout

    apply(db, PLAYBOOK.replace("{event: appointment_confirmed, within: 3d, else: exit}",
                               "{reply: sms, within: 3d, else: exit}"))
    ids = _owners(db)
    triggers.on_minute(db, clock())
    tick(db, clock)
    clock.advance(hours=1)
    reply = optout.parse_sms_event(json.dumps({
        "type": "reply", "event_id": "r-1", "from": "+8613800000002", "text": "1",
        "at": clock().timestamp()}).encode())
    assert optout.handle_sms_event(db, reply, settings=settings)["matched"] == 1
    tick(db, clock)
    clock.advance(days=3)
    tick(db, clock)
    cards = [(d.customer_id, d.content["text"]) for d in outbox_rows(db)
             if d.content["text"].startswith("【预约卡】")]
    card = "【预约卡】李女士，奥迪 A4L保养项目：机油、机滤、空气滤芯、刹车检查；北京明日晴，6°C。"
    assert cards == [(ids["李"], card)]
    assert [q["city"] for q in weather] == [["北京"]]
    assert {r.customer_id: r.status for r in runs(db)} == {ids["张"]: "exited",
                                                          ids["李"]: "done"}
