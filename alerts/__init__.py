"""alerts: routing, daily digests (e-mail + Slack), immediate alerts, delivered once through the outbox.

The names below load on first use (PEP 562): ``import alerts`` must not pull Jinja2, SQLAlchemy and the
transports into every ``veille`` command (``veille --help`` would take a second more).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {"send_alerts": "alerts.jobs", "send_digests": "alerts.jobs", "DeliveryStats": "alerts.delivery"}
__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'alerts' has no attribute {name!r}")
    return getattr(import_module(_LAZY[name]), name)
