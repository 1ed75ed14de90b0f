"""Profiles: an organisation's labels, rules and routing, as files. HAS is the default.

A profile is a folder ``<name>/`` holding ``profile.toml`` (the :class:`Profile` below: labels, digest
window, dated facts), ``rules.yaml`` (nlp.rules_load) and ``routing.toml`` (alerts.config). Shipped
profiles live here; ``profiles_dir`` in the config adds more, and ``$VEILLE_HOME/profiles/<name>/``
holds analysts' edited copies, which take precedence file by file. Every file is a pydantic model whose
mistakes read ``file:line: key: problem`` (core/schema.py). The stages validate their own file
against the profile's labels (:meth:`Profile.file`, :attr:`Profile.labels`): this core package never
imports a stage.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PrivateAttr, ValidationInfo, model_validator

from core.celex import is_celex, normalise_celex
from core.config import ConfigError, Settings, parse_toml
from core.schema import toml_lines, validate
from core.textfile import read_text

SHIPPED = Path(__file__).parent
PROFILE_FILE = "profile.toml"
LABEL_ID = r"^[a-z][a-z0-9_]*$"  # names the label in URLs, files, search filters and the model's categories


def _text(v: str) -> str:
    if not v.strip():
        raise ValueError("doit être un texte non vide")
    return v.strip()


def _celex(v: str) -> str:
    if not v:
        return v
    if not is_celex(v):
        raise ValueError(f"pas un numéro CELEX comme 32024R1689 : {v!r}")
    return normalise_celex(v) or v


def unknown_label(label: str, known: Iterable[str], whose: str = "le profil a") -> str:
    """The one wording of a label the profile does not have, with the ones it has (sorted)."""
    return f"thématique inconnue {label!r} ({whose} : {', '.join(sorted(known))})"


def _profile_labels(v: list[str], info: ValidationInfo) -> list[str]:
    known = (info.context or {}).get("labels", set())
    for label in v:
        if label not in known:
            raise ValueError(unknown_label(label, known, "thématiques du profil"))
    return v


Text = Annotated[str, AfterValidator(_text)]
LabelId = Annotated[str, Field(pattern=LABEL_ID)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Label(_Strict):
    """A unit the watch serves: ``[labels.<id>]``."""

    name: Text  # shown to people (French): digests, workbench, calendar
    remit: str = ""  # what the unit follows, for the people who write its rules
    _id: str = PrivateAttr("")

    @property
    def id(self) -> str:
        return self._id


class DatedFact(_Strict):
    """``[[dates]]``: a dated fact for the deadline calendar (``veille calendar``)."""

    name: Text
    date: date  # a TOML date, YYYY-MM-DD unquoted; a day in Europe/Brussels
    act: Annotated[str, AfterValidator(_celex)] = ""  # the act it comes from (CELEX)
    labels: Annotated[list[str], AfterValidator(_profile_labels)] = []  # the feeds it appears in


class Profile(_Strict):
    """``profile.toml``: read once per file version (:func:`load_profile`)."""

    name: str | None = None  # the profile's name (its folder's); informative
    title: str = ""  # the organisation, for people
    language: Literal["fr", "en"] = "fr"
    # Items dated (publication, else document date) more than this many days before the digest day are
    # archived without being mailed: a first run on an empty archive must not send years of backlog.
    digest_window_days: int = Field(14, ge=1, le=3660)
    # Its labelled set (what `veille train` learns from, `veille eval` splits): a file beside the profile's
    # files or shipped in nlp/data/. None: the profile has nothing to train on.
    dataset: str | None = None
    labels: dict[LabelId, Label] = Field(min_length=1)
    dates: list[DatedFact] = []
    _path: Path | None = PrivateAttr(None)
    _dirs: tuple[Path, ...] = PrivateAttr(())

    @model_validator(mode="after")
    def _label_ids(self) -> Profile:
        for key, label in self.labels.items():
            label._id = key
        return self

    @property
    def path(self) -> Path | None:
        """The ``profile.toml`` read."""
        return self._path

    def file(self, filename: str) -> Path:
        """The profile's ``rules.yaml`` / ``routing.toml``: the most specific copy (see the module's doc)."""
        for d in self._dirs:
            if (d / filename).exists():
                return d / filename
        raise ConfigError(f"profil {self.name!r} : pas de {filename} dans {', '.join(map(str, self._dirs))}")


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
    dirs = ", ".join(map(str, profile_dirs(settings, name)))
    raise ConfigError(f"profil {name or settings.profile!r} : pas de {filename} dans {dirs}")


def parse_profile(text: str, path: Path | str) -> Profile:
    """``profile.toml``'s text as a Profile, or one ``file:line: key: problem`` ConfigError."""
    data = parse_toml(text, path)
    labels = data.get("labels")
    context = {"labels": set(labels) if isinstance(labels, dict) else set()}
    return validate(Profile, data, path, toml_lines(text), ConfigError, context)


# Per file version: every page, digest and cycle asks for the labels; the file is read once.
_LOADED: dict[tuple, Profile] = {}


def load_profile(settings: Settings, name: str | None = None) -> Profile:
    """The profile in force (``settings.profile`` unless ``name``), validated."""
    path = profile_file(settings, PROFILE_FILE, name)
    dirs = tuple(profile_dirs(settings, name))
    try:
        st = path.stat()
        key: tuple | None = (str(path), st.st_ino, st.st_mtime_ns, st.st_size, dirs)
    except OSError:
        key = None
    if key is not None and key in _LOADED:
        return _LOADED[key]
    profile = parse_profile(read_text(path, ConfigError), path)
    profile._path, profile._dirs = path, dirs
    if key is not None:
        _LOADED.clear()  # the profile in force, not a history
        _LOADED[key] = profile
    return profile


def load_labels(settings: Settings, name: str | None = None) -> dict[str, Label]:
    """The profile's labels by id, in the file's order."""
    return load_profile(settings, name).labels
