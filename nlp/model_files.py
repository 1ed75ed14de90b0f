"""Where the profile's trained models live and the current one's ``veille_meta.json``, apart from nlp.scoring
(which imports spaCy): ``veille review`` reads the model's thresholds from that file without loading it."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.config import Settings

CURRENT = "current"


def model_home(settings: Settings) -> Path:
    """The profile's models: ``<models>/<profile>/`` (``<models>`` is ``$VEILLE_HOME/models`` by default).
    Models trained before models were per profile sat in ``<models>/`` itself: those trained for this
    profile's labels move here once (moved, never copied or deleted)."""
    home = settings.models / settings.profile
    if (settings.models / CURRENT).is_file():
        _adopt_legacy(settings.models, home, settings)
    return home


def _adopt_legacy(root: Path, home: Path, settings: Settings) -> None:
    from core.profiles import load_labels

    labels = sorted(load_labels(settings))
    pointer = root / CURRENT
    for meta_file in root.glob("*/veille_meta.json"):
        try:
            mine = sorted(json.loads(meta_file.read_text(encoding="utf-8")).get("labels", [])) == labels
        except (OSError, ValueError):
            continue  # unreadable: left where it is
        if mine and not (home / meta_file.parent.name).exists():
            home.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileNotFoundError):  # another process moved it first
                meta_file.parent.rename(home / meta_file.parent.name)
    try:
        name = pointer.read_text(encoding="utf-8").strip()
    except FileNotFoundError:  # another process adopted them meanwhile
        return
    if (home / name / "veille_meta.json").exists():
        if not (home / CURRENT).exists():
            with contextlib.suppress(FileNotFoundError):
                pointer.rename(home / CURRENT)
        else:
            pointer.unlink(missing_ok=True)  # this profile has a newer current model already


def current_model_path(settings: Settings) -> Path | None:
    home = model_home(settings)
    pointer = home / CURRENT
    if not pointer.exists():
        return None
    path = home / pointer.read_text(encoding="utf-8").strip()
    return path if (path / "veille_meta.json").exists() else None


def current_meta(settings: Settings) -> dict | None:
    """The current model's ``veille_meta.json`` (version, thresholds, ...), or None without a model."""
    path = current_model_path(settings)
    return None if path is None else json.loads((path / "veille_meta.json").read_text(encoding="utf-8"))
