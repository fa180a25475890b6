"""The rule AST: immutable, hashable nodes compared by value.

The nodes do not validate themselves; `parse`, `from_json` and `validate` do, so that
every way into a stored rule applies the same checks (see `checks.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Literal, TypeAlias


class Cmp(StrEnum):
    """Comparison operators; the value is the canonical spelling in text and JSON."""

    EQ = "="
    NE = "!="
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="
    IN = "in"
    NOT_IN = "not in"
    BETWEEN = "between"


Scalar: TypeAlias = int | float | str
"""A literal: ``int`` for integer literals, ``float`` for decimals, ``str`` for strings."""

Value: TypeAlias = Scalar | tuple[Scalar, ...]
"""A scalar, or a tuple for ``in``/``not in`` (1..500 items) and ``between`` (low, high)."""

WindowUnit: TypeAlias = Literal["h", "d", "w"]

_UNIT_HOURS: dict[str, int] = {"h": 1, "d": 24, "w": 24 * 7}


@dataclass(frozen=True)
class Window:
    """A trailing time window, ``last <amount><unit>``; the unit is kept for faithful printing."""

    amount: int
    unit: WindowUnit

    @property
    def hours(self) -> int:
        """The window length in hours (``7d`` -> 168)."""
        return self.amount * _UNIT_HOURS[self.unit]

    def to_timedelta(self) -> timedelta:
        """The window length as a `timedelta`, for computing the lower time bound."""
        return timedelta(hours=self.hours)


@dataclass(frozen=True)
class And:
    """All of ``args`` (two or more) hold."""

    args: tuple[Rule, ...]


@dataclass(frozen=True)
class Or:
    """At least one of ``args`` (two or more) holds."""

    args: tuple[Rule, ...]


@dataclass(frozen=True)
class Not:
    """``arg`` does not hold."""

    arg: Rule


@dataclass(frozen=True)
class Compare:
    """A registry field compared with a value, optionally over a trailing window.

    ``window is None`` means all time, and is the only choice for fields without windows.
    """

    field: str
    cmp: Cmp
    value: Value
    window: Window | None = None


@dataclass(frozen=True)
class Tag:
    """The customer carries the tag ``name``."""

    name: str


@dataclass(frozen=True)
class HasIdentity:
    """The customer has at least one identity of ``kind`` (e.g. ``wecom_external_userid``)."""

    kind: str


@dataclass(frozen=True)
class Consent:
    """The customer's consent for ``channel`` and ``purpose`` is granted now."""

    channel: str
    purpose: str


@dataclass(frozen=True)
class EventCount:
    """The number of ``event_type`` events (in ``window``, else all time) compared with a value."""

    event_type: str
    cmp: Cmp
    value: Value
    window: Window | None = None


@dataclass(frozen=True)
class AttrCompare:
    """A free-form profile attribute compared with a number (numerically) or string."""

    name: str
    cmp: Cmp
    value: Value


@dataclass(frozen=True)
class AttrDays:
    """Whole days since the date in a string attribute (``YYYY-MM-DD``, optionally followed
    by a time), at ``now`` in the brand's time zone, compared with a whole number; an
    attribute that is missing, not a string or not a date makes the condition false."""

    name: str
    cmp: Cmp
    value: Value


@dataclass(frozen=True)
class InScenario:
    """The customer is in the scenario ``name`` now (siyu.journeys keeps memberships)."""

    name: str


@dataclass(frozen=True)
class Intent:
    """The bot recognised ``intent`` (a code; labels are normalised to codes where rules are
    stored) in one of the customer's messages in ``window`` (else ever)."""

    intent: str
    window: Window | None = None


@dataclass(frozen=True)
class VocLow:
    """The customer was unhappy with ``factor`` (a factor-tree node, its subcategories
    included) in ``window`` (else ever): a negative mention in their feedback, a low
    rating of it, or a low score in a survey of that journey step (siyu.voc)."""

    factor: str
    window: Window | None = None


Condition: TypeAlias = (
    Compare | Tag | HasIdentity | Consent | EventCount | AttrCompare | AttrDays | InScenario
    | Intent | VocLow
)
Rule: TypeAlias = And | Or | Not | Condition
