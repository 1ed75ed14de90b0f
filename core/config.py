"""Configuration: one TOML file, validated with pydantic.

The file lives at ``$VEILLE_HOME/veille.toml`` unless ``--config``/``VEILLE_CONFIG`` says otherwise.
``VEILLE_HOME`` defaults to ``~/.local/share/veille``. Secrets (SMTP password, Slack token) are read
from the environment (``VEILLE_SMTP_PASSWORD``, ``VEILLE_SLACK_TOKEN``) and override the file;
they are ``SecretStr`` so they never print in logs or errors.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from core.errors import ConfigError, UserError  # noqa: F401  ConfigError re-exported
from core.schema import toml_lines, validate
from core.textfile import read_text

DEFAULT_HOME = Path("~/.local/share/veille").expanduser()
SHIPPED_PROFILES = Path(__file__).parent / "profiles"
M = TypeVar("M", bound=BaseModel)
DURATION_RE = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")


def home() -> Path:
    path = Path(os.environ.get("VEILLE_HOME") or DEFAULT_HOME).expanduser()
    path.mkdir(mode=0o700, parents=True, exist_ok=True)  # the archive, outbox, secrets' neighbours: owner only
    return path


def parse_duration(value: str | int | float) -> timedelta:
    if isinstance(value, int | float):
        return timedelta(seconds=value)
    m = DURATION_RE.match(value)
    if not m:
        raise ValueError(f"pas une durée comme '30m', '2h', '1d' : {value!r}")
    n, unit = int(m.group(1)), m.group(2)
    return timedelta(**{{"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[unit]: n})


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Expectation(BaseModel):
    """A healthy run of one source (storage/health.py); a kind declares its own, ``options.expect`` overrides it."""

    model_config = ConfigDict(extra="forbid")
    per_working_day: int = Field(0, ge=0, description="items dated each working day (OJ); 0: no such rule")
    working_days: int = Field(3, ge=1, description="... quiet after this many working days without any")
    empty_runs: int = Field(0, ge=0, description="quiet after this many runs in a row without items (having had some)")
    deadlines: bool = Field(False, description="its items carry a deadline: all without one is degraded")


class SourceKind(Protocol):
    """What the core needs of a source kind. The crawler stage declares the kinds (crawlers/kinds/) and, the
    core being unable to import a stage (layers), installs them here with :func:`use_source_kinds` when
    imported. The package declares that module as an entry point (``veille.source_kinds`` in
    pyproject.toml): the first config read loads it, whatever imported the core (the CLI, scheduler.py, a
    bench script), and another package may declare its own kinds the same way."""

    name: str
    options: type[BaseModel]  # extra="forbid": a typo is refused by `veille config`, not mid-crawl

    def expectation(self, options: Any) -> Expectation: ...


_SOURCE_KINDS: Mapping[str, SourceKind] = {}


def use_source_kinds(kinds: Mapping[str, SourceKind]) -> None:
    """Install the registry of source kinds that config validation checks ``kind`` and ``options`` against."""
    global _SOURCE_KINDS
    _SOURCE_KINDS = kinds


def _load_source_kinds() -> None:
    from importlib.metadata import entry_points  # imported here: only when a config names a source

    for ep in entry_points(group="veille.source_kinds"):
        ep.load()  # the module installs its kinds (use_source_kinds / register)


def source_kind(name: str) -> SourceKind:
    if not _SOURCE_KINDS:
        _load_source_kinds()
    if not _SOURCE_KINDS:
        raise ValueError("aucun type de source déclaré (veille est-il installé ? pip install -e . : docs/extending.md)")
    if name not in _SOURCE_KINDS:
        known = ", ".join(sorted(_SOURCE_KINDS))
        raise ValueError(f"type de source inconnu {name!r} (connus : {known}){difflib_close(name, _SOURCE_KINDS)}")
    return _SOURCE_KINDS[name]


def _known_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The keys allowed where an unknown one sits: the fields of the (nested) options model at ``loc``."""
    for part in loc[:-1]:
        if isinstance(part, int):  # an item of a list of tables
            continue
        field = model.model_fields.get(str(part))
        nested = [t for t in _types_in(field.annotation if field else None) if _is_model(t)]
        if not nested:
            return []
        model = nested[0]
    return list(model.model_fields)


