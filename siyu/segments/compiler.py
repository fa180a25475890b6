"""Compile a rule AST into SQL that selects the ids of the active customers it matches.

The result is one SQLAlchemy ``SELECT customers.id FROM customers WHERE status = 'active'
AND <predicate>`` that runs inside the database, on SQLite and PostgreSQL alike. Every value
from the rule (names, numbers, strings, time bounds) is a bound parameter; nothing from the
rule is ever spliced into the SQL text.

Semantics (what operators can rely on)
--------------------------------------
* **Two-valued logic.** Every condition is either true or false for every customer; data
  that is missing makes a condition *false*, and ``not`` turns that into *true*. So for a
  new customer without a ``customer_scores`` row, ``lifecycle = "decline"`` and
  ``lifecycle != "decline"`` are both false, while ``not lifecycle = "decline"`` is true.
  The same holds for an empty ``city``, a missing ``birthday`` (``age``) or an absent
  ``attr(...)``.
* **Counts include zero.** ``orders``, ``spend``, ``referrals`` and ``event(...)`` are 0 for a
  customer with no matching rows, so ``orders(last 30d) = 0``, ``spend < 100`` and
  ``event("coupon_used") = 0`` ("never") match customers with no orders or events at all.
  ``avg_order_value`` has no value without orders, so any comparison with it is false then.
* **Orders that count** are those not ``cancelled``, ``refunded`` or ``payment_failed``;
  their ``amount`` is what ``spend`` and ``avg_order_value`` add up.
* **Windows** are relative to ``now``: ``last 30d`` means ``now - 30 days <= ts <= now``
  (both ends included). All-time conditions also ignore anything after ``now``, so a rule
  evaluated "as of" an earlier moment sees the data as it was.
* **Day counts** (``last_order_days``, ``first_order_days``, ``last_active_days``,
  ``tenure_days``) are whole days elapsed: ``floor((now - t) / 1 day)``, from the
  timestamps stored in ``customer_scores`` (first/last order, last activity, as of the
  last score computation) and ``customers.created_at``. ``age`` is whole years since the
  birthday, in the brand's time zone.
* **Scores** (``rfm_*``, ``lifecycle``, ``audience``, ``clv``, ``p_alive``, ``fan_score``,
  assets) come from ``customer_scores``.
* **Consent** holds when the latest decision (by time, then id) at or before ``now`` for the
  channel and purpose is a grant.
* **attr("name")** reads the customer's JSON ``attributes``: compared with a number, JSON
  numbers and numeric strings (``"6200"``, ``"-3.5"``, as CSV imports store them) compare
  numerically and anything else is false; compared with a string, only JSON strings match.
* **attr_days("name")** is whole days from the date in a string attribute written
  ``YYYY-MM-DD`` (optionally followed by a time after a space or ``T``, which is ignored)
  to today in the brand's time zone (negative for a date in the future); a missing
  attribute, a non-string or a string that is not a real date makes it false.

Speed: each condition on another table becomes ``customers.id IN (SELECT customer_id ...)``
(or ``NOT IN`` when the condition holds for zero), which both databases turn into a hash or
index lookup; windows read ``orders``/``events`` through their time indexes.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Date,
    Float,
    Select,
    String,
    and_,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

from siyu.analytics.models import CustomerScore
from siyu.customers.models import Consent, Customer, CustomerTag, Identity, Referral, Tag
from siyu.events.models import Event, Order
from siyu.events.purchases import is_purchase
from siyu.segments.rules import (
    And,
    AttrCompare,
    AttrDays,
    Cmp,
    Compare,
    EventCount,
    HasIdentity,
    Not,
    Or,
    Rule,
    Scalar,
    Value,
    Window,
    nodes,
)

_MIN_TS = dt.datetime(1, 1, 2, tzinfo=dt.UTC)
_MAX_TS = dt.datetime(9999, 12, 30, tzinfo=dt.UTC)
_MIN_DATE = dt.date(1, 1, 1)
_MAX_DATE = dt.date(9999, 12, 31)

_SCORE_COLUMNS: dict[str, Any] = {
    name: getattr(CustomerScore, name)
    for name in ("rfm_r", "rfm_f", "rfm_m", "rfm_score", "rfm_tier", "clv", "p_alive",
                 "fan_score", "audience", "lifecycle", "value_asset", "brand_asset",
                 "retention_asset")
}
_SCORE_TIMESTAMPS = {
    "first_order_days": CustomerScore.first_order_at,
    "last_order_days": CustomerScore.last_order_at,
    "last_active_days": CustomerScore.last_active_at,
}
_PROFILE_COLUMNS: dict[str, Any] = {
    "city": Customer.city, "gender": Customer.gender, "tier": Customer.tier,
}

AtLeast = Callable[[int], ColumnElement[bool]]


@dataclass(frozen=True)
class Context:
    """What a rule is evaluated against: the moment ``now`` and the brand's time zone."""

    now: dt.datetime
    timezone: str = "Asia/Shanghai"
    # Inside an AND that has a "driver" (a behaviour condition whose customer list SQLite
    # iterates), per-customer lookups are written as correlated EXISTS probes through the
    # customer's own index entries instead of lists materialised over all customers.
    probe: bool = False
    # Only these customers are asked about (a recomputation of the customers an event
    # concerned): every list a condition builds is limited to them, so the work follows
    # the customers, not the size of the brand.
    scope: tuple[int, ...] | None = None

    def since(self, window: Window) -> dt.datetime:
        return _shift(self.now, -window.to_timedelta())

    @property
    def today(self) -> dt.date:
        return self.now.astimezone(ZoneInfo(self.timezone)).date()


