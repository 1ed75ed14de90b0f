"""Labelled datasets (the ``has_dev_notices.jsonl`` schema) and the fixed train/test split.

Only ``id``, ``title`` and ``labels`` are required; every other field is optional. The split is a
pure function of the item: a hash of its group key (base CELEX, else the normalised title) puts
25 % of groups in ``test``, so the same act in French and English stays on one side, and the split
never depends on the order or the size of the file.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from core.config import ConfigError, Settings
from core.profiles import load_profile, profile_dirs
from core.records import base_celex
from core.schema import toml_lines
from core.textfile import read_text, why
from storage.textnorm import strip_accents, words

DATA_DIR = Path(__file__).parent / "data"
DEV_SET = DATA_DIR / "has_dev_notices.jsonl"
TEST_PERCENT = 25


class DatasetError(ValueError):
    """A one-line error naming the file and line."""


@dataclass(frozen=True)
class Item:
    id: str
    title: str
    labels: tuple[str, ...]
    lang: str | None = None
    summary: str = ""
    body: str = ""
    source: str | None = None
    celex: str | None = None
    doc_type: str | None = None
    kind: str | None = None
    rationale: str = ""
    legal_basis: tuple[str, ...] = ()
    related_acts: tuple[str, ...] = ()
    eurovoc: tuple[str, ...] = ()  # EuroVoc descriptors (the notice's ``subject`` field)
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def near_miss(self) -> bool:
        return self.rationale.lower().startswith("near-miss:")

    @property
    def group(self) -> str:
        celex = base_celex(self.celex)
        if celex:
            return "celex:" + celex
        return "title:" + " ".join(words(strip_accents(self.title)))


def _str_list(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)


def parse_item(data: dict, where: str) -> Item:
    for key in ("id", "title", "labels"):
        if key not in data:
            raise DatasetError(f"{where}: champ obligatoire {key!r} manquant")
    if not isinstance(data["labels"], list) or not all(isinstance(x, str) for x in data["labels"]):
        raise DatasetError(f"{where}: 'labels' doit être une liste de textes")
    return Item(
        id=str(data["id"]),
        title=str(data["title"] or ""),
        labels=tuple(data["labels"]),
        lang=data.get("lang") or None,
        summary=str(data.get("summary") or ""),
        body=str(data.get("body") or ""),
        source=data.get("source") or None,
        celex=data.get("celex") or None,
        doc_type=data.get("doc_type") or None,
        kind=data.get("kind") or None,
        rationale=str(data.get("rationale") or ""),
        legal_basis=_str_list(data.get("legal_basis")),
        related_acts=_str_list(data.get("related_acts")),
        eurovoc=_str_list(data.get("eurovoc")),
    )


def unknown_labels(items: list[Item], labels: Iterable[str]) -> dict[str, int]:
    """Labels the items carry that the profile does not know, with how many items carry each."""
    known = set(labels)
    return dict(sorted(Counter(lb for item in items for lb in set(item.labels) - known).items()))


def load_dataset(path: str | Path) -> list[Item]:
    path = Path(path)
    try:
        lines = read_text(path, DatasetError).splitlines()  # UTF-8, with or without a byte-order mark
    except OSError as exc:
        raise DatasetError(f"{path} : illisible : {why(exc)}") from None
    items, seen = [], set()
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{path}:{n}: JSON invalide : {exc.msg}") from None
        if not isinstance(data, dict):
            raise DatasetError(f"{path}:{n}: un objet JSON attendu")
        item = parse_item(data, f"{path}:{n}")
        if item.id in seen:
            raise DatasetError(f"{path}:{n}: id en double {item.id!r}")
        seen.add(item.id)
        items.append(item)
    return items


def is_dev_set(path: str | Path, reference: Path | None = DEV_SET) -> bool:
    """Whether ``path`` is ``reference``, the profile's labelled set (the same file, or a copy of it)."""
    if reference is None:
        return False
    path = Path(path)
    try:
        return path.resolve() == reference.resolve() or path.read_bytes() == reference.read_bytes()
    except OSError:
        return False


def profile_dataset(settings: Settings, required: bool = True) -> Path | None:
    """The labelled set the profile declares. A relative name is looked for beside the profile's files
    (analysts' copy, ``profiles_dir``, shipped), then among the sets shipped in ``nlp/data/``. A profile
    without one has nothing to train on: a ConfigError naming its file when ``required``, else None."""
    profile = load_profile(settings)
    path, declared = profile.path, profile.dataset
    if not declared:
        if not required:
            return None
        raise ConfigError(
            f"{path}:1: le profil {settings.profile!r} ne déclare aucun jeu annoté pour l'entraînement "
            '(ajoutez dataset = "FICHIER.jsonl", docs/nlp.md)'
        )
    name = Path(declared).expanduser()
    places = [name] if name.is_absolute() else [*(d / name for d in profile_dirs(settings)), DATA_DIR / name]
    found = next((p for p in places if p.is_file()), None)
    if found is None:
        line = toml_lines(read_text(path, ConfigError))(("dataset",))
        looked = ", ".join(map(str, places))
        raise ConfigError(f"{path}:{line}: dataset: {declared!r} introuvable (cherché dans {looked})")
    return found


def is_test(item: Item) -> bool:
    digest = hashlib.sha256(item.group.encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100 < TEST_PERCENT


def split(items: list[Item]) -> tuple[list[Item], list[Item]]:
    """(train, test): the fixed held-out split."""
    return [i for i in items if not is_test(i)], [i for i in items if is_test(i)]


def fold_of(group: str, k: int) -> int:
    return int.from_bytes(hashlib.sha256(("fold:" + group).encode()).digest()[:8], "big") % k


def folds(items: list[Item], k: int = 5) -> list[tuple[list[Item], list[Item]]]:
    """k (train, validation) folds over ``items``, grouped like the split."""
    return [
        ([i for i in items if fold_of(i.group, k) != f], [i for i in items if fold_of(i.group, k) == f])
        for f in range(k)
    ]
