"""``voc_low("物流", last 30d)`` in the segment rule language: the customers behind a dark
moment (negative mentions, low factor ratings, low scores at a journey step) as a segment."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.orm import Session

from siyu.customers.models import Customer
from siyu.segments import service as segments
from siyu.segments.rules import (
    RuleSyntaxError,
    VocLow,
    Window,
    describe_zh,
    from_json,
    parse,
    to_json,
    to_text,
)
from siyu.voc import surveys
from siyu.voc.models import Feedback, FeedbackMention, Survey, SurveyAnswer, SurveyResponse

NOW = dt.datetime(2026, 11, 30, 12, tzinfo=dt.UTC)


def test_voc_low_parses_round_trips_and_describes_itself() -> None:
    rule = parse('voc_low("物流", last 30d)')
    assert rule == VocLow("物流", Window(30, "d"))
    assert to_text(rule) == 'voc_low("物流", last 30d)'
    assert to_json(rule) == {"field": "voc_low", "value": "物流",
                             "window": {"last": 30, "unit": "d"}}
    assert from_json(to_json(rule)) == rule and parse(to_text(rule)) == rule
    assert parse("voc_low('口味')") == VocLow("口味")
    assert describe_zh(rule) == "近30天对「物流」体验不满"
    with pytest.raises(RuleSyntaxError) as err:
        parse("voc_low(物流)")
    assert err.value.position == 8


def _people(db: Session, n: int) -> list[int]:
    people = [Customer(name=f"客户{i}") for i in range(n)]
    db.add_all(people)
    db.flush()
    return [c.id for c in people]


def _mention(db: Session, cid: int, factor: str, sentiment: int, days_ago: int) -> None:
    ts = NOW - dt.timedelta(days=days_ago)
    fb = Feedback(source="review", source_ref=f"{cid}-{factor}-{days_ago}", customer_id=cid,
                  text=f"{factor}评价", sentiment=sentiment, score=0.5, ts=ts)
    db.add(fb)
    db.flush()
    db.add(FeedbackMention(feedback_id=fb.id, customer_id=cid, factor=factor,
                           sentiment=sentiment, clause=f"{factor}评价", ts=ts))


def _answer(db: Session, survey: Survey, cid: int, days_ago: int, **values: float) -> None:
    qids = {q.key: q.id for q in surveys.questions(db, survey.id)}
    resp = SurveyResponse(survey_id=survey.id, customer_id=cid, source="test",
                          external_id=f"{cid}-{days_ago}", touchpoint=survey.touchpoint,
                          submitted_at=NOW - dt.timedelta(days=days_ago), completed=True)
    db.add(resp)
    db.flush()
    db.add_all(SurveyAnswer(response_id=resp.id, question_id=qids[k], value_num=v)
               for k, v in values.items())


def test_voc_low_finds_the_customers_behind_a_dark_moment(db: Session) -> None:
    # Given: the demo factor tree (物流 is a leaf of 服务), a delivery survey at step 配送
    a, b, c, d, e, f, g, h = _people(db, 8)
    spec = surveys.QuestionSpec
    delivery = surveys.create_survey(db, name="after_delivery", title="收货", touchpoint="收货后",
                                     journey_step="配送", questions_=[
        spec("csat", "csat", "满意吗"), spec("物流", "rating", "物流打分", factor="物流"),
        spec("包装", "rating", "包装打分", factor="包装")])
    _mention(db, a, "物流", -1, 3)        # a: complained about 物流 recently
    _mention(db, b, "物流", -1, 45)       # b: complained, but before the window
    _mention(db, c, "物流", 1, 2)         # c: praised 物流
    _mention(db, d, "口味", -1, 1)        # d: unhappy with another factor
    _answer(db, delivery, e, 5, csat=4, 物流=2, 包装=5)   # e: rated 物流 low
    _answer(db, delivery, f, 5, csat=4, 物流=3, 包装=1)   # f: only 包装 low
    _answer(db, delivery, g, 10, csat=2, 物流=4, 包装=4)  # g: low CSAT at the 配送 step
    _answer(db, delivery, h, 10, csat=5, 物流=5, 包装=5)  # h: happy
    db.flush()

    # When / then
    assert segments.matching_ids(db, 'voc_low("物流", last 30d)', now=NOW) == [a, e]
    assert segments.matching_ids(db, 'voc_low("物流")', now=NOW) == [a, b, e]
    assert segments.matching_ids(db, 'voc_low("服务", last 30d)', now=NOW) == [a, e]
    assert segments.matching_ids(db, 'voc_low("配送", last 30d)', now=NOW) == [g]
    assert segments.matching_ids(db, 'voc_low("包装", last 30d)', now=NOW) == [f]
    assert segments.count_rule(db, 'voc_low("物流", last 30d) and not voc_low("口味")',
                               now=NOW).count == 2