def _types_in(hint: Any) -> list[Any]:
    """``dict[str, str] | list[CommitteeWatch]`` -> every type named in it, nested ones included."""
    return [hint, *(t for arg in getattr(hint, "__args__", ()) for t in _types_in(arg))]


def _is_model(t: Any) -> bool:
    return isinstance(t, type) and issubclass(t, BaseModel)


class SourceConfig(Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    kind: str  # a source kind declared in crawlers/kinds/ (rss, sparql, ep_odp, ...)
    url: str
    languages: list[str] = ["en", "fr"]
    interval: str = "2h"
    enabled: bool = True
    options: Any = Field(default_factory=dict, validate_default=True)  # becomes the kind's options model

    @field_validator("interval")
    @classmethod
    def _interval(cls, v: str) -> str:
        parse_duration(v)
        return v

    @field_validator("kind")
    @classmethod
    def _kind(cls, v: str) -> str:
        source_kind(v)
        return v

    @property
    def interval_td(self) -> timedelta:
        return parse_duration(self.interval)

    @field_validator("options")
    @classmethod
    def _options(cls, v: Any, info: ValidationInfo) -> Any:
        """The kind's options model: unknown keys and bad values are errors at their own key."""
        if "kind" not in info.data:  # the kind was refused: its error is enough
            return v
        model = source_kind(info.data["kind"]).options
        if isinstance(v, model):
            return v
        try:
            return model.model_validate(v.model_dump(exclude_unset=True) if isinstance(v, BaseModel) else v)
        except ValidationError as exc:
            # A typo first: its "unknown option" says more than the "field required" it also causes.
            errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
            raise ValidationError.from_exception_data(exc.title, [_option_error(model, e) for e in errors]) from None

    @property
    def expectation(self) -> Expectation:
        """What a healthy run of this source looks like (the kind's, with ``options.expect`` over it)."""
        return source_kind(self.kind).expectation(self.options)


def _option_error(model: type[BaseModel], err: Any) -> Any:
    if err["type"] != "extra_forbidden":
        return err
    known = ", ".join(_known_keys(model, tuple(err["loc"])))
    msg = PydanticCustomError("unknown_option", "option inconnue (connues : {known})", {"known": known})
    return {"type": msg, "loc": err["loc"], "input": err["input"]}


class CrawlConfig(Strict):
    user_agent: str = "veille/0.1 (EU regulatory watch; +mailto:{contact})"
    contact: str = "veille@has-sante.fr"
    download_delay: float = Field(1.0, ge=0)
    concurrent_per_host: int = Field(1, ge=1, le=8)
    timeout: float = Field(30.0, gt=0)
    retries: int = Field(3, ge=0, le=10)
    max_body_bytes: int = Field(20_000_000, gt=0)
    obey_robots: bool = True
    sparql_window_days: int = Field(7, ge=1)  # Cellar metadata arrives up to 3 working days late
    max_run_seconds: float = Field(1800, gt=0)  # a crawl child still running after this is killed
    cache_dir: str | None = None  # HTTP cache for conditional GETs; default $VEILLE_HOME/httpcache

    @property
    def ua(self) -> str:
        return self.user_agent.format(contact=self.contact)


class StorageConfig(Strict):
    url: str | None = None  # default: sqlite:///$VEILLE_HOME/veille.db ; postgresql+psycopg://...


class SmtpConfig(Strict):
    host: str | None = None  # unset: e-mails go to the outbox folder as .eml files
    port: int = 587
    starttls: bool = True
    user: str | None = None
    password: SecretStr | None = None
    sender: str = "veille@has-sante.fr"
    timeout: float = 30.0


class SlackConfig(Strict):
    token: SecretStr | None = None  # unset (and no webhooks): Slack messages go to the outbox folder
    base_url: str = "https://slack.com/api/"


class ScheduleConfig(Strict):
    timezone: str = "Europe/Paris"
    digest_time: str = Field("08:00", pattern=r"^\d{2}:\d{2}(:\d{2})?$")  # local time, HH:MM[:SS]
    digest_days: Literal["working", "every"] = "working"  # working: Mon-Fri without French public holidays
    misfire_grace: str = "1h"

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            near = difflib_close(v, available_timezones())
            raise ValueError(f"fuseau horaire inconnu {v!r}{near}") from None
        return v

    @field_validator("digest_time")
    @classmethod
    def _digest_time(cls, v: str) -> str:
        h, m, sec = clock(v)
        if h > 23 or m > 59 or sec > 59:
            raise ValueError(f"pas une heure du jour (HH:MM, de 00:00 à 23:59) : {v!r}")
        return v

    @field_validator("misfire_grace")
    @classmethod
    def _grace(cls, v: str) -> str:
        parse_duration(v)
        return v


class WebConfig(Strict):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    # Name of a header set by a trusted reverse proxy (e.g. "X-Remote-User"); None: log in with a password.
    trusted_header: str | None = None
    # Cookie signing key; from VEILLE_WEB_SECRET, else generated once into $VEILLE_HOME/web_secret.
    session_secret: SecretStr | None = None
    # Mark the session cookie Secure on every answer (TLS ended by a proxy that does not send X-Forwarded-Proto);
    # without it, Secure is set when the request came over HTTPS.
    secure_cookie: bool = False
    # Believe the reverse proxy's X-Forwarded-Proto / X-Forwarded-For (scheme, client address for the login
    # throttle). Only when the app is reachable through that proxy alone.
    trust_proxy: bool = False
    # The workbench's address as users reach it ("https://veille.has-sante.fr"): digests link each item to
    # its page there. Unset: no workbench links.
    public_url: str | None = None

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, v: str | None) -> str | None:
        if v is None:
            return None
        url = urlsplit(v.strip())
        if url.scheme not in ("http", "https") or not url.hostname or url.query or url.fragment or "@" in url.netloc:
            raise ValueError(
                "doit être une adresse http(s) comme https://veille.example.org (sans paramètres ni identifiant)"
            )
        return v.strip().rstrip("/")


