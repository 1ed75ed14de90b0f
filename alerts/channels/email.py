"""E-mail: one multipart message per batch (``alerts.email``), over SMTP when ``[smtp] host`` is set."""

from __future__ import annotations

from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from typing import TYPE_CHECKING, ClassVar

from alerts.channels import Channel, register
from core.config import SmtpConfig

if TYPE_CHECKING:  # `veille config` loads every channel to check its options: rendering loads on use
    from alerts.config import LabelRoute
    from alerts.delivery import Transport
    from alerts.digest import Digest


@register
class Email(Channel):
    kind = "email"
    order = 0
    section: ClassVar[tuple[str, ...]] = ("smtp",)
    Options = SmtpConfig
    options: SmtpConfig

    @classmethod
    def addresses(cls, route: LabelRoute) -> list[str]:
        return list(route.email)

    def render(self, d: Digest, batch: str, now: datetime) -> list[EmailMessage]:
        from alerts.email import build_message

        return [build_message(d, self.options.sender, batch, now)]

    def transport(self, address: str) -> Transport | None:
        from alerts.email import SmtpTransport

        return SmtpTransport(self.options) if self.options.host else None

    def file_name(self, stem: str, part: int) -> str:
        return f"{stem}.eml" if part == 0 else f"{stem}-{part}.eml"

    def file_bytes(self, address: str, part: EmailMessage) -> bytes:  # type: ignore[override]
        return part.as_bytes(policy=SMTP_POLICY)