def compile_rule(rule: Rule, *, now: dt.datetime, timezone: str = "Asia/Shanghai",
                 scope: Sequence[int] | None = None) -> Select[Any]:
    """``SELECT customers.id`` of the active customers matching ``rule`` at ``now``.

    ``rule`` must be valid (from `parse`, `from_json` or `validate`). ``now`` must be
    timezone-aware. The statement carries every rule value as a bound parameter.
    """
    return select(Customer.id).where(*rule_conditions(rule, now=now, timezone=timezone,
                                                      scope=scope))


def count_statement(rule: Rule, *, now: dt.datetime, timezone: str = "Asia/Shanghai"
                    ) -> Select[Any]:
    """``SELECT count(*)`` of the customers `compile_rule` selects."""
    return select(func.count()).select_from(Customer).where(
        *rule_conditions(rule, now=now, timezone=timezone))


def rule_conditions(rule: Rule, *, now: dt.datetime, timezone: str = "Asia/Shanghai",
                    scope: Sequence[int] | None = None) -> list[ColumnElement[bool]]:
    """The WHERE conditions on ``customers`` behind `compile_rule`, to combine with others
    (membership diffs select from ``customers`` with one more condition). With ``scope``,
    only those customers are selected and every subquery reads only their rows."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    ids = tuple(sorted({int(i) for i in scope})) if scope is not None else None
    ctx = Context(now.astimezone(dt.UTC), timezone, scope=ids)
    return [Customer.status == "active", *scoped(Customer.id, ctx), _predicate(rule, ctx)]


def scoped(key: Any, ctx: Context) -> list[ColumnElement[bool]]:
    """``key IN (the scope)`` when the context has one, else nothing."""
    return [] if ctx.scope is None else [key.in_(ctx.scope)]


# -- the predicate, node by node ------------------------------------------------------------


def _predicate(rule: Rule, ctx: Context) -> ColumnElement[bool]:
    if isinstance(rule, And):
        if any(_is_driver(a) for a in rule.args):
            probing = replace(ctx, probe=True)
            return and_(*(_predicate(a, ctx if _is_driver(a) else probing)
                          for a in rule.args))
        return and_(*(_predicate(a, ctx) for a in rule.args))
    if isinstance(rule, Or):
        return or_(*(_predicate(a, ctx) for a in rule.args))
    if isinstance(rule, Not):
        return not_(_predicate(rule.arg, ctx))
    if isinstance(rule, nodes.Tag):
        tag_id = select(Tag.id).where(Tag.name == rule.name).scalar_subquery()
        return _lookup(CustomerTag.customer_id, [CustomerTag.tag_id == tag_id], ctx)
    if isinstance(rule, HasIdentity):
        return _lookup(Identity.customer_id, [Identity.kind == rule.kind], ctx)
    if isinstance(rule, nodes.Consent):
        return _consent(rule, ctx)
    if isinstance(rule, EventCount):
        where = [Event.type == rule.event_type, *_window(Event.ts, rule.window, ctx)]
        return _count_condition(Event.customer_id, where, func.count(), rule.cmp, rule.value,
                                is_count=True, ctx=ctx)
    if isinstance(rule, AttrCompare):
        return _attr(rule)
    if isinstance(rule, AttrDays):
        return _attr_days(rule, ctx)
    if isinstance(rule, nodes.InScenario | nodes.Intent):
        from siyu.segments import journey_sql

        return journey_sql.predicate(rule, ctx)
    if isinstance(rule, nodes.VocLow):
        from siyu.voc.journey import unhappy_customers

        since = ctx.since(rule.window) if rule.window is not None else None
        return Customer.id.in_(unhappy_customers(rule.factor, since=since, until=ctx.now))
    return _compare(rule, ctx)


def _compare(rule: Compare, ctx: Context) -> ColumnElement[bool]:
    field, cmp, value = rule.field, rule.cmp, rule.value
    if field in ("journey", "days_until_repurchase", "orders_for_others"):
        from siyu.segments import journey_sql

        return journey_sql.compare(rule, ctx)
    if field in ("orders", "spend", "avg_order_value"):
        where = [is_purchase(),
                 *_window(Order.ts, rule.window, ctx)]
        if field == "orders":
            return _count_condition(Order.customer_id, where, func.count(), cmp, value,
                                    is_count=True, ctx=ctx)
        if field == "spend":
            return _count_condition(Order.customer_id, where, func.sum(Order.amount), cmp,
                                    value, is_count=False, ctx=ctx)
        having = _compare_expr(func.avg(Order.amount), cmp, value)
        return Customer.id.in_(
            select(Order.customer_id).where(*where, *scoped(Order.customer_id, ctx))
            .group_by(Order.customer_id)
            .having(having))
    if field == "referrals":
        where = _window(Referral.at, rule.window, ctx)
        return _count_condition(Referral.referrer_id, where, func.count(), cmp, value,
                                is_count=True, ctx=ctx)
    if field in _PROFILE_COLUMNS:
        column = _PROFILE_COLUMNS[field]
        return and_(column.is_not(None), _compare_expr(column, cmp, value))
    if field == "age":
        today = ctx.today
        return and_(Customer.birthday.is_not(None),
                    _whole_units(lambda n: Customer.birthday <= _years_before(today, n),
                                 cmp, value))
    if field == "tenure_days":
        return _whole_units(_days_at_least(Customer.created_at, ctx), cmp, value)
    if field in _SCORE_TIMESTAMPS:
        stamp = _SCORE_TIMESTAMPS[field]
        condition = and_(stamp.is_not(None),
                         _whole_units(_days_at_least(stamp, ctx), cmp, value))
        return _lookup(CustomerScore.customer_id, [condition], ctx)
    if field in _SCORE_COLUMNS:
        column = _SCORE_COLUMNS[field]
        return _lookup(CustomerScore.customer_id, [_compare_expr(column, cmp, value)], ctx)
    raise ValueError(f"no SQL for field {field!r}")  # the registry and this file disagree


def _lookup(key: Any, where: list[ColumnElement[bool]], ctx: Context) -> ColumnElement[bool]:
    """The customer has a row in ``key``'s table meeting ``where``: a list of customer ids
    (``id IN (...)``) or, when probing, a correlated ``EXISTS`` on the customer's rows."""
    if ctx.probe:
        return select(key).where(key == Customer.id, *where).exists()
    return Customer.id.in_(select(key).where(*where, *scoped(key, ctx)))


