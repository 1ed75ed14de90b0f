"""Slack: Block Kit posts (``alerts.slack``) through the Web API when a bot token is set."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, ClassVar

from alerts.channels import Channel, register
from core.config import SlackConfig

if TYPE_CHECKING:  # `veille config` loads every channel to check its options: rendering loads on use
    from alerts.config import LabelRoute
    from alerts.delivery import Transport
    from alerts.digest import Digest


@register
class Slack(Channel):
    kind = "slack"
    order = 1
    section: ClassVar[tuple[str, ...]] = ("slack",)
    Options = SlackConfig
    options: SlackConfig

    @classmethod
    def addresses(cls, route: LabelRoute) -> list[str]:
        return list(route.slack)

    def render(self, d: Digest, batch: str, now: datetime) -> list[dict]:
        from alerts.slack import payloads

        return payloads(d, d.recipient)  # the Slack channel is named in each post

    def transport(self, address: str) -> Transport | None:
        from alerts.slack import SlackTransport

        if not self.options.token:
            return None
        return SlackTransport(self.options.token.get_secret_value(), self.options.base_url)
