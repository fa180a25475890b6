"""The bot: one pass per inbound message, run by the ``service.handle_inbound`` job after the
channel acknowledged the message.

identify → context → (asks for a person? angry?) → keyword rules → intent → act (answer
template filled from the context, an action such as the order-status lookup, or the best
FAQ answer) → hand off when unsure. When something just went wrong for this customer (a
failed payment minutes ago, a late parcel) the first reply of the conversation addresses it
first. Every decision is stored in ``bot_decisions`` with its reason and confidence.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from siyu.config import get_settings
from siyu.db import utcnow
from siyu.events.labels import event_type_zh
from siyu.journeys import schedule as journeys
from siyu.kb import service as kb
from siyu.kit.labels import label
from siyu.service import service as desk
from siyu.service.context import CustomerContext, incident_sentence, load_context
from siyu.service.models import BotDecision, Conversation, Message

# Below this confidence the intent is not trusted; an FAQ answer at or above FAQ_MIN_SCORE
# is tried before handing off.
MIN_CONFIDENCE = 0.45
FAQ_MIN_SCORE = 0.45
HUMAN_RE = re.compile(r"转人工|人工客服|真人|找人工|要人工|人工服务|客服在吗|找客服|接人工|"
                      r"\bhuman\b|\bagent\b|real person", re.IGNORECASE)
ANGER_RE = re.compile(r"投诉|举报|垃圾|骗子|骗人|太差|差劲|气死|无语|什么破|退钱|12315|"
                      r"消协|曝光|滚|傻|恶心|坑人|忍无可忍|[!！]{3,}", re.IGNORECASE)
GREETING_INTENTS = ("greeting",)
# Unsure, but the two likeliest intents together are likely: ask which one rather than hand
# off (「请问您想咨询的是：1. 订单查询 2. 物流延误催件」); the next message may answer by number
# or by name.
CLARIFY_MIN_TOTAL = 0.55
CLARIFY_MIN_SECOND = 0.15
NO_CLARIFY = ("greeting", "thanks", "goodbye", "ask_for_person")
# Which intents each incident bears on: asked about on any turn of the conversation, an
# incident not yet addressed is answered first (a late parcel before the order list).
BEARS_ON: dict[str, frozenset[str]] = {
    "delivery_delayed": frozenset({"order_status", "delivery_delay", "delivery_time"}),
    "payment_failed": frozenset({"payment_help", "order_status"}),
    "after_sales_request": frozenset({"refund_progress", "return_request", "exchange_request",
                                      "damaged_item"}),
}
UNSURE = "抱歉，这个问题我还不太会回答，已经为您转接人工客服，请稍候～"
IN_QUEUE = "您已在排队等待人工客服，当前排在第 {position} 位，客服接入后会第一时间回复您，请稍候～"


@dataclass
class Outcome:
    action: str
    reason: str
    intent: str | None = None
    confidence: float | None = None
    replies: list[str] = field(default_factory=list)
    handoff: str | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)

    def step(self, name: str, **detail: Any) -> None:
        self.steps.append({"step": name, **detail})


def _first_bot_turn(session: Session, conv: Conversation) -> bool:
    return not session.scalar(select(func.count()).select_from(Message).where(
        Message.conversation_id == conv.id, Message.sender == "bot"))


def _addressed_incidents(session: Session, conv: Conversation) -> set[str]:
    """The incident types an earlier bot reply in this conversation already addressed."""
    done: set[str] = set()
    for steps in session.scalars(select(BotDecision.steps).where(
            BotDecision.conversation_id == conv.id)):
        for step in steps or []:
            if step.get("step") == "context" and step.get("addressed"):
                done.add(str(step.get("incident")))
    return done


def _order_status(ctx: CustomerContext) -> str:
    if not ctx.orders:
        return f"{ctx.salutation}，没有查到您名下的订单。方便告诉我下单手机号或订单号吗？"
    lines = [f"{ctx.salutation}，为您查到最近的订单："]
    for o in ctx.orders:
        lines.append(f"· {o['id']}（{o['time']}，¥{o['amount']}）：{o['status_zh']}")
    return "\n".join(lines)


def _points_balance(ctx: CustomerContext) -> str:
    """「我有多少积分」 from the ledger: the balance, what expires when, how to use them."""
    ledger = ctx.points_ledger
    if ledger is None:
        if ctx.points in (None, ""):
            return (f"{ctx.salutation}，暂时没有查到您的积分记录。购物、邀请好友都可以获得积分，"
                    "积分可在小程序「会员中心」兑换优惠券和礼品。")
        return (f"{ctx.salutation}，您当前积分 {ctx.points}。积分可在小程序「会员中心」"
                "兑换优惠券和礼品。")
    balance = int(ctx.points)
    per_point = float(ledger["yuan_per_point"])
    rate = (f"，{round(1 / per_point):g} 积分抵 1 元" if per_point > 0
            and abs(1 / per_point - round(1 / per_point)) < 1e-9 else "")
    if balance < 0:
        return (f"{ctx.salutation}，您当前积分为 {balance}：订单退款收回了已经使用的积分，"
                "补足之前暂时不能兑换。之后购物获得的积分会先补足欠缺的部分。")
    lines = [f"{ctx.salutation}，您当前有 {balance} 积分"
             + (f"（约可抵 ¥{balance * per_point:,.2f}）" if per_point > 0 and balance else "")
             + "。"]
    soon = ledger["expiring"]
    if soon.points > 0 and soon.last_day is not None:
        day = soon.last_day
        lines.append(f"其中 {soon.points} 积分将于 {day.year} 年 {day.month} 月 {day.day} 日"
                     "后过期，请尽快使用。")
    elif ledger["expire_after_years"] > 0:
        lines.append("积分在获得后第二年的 12 月 31 日到期，目前没有即将过期的积分。"
                     if ledger["expire_after_years"] == 1 else
                     f"积分在获得 {ledger['expire_after_years']} 年后的年底到期，"
                     "目前没有即将过期的积分。")
    else:
        lines.append("您的积分长期有效。")
    lines.append(f"积分可在小程序「会员中心」兑换优惠券和礼品{rate}。")
    if ledger["rewards"]:
        lines.append("您现在就可以兑换：" + "、".join(f"{name}（{cost} 积分）"
                                              for name, cost in ledger["rewards"]) + "。")
    return "\n".join(lines)


ACTIONS = {"order_status": _order_status, "points_balance": _points_balance}


def _topic(runtime: kb.KbRuntime, text: str, out: Outcome) -> None:
    """On a hand-off by rule, still note what the message is about when the model is sure
    (「退货怎么弄，转人工」 is a return): the agent sees it and routing uses its skill group."""
    pred = runtime.classify(text)
    info = runtime.intent(pred.intent)
    if info is not None and not pred.out_of_scope and pred.confidence >= MIN_CONFIDENCE:
        out.intent, out.confidence = info.name, round(pred.confidence, 4)
        out.step("topic", intent=info.name, confidence=out.confidence)


def _options_offered(session: Session, conv: Conversation) -> list[str]:
    """The intents the bot's last decision in this conversation asked the customer to choose
    between (empty unless that decision was a clarifying question)."""
    last = session.scalars(select(BotDecision).where(BotDecision.conversation_id == conv.id)
                           .order_by(BotDecision.id.desc()).limit(1)).first()
    if last is None or last.action != "clarify":
        return []
    for step in last.steps or []:
        if step.get("step") == "clarify":
            return [str(o) for o in step.get("options", [])]
    return []


def _chosen(runtime: kb.KbRuntime, text: str, options: list[str]) -> str | None:
    """Which offered intent ``text`` picks: its number (1, 2, 第一个) or its title."""
    answer = text.strip().rstrip("。.！!～~").strip()
    numbers = {"1": 0, "一": 0, "第一个": 0, "第1个": 0, "2": 1, "二": 1, "第二个": 1,
               "第2个": 1}
    if answer in numbers and numbers[answer] < len(options):
        return options[numbers[answer]]
    for name in options:
        info = runtime.intent(name)
        if info is not None and answer and (answer == info.title or info.title in answer):
            return name
    return None


def _clarify(runtime: kb.KbRuntime, ctx: CustomerContext, pred: kb.Prediction,
             out: Outcome) -> bool:
    """Ask which of the two likeliest intents the customer means, when that is worth it."""
    ranked = [(n, c) for n, c in pred.alternatives[:2] if n not in NO_CLARIFY]
    if len(ranked) < 2 or ranked[1][1] < CLARIFY_MIN_SECOND or \
            ranked[0][1] + ranked[1][1] < CLARIFY_MIN_TOTAL:
        return False
    infos = [runtime.intent(n) for n, _ in ranked]
    if any(i is None or not (i.answer or i.action) for i in infos):
        return False
    titles = [i.title for i in infos if i is not None]
    out.replies.append(f"{ctx.salutation}，请问您想咨询的是：\n1. {titles[0]}\n2. {titles[1]}\n"
                       "回复数字即可，也可以换个说法描述您的问题～")
    out.action = "clarify"
    out.reason = f"不确定是「{titles[0]}」还是「{titles[1]}」，请客户选择"
    out.step("clarify", options=[n for n, _ in ranked])
    return True


def _answer_intent(ctx: CustomerContext, info: kb.IntentInfo, out: Outcome, why: str) -> bool:
    """Act on a recognised intent: hand off, run its action, or answer from its template."""
    if info.handoff:
        out.action, out.reason, out.handoff = "handoff", f"意图「{info.title}」需人工处理", \
            f"intent:{info.name}"
        if info.answer:
            out.replies.append(kb.render(info.answer, ctx.placeholders()))
        return True
    if info.action in ACTIONS:
        out.replies.append(ACTIONS[info.action](ctx))
        done = label(info.action, "action")
        out.action, out.reason = "action", f"意图「{info.title}」→ {done}"
        return True
    if info.answer:
        out.replies.append(kb.render(info.answer, ctx.placeholders()))
        out.action, out.reason = "answer", f"意图「{info.title}」{why}"
        return True
    return False


def decide(session: Session, runtime: kb.KbRuntime, ctx: CustomerContext, text: str, *,
           first_turn: bool, options: list[str] | None = None,
           addressed: set[str] | frozenset[str] = frozenset()) -> Outcome:
    """What to answer to ``text`` from this customer (no writes). ``options``: the intents
    the bot just asked the customer to choose between; ``addressed``: incident types an
    earlier reply of this conversation already spoke about."""
    out = Outcome(action="answer", reason="")
    incident = ctx.incidents[0] if ctx.incidents else None
    opening = incident_sentence(ctx, incident) if incident is not None and first_turn else ""
    context_step: dict[str, Any] = {}
    if incident is not None:
        out.step("context", incident=incident.type, at=incident.at.isoformat(),
                 addressed=bool(opening))
        context_step = out.steps[-1]

    if HUMAN_RE.search(text):
        out.action, out.reason, out.handoff = "handoff", "客户要求转人工", "asked_for_person"
        out.step("rule", matched="ask_for_person")
        _topic(runtime, text, out)
        return out
    if ANGER_RE.search(text):
        out.action, out.reason, out.handoff = "handoff", "客户情绪激动，优先人工安抚", "angry"
        out.step("rule", matched="anger")
        _topic(runtime, text, out)
        if opening:
            out.replies.append(opening)
        return out

    choice = _chosen(runtime, text, options) if options else None
    info = runtime.intent(choice)
    if info is not None:
        out.intent, out.confidence = info.name, 1.0
        out.step("choice", intent=info.name, options=options)
        if _answer_intent(ctx, info, out, "（客户选择）"):
            return out

    hit = runtime.keyword(text)
    if hit is not None:
        out.step("keyword", rule=hit.rule_id, pattern=hit.pattern)
        if hit.reply:
            out.replies.append(kb.render(hit.reply, ctx.placeholders()))
        out.action, out.reason = "keyword", f"关键词「{hit.pattern}」自动回复"
        if hit.handoff:
            out.action, out.handoff = "handoff", "keyword_rule"
        return out

    pred = runtime.classify(text)
    out.intent, out.confidence = pred.intent, round(pred.confidence, 4)
    out.step("intent", intent=pred.intent, confidence=out.confidence,
             out_of_scope=pred.out_of_scope, alternatives=pred.alternatives)
    info = runtime.intent(pred.intent)
    confident = info is not None and not pred.out_of_scope and pred.confidence >= MIN_CONFIDENCE
    if not opening and confident and info is not None:
        # Later in the conversation: an incident that bears on what is asked comes first.
        bearing = next((i for i in ctx.incidents if info.name in BEARS_ON.get(i.type, ())
                        and i.type not in addressed), None)
        if bearing is not None:
            opening = incident_sentence(ctx, bearing)
            if opening:
                incident = bearing
                out.step("context", incident=bearing.type, at=bearing.at.isoformat(),
                         addressed=True)
                if context_step.get("incident") == bearing.type:
                    out.steps.remove(context_step)

    if opening and (not confident or info is None or info.name in GREETING_INTENTS
                    or (info.action == "payment_help" and incident is not None)):
        # A vague message right after something went wrong: that is what it is about.
        out.replies.append(opening)
        out.action, out.reason = "context", f"近期事件「{event_type_zh(incident.type)}」优先处理"  # type: ignore[union-attr]
        return out
    if opening:
        out.replies.append(opening)

    if confident and info is not None and _answer_intent(
            ctx, info, out, f"置信度 {pred.confidence:.2f}"):
        return out

    faq = runtime.faq(text, k=1)
    if faq and faq[0].score >= FAQ_MIN_SCORE:
        out.step("faq", entry=faq[0].entry_id, score=round(faq[0].score, 4))
        out.replies.append(kb.render(faq[0].answer, ctx.placeholders()))
        out.action, out.reason = "faq", f"FAQ「{faq[0].question}」相似度 {faq[0].score:.2f}"
        return out
    if opening:
        out.action, out.reason = "context", "近期事件优先处理"
        return out
    if not pred.out_of_scope and _clarify(runtime, ctx, pred, out):
        return out
    out.action, out.handoff = "handoff", "low_confidence"
    out.reason = (f"置信度低（{pred.confidence:.2f}），无匹配 FAQ，转人工"
                  if runtime.trained else "知识库尚未训练，转人工")
    out.replies.append(UNSURE)
    return out


def _appointment_pending(session: Session, conv: Conversation) -> dict[str, Any] | None:
    """The booking dialogue's state stored with the bot's last decision, if it made one."""
    last = session.scalars(select(BotDecision).where(BotDecision.conversation_id == conv.id)
                           .order_by(BotDecision.id.desc()).limit(1)).first()
    for step in (last.steps or []) if last is not None else []:
        if step.get("step") == "appointment":
            return dict(step)
    return None


def _checkin_turn(session: Session, conv: Conversation, ctx: CustomerContext, text: str, *,
                  now: dt.datetime, timezone: str) -> Outcome | None:
    """签到: the daily check-in of the points domain (siyu.points.bot), once per local day."""
    from siyu.points import bot as checkin

    if not checkin.recognise(text):
        return None
    said, why = checkin.reply(session, conv.customer_id, salutation=ctx.salutation, now=now,
                              timezone=timezone)
    out = Outcome(action=checkin.ACTION, reason=why, replies=[said])
    out.step("checkin")
    return out


def _appointment_turn(session: Session, conv: Conversation, text: str, *, now: dt.datetime,
                      timezone: str) -> Outcome | None:
    """The appointments dialogue (book, reschedule, cancel: a bot action of the
    appointments domain), unless the message asks for a person or is angry."""
    from siyu.appointments import bot as appointments

    if HUMAN_RE.search(text) or ANGER_RE.search(text):
        return None
    got = appointments.turn(session, conv.customer_id, text,
                            pending=_appointment_pending(session, conv), now=now,
                            timezone=timezone)
    if got is None:
        return None
    out = Outcome(action=got.action, reason=got.reason, replies=list(got.replies))
    out.step("appointment", **got.state)
    return out


def handle_inbound(session: Session, message_id: int, *, now: dt.datetime | None = None
                   ) -> Outcome | None:
    """Run the bot on inbound message ``message_id``: store its decision, queue its replies,
    and hand off when it should. ``None`` when the bot has nothing to do (already decided,
    or a person holds the conversation)."""
    started = time.perf_counter()
    message = session.get(Message, message_id)
    if message is None or message.direction != "in":
        return None
    if session.scalar(select(BotDecision.id).where(BotDecision.message_id == message_id)):
        return None  # a retried job: decided before
    conv = session.get(Conversation, message.conversation_id)
    if conv is not None and conv.status == "waiting":
        return _while_waiting(session, conv, message, started)
    if conv is None or conv.status != "bot":
        return None
    settings = get_settings()
    ctx = load_context(session, conv.customer_id, now=now or utcnow(),
                       timezone=settings.timezone)
    runtime = kb.load_runtime(session)
    out = _checkin_turn(session, conv, ctx, message.text or "", now=now or utcnow(),
                        timezone=settings.timezone)
    if out is None:
        out = _appointment_turn(session, conv, message.text or "", now=now or utcnow(),
                                timezone=settings.timezone)
    if out is None:
        out = decide(session, runtime, ctx, message.text or "", first_turn=_first_bot_turn(
            session, conv), options=_options_offered(session, conv),
            addressed=_addressed_incidents(session, conv))
    previous_intent = conv.last_intent
    if out.handoff == "low_confidence":
        # Not understood: an earlier topic (a greeting) or an untrusted guess must not pose
        # as the reason of this hand-off in the queue.
        conv.last_intent = None
    elif out.intent:
        conv.last_intent = out.intent
    for text in out.replies:
        desk.post_outbound(session, conversation_id=conv.id, sender="bot", text=text)
    if out.handoff is not None:
        advisor = ctx.advisor_id if ctx.is_vip else None
        # The skill group of what they asked; for a bare 转人工, of what they asked before;
        # an angry customer with no clearer topic goes to after-sales (complaints).
        group = desk.GENERAL
        guesses = ((previous_intent,) if out.handoff == "low_confidence"
                   else (out.intent, previous_intent))
        for name in guesses:
            info = runtime.intent(name)
            if info is not None and info.skill_group:
                group = info.skill_group
                break
        if group == desk.GENERAL and out.handoff == "angry":
            group = desk.COMPLAINTS
        assignee = desk.hand_off(session, conv, reason=out.reason, advisor_id=advisor,
                                 skill_group=group, notice=out.handoff != "low_confidence")
        out.step("route", assignee=assignee, advisor_first=advisor is not None,
                 skill_group=group)
    session.add(BotDecision(conversation_id=conv.id, message_id=message_id,
                            action=out.action, intent=out.intent, confidence=out.confidence,
                            reason=out.reason, steps=out.steps,
                            latency_ms=round((time.perf_counter() - started) * 1000, 3)))
    session.flush()
    # What the customer said may move them into a scenario (帮亲友购买, 投诉 ...).
    journeys.request_customers(session, [conv.customer_id])
    return out


def _while_waiting(session: Session, conv: Conversation, message: Message, started: float
                   ) -> Outcome | None:
    """A customer already in the queue asks for a person again: tell them their place in
    the queue (anything else waits for the agent; the bot stays out)."""
    if not HUMAN_RE.search(message.text or ""):
        return None
    position = desk.queue_position(session, conv)
    out = Outcome(action="queue", reason=f"已在排队，告知客户排在第 {position} 位")
    out.replies.append(IN_QUEUE.format(position=position))
    out.step("queue", position=position)
    desk.post_outbound(session, conversation_id=conv.id, sender="bot", text=out.replies[0])
    session.add(BotDecision(conversation_id=conv.id, message_id=message.id,
                            action=out.action, intent=None, confidence=None,
                            reason=out.reason, steps=out.steps,
                            latency_ms=round((time.perf_counter() - started) * 1000, 3)))
    session.flush()
    return out