def _is_driver(rule: Rule) -> bool:
    """A behaviour condition compiled as ``id IN (customers with qualifying rows)``: a list
    the database can iterate, so sibling conditions need only check those customers."""
    if isinstance(rule, EventCount):
        return not _holds(rule.cmp, rule.value, 0)
    if isinstance(rule, Compare) and rule.field in ("orders", "spend", "referrals",
                                                    "orders_for_others"):
        return not _holds(rule.cmp, rule.value, 0)
    return isinstance(rule, Compare) and rule.field == "avg_order_value"


def _window(column: Any, window: Window | None, ctx: Context) -> list[ColumnElement[bool]]:
    if window is None:
        return [column <= ctx.now]
    return [column >= ctx.since(window), column <= ctx.now]


def _count_condition(
    key: Any, where: list[ColumnElement[bool]], aggregate: Any, cmp: Cmp, value: Value,
    *, is_count: bool, ctx: Context | None = None,
) -> ColumnElement[bool]:
    """``aggregate <cmp> value`` per customer, where customers without rows have 0.

    A comparison that is false at zero becomes ``id IN (groups passing it)``; one that is
    true at zero becomes ``id NOT IN (groups failing it)``, so customers without any rows are
    included without scanning them.
    """
    holds_at_zero = _holds(cmp, value, 0)
    groups = select(key).where(*where, *(scoped(key, ctx) if ctx else []))
    if is_count and _true_for_every_group(cmp, value, negated=holds_at_zero):
        # "count >= 1" holds for every group: no GROUP BY needed, just the keys.
        return not_(Customer.id.in_(groups)) if holds_at_zero else Customer.id.in_(groups)
    having = _compare_expr(aggregate, cmp, value)
    if holds_at_zero:
        return not_(Customer.id.in_(groups.group_by(key).having(not_(having))))
    return Customer.id.in_(groups.group_by(key).having(having))


