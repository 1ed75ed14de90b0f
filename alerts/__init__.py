"""alerts: routing, daily digests (e-mail + Slack), immediate alerts, delivered once through the outbox."""

from alerts.jobs import send_alerts, send_digests
from alerts.outbox import DeliveryStats

__all__ = ["DeliveryStats", "send_alerts", "send_digests"]
