"""SQL for the rule conditions that read journeys and conversations: ``journey``,
``days_until_repurchase``, ``orders_for_others``, ``scenario(...)`` and ``intent(...)``.

Kept beside the compiler (which dispatches here) so the compiler stays one readable file
of the original fields. Semantics:

* ``journey`` is the stage stored by siyu.journeys (``customer_journeys``); a customer not
  computed yet has none, so ``journey = ...`` and ``journey != ...`` are both false.
* ``days_until_repurchase`` counts calendar days, in the brand's time zone, from today to
  the day the latest purchase's first item runs out (``repurchase_due``): 0 on that day,
  negative after it; false for a customer without one. Compared as a range on ``due_at``
  (the local midnight of today + n days), which the index serves.
* ``orders_for_others`` counts purchases (orders that count) whose recipient is not the
  customer: a recipient name that differs from the customer's known name, or a recipient
  phone that none of the customer's phone identities ends with.
* ``scenario("X")`` holds while the customer is a member of scenario X.
* ``intent("code", last 7d)`` holds when the bot recognised the intent, with at least
  :data:`RECOGNISED_CONFIDENCE`, in a message the customer sent in the window. An intent
  written by its title (「退货」) matches the intent with that title too.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, exists, func, literal, not_, or_, select
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement

from siyu.customers.models import Customer, Identity
from siyu.events.models import Order
from siyu.events.purchases import is_purchase
from siyu.journeys.models import CustomerJourney, CustomerScenario, RepurchaseDue, Scenario
from siyu.kb.models import Intent as KbIntent
from siyu.segments.rules import Compare, InScenario, Intent
from siyu.service.models import BotDecision, Conversation, Message

FIELDS = frozenset({"journey", "days_until_repurchase", "orders_for_others"})
RECOGNISED_CONFIDENCE = 0.45
"""The bot's own threshold for acting on an intent (siyu.service.bot.MIN_CONFIDENCE)."""


def compare(rule: Compare, ctx: Any) -> ColumnElement[bool]:
    from siyu.segments import compiler as c

    if rule.field == "journey":
        return c._lookup(CustomerJourney.customer_id,
                         [c._compare_expr(CustomerJourney.stage, rule.cmp, rule.value)], ctx)
    if rule.field == "days_until_repurchase":
        def at_least(n: int) -> ColumnElement[bool]:
            # local date of due - today >= n  <=>  due >= local midnight of today + n days
            return RepurchaseDue.due_at >= _local_midnight(ctx.today, n, ctx.timezone)

        return c._lookup(RepurchaseDue.customer_id,
                         [c._whole_units(at_least, rule.cmp, rule.value)], ctx)
    owner = aliased(Customer)
    phone = aliased(Identity)
    other = or_(
        and_(Order.recipient_name.is_not(None), owner.name.is_not(None),
             Order.recipient_name != owner.name),
        and_(Order.recipient_phone.is_not(None), not_(exists().where(
            phone.customer_id == Order.customer_id, phone.kind == "phone",
            phone.value.like(literal("%").concat(Order.recipient_phone))))),
    )
    where = [is_purchase(), owner.id == Order.customer_id,
             other, *c._window(Order.ts, rule.window, ctx)]
    return c._count_condition(Order.customer_id, where, func.count(), rule.cmp, rule.value,
                              is_count=True, ctx=ctx)


def predicate(rule: InScenario | Intent, ctx: Any) -> ColumnElement[bool]:
    from siyu.segments import compiler as c

    if isinstance(rule, InScenario):
        scenario_id = select(Scenario.id).where(Scenario.name == rule.name).scalar_subquery()
        return c._lookup(CustomerScenario.customer_id,
                         [CustomerScenario.scenario_id == scenario_id], ctx)
    titled = select(KbIntent.name).where(KbIntent.title == rule.intent)
    found = (
        select(Conversation.customer_id)
        .join(BotDecision, BotDecision.conversation_id == Conversation.id)
        .join(Message, Message.id == BotDecision.message_id)
        .where(or_(BotDecision.intent == rule.intent, BotDecision.intent.in_(titled)),
               BotDecision.confidence >= RECOGNISED_CONFIDENCE,
               *c._window(Message.created_at, rule.window, ctx),
               *c.scoped(Conversation.customer_id, ctx))
    )
    if ctx.probe:
        return found.where(Conversation.customer_id == Customer.id).exists()
    return Customer.id.in_(found)


def _local_midnight(today: dt.date, days: int, timezone: str) -> dt.datetime:
    try:
        day = today + dt.timedelta(days=days)
    except OverflowError:  # rules allow numbers up to 10^15; clamp to representable times
        return dt.datetime(1, 1, 2, tzinfo=dt.UTC) if days < 0 else dt.datetime(
            9999, 12, 30, tzinfo=dt.UTC)
    return dt.datetime.combine(day, dt.time(0), ZoneInfo(timezone)).astimezone(dt.UTC)


def due_in_days(due_at: dt.datetime, now: dt.datetime, timezone: str = "Asia/Shanghai"
                ) -> int:
    """``days_until_repurchase`` for one due time, as the SQL above computes it."""
    zone = ZoneInfo(timezone)
    return (due_at.astimezone(zone).date() - now.astimezone(zone).date()).days