def _true_for_every_group(cmp: Cmp, value: Value, *, negated: bool) -> bool:
    """Whether ``count <cmp> value`` (or its negation) holds for every count >= 1."""
    if negated:
        # not (count <cmp> value) for all counts >= 1  <=>  the comparison only admits 0.
        return (cmp is Cmp.EQ and value == 0) or (cmp is Cmp.LE and _num(value) < 1) or (
            cmp is Cmp.LT and _num(value) <= 1)
    return (cmp is Cmp.GE and _num(value) <= 1) or (cmp is Cmp.GT and _num(value) < 1) or (
        cmp is Cmp.NE and value == 0)


def _num(value: Value) -> float:
    return float(value) if isinstance(value, int | float) else float("nan")


def _holds(cmp: Cmp, value: Value, x: float) -> bool:
    """``x <cmp> value`` evaluated in Python (numbers only)."""
    items = value if isinstance(value, tuple) else (value,)
    nums = [v for v in items if isinstance(v, int | float)]
    if len(nums) != len(items):
        return False
    first = nums[0]
    return {
        Cmp.EQ: lambda: x == first,
        Cmp.NE: lambda: x != first,
        Cmp.LT: lambda: x < first,
        Cmp.LE: lambda: x <= first,
        Cmp.GT: lambda: x > first,
        Cmp.GE: lambda: x >= first,
        Cmp.IN: lambda: x in nums,
        Cmp.NOT_IN: lambda: x not in nums,
        Cmp.BETWEEN: lambda: nums[0] <= x <= nums[1],
    }[cmp]()


def _compare_expr(expr: Any, cmp: Cmp, value: Value) -> ColumnElement[bool]:
    """``expr <cmp> value`` with the value(s) bound as parameters."""
    items: tuple[Scalar, ...] = value if isinstance(value, tuple) else (value,)
    if cmp is Cmp.IN:
        return expr.in_(list(items))  # type: ignore[no-any-return]
    if cmp is Cmp.NOT_IN:
        return expr.not_in(list(items))  # type: ignore[no-any-return]
    if cmp is Cmp.BETWEEN:
        return expr.between(items[0], items[1])  # type: ignore[no-any-return]
    op = {Cmp.EQ: "__eq__", Cmp.NE: "__ne__", Cmp.LT: "__lt__", Cmp.LE: "__le__",
          Cmp.GT: "__gt__", Cmp.GE: "__ge__"}[cmp]
    return getattr(expr, op)(items[0])  # type: ignore[no-any-return]


