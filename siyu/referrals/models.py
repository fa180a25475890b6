"""Referral codes and the attributions of new customers to them."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from siyu.db import Base, BigId, TimestampMixin, UTCDateTime


class ReferralCode(TimestampMixin, Base):
    """A code a new customer arrives with. ``kind`` ``personal``: a customer's own invite
    code (``customer_id`` is the sharer); ``channel``: an operator's 渠道活码 for a campaign,
    store or advisor, whose WeCom ``state`` comes back in the add-contact callback."""

    __tablename__ = "referral_codes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    kind: Mapped[str] = mapped_column(String(10))
    # Not unique: after a merge the kept customer holds the merged one's code too, so
    # links already shared keep working; the oldest is the customer's own.
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    name: Mapped[str | None] = mapped_column(String(100))
    state: Mapped[str | None] = mapped_column(String(30), unique=True)
    # A channel code's kind (store, campaign, advisor; older ones say wecom); "invite" for
    # personal codes.
    channel: Mapped[str | None] = mapped_column(String(30))
    # A channel code's advisor (a staff user; their username is their WeCom userid) and the
    # WeCom 联系我 configuration made for it (externalcontact/add_contact_way), if any.
    advisor_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"))
    wecom_config_id: Mapped[str | None] = mapped_column(String(64))
    wecom_qr_code: Mapped[str | None] = mapped_column(String(500))


class ReferralAttribution(TimestampMixin, Base):
    """A new customer attributed to a code (and its sharer, for personal codes): ``pending``
    until the first paid order, then ``qualified`` (rewarded), ``expired`` (ordered too
    late) or ``refused`` (self-referral or ring, ``reason`` says which)."""

    __tablename__ = "referral_attributions"
    __table_args__ = (Index("ix_referral_attributions_status", "status", "referred_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    referred_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), unique=True)
    code_id: Mapped[int] = mapped_column(ForeignKey("referral_codes.id", ondelete="CASCADE"),
                                         index=True)
    referrer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str | None] = mapped_column(String(200))
    order_id: Mapped[str | None] = mapped_column(String(100))
    qualified_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
