"""The demo brand's voice of the customer, with a true story the charts must show.

* 物流: the warehouse moved in one month (the fourth of the six), and deliveries were late
  that month; a marked change ("新仓配送流程上线") the month after brought it back.
* 口味: one product line (轻食代餐) tastes wrong to many who buy it, all along.
* Everything else is fine and matters less. CSAT after delivery is generated from the factor
  ratings with 物流 and 口味 weighing most, so the driver chart must put them first and the
  delivery step must be the journey's darkest moment.

The sentiment model is trained on the brand's own labelled phrases (generated below), so the
demo needs no shared data set.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from siyu.voc import service, surveys
from siyu.voc.models import ExperienceChange, Survey, SurveyAnswer, SurveyResponse

FACTORS = ("产品功效", "口味", "包装", "价格", "物流", "客服")
WEIGHTS = {"物流": 0.34, "口味": 0.30, "产品功效": 0.12, "价格": 0.09, "包装": 0.08,
           "客服": 0.07}
PRODUCTS = ("轻食代餐", "益生菌", "燕麦片", "坚果礼盒")
POSITIVE = {
    "物流": ["物流很快", "快递第二天就到了", "配送及时", "送货速度快"],
    "口味": ["味道很好", "口感不错", "很好吃", "好喝不腻"],
    "包装": ["包装很精美", "包装结实", "密封很好"],
    "价格": ["价格实惠", "性价比高", "很划算"],
    "产品功效": ["效果明显", "吃了一个月改善很多", "功效不错"],
    "客服": ["客服态度很好", "顾问很耐心", "客服回复及时"],
    "售后": ["退货很顺利", "售后处理及时", "换货很快"],
}
NEGATIVE = {
    "物流": ["物流太慢了", "快递一周才到", "配送一直延迟", "发货太慢"],
    "口味": ["味道太差", "难吃", "口感很怪", "太甜了很腻"],
    "包装": ["包装破损", "盒子压坏了", "袋子漏了"],
    "价格": ["太贵了", "性价比低", "价格偏高"],
    "产品功效": ["没什么效果", "吃了没用", "效果很一般"],
    "客服": ["客服态度差", "客服半天不回消息", "顾问不专业"],
    "售后": ["退款拖了很久", "售后互相推诿", "换货很麻烦"],
}
CHANGE_LABEL = "新仓配送流程上线"


def training_phrases() -> list[tuple[str, str]]:
    """Labelled phrases: single clauses and "A，但是 B" pairs whose verdict is B's."""
    out: list[tuple[str, str]] = []
    for f in POSITIVE:
        out += [(p, "positive") for p in POSITIVE[f]] + [(n, "negative") for n in NEGATIVE[f]]
    for f, g in itertools.permutations(POSITIVE, 2):
        out.append((f"{POSITIVE[f][0]}，但是{NEGATIVE[g][0]}", "negative"))
        out.append((f"{NEGATIVE[f][-1]}，不过{POSITIVE[g][-1]}", "positive"))
        out.append((f"{POSITIVE[f][1 % len(POSITIVE[f])]}，{POSITIVE[g][0]}", "positive"))
        out.append((f"{NEGATIVE[f][0]}，{NEGATIVE[g][1 % len(NEGATIVE[g])]}", "negative"))
    return out


def _months(now: dt.datetime, n: int) -> list[dt.date]:
    first = now.date().replace(day=1)
    out = []
    for _ in range(n):
        first = (first - dt.timedelta(days=1)).replace(day=1)
        out.append(first)
    return sorted(out)


def _clip(v: float, lo: int, hi: int) -> int:
    return int(min(max(round(v), lo), hi))


