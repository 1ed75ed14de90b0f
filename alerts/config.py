"""The routing file of a profile (``routing.toml``): recipients per label, thresholds, critical rules.

Validated with pydantic; a mistake is a one-line ``ConfigError`` naming ``file:line: key``, like
``core/config.py``. Webhook URLs are secrets: read from the user's copy or ``VEILLE_WEBHOOK_<NAME>``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

from pydantic import ConfigDict, Field, SecretStr, field_validator, model_validator

from alerts.channels import registry
from core.celex import is_celex, normalise_celex
from core.config import ConfigError, Settings, Strict, parse_duration, parse_toml, validate_toml
from core.profiles import load_profile, unknown_label
from core.records import Kind
from core.schema import at, toml_lines
from core.textfile import read_text

EMAIL_RE = re.compile(r"^[^@\s<>\"]+@[^@\s<>\"]+\.[^@\s<>\"]+$")
SLACK_RE = re.compile(r"^(#[a-z0-9][a-z0-9._-]{0,79}|[CGD][A-Z0-9]{6,})$")


class LabelRoute(Strict):
    # Other keys are the recipients of the other registered channels (alerts/channels): `<kind> = [...]`.
    model_config = ConfigDict(extra="allow")

    threshold: float | None = Field(None, ge=0, le=1)
    email: list[str] = []
    slack: list[str] = []
    webhooks: list[str] = []

    @model_validator(mode="after")
    def _other_channels(self) -> LabelRoute:
        for kind, addresses in (self.model_extra or {}).items():
            if not isinstance(addresses, list) or not all(isinstance(a, str) for a in addresses):
                raise ValueError(f'{kind} : une liste d\'adresses, comme {kind} = ["..."]')
        return self

    @field_validator("email")
    @classmethod
    def _emails(cls, v: list[str]) -> list[str]:
        for addr in v:
            if not EMAIL_RE.match(addr):
                raise ValueError(f"pas une adresse e-mail : {addr!r}")
        return v

    @field_validator("slack")
    @classmethod
    def _channels(cls, v: list[str]) -> list[str]:
        for ch in v:
            if not SLACK_RE.match(ch):
                raise ValueError(f"pas un canal Slack ('#nom' ou un id comme C0123456) : {ch!r}")
        return v


def check_celex(v: list[str]) -> list[str]:
    for celex in v:
        if not is_celex(celex):
            raise ValueError(f"pas un numéro CELEX comme 32024R1689 : {celex!r}")
    return [normalise_celex(c) or c for c in v]


class Webhook(Strict):
    url: SecretStr | None = None  # else VEILLE_WEBHOOK_<NAME>; unset: written to the outbox folder
    labels: list[str] = []


class RecipientOptions(Strict):
    nothing_new: bool = False  # "sources checked, nothing new" on a working day without items
    alerts: bool = True  # receives immediate alerts
    digest: bool = True  # receives the daily digest


class CriticalRule(Strict):
    name: str
    kinds: list[Kind] = []  # empty: any kind
    acts: list[str] = []  # CELEX in legal_basis, related_acts or the notice's own CELEX
    labels: list[str] = []  # the notice is routed to one of these labels
    min_score: float | None = Field(None, ge=0, le=1)  # ... with at least this score
    notify: list[str] = []  # labels whose recipients are alerted even if not routed to them

    @field_validator("acts")
    @classmethod
    def _celex(cls, v: list[str]) -> list[str]:
        return check_celex(v)

    @model_validator(mode="after")
    def _has_condition(self) -> CriticalRule:
        if not (self.kinds or self.acts or self.labels or self.min_score is not None):
            raise ValueError("une règle critique demande au moins une condition (kinds, acts, labels, min_score)")
        return self


class AlwaysRule(Strict):
    """Notices of these kinds (about these acts) always reach these labels, whatever their scores:
    e.g. every funding call to ``international``."""

    name: str
    kinds: list[Kind] = []
    acts: list[str] = []
    labels: list[str]

    @field_validator("acts")
    @classmethod
    def _celex(cls, v: list[str]) -> list[str]:
        return check_celex(v)

    @model_validator(mode="after")
    def _has_condition(self) -> AlwaysRule:
        if not (self.kinds or self.acts) or not self.labels:
            raise ValueError("une règle [[always]] demande kinds ou acts, et labels")
        return self


class Routing(Strict):
    threshold: float | None = Field(None, ge=0, le=1)
    alert_window: str = "3d"
    first_digest_lookback: str = "1d"
    lookback_grace: str = "1d"
    labels: dict[str, LabelRoute] = {}
    webhooks: dict[str, Webhook] = {}
    recipients: dict[str, RecipientOptions] = {}
    critical: list[CriticalRule] = []
    always: list[AlwaysRule] = []
    # Reminders this many working days (Europe/Paris, French public holidays off) before a deadline.
    reminders: list[int] = Field(default_factory=lambda: [10, 3])

    @field_validator("reminders")
    @classmethod
    def _reminders(cls, v: list[int]) -> list[int]:
        if any(n < 0 or n > 60 for n in v):
            raise ValueError("les rappels sont des jours ouvrés avant une échéance, de 0 à 60")
        return sorted(set(v), reverse=True)

    @field_validator("alert_window", "first_digest_lookback", "lookback_grace")
    @classmethod
    def _duration(cls, v: str) -> str:
        parse_duration(v)
        return v

    def duration(self, name: str) -> timedelta:
        return parse_duration(getattr(self, name))

    def label_threshold(self, label: str) -> float | None:
        route = self.labels.get(label)
        return route.threshold if route and route.threshold is not None else self.threshold

    def options(self, recipient: str) -> RecipientOptions:
        return self.recipients.get(recipient, RecipientOptions())

    def webhook_url(self, name: str) -> str | None:
        env = os.environ.get(f"VEILLE_WEBHOOK_{re.sub(r'[^A-Za-z0-9]', '_', name).upper()}")
        if env:
            return env
        hook = self.webhooks.get(name)
        return hook.url.get_secret_value() if hook and hook.url else None


def _check_channels(routing: Routing) -> tuple[tuple, str] | None:
    """Other keys of ``[labels.<label>]`` are registered channels, with addresses those channels accept."""
    kinds = registry()
    for label, route in routing.labels.items():
        for kind, addresses in (route.model_extra or {}).items():
            if kind not in kinds:
                return ("labels", label, kind), f"canal inconnu {kind!r} (connus : {', '.join(kinds)})"
            for address in addresses:
                if problem := kinds[kind].check_address(address):
                    return ("labels", label, kind), problem
    return None


def _check_names(routing: Routing, known: set[str]) -> tuple[tuple, str] | None:
    """Labels must exist in the profile; webhooks must be declared. Returns (loc, message)."""
    for label, route in routing.labels.items():
        if label not in known:
            return ("labels", label), unknown_label(label, known, "thématiques du profil")
        for hook in route.webhooks:
            if hook not in routing.webhooks:
                return ("labels", label, "webhooks"), f"webhook {hook!r} non déclaré dans [webhooks.{hook}]"
    for loc, label in _label_refs(routing):
        if label not in known:
            return loc, f"thématique inconnue {label!r}"
    return None


def _label_refs(routing: Routing) -> Iterator[tuple[tuple, str]]:
    """Every label the file names outside ``[labels.*]``, with where it is named."""
    for name, hook in routing.webhooks.items():
        yield from ((("webhooks", name, "labels"), label) for label in hook.labels)
    for i, rule in enumerate(routing.critical):
        for label in [*rule.labels, *rule.notify]:
            yield ("critical", i, "notify" if label in rule.notify else "labels"), label
    for i, always in enumerate(routing.always):
        yield from ((("always", i, "labels"), label) for label in always.labels)


def parse_routing(text: str, path: Path | str, known_labels: set[str]) -> Routing:
    routing = validate_toml(Routing, parse_toml(text, path), text, path)
    problem = _check_names(routing, known_labels) or _check_channels(routing)
    if problem:
        loc, msg = problem
        raise ConfigError(at(path, toml_lines(text)(loc), loc, msg))
    return routing


def load_routing(settings: Settings) -> Routing:
    profile = load_profile(settings)
    path = profile.file("routing.toml")
    return parse_routing(read_text(path, ConfigError), path, set(profile.labels))
