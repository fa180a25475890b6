"""The VOC API (/api/v1/voc): drivers, classify, survey responses; roles and PII masking."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from siyu.voc import service, surveys
from siyu.voc.models import SurveyAnswer, SurveyResponse
from tests.voc.builders import sentiment_rows, to_csv
from tests.voc.test_surveys import FACTORS, survey_rows

CONSOLE = {"X-Siyu-Console": "1"}


@pytest.fixture
def voc_data(sessions: sessionmaker[Session]) -> None:
    """A trained sentiment model and a delivery survey whose CSAT is driven by 物流 > 口味 >
    包装, one response carrying a phone number in its comment."""
    with sessions() as s:
        service.train(s, to_csv(["text", "label"], sentiment_rows()), source="rows")
        spec = surveys.QuestionSpec
        sv = surveys.create_survey(s, name="after_delivery", title="收货", questions_=[
            spec("csat", "csat", "满意吗"), *(spec(f, "rating", f, factor=f) for f in FACTORS),
            spec("comment", "text", "建议")])
        s.flush()
        qids = {q.key: q.id for q in surveys.questions(s, sv.id)}
        for i, row in enumerate(survey_rows(200)):
            resp = SurveyResponse(survey_id=sv.id, external_id=f"r{i}", completed=True,
                                  submitted_at=dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
                                  + dt.timedelta(minutes=i))
            s.add(resp)
            s.flush()
            csat, _nps, *ratings = row[3:-1]
            s.add(SurveyAnswer(response_id=resp.id, question_id=qids["csat"], value_num=csat))
            s.add_all(SurveyAnswer(response_id=resp.id, question_id=qids[f], value_num=v)
                      for f, v in zip(FACTORS, ratings, strict=True))
        s.add(SurveyAnswer(response_id=resp.id, question_id=qids["comment"],
                           value_text="物流太慢，请打13800138000"))
        s.commit()


def test_drivers_and_classify_over_the_api(app_client: TestClient, api_key: str,
                                           voc_data: None) -> None:
    auth = {"Authorization": f"Bearer {api_key}"}
    r = app_client.get("/api/v1/voc/drivers", params={"survey": "after_delivery",
                                                       "target": "csat"}, headers=auth)
    assert r.status_code == 200, r.text
    out = r.json()
    assert [d["factor"] for d in out["drivers"]] == ["物流", "口味", "包装"]
    assert sum(d["importance"] for d in out["drivers"]) == pytest.approx(out["r2"])
    r = app_client.post("/api/v1/voc/classify", json={"texts": ["物流很快，但是味道太差"]},
                        headers=auth)
    assert r.status_code == 200, r.text
    item = r.json()["items"][0]
    assert item["sentiment"] == "negative"
    assert {(m["factor"], m["sentiment"]) for m in item["mentions"]} == {
        ("物流", "positive"), ("口味", "negative")}
    bad = app_client.post("/api/v1/voc/classify", json={"texts": []}, headers=auth)
    assert bad.status_code == 422
    unknown = app_client.get("/api/v1/voc/drivers", params={"survey": "nope", "target": "csat"},
                             headers=auth)
    assert unknown.status_code == 404


def test_responses_are_masked_by_role_and_need_a_key(
        app_client: TestClient, api_key: str, voc_data: None, staff: None, login: object
) -> None:
    url = "/api/v1/voc/surveys/after_delivery/responses"
    assert app_client.get(url).status_code == 401
    full = app_client.get(url, params={"per_page": 1},
                          headers={"Authorization": f"Bearer {api_key}"}).json()
    assert full["total"] == 200 and full["items"][0]["answers"]["comment"] == (
        "物流太慢，请打13800138000")
    login("analyst")  # type: ignore[operator]
    masked = app_client.get(url, params={"per_page": 1}, headers=CONSOLE).json()
    assert "13800138000" not in masked["items"][0]["answers"]["comment"]
    assert masked["items"][0]["answers"]["comment"].startswith("物流太慢")
    login("agent")  # type: ignore[operator]
    assert app_client.get(url, headers=CONSOLE).status_code == 403
