"""Delivery channels, registered by kind (as urlwatch's reporters): one class per channel, one module each.

A channel says, for its ``kind`` (the outbox rows' ``channel``, the recipients' key in ``routing.toml``, the
folder of the files outbox ``outbox/<kind>/``):

- its options: a pydantic model read from its table of ``veille.toml`` (``[channels.<kind>]`` unless
  ``section`` names another one) and checked, with ``file:line``, by ``veille config``;
- its recipients in ``routing.toml`` (``[labels.<label>] <kind> = [...]``) and how an address is checked;
- ``render``: a message (digest, alert, reminder) -> the parts its transport sends;
- ``transport``: the live transport when it is configured (the :class:`alerts.delivery.Transport` contract:
  ``send`` calls ``handing_over`` right before each part leaves, so the outbox delivers it exactly once),
  else None: the parts are written under ``outbox/<kind>/`` as files (``file_name``, ``file_bytes``).

Every module of this package is loaded by :func:`registry`: adding a channel is adding one module
(docs/extending.md, "Ajouter un canal de diffusion"); a test may :func:`register` its own class.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import re
from collections.abc import Iterable
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ValidationError

from alerts.outbox_files import FileTransport
from core.config import ConfigError, Strict, parse_toml
from core.schema import problem, toml_lines
from core.textfile import read_text

if TYPE_CHECKING:  # types only: alerts.config and alerts.digest import this package's registry
    from alerts.config import LabelRoute, Routing
    from alerts.delivery import Transport
    from alerts.digest import Digest
    from core.config import Settings

KIND_RE = re.compile(r"^[a-z][a-z0-9_]{0,30}$")


class NoOptions(Strict):
    """A channel without options: its table, if any, must be empty."""


class Channel:
    kind: ClassVar[str]
    order: ClassVar[int] = 100  # recipients are listed (and planned) by label, then by channel in this order
    section: ClassVar[tuple[str, ...]] = ()  # its table in veille.toml; () = ("channels", kind)
    Options: ClassVar[type[BaseModel]] = NoOptions

    def __init__(self, settings: Settings, routing: Routing) -> None:
        self.settings, self.routing = settings, routing
        self.options: Any = self.load_options(settings)

    # --- configuration -------------------------------------------------------------------------------

    @classmethod
    def table(cls) -> tuple[str, ...]:
        return cls.section or ("channels", cls.kind)

    @classmethod
    def load_options(cls, settings: Settings) -> BaseModel:
        value: Any = settings
        for key in cls.table():
            value = getattr(value, key) if isinstance(value, BaseModel) else value.get(key, {})
        if isinstance(value, cls.Options):  # a table Settings validated already ([smtp], [slack])
            return value
        try:
            return cls.Options.model_validate(value)
        except ValidationError as exc:  # `veille config` says where; here we only know which key
            raise ConfigError(f"veille.toml: {_problem(cls.table(), exc)}") from None

    # --- routing.toml ----------------------------------------------------------------------------------

    @classmethod
    def addresses(cls, route: LabelRoute) -> list[str]:
        """This channel's recipients in one ``[labels.<label>]`` table: ``<kind> = ["address", ...]``."""
        return list((route.model_extra or {}).get(cls.kind, []))

    @classmethod
    def declared(cls, routing: Routing) -> dict[str, list[str]]:
        """Recipients declared outside ``[labels.*]``, with their labels (webhooks' ``labels``)."""
        return {}

    @classmethod
    def check_address(cls, address: str) -> str | None:
        """Why ``address`` cannot be a recipient of this channel; None when it can."""
        return None if address.strip() else "adresse vide"

    # --- a message ----------------------------------------------------------------------------------

    def render(self, d: Digest, batch: str, now: datetime) -> list[Any]:
        """The parts of one message (a channel with size limits splits it into several)."""
        raise NotImplementedError

    def transport(self, address: str) -> Transport | None:
        """The live transport to ``address``; None (the default): the files outbox."""
        return None

    def file_name(self, stem: str, part: int) -> str:
        return f"{stem}-{part + 1}.json"

    def file_bytes(self, address: str, part: Any) -> bytes:
        return json.dumps({"recipient": address, **part}, ensure_ascii=False, indent=2).encode("utf-8")


_REGISTRY: dict[str, type[Channel]] = {}


def register(cls: type[Channel]) -> type[Channel]:
    """Class decorator: make ``cls`` the channel of its ``kind``."""
    if not KIND_RE.match(getattr(cls, "kind", "")):
        raise ValueError(f"{cls.__name__}.kind must be a lowercase name like 'teams', not {cls.kind!r}")
    _REGISTRY[cls.kind] = cls
    return cls


def unregister(kind: str) -> None:
    _REGISTRY.pop(kind, None)


@cache
def _discover() -> None:
    # The plug-in mechanism: each module of the package registers its channel when imported.
    for mod in sorted(m.name for m in pkgutil.iter_modules(__path__)):
        importlib.import_module(f"{__name__}.{mod}")


def registry() -> dict[str, type[Channel]]:
    """Every channel by kind, in ``order``."""
    _discover()
    return dict(sorted(_REGISTRY.items(), key=lambda kv: (kv[1].order, kv[0])))


def channel_class(kind: str) -> type[Channel]:
    known = registry()
    if kind not in known:
        raise ConfigError(f"aucun canal d'envoi {kind!r} (connus : {', '.join(known)})")
    return known[kind]


class Channels:
    """The channels of one job, each made on first use with its options; their transports, one per address."""

    def __init__(self, settings: Settings, routing: Routing) -> None:
        self.settings, self.routing = settings, routing
        self._made: dict[str, Channel] = {}
        self._transports: dict[tuple[str, str], Transport] = {}

    def __getitem__(self, kind: str) -> Channel:
        if kind not in self._made:
            self._made[kind] = channel_class(kind)(self.settings, self.routing)
        return self._made[kind]

    def transport(self, kind: str, address: str) -> Transport:
        """The configured server for (channel, address), else the files outbox (``outbox/<kind>/``)."""
        key = (kind, address)
        if key not in self._transports:
            ch = self[kind]
            self._transports[key] = ch.transport(address) or FileTransport(self.settings.outbox, ch)
        return self._transports[key]


# --- `veille config` ----------------------------------------------------------------------------------


def _problem(table: Iterable[str], exc: ValidationError) -> str:
    err = exc.errors()[0]
    key = ".".join(str(p) for p in (*table, *err["loc"]))
    return f"{key}: {problem(err)}"


def check_options(path: Path) -> list[str]:
    """Validate every channel's table of the config file at ``path``; return the kinds known.

    A mistake is one ``file:line: channels.<kind>.<key>: problem`` line (the value is never echoed)."""
    text = read_text(path, ConfigError)
    data = parse_toml(text, path)
    known = registry()
    for kind in data.get("channels", {}):
        if kind not in known:
            line = toml_lines(text)(("channels", kind)) or "?"
            raise ConfigError(f"{path}:{line}: channels.{kind}: canal inconnu (connus : {', '.join(known)})")
    for cls in known.values():
        if cls.section:  # a table of its own ([smtp], [slack]): Settings validated it
            continue
        try:
            cls.Options.model_validate(data.get("channels", {}).get(cls.kind, {}))
        except ValidationError as exc:
            loc = (*cls.table(), *exc.errors()[0]["loc"])
            raise ConfigError(f"{path}:{toml_lines(text)(loc) or '?'}: {_problem(cls.table(), exc)}") from None
    return list(known)
