"""How personal values look when the reader may not see them: the one place that hides the
middle of phone numbers and e-mail addresses, in identity values and inside free text.

Which reader sees what is decided by :func:`siyu.privacy.service.sees_pii`; this module
only knows values.
"""

from __future__ import annotations

import re
from typing import Any

_PHONE_IN_TEXT = re.compile(r"\+?\d{7,15}")
_EMAIL_IN_TEXT = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# Identity kinds whose values are personal; others (brand ids, WeCom ids) are pseudonymous
# keys that staff need to look records up.
PERSONAL_KINDS = frozenset({"phone", "email"})


def mask_value(kind: str, value: str) -> str:
    """Hide the middle of personal identifiers: ``+8613800138000`` -> ``138****8000``."""
    if kind == "phone":
        digits = value[3:] if value.startswith("+86") else value.lstrip("+")
        if len(digits) >= 7:
            return f"{digits[:3]}****{digits[-4:]}"
        return "****"
    if kind == "email":
        local, _, domain = value.partition("@")
        return f"{local[:1]}***@{domain}"
    return value


def display_phone(value: str) -> str:
    """A stored ``+86`` number as people write it at home."""
    return value[3:] if value.startswith("+86") else value


def show_value(kind: str, value: str) -> str:
    """An identity value in full, as people read it (domestic numbers without +86)."""
    return display_phone(value) if kind == "phone" else value


def mask_text(text: str) -> str:
    """Mask phone numbers and e-mail addresses inside free text (merge reasons, summaries)."""
    text = _EMAIL_IN_TEXT.sub(lambda m: mask_value("email", m.group()), text)
    return _PHONE_IN_TEXT.sub(lambda m: mask_value("phone", m.group()), text)


_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")


def redact(reason: str) -> str:
    """A validation reason without the values it quotes (``invalid phone number '138x'``
    -> ``invalid phone number '…'``), phone numbers and e-mail addresses: fit for files that
    leave the system, such as import reject files."""
    return mask_text(_QUOTED.sub("'…'", reason))


def mask_deep(value: Any) -> Any:
    """:func:`mask_text` applied to every string inside a JSON-like value."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {k: mask_deep(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_deep(v) for v in value]
    return value
