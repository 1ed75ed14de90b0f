"""E-mail: a multipart/alternative message (stdlib ``email``) sent with ``smtplib`` (STARTTLS + login).

The SMTP transaction is driven step by step so that the outbox can mark the rows ``sending`` just
before ``DATA``, the point after which the server may own the message. The password is a
``SecretStr``: it is only unwrapped for ``login`` and never appears in errors or logs.
"""

from __future__ import annotations

import hashlib
import smtplib
import ssl
from collections.abc import Callable
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime

from alerts.delivery import Rejected
from alerts.digest import Digest
from alerts.render import html_body, text_body
from core.config import SmtpConfig


def message_id(batch: str, domain: str) -> str:
    """Stable per batch: a resent batch keeps its Message-ID, so clients can tell it is the same."""
    return f"<{hashlib.sha256(batch.encode()).hexdigest()[:24]}.veille@{domain}>"


def build_message(d: Digest, sender: str, batch: str, when) -> EmailMessage:  # datetime
    msg = EmailMessage()
    msg["Subject"] = d.subject
    msg["From"] = sender
    msg["To"] = d.recipient
    msg["Date"] = format_datetime(when)
    msg["Message-ID"] = message_id(batch, sender.rpartition("@")[2] or "veille.local")
    msg["X-Veille-Batch"] = batch
    if d.purpose == "alert":
        msg["Importance"] = "high"
    msg.set_content(text_body(d))
    msg.add_alternative(html_body(d), subtype="html")
    return msg


class SmtpTransport:
    channel = "email"

    def __init__(self, cfg: SmtpConfig, ssl_context: ssl.SSLContext | None = None) -> None:
        if not cfg.host:
            raise ValueError("l'envoi d'e-mails demande smtp.host (veille.toml, [smtp])")
        self.cfg = cfg
        self.ssl_context = ssl_context or ssl.create_default_context()

    def _open(self) -> smtplib.SMTP:
        smtp = smtplib.SMTP(self.cfg.host, self.cfg.port, timeout=self.cfg.timeout)
        try:
            smtp.ehlo()
            if self.cfg.starttls:
                smtp.starttls(context=self.ssl_context)
                smtp.ehlo()
            if self.cfg.user:
                password = self.cfg.password.get_secret_value() if self.cfg.password else ""
                smtp.login(self.cfg.user, password)
        except BaseException:
            smtp.close()
            raise
        return smtp

    def send(
        self, recipient: str, batch: str, parts: list[EmailMessage], start: int, handing_over: Callable[[int], None]
    ) -> None:
        for i in range(start, len(parts)):
            self._send_one(parts[i], lambda i=i: handing_over(i))

    def _send_one(self, msg: EmailMessage, handing_over: Callable[[], None]) -> None:
        data = msg.as_bytes(policy=SMTP_POLICY)
        rcpts = [a.addr_spec for h in ("To", "Cc") for a in (msg[h].addresses if msg[h] else ())]
        try:
            smtp = self._open()
        except smtplib.SMTPAuthenticationError as exc:
            raise Rejected(f"connexion SMTP refusée ({exc.smtp_code})") from None
        try:
            self._envelope(smtp, rcpts)
            handing_over()  # from here the server may keep the message
            try:
                code, reply = smtp.data(data)  # returns the final reply; raises only if DATA itself is refused
            except smtplib.SMTPDataError as exc:
                code, reply = exc.smtp_code, exc.smtp_error
            if code != 250:
                raise Rejected(f"message refusé : {code} {_text(reply)}")
        finally:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()

    def _envelope(self, smtp: smtplib.SMTP, rcpts: list[str]) -> None:
        """``MAIL FROM`` and ``RCPT TO``: a refusal here is before the hand-over, safe to retry."""
        code, reply = smtp.mail(self.cfg.sender, ["SMTPUTF8"] if _needs_utf8(rcpts) else [])
        if code != 250:
            raise Rejected(f"MAIL FROM refusé : {code} {_text(reply)}")
        for rcpt in rcpts:
            code, reply = smtp.rcpt(rcpt)
            if code not in (250, 251):
                raise Rejected(f"RCPT TO {rcpt} refusé : {code} {_text(reply)}")

    def confirm(self, batch: str, part: int) -> bool | None:
        return None  # SMTP cannot tell whether an interrupted DATA was accepted


def _text(reply: bytes | str) -> str:
    return reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)


def _needs_utf8(addresses: list[str]) -> bool:
    return any(not a.isascii() for a in addresses)