def difflib_close(value: str, choices: Any) -> str:
    """``" ; vouliez-vous dire 'Europe/Paris' ?"`` for a near miss, else nothing."""
    import difflib

    near = difflib.get_close_matches(value, list(choices), n=1)
    return f" ; vouliez-vous dire {near[0]!r} ?" if near else ""


def clock(value: str) -> tuple[int, int, int]:
    """``"08:00"`` or ``"08:00:30"`` -> (8, 0, 0) / (8, 0, 30)."""
    parts = [int(x) for x in value.split(":")]
    return parts[0], parts[1], parts[2] if len(parts) > 2 else 0


class Settings(Strict):
    profiles_dir: str | None = None  # extra profiles; the shipped ones are in core/profiles
    profile: str = "has"  # after profiles_dir: its validator looks there
    outbox_dir: str | None = None  # default $VEILLE_HOME/outbox
    models_dir: str | None = None  # default $VEILLE_HOME/models
    storage: StorageConfig = StorageConfig()
    crawl: CrawlConfig = CrawlConfig()
    smtp: SmtpConfig = SmtpConfig()
    slack: SlackConfig = SlackConfig()
    # [channels.<kind>]: the options of other delivery channels, each checked by its model (alerts/channels)
    channels: dict[str, dict[str, Any]] = {}
    schedule: ScheduleConfig = ScheduleConfig()
    web: WebConfig = WebConfig()
    sources: list[SourceConfig] = []

    # Where the file came from, for messages; not part of the schema.
    model_config = ConfigDict(extra="forbid")

    @property
    def home(self) -> Path:
        return home()

    @property
    def database_url(self) -> str:
        return self.storage.url or f"sqlite:///{self.home / 'veille.db'}"

    @property
    def outbox(self) -> Path:
        return Path(self.outbox_dir).expanduser() if self.outbox_dir else self.home / "outbox"

    @property
    def models(self) -> Path:
        return Path(self.models_dir).expanduser() if self.models_dir else self.home / "models"

    @field_validator("profile")
    @classmethod
    def _known_profile(cls, v: str, info: ValidationInfo) -> str:
        check_profile(v, info.data.get("profiles_dir"))
        return v

    def source(self, name: str) -> SourceConfig:
        for s in self.sources:
            if s.name == name:
                return s
        raise ConfigError(f"aucune source nommée {name!r} (connues : {', '.join(s.name for s in self.sources)})")


