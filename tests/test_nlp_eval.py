"""Dataset loading, the fixed split, the eval command (incl. --out) and training without leaks."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.config import load_settings
from nlp import train as train_mod
from nlp.dataset import DEV_SET, DatasetError, Item, is_test, load_dataset, split
from tests.conftest import DATA
from veille.commands.base import state
from veille.main import app

MINI = DATA / "nlp" / "mini.jsonl"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def fresh_cli_state():
    state._settings = None
    yield
    state._settings = None


def test_dataset_needs_only_id_title_labels(tmp_path):
    items = load_dataset(MINI)
    assert [i.id for i in items][:2] == ["m-1", "m-2"] and items[2].lang is None and items[3].near_miss
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "title": "t", "labels": []}\n{"id": "y", "labels": []}\n')
    with pytest.raises(DatasetError, match=r"bad.jsonl:2: champ obligatoire 'title' manquant"):
        load_dataset(bad)
    bad.write_text('{"id": "x", "title": "t", "labels": []}\n{oops\n')
    with pytest.raises(DatasetError, match=r"bad.jsonl:2: JSON invalide"):
        load_dataset(bad)


def test_split_is_fixed_disjoint_and_keeps_act_pairs_together():
    items = load_dataset(DEV_SET)
    train, test = split(items)
    assert {i.id for i in train}.isdisjoint({i.id for i in test})
    assert len(train) + len(test) == len(items) == 441
    assert 0.18 < len(test) / len(items) < 0.32
    groups_train, groups_test = {i.group for i in train}, {i.group for i in test}
    assert groups_train.isdisjoint(groups_test)
    # Same result whatever the order of the file.
    assert {i.id for i in split(list(reversed(items)))[1]} == {i.id for i in test}
    assert is_test(Item(id="zzz", title="t", labels=(), celex=test[0].celex)) == bool(test[0].celex)


def test_eval_command_on_small_fixture_writes_predictions(tmp_path):
    out = tmp_path / "pred.jsonl"
    res = CliRunner().invoke(app, ["eval", str(MINI), "--split", "all", "--out", str(out)])
    assert res.exit_code == 0, res.output
    for text in (
        "6 éléments",
        "micro-F1",
        "macro-F1",
        "pertinent / non pertinent",
        "faux positifs proches",
        "fausses alertes / 100",
    ):
        assert text in res.output
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x["id"] for x in lines] == [f"m-{i}" for i in range(1, 7)]
    first = lines[0]
    assert first["labels"] == ["deai"] and set(first["scores"]) >= {"deai", "numerique"}
    assert any(f["rule"].startswith("deai/") for f in first["fired"])
    assert lines[3]["labels"] == [] and lines[4]["labels"] == []  # vetoed near-miss, antidumping


def test_eval_command_errors_are_one_line(tmp_path):
    res = CliRunner().invoke(app, ["eval", str(tmp_path / "missing.jsonl")])
    assert res.exit_code == 2 and "missing.jsonl : illisible : fichier introuvable" in res.output.replace("\n", "")


def test_datasets_from_spreadsheets_and_other_encodings(tmp_path):
    bom = tmp_path / "bom.jsonl"  # Excel and many Windows tools write a UTF-8 byte-order mark first
    bom.write_bytes(b"\xef\xbb\xbf" + json.dumps({"id": "c", "title": "Règlement", "labels": []}).encode() + b"\n")
    assert [i.title for i in load_dataset(bom)] == ["Règlement"]
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes(b'{"id": "a", "title": "ok", "labels": []}\n{"id": "b", "title": "R\xe8glement", "labels": []}\n')
    with pytest.raises(DatasetError, match=r"latin.jsonl:2: pas en UTF-8 \(octet 0xe8\)"):
        load_dataset(latin)
    res = CliRunner().invoke(app, ["eval", str(latin), "--split", "all"])
    assert res.exit_code == 2 and "latin.jsonl:2: pas en UTF-8" in res.output.replace("\n", "")
    assert "Traceback" not in res.output


def test_eval_warns_about_labels_of_another_profile(tmp_path):
    other = tmp_path / "other.jsonl"
    rows = [
        {"id": "1", "title": "Medical devices: notified bodies", "labels": ["deai", "pharmacy"]},
        {"id": "2", "title": "Opening hours of pharmacies", "labels": ["pharmacy"]},
        {"id": "3", "title": "Maximum residue levels of pesticides", "labels": []},
    ]
    other.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    res = CliRunner().invoke(app, ["eval", str(other), "--split", "all"], env={"COLUMNS": "60"})
    # One line whatever the terminal width (the message is never cut, the path in it neither).
    assert res.exit_code == 0
    assert (
        f"attention : {other} : thématiques absentes de ce profil, ignorées : pharmacy (2 éléments)"
        in res.output.splitlines()
    )
    # Item 2 carries only the unknown label: for this profile it is not relevant, and rightly left unlabelled.
    from nlp.evaluate import metrics

    m = metrics(load_dataset(other), [{"deai"}, set(), set()], ["deai", "numerique"])
    assert m.relevant_accuracy == 1.0 and m.micro_f1 == 1.0


def test_rules_check_command(tmp_path):
    bad = tmp_path / "r.yaml"
    bad.write_text("labels:\n  deai:\n    rules:\n      - name: x\n        weight: 7\n        en: [a]\n")
    res = CliRunner().invoke(app, ["rules", "check", str(bad)])
    problem = f"{bad}:5: labels.deai.rules.0.weight: doit être un nombre entre 0.0 et 1.0"
    assert res.exit_code == 2 and problem in res.output.replace("\n", "")
    res = CliRunner().invoke(app, ["rules", "check"])
    assert res.exit_code == 0 and "ok" in res.output


def test_rules_save_command_then_classify_rescores_with_them(tmp_path):
    from core.records import NoticeRecord
    from nlp.rules import active_rules, rules_path
    from storage.db import open_archive
    from storage.ingest import ingest

    settings = load_settings()
    ingest(open_archive(settings.database_url), [NoticeRecord(source="s", external_id="1", title_en="Vaccination")])
    assert "1 notice(s) classée(s)" in CliRunner().invoke(app, ["classify"]).output
    assert "0 notice(s) classée(s)" in CliRunner().invoke(app, ["classify"]).output  # scores are current
    before = active_rules(settings).version
    text = rules_path(settings).read_text(encoding="utf-8")
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("  threshold: 0.5\n", "  threshold: 5\n", 1), encoding="utf-8")
    res = CliRunner().invoke(app, ["rules", "save", str(bad)])
    assert res.exit_code == 2 and f"{bad}:" in res.output.replace("\n", "")
    assert active_rules(settings).version == before  # refused: nothing changed
    good = tmp_path / "good.yaml"
    good.write_text(text.replace("  threshold: 0.5\n", "  threshold: 0.45\n", 1), encoding="utf-8")
    res = CliRunner().invoke(app, ["rules", "save", str(good), "--by", "alice"])
    version = active_rules(settings).version
    assert res.exit_code == 0 and version != before and version in res.output
    history = (rules_path(settings).parent / "rules_history" / "history.jsonl").read_text(encoding="utf-8")
    assert json.loads(history.splitlines()[-1])["user"] == "alice"
    assert "1 notice(s) classée(s)" in CliRunner().invoke(app, ["classify"]).output  # outdated by the new rules


def test_explain_command_says_when_the_archive_shows_older_scores():
    from core.records import NoticeRecord
    from nlp.rules import rules_path, save_rules
    from storage.db import open_archive
    from storage.ingest import ingest

    settings = load_settings()
    title = "Implementing Regulation on joint clinical assessments of medicinal products"
    ingest(open_archive(settings.database_url), [NoticeRecord(source="s", external_id="1", title_en=title)])
    out = CliRunner().invoke(app, ["explain", "1"]).output
    assert "deai" in out and "joint clinical assessment" in out and "pas encore scorée dans l'archive" in out
    CliRunner().invoke(app, ["classify"])
    out = CliRunner().invoke(app, ["explain", "1"]).output
    assert "sélectionnée" in out and "périmés" not in out and "pas encore scorée" not in out
    changed = NoticeRecord(source="s", external_id="1", title_en=title, summary_en="Corrigendum.")
    ingest(open_archive(settings.database_url), [changed])
    out = " ".join(CliRunner().invoke(app, ["explain", "1"]).output.split())
    assert "scores archivés périmés (faits avant la dernière modification de la notice)" in out
    CliRunner().invoke(app, ["classify"])
    text = rules_path(settings).read_text(encoding="utf-8")
    veto = "\nnegatives:\n  - name: no-jca\n    penalty: 1.0\n    en: [joint clinical assessments]\n"
    save_rules(settings, text.replace("\nnegatives:\n", veto, 1))
    out = " ".join(CliRunner().invoke(app, ["explain", "1", "--ids"]).output.split())
    assert "[*/no-jca]" in out and "scores archivés périmés" in out and "l'archive montre deai jusqu'à" in out
    res = CliRunner().invoke(app, ["explain", "99"])
    assert res.exit_code == 2 and "aucune notice d'id 99" in res.output


def test_explain_says_when_the_models_score_alone_does_not_count():
    """A label no rule found keeps the model's score in the explanation, marked as not counted below 0.95."""
    from core.records import NoticeRecord
    from storage.db import open_archive
    from storage.ingest import ingest
    from tests.nlp_support import make_tiny_model

    settings = load_settings()
    make_tiny_model(settings)
    title = "Implementing Regulation on joint clinical assessments of medicinal products"
    ingest(open_archive(settings.database_url), [NoticeRecord(source="s", external_id="1", title_en=title)])
    out = CliRunner().invoke(app, ["explain", "1"]).output
    lines = {ln.split(" : ")[0]: ln for ln in out.splitlines() if ln.split(" : ")[0] in ("deai", "diqasm")}
    assert "non compté" not in lines["deai"]  # a rule found deai: the model's score counts
    assert "règles 0.00" in lines["diqasm"] and "non compté : aucune règle, et sous 0.95" in lines["diqasm"]


