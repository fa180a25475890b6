"""The field registry: the one description of every rule field, its type and operators.

Parsing, JSON validation, the Chinese description and (later) SQL compilation all read
this table, so a field added here is accepted everywhere at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

from siyu.kit import labels
from siyu.segments.rules.nodes import Cmp

MAX_TEXT_LENGTH = 4000
MAX_DEPTH = 20
MAX_LIST_ITEMS = 500
MAX_WINDOW_DAYS = 3650
MAX_STRING_LENGTH = 200
MAX_ABS_NUMBER = 10**15


class FieldKind(StrEnum):
    """How a field is written and which AST node it produces."""

    SCALAR = "scalar"  # `name [(last N<unit>)] <cmp> value` -> Compare
    TAG = "tag"  # `tag("name")` -> Tag
    IDENTITY = "identity"  # `has(kind)` -> HasIdentity
    CONSENT = "consent"  # `consent("channel", "purpose")` -> Consent
    EVENT = "event"  # `event("type"[, last N<unit>]) <cmp> count` -> EventCount
    ATTR = "attr"  # `attr("name") <cmp> value` -> AttrCompare
    ATTR_DAYS = "attr_days"  # `attr_days("name") <cmp> days` -> AttrDays
    SCENARIO = "scenario"  # `scenario("name")` -> InScenario
    INTENT = "intent"  # `intent("code or label"[, last N<unit>])` -> Intent
    VOC_LOW = "voc_low"  # `voc_low("factor"[, last N<unit>])` -> VocLow


class ValueType(StrEnum):
    """The type of the value a field is compared with (or of its argument, for predicates)."""

    NUMBER = "number"
    STRING = "string"
    ENUM = "enum"
    NUMBER_OR_STRING = "number_or_string"


NUMBER_OPS: frozenset[Cmp] = frozenset(Cmp)
EQUALITY_OPS: frozenset[Cmp] = frozenset({Cmp.EQ, Cmp.NE, Cmp.IN, Cmp.NOT_IN})
NO_OPS: frozenset[Cmp] = frozenset()


@dataclass(frozen=True)
class FieldSpec:
    """One rule field.

    ``name`` is the JSON ``"field"`` value and ``text_name`` the word used in rule text
    (they differ only for ``has_identity`` / ``has``). ``enum`` pairs each allowed value
    with its Chinese label. ``integer`` restricts numbers to whole numbers. ``window`` says
    whether ``(last N<unit>)`` is accepted; without one the field is evaluated over all time.
    ``operators`` is empty for predicates (tag, has, consent), which take no comparison.
    """

    name: str
    kind: FieldKind
    value_type: ValueType
    label_zh: str
    doc: str
    operators: frozenset[Cmp]
    unit_zh: str = ""
    integer: bool = False
    window: bool = False
    enum: tuple[tuple[str, str], ...] = ()
    text_name: str = ""
    enum_values: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "enum_values", frozenset(v for v, _ in self.enum))
        if not self.text_name:
            object.__setattr__(self, "text_name", self.name)

    def enum_label_zh(self, value: str) -> str:
        """The Chinese label of an enum value (the value itself when it has none)."""
        return dict(self.enum).get(value, value)


# One name per concept: the display names come from siyu.kit.labels, as on every page.
LIFECYCLE_STAGES: tuple[tuple[str, str], ...] = labels.LIFECYCLE
AUDIENCE_TYPES: tuple[tuple[str, str], ...] = labels.AUDIENCES
IDENTITY_KINDS: tuple[tuple[str, str], ...] = labels.IDENTITY_KINDS
JOURNEY_STAGES: tuple[tuple[str, str], ...] = (
    ("add_contact", "加微"),
    ("join_group", "入群"),
    ("retained", "留存"),
    ("active", "活跃"),
    ("converted", "转化"),
    ("after_sales", "售后"),
)
"""The private-domain journey, in order (siyu.journeys computes each customer's stage)."""
GENDERS: tuple[tuple[str, str], ...] = (("male", "男"), ("female", "女"), ("unknown", "未知"))


def _num(
    name: str,
    label_zh: str,
    doc: str,
    *,
    unit_zh: str = "",
    integer: bool = False,
    window: bool = False,
) -> FieldSpec:
    return FieldSpec(
        name,
        FieldKind.SCALAR,
        ValueType.NUMBER,
        label_zh,
        doc,
        NUMBER_OPS,
        unit_zh=unit_zh,
        integer=integer,
        window=window,
    )


def _str(name: str, label_zh: str, doc: str) -> FieldSpec:
    return FieldSpec(name, FieldKind.SCALAR, ValueType.STRING, label_zh, doc, EQUALITY_OPS)


def _enum(name: str, label_zh: str, doc: str, values: tuple[tuple[str, str], ...]) -> FieldSpec:
    return FieldSpec(
        name, FieldKind.SCALAR, ValueType.ENUM, label_zh, doc, EQUALITY_OPS, enum=values
    )


_SPECS: tuple[FieldSpec, ...] = (
    # Behaviour over orders; windowed fields default to all time.
    _num("orders", "下单", "number of orders placed", unit_zh="次", integer=True, window=True),
    _num("spend", "消费金额", "total amount spent", unit_zh="元", window=True),
    _num("avg_order_value", "客单价", "average order amount", unit_zh="元", window=True),
    _num(
        "referrals",
        "推荐人数",
        "customers this customer referred",
        unit_zh="人",
        integer=True,
        window=True,
    ),
    _num(
        "first_order_days", "距首次下单", "days since the first order", unit_zh="天", integer=True
    ),
    _num(
        "last_order_days",
        "距最近一次下单",
        "days since the latest order",
        unit_zh="天",
        integer=True,
    ),
    _num(
        "last_active_days",
        "距最近一次活跃",
        "days since the latest event of any kind",
        unit_zh="天",
        integer=True,
    ),
    _num(
        "tenure_days",
        "成为客户天数",
        "days since the customer was created",
        unit_zh="天",
        integer=True,
    ),
    # Profile.
    _str("city", "城市", "profile city"),
    _enum("gender", "性别", "profile gender", GENDERS),
    _num("age", "年龄", "whole years since the birthday", unit_zh="岁", integer=True),
    _str("tier", "会员等级", "membership tier name"),
    # Scores computed by analytics.
    _num("rfm_r", "RFM 近度分(R)", "RFM recency score"),
    _num("rfm_f", "RFM 频度分(F)", "RFM frequency score"),
    _num("rfm_m", "RFM 金额分(M)", "RFM monetary score"),
    _num("rfm_score", "RFM 总分", "RFM combined score"),
    _str("rfm_tier", "RFM 分层", "RFM tier name"),
    _num("clv", "客户终身价值", "predicted customer lifetime value", unit_zh="元"),
    _num("p_alive", "存活概率", "probability the customer is still active (0..1)"),
    _num("fan_score", "铁粉分", "true-fan score"),
    _enum("audience", "人群类型", "audience type", AUDIENCE_TYPES),
    _enum("lifecycle", "生命周期阶段", "lifecycle stage", LIFECYCLE_STAGES),
    _num("value_asset", "价值资产", "customer asset: value (transactions)"),
    _num("brand_asset", "品牌资产", "customer asset: brand (satisfaction, loyalty)"),
    _num("retention_asset", "保留资产", "customer asset: retention (repurchase, tenure)"),
    # Journeys (siyu.journeys keeps these current).
    _enum("journey", "旅程阶段", "journey stage", JOURNEY_STAGES),
    _num(
        "days_until_repurchase",
        "距复购到期",
        "whole days until the latest purchase runs out (negative: ran out that long ago)",
        unit_zh="天",
        integer=True,
    ),
    _num(
        "orders_for_others",
        "为他人下单",
        "purchases sent to a recipient other than the customer",
        unit_zh="次",
        integer=True,
        window=True,
    ),
    # Functional forms.
    FieldSpec("tag", FieldKind.TAG, ValueType.STRING, "标签", "the customer has the tag", NO_OPS),
    FieldSpec(
        "has_identity",
        FieldKind.IDENTITY,
        ValueType.ENUM,
        "已绑定",
        "the customer has an identity of the kind",
        NO_OPS,
        enum=IDENTITY_KINDS,
        text_name="has",
    ),
    FieldSpec(
        "consent",
        FieldKind.CONSENT,
        ValueType.STRING,
        "已授权",
        "consent for (channel, purpose) is granted now",
        NO_OPS,
    ),
    FieldSpec(
        "event",
        FieldKind.EVENT,
        ValueType.NUMBER,
        "事件",
        "number of events of the type",
        NUMBER_OPS,
        unit_zh="次",
        integer=True,
        window=True,
    ),
    FieldSpec(
        "attr",
        FieldKind.ATTR,
        ValueType.NUMBER_OR_STRING,
        "属性",
        "free-form profile attribute; numbers compare numerically, strings as text",
        NUMBER_OPS,
    ),
    FieldSpec(
        "attr_days",
        FieldKind.ATTR_DAYS,
        ValueType.NUMBER,
        "距属性日期",
        "whole days since the YYYY-MM-DD date in a string attribute (false if not a date)",
        NUMBER_OPS,
        unit_zh="天",
        integer=True,
    ),
    FieldSpec(
        "scenario",
        FieldKind.SCENARIO,
        ValueType.STRING,
        "场景",
        "the customer is in the scenario now",
        NO_OPS,
    ),
    FieldSpec(
        "intent",
        FieldKind.INTENT,
        ValueType.STRING,
        "意图",
        "the bot recognised the intent in the customer's messages (in the window)",
        NO_OPS,
        window=True,
    ),
    FieldSpec(
        "voc_low",
        FieldKind.VOC_LOW,
        ValueType.STRING,
        "体验差评",
        "the customer was unhappy with the factor or journey step (in the window)",
        NO_OPS,
        window=True,
    ),
)

FIELDS: Mapping[str, FieldSpec] = MappingProxyType({s.name: s for s in _SPECS})
"""Every field by its JSON name (``"orders"``, ``"has_identity"``, ...)."""

TEXT_FIELDS: Mapping[str, FieldSpec] = MappingProxyType({s.text_name: s for s in _SPECS})
"""Every field by the word used in rule text (``"orders"``, ``"has"``, ...)."""
