"""The plain data of the delivery path, without its database machinery (``alerts.outbox``): the rows a
planner wants sent, the transports' contract, and what a run did. Planners and dry runs import only this."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol


class Rejected(Exception):
    """The server answered and did not take the message: it was not delivered, retry later."""


class Transport(Protocol):
    channel: str

    def send(
        self, recipient: str, batch: str, parts: list[Any], start: int, handing_over: Callable[[int], None]
    ) -> None:
        """Send ``parts[start:]`` in order; call ``handing_over(i)`` right before part i leaves.

        Raise :class:`Rejected` when the server refused; any other exception after ``handing_over``
        means the part may have arrived. Return normally when every part was accepted (calling
        ``handing_over(i + 1)`` records that part i was accepted).
        """

    def confirm(self, batch: str, part: int) -> bool | None:
        """Did part ``part`` of ``batch`` arrive? None: cannot tell."""


@dataclass(frozen=True)
class Planned:
    notice_id: int
    recipient: str
    channel: str
    purpose: str
    batch: str


@dataclass
class Preview:
    recipient: str
    channel: str
    batch: str
    subject: str
    text: str
    items: int


@dataclass
class DeliveryStats:
    sent: int = 0  # rows (notice x recipient x channel) accepted by a server in this run
    pending: int = 0  # rows planned and not yet sent (dry run, or left for later)
    failed: int = 0
    uncertain: int = 0
    messages: int = 0  # messages (batches) accepted in this run
    by_channel: dict[str, dict[str, int]] = field(default_factory=dict)
    previews: list[Preview] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, channel: str, status: str, n: int) -> None:
        setattr(self, status, getattr(self, status) + n)
        counts = self.by_channel.setdefault(channel, {})
        counts[status] = counts.get(status, 0) + n

    @property
    def queued(self) -> int:
        return self.pending

    def merge(self, other: DeliveryStats) -> None:
        for ch, counts in other.by_channel.items():
            for status, n in counts.items():
                self.add(ch, status, n)
        self.messages += other.messages
        self.previews += other.previews
        self.errors += other.errors
        self.notes += other.notes