def test_rule_phrases_become_examples_of_their_label_only():
    from nlp.rules import load_rules
    from nlp.text import normalise

    rules = load_rules(ROOT / "core" / "profiles" / "has" / "rules.yaml")
    labels = list(rules.labels)
    ex = {e.id: e for e in train_mod.rule_examples(rules, labels)}
    ehds = ex["rule:numerique/ehds:fr:espace européen des données de santé"]
    assert ehds.text == " ".join(normalise("Espaces européens des données de santé", "fr")[1])  # stems
    assert ehds.cats == {lb: float(lb == "numerique") for lb in labels}
    veterinary = ex["rule:*/veterinary:en:veterinary medicinal products"]  # a negative cue: no label at all
    assert set(veterinary.cats.values()) == {0.0} and set(veterinary.cats) == set(labels)
    assert "rule:numerique/ehds:en:EHDS" in ex and "rule:numerique/ehds:fr:EHDS" in ex  # `any`: both languages


def test_train_never_sees_test_items_and_uses_feedback(monkeypatch, tmp_path):
    from sqlmodel import select

    from core.records import NoticeRecord
    from storage.db import open_archive, session_scope
    from storage.ingest import ingest
    from storage.models import Feedback, Notice

    settings = load_settings()
    engine = open_archive(settings.database_url)
    ingest(engine, [NoticeRecord(source="s", external_id="1", title_en="Telemedicine guidelines for rural care")])
    with session_scope(engine, write=True) as s:
        nid = s.exec(select(Notice.id)).one()
        s.add(Feedback(notice_id=nid, label="numerique", verdict=True, user="ana", created_at=datetime.now(UTC)))
    extra = tmp_path / "extra.jsonl"
    _, test = split(load_dataset(DEV_SET))
    leaked = test[0]  # an extra dataset repeating a held-out act must not bring it back in
    extra.write_text(
        json.dumps(
            {"id": "x-" + leaked.id, "title": leaked.title, "celex": leaked.celex, "labels": list(leaked.labels)}
        )
        + "\n"
        + json.dumps({"id": "x-new", "title": "Council conclusions on mental health", "labels": ["sante_publique"]})
        + "\n"
    )
    seen: list[set[str]] = []
    real_fit = train_mod.fit

    def recording_fit(examples, *a, **kw):  # records what each training run saw, then trains for real
        seen.append({e.id for e in examples})
        return real_fit(examples, *a, **kw)

    monkeypatch.setattr(train_mod, "fit", recording_fit)
    said: list[str] = []  # what `veille train` prints as it goes
    path = train_mod.train(settings, load_dataset(extra), k_folds=2, epochs=2, holdout=True, progress=said.append)
    meta = json.loads((path / "veille_meta.json").read_text())
    test_ids = {i.id for i in test}
    assert len(seen) == 3  # 2 folds + the final model
    assert len(said) == 3 and re.fullmatch(r"pli 1/2 : entraînement sur \d+ exemples", said[0])
    assert re.fullmatch(r"pli 2/2 : entraînement sur \d+ exemples", said[1])
    assert re.fullmatch(r"modèle final : entraînement sur \d+ exemples et \d+ expressions des règles", said[2])
    assert all(s.isdisjoint(test_ids) for s in seen)
    assert set(meta["train_ids"]).isdisjoint(test_ids)
    assert "x-new" in meta["train_ids"] and f"notice:{nid}" in meta["train_ids"]
    assert ("x-" + leaked.id) not in meta["train_ids"] or not leaked.celex
    assert meta["n_feedback"] == 1
    # The rules' phrases train every model (the same set each time) and are not training items.
    phrase_ids = [{i for i in ids if i.startswith("rule:")} for ids in seen]
    assert len(phrase_ids[0]) == meta["n_rule_phrases"] > 100 and all(p == phrase_ids[0] for p in phrase_ids)
    assert "rule:numerique/ehds:en:European Health Data Space" in phrase_ids[0]
    assert not any(i.startswith("rule:") for i in meta["train_ids"])
    assert set(meta["thresholds"]) == set(meta["alpha"]) == set(meta["model_thresholds"])
    assert (settings.models / "has" / "current").read_text().strip() == meta["version"]
    # classify / eval now use the model.
    from nlp.scoring import load_model

    model = load_model(settings)
    assert model is not None and model.version == meta["version"]
    res = CliRunner().invoke(app, ["eval", str(MINI), "--split", "all"])
    assert res.exit_code == 0 and "combined" in res.output and meta["version"] in res.output.replace("\n", "")