def _whole_units(at_least: AtLeast, cmp: Cmp, value: Value) -> ColumnElement[bool]:
    """A comparison on a whole-number quantity ``q`` given ``at_least(n)`` = "q >= n".

    The quantity itself (whole days or years) is never computed in SQL: each comparison
    becomes a range on the stored timestamp or date, which indexes can serve.
    """
    items = value if isinstance(value, tuple) else (value,)
    ns = [int(v) for v in items]  # the registry makes these fields whole numbers

    def eq(n: int) -> ColumnElement[bool]:
        return and_(at_least(n), not_(at_least(n + 1)))

    if cmp is Cmp.GE:
        return at_least(ns[0])
    if cmp is Cmp.GT:
        return at_least(ns[0] + 1)
    if cmp is Cmp.LT:
        return not_(at_least(ns[0]))
    if cmp is Cmp.LE:
        return not_(at_least(ns[0] + 1))
    if cmp is Cmp.EQ:
        return eq(ns[0])
    if cmp is Cmp.NE:
        return not_(eq(ns[0]))
    if cmp is Cmp.BETWEEN:
        return and_(at_least(ns[0]), not_(at_least(ns[1] + 1)))
    any_of = or_(*(eq(n) for n in ns))
    return any_of if cmp is Cmp.IN else not_(any_of)


def _days_at_least(column: Any, ctx: Context) -> AtLeast:
    # floor((now - t) / 1 day) >= n  <=>  t <= now - n days
    return lambda n: column <= _days_before(ctx.now, n)


def _days_before(moment: dt.datetime, days: int) -> dt.datetime:
    try:
        return moment - dt.timedelta(days=days)
    except OverflowError:  # rules allow numbers up to 10^15; clamp to representable times
        return _MIN_TS if days > 0 else _MAX_TS


def _shift(moment: dt.datetime, delta: dt.timedelta) -> dt.datetime:
    try:
        return moment + delta
    except OverflowError:
        return _MIN_TS if delta < dt.timedelta(0) else _MAX_TS


def _years_before(today: dt.date, years: int) -> dt.date:
    """The latest birthday of someone at least ``years`` old today (Feb 29 -> Feb 28)."""
    year = today.year - years
    if year < _MIN_DATE.year:
        return _MIN_DATE
    if year > _MAX_DATE.year:
        return _MAX_DATE
    try:
        return today.replace(year=year)
    except ValueError:
        return today.replace(year=year, day=28)


def _consent(rule: nodes.Consent, ctx: Context) -> ColumnElement[bool]:
    latest = Consent.__table__.alias("c")
    newer = Consent.__table__.alias("c2")
    superseded = (
        select(newer.c.id).where(
            newer.c.customer_id == latest.c.customer_id,
            newer.c.channel == latest.c.channel,
            newer.c.purpose == latest.c.purpose,
            newer.c.at <= ctx.now,
            or_(newer.c.at > latest.c.at,
                and_(newer.c.at == latest.c.at, newer.c.id > latest.c.id)),
        ).exists()
    )
    if ctx.probe:
        return select(latest.c.id).where(
            latest.c.customer_id == Customer.id,
            latest.c.channel == rule.channel,
            latest.c.purpose == rule.purpose,
            latest.c.granted.is_(True),
            latest.c.at <= ctx.now,
            not_(superseded),
        ).exists()
    granted = select(latest.c.customer_id).where(
        latest.c.channel == rule.channel,
        latest.c.purpose == rule.purpose,
        latest.c.granted.is_(True),
        latest.c.at <= ctx.now,
        not_(superseded),
        *scoped(latest.c.customer_id, ctx),
    )
    return Customer.id.in_(granted)


# -- attr("name"): portable JSON extraction ---------------------------------------------------


def _attr(rule: AttrCompare) -> ColumnElement[bool]:
    items = rule.value if isinstance(rule.value, tuple) else (rule.value,)
    numeric = not isinstance(items[0], str)
    # The SQLite form depends on the key's characters, so it is a different construct (and
    # compiled-SQL cache entry), never a branch on a bound value.
    each = any(ch in '"\\' or ord(ch) < 32 for ch in rule.name)
    kind: type[FunctionElement[Any]] = (
        attr_number if numeric else attr_text_each if each else attr_text)
    expr: ColumnElement[Any] = kind(
        Customer.attributes, literal(rule.name, String()),
        literal(_sqlite_path(rule.name), String()))
    # A missing or mistyped attribute gives NULL; COALESCE makes the condition plainly false.
    return func.coalesce(_compare_expr(expr, rule.cmp, rule.value), false())


