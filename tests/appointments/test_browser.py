"""In a real browser: a customer picked on the web chat's demo page asks 「我想预约营养咨询」,
picks the first slot offered, gets the confirmation with the calendar link (which downloads
the ICS without a login); her advisor signs in to the console and sees the booking in the
week of 预约日历, confirms it, and the customer's calendar file says CONFIRMED."""

from __future__ import annotations

import os
import re
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from siyu.app import create_app
from siyu.appointments import service
from siyu.appointments.models import Appointment
from siyu.channels.config import ChannelSettings
from siyu.config import Settings
from tests.appointments.helpers import advisor, customer, hour, nutrition, slots
from tests.channels.conftest import live_app
from tests.console.conftest import sign_in_at

pytestmark = pytest.mark.browser
SCREENSHOT = os.environ.get("SIYU_SCREENSHOT_DIR", "/tmp")


def test_book_in_the_web_chat_and_see_it_in_the_advisors_calendar(
        browser: Any, environment_settings: None, settings: Settings, engine: Engine,
        sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        adv = advisor(s)
        stype = nutrition(s)
        first, _ = slots(s, adv, stype, 26, 27)
        cid = customer(s, "林晓雯", phone="+8613800138000", advisor_id=adv)
        s.commit()
    label = service.local_label(hour(26), settings.timezone)
    app = create_app(settings, engine=engine, run_worker=True)
    app.state.channel_settings = ChannelSettings(webchat_demo=True)
    with live_app(app) as base:
        chat_ctx = browser.new_context(viewport={"width": 390, "height": 760}, locale="zh-CN")
        chat = chat_ctx.new_page()
        chat.set_default_timeout(20_000)
        chat.goto(f"{base}/chat/demo")
        chat.click(f".demo-card[data-customer-id='{cid}']")
        chat.wait_for_selector("#composer:not([hidden])")
        chat.fill("#text", "我想预约营养咨询")
        chat.press("#text", "Enter")
        offer = chat.locator(".msg-bot .bubble", has_text="请回复序号选择时段")
        expect(offer).to_contain_text(f"1. {label} · 顾问陈静")
        chat.fill("#text", "1")
        chat.press("#text", "Enter")
        confirmation = chat.locator(".msg-bot .bubble", has_text="已为您预约")
        expect(confirmation).to_contain_text(f"已为您预约「营养咨询」：{label}，顾问陈静")
        link = confirmation.locator("a.ics")
        expect(link).to_have_text("下载日历文件")
        href = link.get_attribute("href") or ""
        assert re.fullmatch(r"/appointments/\d+\.ics\?sig=[0-9a-f]{32}", href), href
        ics = chat_ctx.request.get(f"{base}{href}")  # the customer's browser: no login
        assert ics.status == 200 and "STATUS:TENTATIVE" in ics.text()
        chat.screenshot(path=f"{SCREENSHOT}/siyu-appointment-webchat.png", full_page=True)

        with sessions() as s:
            appt = s.scalars(select(Appointment)).one()
            assert (appt.customer_id, appt.slot_id, appt.channel) == (cid, first, "webchat")

        desk_ctx = browser.new_context(viewport={"width": 1360, "height": 900}, locale="zh-CN")
        desk = desk_ctx.new_page()
        desk.set_default_timeout(15_000)
        week = service.week_start(hour(26).astimezone(
            __import__("zoneinfo").ZoneInfo(settings.timezone)).date()).isoformat()
        sign_in_at(desk, f"{base}/appointments?week={week}", "advisor01")
        booked = desk.locator(f"li[data-appointment='{appt.id}']")
        expect(booked).to_contain_text("林晓雯")
        expect(booked).to_contain_text("营养咨询")
        expect(booked).to_contain_text("待确认")
        expect(booked).to_contain_text("网页聊天预约")
        expect(booked).to_contain_text("138****8000")  # an advisor reads the phone masked
        expect(desk.locator(f"li[data-slot='{first + 1}']")).to_contain_text("可预约")
        booked.get_by_role("button", name="确认").click()
        expect(desk.locator(".flash")).to_have_text("已确认预约")
        expect(desk.locator(f"li[data-appointment='{appt.id}']")).to_contain_text("已确认")
        desk.screenshot(path=f"{SCREENSHOT}/siyu-appointment-calendar.png", full_page=True)
        assert "STATUS:CONFIRMED" in chat_ctx.request.get(f"{base}{href}").text()
        desk_ctx.close()
        chat_ctx.close()
