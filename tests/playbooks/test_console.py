"""The playbooks console: list with live counters, the editor (validated as you type, the
dry-run preview masked by role), a page per playbook with funnel and uplift, the contact log
and open tasks on the customer 360; and in a real browser: create and activate a playbook,
trigger it, see its counters and the customer's contact log move."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy.orm import Session, sessionmaker

from siyu.config import Settings
from siyu.playbooks import engine
from siyu.playbooks.console import funnel_stages
from tests.console.conftest import LiveServer, Login, csrf_from, sign_in_at
from tests.playbooks.conftest import Clock, apply, fire, make_customer

CARE = """\
name: 投诉关怀
status: active
priority: 90
trigger: {event: complaint}
holdout: 0
steps:
  - send:
      channel: email
      purpose: service
      subject: "{{ customer.name }}，抱歉"
      template: "{{ customer.name }}您好，请致电 {{ event.properties.hotline }} 联系顾问"
  - task: {kind: call, assignee: advisor, due: 1h, note: "安抚 {{ customer.name }}"}
"""


def _seed(sessions: sessionmaker[Session], settings: Settings, clock: Clock) -> int:
    with sessions() as s:
        apply(s, CARE)
        cid = make_customer(s, name="赵敏", gender="female")
        fire(s, settings, cid, "complaint", clock(), hotline="13812345678")
        engine.process_due(s, now=clock(), limit=100)
        s.commit()
    return cid


def test_funnel_stages_count_entered_treated_sends_and_goals() -> None:
    stats = {"entered": 10, "holdout": 2, "conversion": {"treated": 0.25},
             "steps": [{"path": "0", "kind": "send", "outcomes": {"queued": 7, "suppressed": 1}},
                       {"path": "1", "kind": "wait", "outcomes": {"done": 7}}]}
    assert funnel_stages(stats) == [("进入", 10.0), ("实验组", 8.0), ("步骤 0 发送", 7.0),
                                    ("达成目标", 2.0)]


@pytest.mark.usefixtures("staff")
def test_list_detail_preview_masked_and_360_cards(
        login: Login, sessions: sessionmaker[Session], settings: Settings,
        clock: Clock) -> None:
    cid = _seed(sessions, settings, clock)
    client = login("operator")
    page = client.get("/playbooks")
    assert page.status_code == 200
    assert '<a href="/playbooks" class="active" aria-current="page">自动化剧本</a>' in page.text
    row = re.search(r'<tr data-playbook="投诉关怀">.*?</tr>', page.text, re.S)
    assert row and 'data-counter="entered">1<' in row.group(0) and "运行中" in row.group(0)

    detail = client.get("/playbooks/投诉关怀")
    assert detail.status_code == 200
    assert "chart funnel" in detail.text and 'data-label="进入" data-value="1"' in detail.text
    assert "暂无法计算提升" in detail.text  # holdout 0: one arm is empty

    # The operator has no PII permission: the preview's text is masked; the admin's is not.
    editor = client.get("/playbooks/投诉关怀/edit")
    assert editor.status_code == 200 and "预演" in editor.text
    assert "赵敏您好" in editor.text and "13812345678" not in editor.text
    admin = login("admin")
    assert "13812345678" in admin.get("/playbooks/投诉关怀/edit").text

    # The 360 shows the contact log and the open task.
    c360 = admin.get(f"/customers/{cid}").text
    assert 'id="panel-playbook_contacts"' in c360 and "投诉关怀" in c360
    assert 'id="panel-playbook_tasks"' in c360 and "安抚 赵敏" in c360


@pytest.mark.usefixtures("staff")
def test_save_refuses_a_bad_file_naming_the_step_and_keeps_the_text(
        login: Login, sessions: sessionmaker[Session], settings: Settings,
        clock: Clock) -> None:
    _seed(sessions, settings, clock)
    client = login("operator")
    token = csrf_from(client.get("/playbooks/new").text)
    bad = CARE.replace("channel: email", "channel: fax", 1)
    response = client.post("/playbooks/save", data={"source": bad, "csrf_token": token})
    assert response.status_code == 422
    assert "steps[0].send.channel" in response.text and "channel: fax" in response.text
    # The stored playbook is untouched.
    assert "第 1 版" in client.get("/playbooks").text
    analyst = login("analyst")
    assert analyst.get("/playbooks").status_code == 200
    assert analyst.get("/playbooks/new").status_code == 403


NEW = """\
name: 注册欢迎
status: draft
priority: 50
trigger: {event: signup}
audience: 'has(email)'
holdout: 0
steps:
  - send: {channel: email, purpose: marketing, subject: "欢迎",
           template: "{{ customer.name }}，欢迎加入"}
"""


@pytest.mark.browser
@pytest.mark.usefixtures("staff")
def test_create_activate_trigger_and_see_counters_and_contact_log_move(
        page: Page, live_server: LiveServer, sessions: sessionmaker[Session],
        settings: Settings, clock: Clock) -> None:
    with sessions() as s:
        cid = make_customer(s, name="周杰")
        s.commit()
    sign_in_at(page, f"{live_server.url}/playbooks/new", "operator")
    source = page.get_by_label("剧本文件")
    source.fill(NEW.replace("channel: email", "channel: fax"))
    expect(page.locator("#pb-error")).to_be_visible()
    expect(page.locator("#pb-problems")).to_contain_text("steps[0].send.channel")
    source.fill(NEW)
    expect(page.locator("#pb-ok")).to_be_visible()
    expect(page.locator("#f-name")).to_have_value("注册欢迎")
    # The structured form writes into the file.
    page.locator("#f-priority").fill("70")
    expect(source).to_have_value(re.compile(r"^priority: 70$", re.M))
    page.get_by_role("button", name="保存剧本").click()
    page.wait_for_url(re.compile(r"/playbooks/%E6%B3%A8"))
    expect(page.locator(".flash")).to_contain_text("已保存剧本「注册欢迎」第 1 版")
    page.get_by_role("button", name="启用").click()
    expect(page.locator(".flash")).to_contain_text("已运行中")
    expect(page.locator("#c-entered")).to_have_text("0")

    page.goto(f"{live_server.url}/playbooks")
    row = page.locator('#playbook-table tr[data-playbook="注册欢迎"]')
    expect(row.locator(".pb-status")).to_have_text("运行中")
    expect(row.locator(".pb-entered")).to_have_text("0")
    with sessions() as s:
        fire(s, settings, cid, "signup", clock())
        engine.process_due(s, now=clock(), limit=100)
        s.commit()
    # The list refreshes its counters by itself.
    expect(row.locator(".pb-entered")).to_have_text("1", timeout=12_000)
    page.screenshot(path="/tmp/playbooks-list.png", full_page=True)
    page.goto(f"{live_server.url}/playbooks/注册欢迎")
    expect(page.locator("#c-entered")).to_have_text("1")
    expect(page.locator("#funnel .funnel-step").first).to_have_attribute("data-value", "1")
    page.goto(f"{live_server.url}/customers/{cid}")
    card = page.locator("#panel-playbook_contacts")
    expect(card).to_contain_text("注册欢迎")
    expect(card).to_contain_text("邮件")
    page.screenshot(path="/tmp/playbooks-360.png", full_page=True)
