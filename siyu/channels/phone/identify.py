"""Who is calling: the calling number, a provider's voiceprint, and one verifying question
when the number names more than one customer.

siyu's identity model gives each (kind, value) one holder, so a number is *held* by one
customer. It still *names* several when identity resolution refused to merge: a record
carrying the number but a different brand id (a wife ordering with her husband's phone)
made a second customer and queued a merge conflict whose shared identity is that number.
While that conflict is open, the number stands for both, and a call from it must not greet
either by name or tell either one's recent trouble.

* one holder, no open conflict on the number: the holder (``identified_by="phone"``); a
  verified ``voiceprint_id`` identity of the same customer confirms it
  (``"phone+voiceprint"``);
* several candidates: a verified ``voiceprint_id`` held by one of them decides
  (``"voiceprint"``); otherwise the caller is asked one question whose answer only the
  right person knows and which reveals nothing — the birthday's month and day, else the
  last four digits of their own registered mobile — on the keypad. A match names that
  customer (``"question"``); anything else is handed to a person without any customer's
  data;
* unknown number: a verified voiceprint held by a customer names them; otherwise a
  visitor. Unverified voiceprint identities never identify anyone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.customers.identity import KIND_PRIORITY, canonical_customer_id
from siyu.customers.models import Customer, Identity, MergeConflict

BIRTHDAY, PHONE_LAST4 = "birthday", "phone_last4"
QUESTIONS: dict[str, str] = {
    BIRTHDAY: "为了保护您的账户安全，请用按键输入您的出生月日，共四位数字，例如三月八日请按0308。",
    PHONE_LAST4: "为了保护您的账户安全，请用按键输入您在本店登记的手机号后四位。",
}
_DIGITS = re.compile(r"[0-9]")


@dataclass(frozen=True)
class Identification:
    customer_id: int | None
    identified_by: str | None
    candidates: list[int] = field(default_factory=list)  # several: ask a question


def _verified_voice_owner(session: Session, voiceprint_id: str | None) -> int | None:
    if not voiceprint_id:
        return None
    owner = session.scalar(select(Identity.customer_id).where(
        Identity.kind == "voiceprint_id", Identity.value == voiceprint_id.strip(),
        Identity.verified.is_(True)))
    return canonical_customer_id(session, owner) if owner is not None else None


def candidates_of(session: Session, number: str) -> list[int]:
    """The holder of ``number`` first, then every customer an open merge conflict on that
    number keeps apart from them (active, canonical, each once)."""
    holder = session.scalar(select(Identity.customer_id).where(
        Identity.kind == "phone", Identity.value == number))
    found: list[int] = [canonical_customer_id(session, holder)] if holder is not None else []
    rows = session.execute(select(MergeConflict.customer_a_id, MergeConflict.customer_b_id)
                           .where(MergeConflict.status == "open",
                                  MergeConflict.shared_kind == "phone",
                                  MergeConflict.shared_value == number)).all()
    for a, b in rows:
        for cid in (a, b):
            cid = canonical_customer_id(session, cid)
            customer = session.get(Customer, cid)
            if customer is not None and customer.status == "active" and cid not in found:
                found.append(cid)
    return found


def identify(session: Session, number: str | None, voiceprint_id: str | None
             ) -> Identification:
    """Who ``number`` (normalised; ``None`` when not a valid number) and the provider's
    ``voiceprint_id`` name (see the module notes)."""
    voice = _verified_voice_owner(session, voiceprint_id)
    found = candidates_of(session, number) if number else []
    if len(found) > 1:
        if voice in found:
            return Identification(voice, "voiceprint")
        return Identification(None, None, found)
    if found:
        return Identification(found[0], "phone+voiceprint" if voice == found[0] else "phone")
    if voice is not None:
        return Identification(voice, "voiceprint")
    return Identification(None, None)


def _answers(session: Session, kind: str, customer_id: int) -> set[str]:
    if kind == BIRTHDAY:
        customer = session.get(Customer, customer_id)
        return {customer.birthday.strftime("%m%d")} if customer and customer.birthday else set()
    phones = session.scalars(select(Identity.value).where(
        Identity.customer_id == customer_id, Identity.kind == "phone"))
    return {p[-4:] for p in phones if len(p) >= 4}


def pick_question(session: Session, candidates: list[int]) -> str | None:
    """The first question every candidate can answer and no two answer alike; ``None``
    when there is none."""
    for kind in (BIRTHDAY, PHONE_LAST4):
        answers = [_answers(session, kind, cid) for cid in candidates]
        if all(answers) and all(not (answers[i] & answers[j]) for i in range(len(answers))
                                for j in range(i + 1, len(answers))):
            return kind
    return None


def digits_in(text: str) -> str:
    """The digits of a keypad entry or an ASR transcript (「零三零八」 arrives as 0308)."""
    return "".join(_DIGITS.findall(text))


def check_answer(session: Session, kind: str, candidates: list[int], answer: str
                 ) -> int | None:
    """The one candidate whose answer this is, else ``None`` (never which one it was not)."""
    matched = [cid for cid in candidates if answer and answer in _answers(session, kind, cid)]
    return matched[0] if len(matched) == 1 else None


def sender_identity(session: Session, customer_id: int, number: str) -> tuple[str, str]:
    """The identity a caller's messages are filed under: the calling number when the
    customer holds it, else their own highest-priority identity (a verified caller on a
    shared number must not be filed under its holder)."""
    rows = session.execute(select(Identity.kind, Identity.value).where(
        Identity.customer_id == customer_id, Identity.kind != "voiceprint_id")).all()
    for kind, value in rows:
        if kind == "phone" and value == number:
            return kind, value
    if not rows:
        return "phone", number
    kind, value = min(rows, key=lambda r: KIND_PRIORITY.get(r[0], 99))
    return kind, value
