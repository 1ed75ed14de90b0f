"""Incoming webhooks (Slack's shape): recipients ``webhook:<name>``, URLs secret (``VEILLE_WEBHOOK_<NAME>``)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from alerts.channels import Channel, register

if TYPE_CHECKING:  # `veille config` loads every channel to check its options: rendering loads on use
    from alerts.config import LabelRoute, Routing
    from alerts.delivery import Transport
    from alerts.digest import Digest

PREFIX = "webhook:"


@register
class Webhook(Channel):
    kind = "webhook"
    order = 2

    @classmethod
    def addresses(cls, route: LabelRoute) -> list[str]:
        return [f"{PREFIX}{hook}" for hook in route.webhooks]

    @classmethod
    def declared(cls, routing: Routing) -> dict[str, list[str]]:
        return {f"{PREFIX}{name}": list(hook.labels) for name, hook in routing.webhooks.items()}

    def render(self, d: Digest, batch: str, now: datetime) -> list[dict]:
        from alerts.slack import payloads

        return payloads(d, None)  # the webhook's URL names its channel

    def transport(self, address: str) -> Transport | None:
        from alerts.slack import WebhookTransport

        url = self.routing.webhook_url(address.removeprefix(PREFIX))
        return WebhookTransport(url) if url else None
