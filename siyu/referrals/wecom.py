"""A channel code's WeCom 联系我 configuration: ``externalcontact/add_contact_way``.

WeCom gives back a ``config_id`` and a QR code (``qr_code``, an image URL to print or show);
a customer who scans it adds the member named in ``user``, and the add-contact callback
carries the configuration's ``state``, which attributes them to the channel code
(:mod:`siyu.referrals.hooks`). The member is the code's advisor, whose siyu username is
their WeCom userid (as for the advisors' mass-send tasks).
"""

from __future__ import annotations

from dataclasses import dataclass

from siyu.channels.wecom.client import WeComApiError, WeComClient
from siyu.config import Settings

PATH = "/cgi-bin/externalcontact/add_contact_way"
REMARK_LENGTH = 30
"""WeCom's limit on the configuration's remark (备注)."""


@dataclass(frozen=True)
class ContactWay:
    config_id: str
    qr_code: str | None


def configured(settings: Settings | None) -> bool:
    """Whether siyu may call WeCom's API: a corp id and the app secret are set."""
    return settings is not None and bool(
        settings.wecom_corp_id and settings.wecom_corp_secret.get_secret_value())


def add_contact_way(settings: Settings, *, state: str, userid: str, remark: str,
                    timeout: float = 10.0) -> ContactWay:
    """Create a single-member QR-code 联系我 (type 1, scene 2) for ``userid`` with ``state``;
    contacts are added without verification (``skip_verify``), as a 渠道活码 is meant to.

    Raises:
        WeComApiError: WeCom refused (its errcode in the message) or did not answer.
    """
    body = {"type": 1, "scene": 2, "remark": remark[:REMARK_LENGTH], "skip_verify": True,
            "state": state, "user": [userid]}
    with WeComClient(api_base=settings.wecom_api_base, corp_id=settings.wecom_corp_id,
                     secret=settings.wecom_corp_secret.get_secret_value(),
                     timeout=timeout) as client:
        data = client.call(PATH, body)
    config_id = data.get("config_id")
    if not isinstance(config_id, str) or not config_id:
        raise WeComApiError("WeCom add_contact_way answered without a config_id")
    qr_code = data.get("qr_code")
    return ContactWay(config_id[:64], qr_code[:500] if isinstance(qr_code, str) and qr_code
                      else None)
