"""E-mail through SMTP (``SIYU_SMTP_HOST``, ``_PORT``, ``_FROM``, optional ``_USER``,
``_PASSWORD``, ``_STARTTLS``), with the standard library's :mod:`smtplib`.

Every message carries a ``Message-ID`` derived from its outbox key (for a playbook: the run
and the step), so a message is recognisable wherever it lands and two steps never share one.
``List-Unsubscribe`` (with RFC 8058 one-click) is set when the sender gives an unsubscribe
URL, and on every marketing e-mail when ``SIYU_PUBLIC_URL`` is set (the signed link of
:mod:`siyu.channels.optout`, also written at the end of the text). A hard bounce withdraws
the customer's e-mail marketing consent. How a failure is classified decides whether
sending again is safe:

* the server could not be reached, or answered 4xx: nothing was accepted -> retry;
* 5xx to the sender or every recipient (a hard bounce): permanent -> ``failed``;
* the connection dropped or timed out after the data was handed over: the server may have
  accepted it -> ambiguous, and e-mail is never re-sent after an unknown outcome.
"""

from __future__ import annotations

import hashlib
import smtplib
import ssl
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import formatdate

from siyu.channels.config import ChannelSettings
from siyu.channels.desk import OutboundMessage, Recipient
from siyu.channels.outbox import DeliveryFailed, DeliveryResult


def message_id_for(key: str, sender: str) -> str:
    """The ``Message-ID`` of the message with outbox ``key``: unique per key."""
    domain = sender.rsplit("@", 1)[-1].strip(" >") or "siyu.local"
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]
    return f"<{digest}@{domain}>"


class SmtpAdapter:
    """Sends outbound ``email`` messages through one SMTP server."""

    channel = "email"

    def __init__(self, settings: ChannelSettings,
                 unsubscribe_link: Callable[[int], str | None] | None = None) -> None:
        self._s = settings
        self._unsubscribe_link = unsubscribe_link

    def can_resend(self, message: OutboundMessage, customer: Recipient) -> bool:
        return False

    def build(self, message: OutboundMessage, to: str) -> EmailMessage:
        """The MIME message for ``message`` addressed to ``to``."""
        mail = EmailMessage()
        mail["From"] = self._s.smtp_from
        mail["To"] = to
        mail["Subject"] = str(message.content.get("subject") or "")
        mail["Date"] = formatdate(localtime=False)
        mail["Message-ID"] = message_id_for(message.key or f"delivery-{message.id}",
                                            self._s.smtp_from)
        unsubscribe = message.content.get("unsubscribe_url")
        if not unsubscribe and message.purpose == "marketing" and self._unsubscribe_link:
            unsubscribe = self._unsubscribe_link(message.customer_id)
        text = message.text
        if unsubscribe:
            mail["List-Unsubscribe"] = f"<{unsubscribe}>"
            mail["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
            if message.purpose == "marketing":
                text = f"{text}\n\n——\n不想再收到此类邮件？点此退订：{unsubscribe}"
        mail.set_content(text)
        return mail

    def send(self, message: OutboundMessage, customer: Recipient) -> DeliveryResult:
        if not self._s.smtp_host or not self._s.smtp_from:
            raise DeliveryFailed("e-mail is not configured: set SIYU_SMTP_HOST and "
                                 "SIYU_SMTP_FROM")
        to = str(message.content.get("to") or customer.first("email") or "")
        if not to:
            raise DeliveryFailed("the customer has no e-mail address")
        mail = self.build(message, to)
        try:
            smtp = smtplib.SMTP(self._s.smtp_host, self._s.smtp_port,
                                timeout=self._s.smtp_timeout_seconds)
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryFailed(f"SMTP server unreachable ({type(exc).__name__})",
                                 retryable=True) from None
        try:
            try:
                if self._s.smtp_starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self._s.smtp_user:
                    smtp.login(self._s.smtp_user, self._s.smtp_password.get_secret_value())
            except smtplib.SMTPAuthenticationError:
                raise DeliveryFailed("the SMTP server refused the login") from None
            except (OSError, smtplib.SMTPException) as exc:
                raise DeliveryFailed(f"SMTP session failed ({type(exc).__name__})",
                                     retryable=True) from None
            try:
                smtp.send_message(mail)
            except smtplib.SMTPRecipientsRefused as exc:
                codes = [code for code, _ in exc.recipients.values()]
                if codes and all(400 <= c < 500 for c in codes):
                    raise DeliveryFailed(f"recipient deferred (SMTP {codes[0]})",
                                         retryable=True) from None
                code = codes[0] if codes else "?"
                raise DeliveryFailed(f"bounce: recipient refused (SMTP {code})",
                                     opt_out=f"退信（SMTP {code}）") from None
            except smtplib.SMTPResponseException as exc:
                if 400 <= exc.smtp_code < 500:
                    raise DeliveryFailed(f"SMTP server deferred the message ({exc.smtp_code})",
                                         retryable=True) from None
                raise DeliveryFailed(f"SMTP server refused the message ({exc.smtp_code})"
                                     ) from None
            except (OSError, smtplib.SMTPException) as exc:
                raise DeliveryFailed(f"SMTP connection lost while sending "
                                     f"({type(exc).__name__})", ambiguous=True) from None
        finally:
            try:
                smtp.quit()
            except (OSError, smtplib.SMTPException):
                smtp.close()
        return DeliveryResult("sent", str(mail["Message-ID"]))