def _attr_days(rule: AttrDays, ctx: Context) -> ColumnElement[bool]:
    day = date_attribute(rule.name)
    today = ctx.today

    def at_least(n: int) -> ColumnElement[bool]:
        # floor(today - d) >= n  <=>  d <= today - n days (clamped to representable dates)
        try:
            bound = today - dt.timedelta(days=n)
        except OverflowError:
            return false() if n > 0 else true()
        return day <= literal(bound, Date())

    # Not a date gives NULL: the condition is false, whatever the comparison.
    return and_(day.is_not(None), _whole_units(at_least, rule.cmp, rule.value))


def date_attribute(name: str) -> ColumnElement[Any]:
    """The customer's attribute ``name`` as a date when it is a real ``YYYY-MM-DD[...]``
    string, else NULL: what ``attr_days`` reads, for other domains' queries (the playbooks'
    ``date`` trigger). ISO text on SQLite, a ``date`` on PostgreSQL."""
    return attr_date(Customer.attributes, literal(name, String()),
                     literal(_sqlite_path(name), String()))


class attr_date(FunctionElement[dt.date]):
    """The date part of a JSON string attribute ``YYYY-MM-DD[( |T)...]`` that is a real
    date (as ISO text on SQLite, a ``date`` on PostgreSQL), else NULL."""

    type = Date()
    name = "attr_date"
    inherit_cache = True


class attr_number(FunctionElement[float]):
    """A JSON attribute as a number (numbers and numeric strings), else NULL."""

    type = Float()
    name = "attr_number"
    inherit_cache = True


class attr_text(FunctionElement[str]):
    """A JSON attribute that is a string, else NULL."""

    type = String()
    name = "attr_text"
    inherit_cache = True


class attr_text_each(attr_text):
    """`attr_text` for a key SQLite cannot put in a JSON path."""

    name = "attr_text_each"
    inherit_cache = True


_NUMERIC_RE = r"^\s*-?[0-9]+(\.[0-9]+)?\s*$"


def _sqlite_path(name: str) -> str:
    """The SQLite JSON path of key ``name``: ``$."name"`` with the key escaped as stored.

    SQLite matches quoted path labels against the key's JSON text, which cannot contain a
    bare ``"``; keys with quotes or backslashes are read through ``json_each`` instead.
    """
    return '$."' + json.dumps(name, ensure_ascii=False)[1:-1] + '"'


def _args(element: FunctionElement[Any], compiler: SQLCompiler, **kw: Any
          ) -> tuple[str, str, str]:
    column, key, path = list(element.clauses)
    return (compiler.process(column, **kw), compiler.process(key, **kw),
            compiler.process(path, **kw))


def _sqlite_numeric(text_sql: str) -> str:
    # A numeric string: optional '-', digits, at most one '.', not ending in '.'.
    unsigned = f"(CASE WHEN substr({text_sql}, 1, 1) = '-' THEN substr({text_sql}, 2) " \
               f"ELSE {text_sql} END)"
    return (f"({unsigned} GLOB '[0-9]*' AND {unsigned} NOT GLOB '*[^0-9.]*' "
            f"AND {unsigned} NOT GLOB '*.*.*' AND {unsigned} NOT GLOB '*.')")


@compiles(attr_text_each, "sqlite")
def _attr_text_each_sqlite(element: attr_text, compiler: SQLCompiler, **kw: Any) -> str:
    column, key, _path = _args(element, compiler, **kw)
    return (f"(SELECT CASE WHEN je.type = 'text' THEN je.value END "
            f"FROM json_each({column}) AS je WHERE je.key = {key})")


