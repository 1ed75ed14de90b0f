"""Profiles: an organisation's labels, rules and routing, as files. HAS is the default.

A profile is a folder ``<name>/`` holding ``profile.toml`` (labels), ``rules.yaml`` (nlp) and
``routing.toml`` (alerts). Shipped profiles live here; ``profiles_dir`` in the config adds more,
and ``$VEILLE_HOME/profiles/<name>/`` holds analysts' edited copies, which take precedence.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from core.config import ConfigError, Settings, parse_toml, validate_toml
from core.textfile import read_text

SHIPPED = Path(__file__).parent


@dataclass(frozen=True)
class Label:
    id: str
    name: str
    remit: str = ""


def profile_dirs(settings: Settings, name: str | None = None) -> list[Path]:
    """Folders to look in for the profile's files, most specific first."""
    name = name or settings.profile
    dirs = [settings.home / "profiles" / name]
    if settings.profiles_dir:
        dirs.append(Path(settings.profiles_dir).expanduser() / name)
    dirs.append(SHIPPED / name)
    return dirs


def profile_file(settings: Settings, filename: str, name: str | None = None) -> Path:
    for d in profile_dirs(settings, name):
        if (d / filename).exists():
            return d / filename
    raise ConfigError(
        f"profile {name or settings.profile!r}: no {filename} in {', '.join(map(str, profile_dirs(settings, name)))}"
    )


def load_labels(settings: Settings, name: str | None = None) -> dict[str, Label]:
    path = profile_file(settings, "profile.toml", name)
    data = parse_toml(read_text(path, ConfigError), path)
    return {k: Label(id=k, name=v.get("name", k), remit=v.get("remit", "")) for k, v in data.get("labels", {}).items()}


class DigestSettings(BaseModel):
    """The profile's digest policy (top-level keys of ``profile.toml``; the rest of the file is labels)."""

    model_config = ConfigDict(extra="ignore")
    # Items dated (publication, else document date) more than this many days before the digest day are
    # archived without being mailed: a first run on an empty archive must not send years of backlog.
    digest_window_days: int = Field(14, ge=1, le=3660)


def load_digest_settings(settings: Settings, name: str | None = None) -> DigestSettings:
    path = profile_file(settings, "profile.toml", name)
    text = read_text(path, ConfigError)
    return validate_toml(DigestSettings, parse_toml(text, path), text, path)