def seed_demo_voc(session: Session, *, now: dt.datetime, seed: int = 42,
                  responses: int = 3000) -> dict[str, Any] | None:
    """Seed surveys, responses, reviews and the sentiment model (once; ``None`` if done)."""
    from siyu.customers.models import Customer

    if session.scalar(select(func.count()).select_from(Survey)):
        return None
    rng = random.Random(seed)
    service.train(session, "text,label\n" + "\n".join(
        f"{t},{'1' if y == 'positive' else '0'}" for t, y in training_phrases()),
        source="demo phrases")
    ids = list(session.scalars(select(Customer.id).order_by(Customer.id).limit(20_000)))
    months = _months(now, 6)
    move, fix = months[3], months[4]
    session.add(ExperienceChange(step="配送", label=CHANGE_LABEL, date=fix))
    rating = surveys.QuestionSpec
    delivery = surveys.create_survey(session, name="after_delivery", title="收货满意度调查",
                                     touchpoint="收货后", journey_step="配送", questions_=[
        rating("csat", "csat", "您对这次购物满意吗？", required=True),
        rating("nps", "nps", "您有多大可能把禾源良品推荐给朋友？"),
        rating("ces", "ces", "这次购买和收货容易吗？"),
        *(rating(f, "rating", f"{f}打分", factor=f) for f in FACTORS),
        rating("product", "single", "您买的是哪个系列？", options=list(PRODUCTS)),
        rating("comment", "text", "还有什么想告诉我们的？")])
    order = surveys.create_survey(session, name="after_order", title="下单体验",
                                  touchpoint="下单后", journey_step="下单", questions_=[
        rating("csat", "csat", "下单过程满意吗？"), rating("ces", "ces", "下单容易吗？")])
    desk = surveys.ensure_desk_csat(session)
    desk.journey_step = "客服会话"
    ret = surveys.create_survey(session, name="after_return", title="退换货体验",
                                touchpoint="退换货后", journey_step="退换货", questions_=[
        rating("csat", "csat", "退换货处理满意吗？"), rating("ces", "ces", "退换货容易吗？"),
        rating("comment", "text", "您的建议")])
    session.flush()
    qids = {(s.id, q.key): q.id for s in (delivery, order, desk, ret)
            for q in surveys.questions(session, s.id)}
    texts: list[tuple[int, str, int | None, dt.datetime, str | None]] = []

    def when(i: int, n: int) -> dt.datetime:
        day = months[0] + dt.timedelta(days=int((now.date() - months[0]).days * i / n))
        return dt.datetime(day.year, day.month, day.day, rng.randrange(8, 22),
                           rng.randrange(60), tzinfo=dt.UTC)

    def add(survey: Survey, cid: int | None, ts: dt.datetime, answers: dict[str, Any],
            ref: str) -> int:
        resp = SurveyResponse(survey_id=survey.id, customer_id=cid, source="demo",
                              external_id=ref, touchpoint=survey.touchpoint, submitted_at=ts,
                              completed=True)
        session.add(resp)
        session.flush()
        for key, value in answers.items():
            if value is None:
                continue
            if isinstance(value, str):
                session.add(SurveyAnswer(response_id=resp.id, question_id=qids[(survey.id, key)],
                                         value_text=value))
            else:
                session.add(SurveyAnswer(response_id=resp.id, question_id=qids[(survey.id, key)],
                                         value_num=float(value)))
        return resp.id

    for i in range(responses):
        ts = when(i, responses)
        product = rng.choice(PRODUCTS)
        r = {f: _clip(rng.gauss(4.1, 0.8), 1, 5) for f in FACTORS}
        if move <= ts.date() < fix:
            r["物流"] = _clip(rng.gauss(2.0, 0.9), 1, 5)
        if product == "轻食代餐":
            r["口味"] = _clip(rng.gauss(2.2, 0.9), 1, 5)
        latent = sum(WEIGHTS[f] * r[f] for f in FACTORS)
        csat = _clip(1 + (latent - 1) * 1.1 + rng.gauss(0, 0.35), 1, 5)
        nps = _clip(csat * 2.2 - 1.5 + rng.gauss(0, 1.0), 0, 10)
        ces = _clip(1 + (0.6 * r["物流"] + 0.4 * r["客服"] - 1) * 1.4 + rng.gauss(0, 0.6), 1, 7)
        worst = min(FACTORS, key=lambda f: (r[f], rng.random()))
        best = max(FACTORS, key=lambda f: (r[f], rng.random()))
        comment = None
        if r[worst] <= 2 and rng.random() < 0.6:
            comment = (f"{rng.choice(POSITIVE[best])}，但是{rng.choice(NEGATIVE[worst])}"
                       if r[best] >= 4 and rng.random() < 0.5 else rng.choice(NEGATIVE[worst]))
        elif r[best] == 5 and rng.random() < 0.25:
            comment = rng.choice(POSITIVE[best])
        cid = rng.choice(ids) if ids else None
        rid = add(delivery, cid, ts, {"csat": csat, "nps": nps, "ces": ces, **r,
                                      "product": product, "comment": comment}, f"demo-d{i}")
        if comment:
            texts.append((rid, comment, cid, ts, product))
    for i in range(responses // 5):
        add(order, rng.choice(ids) if ids else None, when(i, responses // 5),
            {"csat": _clip(rng.gauss(4.6, 0.5), 1, 5), "ces": _clip(rng.gauss(6.2, 0.8), 1, 7)},
            f"demo-o{i}")
    for i in range(responses // 3):
        add(desk, rng.choice(ids) if ids else None, when(i, responses // 3),
            {"csat": _clip(rng.gauss(4.3, 0.7), 1, 5), "ces": _clip(rng.gauss(5.6, 1.0), 1, 7)},
            f"demo-c{i}")
    for i in range(responses // 15):
        ts = when(i, responses // 15)
        csat = _clip(rng.gauss(4.0, 0.9), 1, 5)
        comment = rng.choice(NEGATIVE["售后"] if csat <= 3 else POSITIVE["售后"])
        cid = rng.choice(ids) if ids else None
        rid = add(ret, cid, ts, {"csat": csat, "ces": _clip(rng.gauss(4.0, 1.2), 1, 7),
                                 "comment": comment}, f"demo-r{i}")
        texts.append((rid, comment, cid, ts, None))
    reviews = _reviews(rng, months, move, fix, now, ids)
    clf = service.classifier(session)
    results = clf.classify_many([t[1] for t in texts] + [r[1] for r in reviews])
    for (rid, text, cid, ts, line), res in zip(texts, results, strict=False):
        service.record_feedback(session, source="survey", source_ref=f"demo:{rid}", text=text,
                                customer_id=cid, response_id=rid, product=line, ts=ts,
                                classified=res)
    for (ref, text, cid, ts, item), res in zip(reviews, results[len(texts):], strict=True):
        service.record_feedback(session, source="review", source_ref=ref, text=text,
                                customer_id=cid, product=item, ts=ts, classified=res)
    session.flush()
    return {"responses": responses + responses // 5 + responses // 3 + responses // 15,
            "feedback": len(texts) + len(reviews), "warehouse_move": move.isoformat(),
            "change": fix.isoformat()}


def _reviews(rng: random.Random, months: list[dt.date], move: dt.date, fix: dt.date,
             now: dt.datetime, ids: list[int]) -> list[tuple[str, str, int | None,
                                                            dt.datetime, str]]:
    out = []
    span = (now.date() - months[0]).days
    for i in range(800):
        day = months[0] + dt.timedelta(days=rng.randrange(span))
        ts = dt.datetime(day.year, day.month, day.day, rng.randrange(8, 22), tzinfo=dt.UTC)
        product = rng.choice(PRODUCTS)
        bad = [f for f in ("包装", "价格", "产品功效", "客服") if rng.random() < 0.06]
        if move <= day < fix and rng.random() < 0.6:
            bad.append("物流")
        if product == "轻食代餐" and rng.random() < 0.55:
            bad.append("口味")
        good = [f for f in ("物流", "口味", "产品功效") if f not in bad and rng.random() < 0.4]
        parts = [rng.choice(POSITIVE[g]) for g in good[:1]] + [rng.choice(NEGATIVE[b])
                                                              for b in bad[:2]]
        if not parts:
            parts = [rng.choice(POSITIVE[rng.choice(("口味", "物流", "包装"))])]
        text = "，但是".join(parts) if good and bad else "，".join(parts)
        out.append((f"demo-review-{i}", text, rng.choice(ids) if ids else None, ts, product))
    return out
