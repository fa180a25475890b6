"""After-call satisfaction by SMS link: a call that ends without a keypad score gets an SMS
(through the outbox) with a signed link to a one-question page (1–5); the answer is the
call's score and its conversation's CSAT, so it counts in the service metrics like a
keypad score.

When (``SIYU_PHONE_CSAT_SMS``):

* ``missed`` (default): the caller hung up on the keypad question, or the call went to a
  person (the call centre has the call then, and siyu never gets to ask on the keypad);
* ``always``: every call that ends without a keypad score;
* ``off``: never.

Only a call filed under a customer who has a mobile on file gets one, once
(outbox key ``phone-csat:<call>``), and only when ``SIYU_PHONE_PUBLIC_URL`` says where
customers can open siyu's pages. The link is signed with this install's ``phone-csat``
key, names the call only, lasts 7 days and takes one answer.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.channels.phone.models import PhoneCall
from siyu.db import utcnow
from siyu.errors import SiyuError

PURPOSE = "phone-csat"
SALT = "siyu.channels.phone.csat"
MAX_AGE_SECONDS = 7 * 24 * 3600
MODES = ("off", "missed", "always")
SMS_TEXT = "【客服中心】感谢您的来电，请为本次服务打分（1到5分）：{url}"
PATH = "/channels/phone/csat/"


class CsatLinkRefused(SiyuError):
    """A survey link that is forged, expired, or already answered."""

    status_code = 403
    code = "csat_link_refused"


def _serializer(session: Session, settings: Any) -> Any:
    from itsdangerous import URLSafeTimedSerializer

    from siyu.auth.secrets import purpose_key

    key = purpose_key(settings, PURPOSE, engine=session.get_bind().engine)  # type: ignore[union-attr]
    return URLSafeTimedSerializer(key.hex(), salt=SALT)


def sign(session: Session, settings: Any, call_id: str) -> str:
    return str(_serializer(session, settings).dumps({"c": call_id}))


def read(session: Session, settings: Any, token: str) -> PhoneCall:
    """The call a token names; forged, altered and expired tokens are refused."""
    from itsdangerous import BadSignature, SignatureExpired

    try:
        data = _serializer(session, settings).loads(token, max_age=MAX_AGE_SECONDS)
    except SignatureExpired as exc:
        raise CsatLinkRefused("这个评价链接已过期，感谢您的关注", details=[
            {"field": "token", "reason": "expired"}]) from exc
    except BadSignature as exc:
        raise CsatLinkRefused("评价链接无效", details=[
            {"field": "token", "reason": "bad signature"}]) from exc
    call = session.scalars(select(PhoneCall).where(
        PhoneCall.call_id == str(data.get("c")))).first()
    if call is None or call.conversation_id is None:
        raise CsatLinkRefused("评价链接无效", details=[
            {"field": "token", "reason": "unknown call"}])
    return call


def wanted(call: PhoneCall, *, mode: str, asked_on_keypad: bool) -> bool:
    """Whether the ended ``call`` should get the SMS link under ``mode``."""
    if mode not in MODES or mode == "off" or call.csat is not None:
        return False
    if call.customer_id is None or call.conversation_id is None:
        return False
    return mode == "always" or asked_on_keypad or call.transferred_at is not None


def send_link(session: Session, call: PhoneCall, *, settings: Any, public_url: str) -> bool:
    """Queue the SMS with the signed link to the customer's own mobile; ``False`` (nothing
    queued) without a public URL or a mobile on file."""
    from siyu.channels import outbox
    from siyu.customers.models import Identity

    if not public_url or call.customer_id is None or not session.scalar(
            select(Identity.id).where(Identity.customer_id == call.customer_id,
                                      Identity.kind == "phone")):
        return False
    url = public_url.rstrip("/") + PATH + sign(session, settings, call.call_id)
    outbox.enqueue_message(session, key=f"phone-csat:{call.call_id}"[:200],
                           customer_id=call.customer_id, channel="sms", purpose="service",
                           source="phone", text=SMS_TEXT.format(url=url))
    return True


def answer(session: Session, settings: Any, token: str, score: int) -> PhoneCall:
    """Store the caller's score from the link: on the call and as its conversation's CSAT
    (against the bot or the agent, as for chat). One answer per call; a keypad score
    given meanwhile stands."""
    from siyu.channels import desk

    call = read(session, settings, token)
    if not 1 <= score <= 5:
        raise CsatLinkRefused("请选择1到5分", details=[
            {"field": "score", "reason": "must be 1-5"}], status_code=422)
    if call.csat is not None:
        raise CsatLinkRefused("您已经评价过这次通话，感谢您的反馈", details=[
            {"field": "token", "reason": "already answered"}], status_code=409)
    call.csat = score
    assert call.conversation_id is not None
    desk.record_satisfaction(session, call.conversation_id, score)
    call.transcript = [*(call.transcript or []), {
        "who": "system", "text": f"短信满意度评价：{score}分", "at": utcnow().isoformat(),
        "via": "sms"}]
    session.flush()
    return call
