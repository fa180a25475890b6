"""VOC console on the demo story (true drivers first, drill-down to verbatims, darkest
moment marked) and the survey page behind a signed link."""

from __future__ import annotations

import datetime as dt
import re

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from siyu.config import Settings
from siyu.voc import surveys
from siyu.voc.demo import seed_demo_voc
from siyu.voc.models import SurveyResponse


def test_dashboard_shows_the_demo_story(sessions: sessionmaker[Session], staff: None,
                                        login: object) -> None:
    with sessions() as s:
        seed_demo_voc(s, now=dt.datetime(2026, 12, 2, tzinfo=dt.UTC), responses=900)
        s.commit()
    client: TestClient = login("analyst")  # type: ignore[operator]
    page = client.get("/voc")
    assert page.status_code == 200
    factors = re.findall(r'<tr data-factor="([^"]+)">', page.text)
    assert set(factors[:2]) == {"物流", "口味"}  # the two true drivers lead
    darkest = re.search(r'<tr data-step="([^"]+)">(?:(?!</tr>).)*id="darkest"', page.text, re.S)
    assert darkest is not None and darkest.group(1) == "配送"
    assert "新仓配送流程上线" in page.text
    category = client.get("/voc/factors/服务")
    assert category.status_code == 200 and 'href="/voc/factors/物流"' in category.text
    verbatims = client.get("/voc/factors/物流?sentiment=negative")
    assert verbatims.text.count('class="hl-negative"') >= 5
    assert 'class="hl-positive"' not in verbatims.text


def test_the_dashboard_of_a_brand_without_answers_says_so(staff: None, login: object) -> None:
    """A fresh install's 客户之声 page answered 500 (no NPS chart to show)."""
    client: TestClient = login("analyst")  # type: ignore[operator]
    page = client.get("/voc")
    assert page.status_code == 200, page.text[:500]
    assert "还没有问卷答卷" in page.text and 'id="trend-nps"' not in page.text


def test_survey_page_one_response_per_link(app_client: TestClient, settings: Settings,
                                           sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        token = surveys.sign_link(settings, surveys.ensure_desk_csat(s))
        s.commit()
    page = app_client.get(f"/s/{token}")
    assert page.status_code == 200 and "您对本次服务满意吗" in page.text
    assert app_client.post(f"/s/{token}/answers", json={"key": "csat", "value": 9}
                           ).status_code == 422
    assert app_client.post(f"/s/{token}/answers", json={"key": "csat", "value": 4}
                           ).status_code == 200
    assert app_client.post(f"/s/{token}/submit", json={}).status_code == 200
    assert app_client.post(f"/s/{token}/submit", json={}).status_code == 409
    assert app_client.post(f"/s/{token}/answers", json={"key": "csat", "value": 1}
                           ).status_code == 409
    assert "感谢您的反馈" in app_client.get(f"/s/{token}").text
    forged = app_client.get(f"/s/{token[:-2]}xx")
    assert forged.status_code == 403 and "无效" in forged.text
    assert app_client.post(f"/s/{token[:-2]}xx/answers", json={"key": "csat", "value": 5}
                           ).status_code == 403
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(SurveyResponse)) == 1