def check_profile(name: str, profiles_dir: str | None = None) -> None:
    """A profile is a folder with a ``profile.toml``: analysts' copies, ``profiles_dir``, or shipped."""
    roots = [home() / "profiles", *([Path(profiles_dir).expanduser()] if profiles_dir else []), SHIPPED_PROFILES]
    known = sorted({p.parent.name for root in roots for p in root.glob("*/profile.toml")})
    if name not in known:
        raise ValueError(f"profil inconnu {name!r} (connus : {', '.join(known)}){difflib_close(name, known)}")


def parse_toml(text: str, path: Path | str) -> dict[str, Any]:
    """``tomllib.loads`` whose error is one ``file:line: TOML invalide : ...`` line."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        raise ConfigError(f"{path}:{m.group(1) if m else '?'}: TOML invalide : {exc}") from None


def validate_toml(model: type[M], data: dict[str, Any], text: str, path: Path | str) -> M:
    """``model.model_validate(data)`` whose error is one ``file:line: key: what`` line (core/schema.py)."""
    return validate(model, data, path, toml_lines(text), ConfigError)


def _apply_env(data: dict[str, Any]) -> None:
    env = os.environ
    if env.get("VEILLE_SMTP_PASSWORD"):
        data.setdefault("smtp", {})["password"] = env["VEILLE_SMTP_PASSWORD"]
    if env.get("VEILLE_SLACK_TOKEN"):
        data.setdefault("slack", {})["token"] = env["VEILLE_SLACK_TOKEN"]
    if env.get("VEILLE_DATABASE_URL"):
        data.setdefault("storage", {})["url"] = env["VEILLE_DATABASE_URL"]
    if env.get("VEILLE_WEB_SECRET"):
        data.setdefault("web", {})["session_secret"] = env["VEILLE_WEB_SECRET"]
    if env.get("VEILLE_PROFILE"):
        data["profile"] = env["VEILLE_PROFILE"]


def default_config_text() -> str:
    return (Path(__file__).parent / "default_config.toml").read_text(encoding="utf-8")


def config_path(explicit: str | Path | None = None) -> Path:
    if explicit:
        return Path(explicit).expanduser()
    if os.environ.get("VEILLE_CONFIG"):
        return Path(os.environ["VEILLE_CONFIG"]).expanduser()
    return home() / "veille.toml"


def load_settings(path: str | Path | None = None) -> Settings:
    """Read, validate and return the settings; write the default file on first use."""
    cfg = config_path(path)
    if not cfg.exists():
        if path:
            raise ConfigError(f"{cfg} : fichier de configuration introuvable")
        cfg.write_text(default_config_text(), encoding="utf-8")
    text = read_text(cfg, ConfigError)
    data = parse_toml(text, cfg)
    _apply_env(data)
    return validate_toml(Settings, data, text, cfg)
