"""Message templates: sandboxed Jinja2 (no attribute access to internals, no imports), with
a fixed set of names so a typo is refused when the playbook is applied, not at send time.

A template sees ``customer`` (name, salutation 先生/女士, gender, city, tier, attributes,
advisor, points), ``event`` (the trigger: type, properties, ts), ``computed``
(``days_since_last_order``, ``last_product``, ``orders``) and ``context`` (the configured HTTP
provider's answer, e.g. the weather for the customer's city); the functions
``years_since(date)`` and ``days_since(date)``; ``content("名称")``, the recipient's own
tracked link to a content item (:mod:`siyu.content`: a click names who received it and from
which step); and the filters of Jinja2's sandbox.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, meta
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.sandbox import SandboxedEnvironment

NAMES = frozenset({"customer", "event", "computed", "context", "years_since", "days_since",
                   "now", "content"})
MAX_LENGTH = 20_000


class TemplateProblem(Exception):
    """A template that cannot be used; the message says why (and the line)."""


def _as_date(value: Any) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str) and value:
        try:
            return dt.date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None


def _years_since(value: Any, today: dt.date | None = None) -> int | None:
    day = _as_date(value)
    if day is None:
        return None
    today = today or dt.date.today()
    years = today.year - day.year - ((today.month, today.day) < (day.month, day.day))
    return max(years, 0)


def _days_since(value: Any, today: dt.date | None = None) -> int | None:
    day = _as_date(value)
    return None if day is None else ((today or dt.date.today()) - day).days


@lru_cache(maxsize=1)
def environment() -> SandboxedEnvironment:
    env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False,
                               trim_blocks=True, lstrip_blocks=True)
    return env


@lru_cache(maxsize=2048)
def _compiled(text: str) -> Any:
    return environment().from_string(text)


def check_template(text: str, *, names: frozenset[str] | None = None) -> None:
    """Raise :class:`TemplateProblem` unless ``text`` compiles and names only known values
    (``names``: those a template may use, :data:`NAMES` unless given)."""
    known = NAMES if names is None else names
    if len(text) > MAX_LENGTH:
        raise TemplateProblem(f"longer than {MAX_LENGTH} characters")
    env = environment()
    try:
        ast = env.parse(text)
    except TemplateSyntaxError as exc:
        raise TemplateProblem(f"line {exc.lineno}: {exc.message}") from None
    unknown = sorted(meta.find_undeclared_variables(ast) - known)
    if unknown:
        raise TemplateProblem(f"unknown name {unknown[0]!r} (known: {', '.join(sorted(known))})")


def content_names(text: str) -> set[str]:
    """The content items a template links to by a literal name (``content("春季新品")``),
    so applying a playbook can refuse an item that does not exist."""
    from jinja2 import nodes

    try:
        ast = environment().parse(text)
    except TemplateSyntaxError:
        return set()
    found = set()
    for call in ast.find_all(nodes.Call):
        if (isinstance(call.node, nodes.Name) and call.node.name == "content" and call.args
                and isinstance(call.args[0], nodes.Const) and isinstance(call.args[0].value, str)):
            found.add(call.args[0].value)
    return found


def render(text: str, values: dict[str, Any], *, today: dt.date | None = None) -> str:
    """Render ``text`` with ``values``; :class:`TemplateProblem` on a missing value or a
    forbidden operation (the sandbox's refusal)."""
    day = today or dt.date.today()
    names = {"years_since": lambda v: _years_since(v, day),
             "days_since": lambda v: _days_since(v, day), **values}
    try:
        return str(_compiled(text).render(**names)).strip()
    except (UndefinedError, SecurityError, TypeError, ValueError) as exc:
        raise TemplateProblem(str(exc)) from None
