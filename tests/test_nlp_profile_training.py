"""Training follows the profile: its own labelled set, its own model folder (old models found once)."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from core.config import ConfigError, load_settings
from core.profiles import SHIPPED, load_labels
from nlp import scoring
from nlp import train as train_mod
from nlp.dataset import DEV_SET, load_dataset, profile_dataset
from veille.commands.base import state
from veille.main import app


@pytest.fixture(autouse=True)
def fresh_state():
    state._settings = None
    scoring._MODELS.clear()
    yield
    state._settings = None
    scoring._MODELS.clear()


def _copy_profile(home, name: str, dataset_lines: list[str]) -> None:
    """The HAS profile copied as ``name`` (an analysts' profile folder), declaring its own labelled set."""
    folder = home / "profiles" / name
    shutil.copytree(SHIPPED / "has", folder)
    toml = (folder / "profile.toml").read_text(encoding="utf-8")
    toml = toml.replace('name = "has"', f'name = "{name}"').replace("has_dev_notices.jsonl", "own.jsonl")
    (folder / "profile.toml").write_text(toml, encoding="utf-8")
    (folder / "own.jsonl").write_text("".join(dataset_lines), encoding="utf-8")


def test_the_has_profile_declares_the_shipped_set_and_dns_none():
    assert profile_dataset(load_settings()) == DEV_SET
    dns = load_settings().model_copy(update={"profile": "dns"})
    assert profile_dataset(dns, required=False) is None
    with pytest.raises(ConfigError, match=r"profiles/dns/profile.toml:1: le profil 'dns' ne déclare aucun jeu annoté"):
        profile_dataset(dns)


def test_a_missing_dataset_is_named_with_its_line(veille_home, monkeypatch):
    _copy_profile(veille_home, "lost", [])
    (veille_home / "profiles" / "lost" / "own.jsonl").unlink()
    monkeypatch.setenv("VEILLE_PROFILE", "lost")
    with pytest.raises(ConfigError, match=r"lost/profile.toml:9: dataset: 'own.jsonl' introuvable \(cherché dans "):
        profile_dataset(load_settings())


@pytest.mark.slow
def test_training_reads_the_profiles_dataset_and_keeps_its_models_apart(veille_home, monkeypatch):
    # 40 real items of the shipped set: the copied profile's whole labelled set.
    lines = [ln for ln in DEV_SET.read_text(encoding="utf-8").splitlines(keepends=True) if ln.strip()][:40]
    _copy_profile(veille_home, "hascopy", lines)
    monkeypatch.setenv("VEILLE_PROFILE", "hascopy")
    settings = load_settings()
    path = train_mod.train(settings, k_folds=2, epochs=1)
    meta = json.loads((path / "veille_meta.json").read_text(encoding="utf-8"))
    own = [json.loads(ln)["id"] for ln in lines]
    assert meta["train_ids"] == sorted(own) and len(own) == 40  # not the 441 items of the HAS set
    assert meta["profile"] == "hascopy" and meta["dataset"].endswith("profiles/hascopy/own.jsonl")
    assert path.parent == settings.models / "hascopy"
    assert (settings.models / "hascopy" / "current").read_text().strip() == meta["version"]
    assert scoring.load_model(settings).version == meta["version"]
    # The HAS profile has no model: another profile's model is never used for it.
    assert scoring.load_model(settings.model_copy(update={"profile": "has"})) is None
    # `veille eval` on the profile's own set evaluates its held-out split; on the HAS set, every item.
    res = CliRunner().invoke(app, ["eval", str(veille_home / "profiles" / "hascopy" / "own.jsonl")])
    assert res.exit_code == 0 and "(part test)" in res.output
    res = CliRunner().invoke(app, ["eval", str(DEV_SET)])
    assert res.exit_code == 0 and f"{len(load_dataset(DEV_SET))} éléments (part all)" in res.output


def test_training_a_profile_without_a_dataset_is_refused_in_one_line(monkeypatch):
    monkeypatch.setenv("VEILLE_PROFILE", "dns")
    res = CliRunner().invoke(app, ["train"])
    assert res.exit_code == 2
    line = res.output.strip()
    assert "\n" not in line and "le profil 'dns' ne déclare aucun jeu annoté" in line
    assert not (load_settings().models / "dns").exists()


@pytest.mark.slow
def test_a_model_in_the_old_place_is_moved_once_and_nothing_is_lost():
    """Before models were per profile, `veille train` wrote ``<models>/<version>/`` and ``<models>/current``."""
    from tests.nlp_support import make_tiny_model

    settings = load_settings()
    make_tiny_model(settings, "m-old")  # trained for the HAS labels, in the per-profile folder
    has_home = settings.models / "has"
    root = settings.models
    shutil.move(has_home / "m-old", root / "m-old")  # ... moved back to where models used to be
    shutil.move(has_home / "current", root / "current")
    other = root / "m-other"  # a model of another profile's labels, also in the old place
    other.mkdir()
    (other / "veille_meta.json").write_text(json.dumps({"version": "m-other", "labels": ["ehds"]}))

    model = scoring.load_model(settings)
    assert model is not None and model.version == "m-old" and model.path == has_home / "m-old"
    assert (has_home / "current").read_text().strip() == "m-old"
    assert not (root / "current").exists() and not (root / "m-old").exists()
    assert (other / "veille_meta.json").exists()  # not this profile's: left where it was
    assert set(model.alpha) == set(load_labels(settings))
    scoring._MODELS.clear()
    assert scoring.load_model(settings).path == has_home / "m-old"  # found again, nothing moved twice