@compiles(attr_number, "sqlite")
def _attr_number_sqlite(element: attr_number, compiler: SQLCompiler, **kw: Any) -> str:
    # json_each names each value once (je.value), where a path would repeat the extraction
    # in every clause of the numeric-string test; it also takes any key.
    column, key, _path = _args(element, compiler, **kw)
    text_sql = "trim(je.value)"
    return (f"(SELECT CASE WHEN je.type IN ('integer', 'real') THEN je.value "
            f"WHEN je.type = 'text' AND {_sqlite_numeric(text_sql)} "
            f"THEN CAST({text_sql} AS REAL) END "
            f"FROM json_each({column}) AS je WHERE je.key = {key})")


@compiles(attr_text, "sqlite")
def _attr_text_sqlite(element: attr_text, compiler: SQLCompiler, **kw: Any) -> str:
    column, _key, path = _args(element, compiler, **kw)
    return (f"(CASE WHEN json_type({column}, {path}) = 'text' "
            f"THEN json_extract({column}, {path}) END)")


@compiles(attr_date, "sqlite")
def _attr_date_sqlite(element: attr_date, compiler: SQLCompiler, **kw: Any) -> str:
    # date(x, '+0 days') normalises or rejects what is not a real date (2023-02-30 becomes
    # 2023-03-02, 2023-5-1 NULL), so the date part must come back from it unchanged.
    column, key, _path = _args(element, compiler, **kw)
    day = "substr(je.value, 1, 10)"
    return (f"(SELECT CASE WHEN je.type = 'text' AND date({day}, '+0 days') = {day} "
            f"AND substr(je.value, 1, 4) <> '0000' "
            f"AND (length(je.value) = 10 OR substr(je.value, 11, 1) IN (' ', 'T')) "
            f"THEN {day} END "
            f"FROM json_each({column}) AS je WHERE je.key = {key})")


_DATE_RE = r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])([ T].*)?$"


@compiles(attr_date, "postgresql")
def _attr_date_pg(element: attr_date, compiler: SQLCompiler, **kw: Any) -> str:
    column, key, _path = _args(element, compiler, **kw)
    pattern = compiler.process(literal(_DATE_RE, String()), **kw)
    text_sql = f"({column} ->> CAST({key} AS TEXT))"
    day = f"substr({text_sql}, 1, 10)"
    # The shape is checked first (CASE fixes the order), so make_date never sees a bad month
    # or year 0; a day past the month's end (02-30) comes back as another date and fails.
    made = (f"(make_date(CAST(substr({text_sql}, 1, 4) AS INTEGER), "
            f"CAST(substr({text_sql}, 6, 2) AS INTEGER), 1) "
            f"+ (CAST(substr({text_sql}, 9, 2) AS INTEGER) - 1))")
    return (f"(CASE WHEN jsonb_typeof({column} -> CAST({key} AS TEXT)) = 'string' "
            f"AND {text_sql} ~ {pattern} AND substr({text_sql}, 1, 4) <> '0000' "
            f"THEN (CASE WHEN to_char({made}, 'YYYY-MM-DD') = {day} "
            f"THEN CAST({day} AS DATE) END) END)")


@compiles(attr_number, "postgresql")
def _attr_number_pg(element: attr_number, compiler: SQLCompiler, **kw: Any) -> str:
    column, key, _path = _args(element, compiler, **kw)
    pattern = compiler.process(literal(_NUMERIC_RE, String()), **kw)
    value = f"({column} -> CAST({key} AS TEXT))"
    text_sql = f"({column} ->> CAST({key} AS TEXT))"
    # CASE fixes the evaluation order, so a non-numeric string is never cast.
    return (f"(CASE WHEN jsonb_typeof({value}) = 'number' THEN CAST({text_sql} AS FLOAT8) "
            f"WHEN jsonb_typeof({value}) = 'string' AND {text_sql} ~ {pattern} "
            f"THEN CAST(trim({text_sql}) AS FLOAT8) END)")


@compiles(attr_text, "postgresql")
@compiles(attr_text_each, "postgresql")
def _attr_text_pg(element: attr_text, compiler: SQLCompiler, **kw: Any) -> str:
    column, key, _path = _args(element, compiler, **kw)
    return (f"(CASE WHEN jsonb_typeof({column} -> CAST({key} AS TEXT)) = 'string' "
            f"THEN {column} ->> CAST({key} AS TEXT) END)")


__all__ = [
    "Context",
    "compile_rule",
    "count_statement",
    "rule_conditions",
]
