"""Wire shapes of the customers domain (ingest records and read models)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    ValidationInfo,
    field_validator,
    model_validator,
)

from siyu.customers.errors import InvalidIdentity
from siyu.customers.identity import IdentityRef, normalize_identity
from siyu.customers.models import GENDERS, IDENTITY_KINDS
from siyu.kit.timeutil import as_aware

RecordId = Field(min_length=1, max_length=100, pattern=r"^[^\s]+$")


def _ctx(info: ValidationInfo, key: str, default: str) -> str:
    ctx = info.context or {}
    return str(ctx.get(key, default))


class IdentityIn(BaseModel):
    """One identity of a record, e.g. ``{"kind": "phone", "value": "+86 138 0013 8000"}``."""

    model_config = ConfigDict(extra="forbid")

    kind: str
    value: str | int
    verified: StrictBool = False

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, v: str) -> str:
        if v not in IDENTITY_KINDS:
            raise ValueError(
                f"unknown identity kind {v!r}; expected one of {', '.join(IDENTITY_KINDS)}"
            )
        return v

    @model_validator(mode="after")
    def _normalise(self, info: ValidationInfo) -> IdentityIn:
        try:
            self.value = normalize_identity(self.kind, self.value, _ctx(info, "region", "CN"))
        except InvalidIdentity as exc:
            raise ValueError(f"value: {exc.message}") from None
        return self

    def ref(self) -> IdentityRef:
        return IdentityRef(self.kind, str(self.value), self.verified)


class IdentifiedRecord(BaseModel):
    """A record that names its customer by brand id (``customer_id``) and/or identities."""

    model_config = ConfigDict(extra="forbid")

    customer_id: str | None = Field(default=None, min_length=1, max_length=200)
    identities: list[IdentityIn] = Field(default_factory=list, max_length=20)

    @model_validator(mode="after")
    def _someone(self) -> IdentifiedRecord:
        if not self.customer_id and not self.identities:
            raise ValueError("a record needs customer_id or at least one identity")
        return self

    def refs(self) -> list[IdentityRef]:
        refs = [i.ref() for i in self.identities]
        if self.customer_id:
            refs.append(IdentityRef("external_id", self.customer_id.strip()))
        return list(dict.fromkeys(refs))


class ConsentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: str = Field(min_length=1, max_length=30)
    purpose: str = Field(min_length=1, max_length=30)
    granted: StrictBool
    at: dt.datetime | None = None
    source: str | None = Field(default=None, max_length=60)

    @field_validator("at")
    @classmethod
    def _aware(cls, v: dt.datetime | None, info: ValidationInfo) -> dt.datetime | None:
        return as_aware(v, _ctx(info, "tz", "Asia/Shanghai")) if v else v


PROFILE_FIELDS = ("name", "gender", "birthday", "city", "tier", "acquisition_channel")


class CustomerIn(BaseModel):
    """An upsert of one customer. ``id`` is the brand's own customer id (its external_id)."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(default=None, min_length=1, max_length=100, pattern=r"^[^\s]+$")
    identities: list[IdentityIn] = Field(default_factory=list, max_length=20)
    name: str | None = Field(default=None, max_length=100)
    gender: str | None = None
    birthday: dt.date | None = None
    city: str | None = Field(default=None, max_length=50)
    tier: str | None = Field(default=None, max_length=30)
    acquisition_channel: str | None = Field(default=None, max_length=30)
    attributes: dict[str, Any] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list, max_length=100)
    consents: list[ConsentIn] = Field(default_factory=list, max_length=50)
    referred_by: str | None = Field(default=None, max_length=200)

    @model_validator(mode="before")
    @classmethod
    def _lift_profile(cls, data: Any) -> Any:
        # Scripts often put profile fields inside "attributes"; lift the known ones.
        if isinstance(data, dict) and isinstance(data.get("attributes"), dict):
            attrs = dict(data["attributes"])
            lifted = {k: attrs.pop(k) for k in PROFILE_FIELDS if k in attrs and k not in data}
            if lifted:
                data = {**data, **lifted, "attributes": attrs}
        return data

    @field_validator("gender")
    @classmethod
    def _gender(cls, v: str | None) -> str | None:
        if v is None:
            return v
        aliases = {"男": "male", "女": "female", "m": "male", "f": "female", "未知": "unknown"}
        v = aliases.get(v.strip().lower(), v.strip().lower())
        if v not in GENDERS:
            raise ValueError(f"gender must be one of {', '.join(GENDERS)} (or 男/女)")
        return v

    @field_validator("tags")
    @classmethod
    def _tags(cls, v: list[str]) -> list[str]:
        for tag in v:
            if not tag.strip() or len(tag) > 60:
                raise ValueError("tags must be non-empty and at most 60 characters")
        return [t.strip() for t in v]

    @field_validator("birthday")
    @classmethod
    def _birthday(cls, v: dt.date | None) -> dt.date | None:
        if v is not None and not (dt.date(1900, 1, 1) <= v <= dt.date.today()):
            raise ValueError("birthday must be between 1900-01-01 and today")
        return v

    @model_validator(mode="after")
    def _someone(self) -> CustomerIn:
        if not self.id and not self.identities:
            raise ValueError("a customer needs an id or at least one identity")
        return self

    def refs(self) -> list[IdentityRef]:
        refs = [i.ref() for i in self.identities]
        if self.id:
            refs.insert(0, IdentityRef("external_id", self.id))
        return list(dict.fromkeys(refs))
