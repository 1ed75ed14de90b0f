"""The analysts' loop (`veille review`, `veille eval --feedback`), eval defaults, calibration and the gate."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from core.config import load_settings
from core.records import NoticeRecord
from nlp.classify import classify
from nlp.dataset import DEV_SET, load_dataset, split
from storage.db import open_archive, session_scope
from storage.ingest import ingest
from storage.models import Feedback, LabelScore, Notice, Sighting
from tests.conftest import DATA
from veille.commands.base import state
from veille.main import app

MINI = DATA / "nlp" / "mini.jsonl"
# "medical devices" named once in a body is weak evidence (0.9 x 0.4 x 1/3 = 0.12); three times, 0.36:
# 0.14 from the rules threshold (0.5), an uncertain decision.
BODY3 = "Products such as medical devices. Other medical devices. Medical devices again."


@pytest.fixture(autouse=True)
def fresh_cli_state():
    state._settings = None
    yield
    state._settings = None


def _record(ext: str, day: str, title: str, body: str | None = None) -> NoticeRecord:
    return NoticeRecord(
        source="cellar",
        external_id=ext,
        lang="en",
        title_en=title,
        body=body,
        published_at=datetime.fromisoformat(day + "T10:00:00+01:00"),
    )


def _archive():
    settings = load_settings()
    engine = open_archive(settings.database_url)
    ingest(
        engine,
        [
            _record("old", "2025-03-03", "Annual report on the internal market", BODY3),
            _record("sure", "2025-04-01", "Joint clinical assessments of medicinal products"),
            _record("new", "2025-05-02", "Guidelines on product safety", BODY3),
            _record("judged", "2025-06-02", "Report on standardisation", BODY3),
            _record("generic", "2025-07-01", "Recommendation on the economic policy of the euro area"),
        ],
    )
    with session_scope(engine) as s:
        ids = {r.external_id: r.notice_id for r in s.exec(select(Sighting))}
    return settings, engine, ids


def test_review_lists_uncertain_decisions_newest_first_without_judged_ones():
    from nlp.review import review

    settings, engine, ids = _archive()
    classify(engine, settings)
    with session_scope(engine, write=True) as s:
        s.add(Feedback(notice_id=ids["judged"], label="deai", verdict=False, user="ana", created_at=datetime.now(UTC)))
    items = review(engine, settings, "deai")
    assert [(i.notice_id, i.label) for i in items] == [(ids["new"], "deai"), (ids["old"], "deai")]
    first = items[0]
    assert first.rule_score == pytest.approx(0.36) and first.threshold == 0.5 and not first.selected
    assert first.reasons == ["incertain"] and str(first.day) == "2025-05-02"
    assert review(engine, settings, "deai", n=1)[0].notice_id == ids["new"]
    with pytest.raises(ValueError, match=r"^thématique inconnue 'nope' \(le profil a : "):
        review(engine, settings, "nope")
    res = CliRunner().invoke(app, ["review", "--label", "deai", "-n", "5"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    out = res.output.splitlines()
    facts = [i for i, ln in enumerate(out) if " · deai · " in ln]
    assert [out[i].split(" · ")[0] for i in facts] == ["2025-05-02", "2025-03-03"]
    assert "incertain" in out[facts[0]] and out[facts[0] + 1].strip().startswith("Guidelines on product safety")


def test_review_shows_where_rules_and_model_disagree():
    from nlp.review import review
    from tests.nlp_support import make_tiny_model

    settings, engine, ids = _archive()
    make_tiny_model(settings)  # thresholds 0.5; its scores for these titles are far from 0.5 either way
    classify(engine, settings)
    items = review(engine, settings, n=50)
    with session_scope(engine) as s:
        rows = {(r.notice_id, r.label): r for r in s.exec(select(LabelScore))}
    for it in items:
        row = rows[(it.notice_id, it.label)]
        disagree = ((row.rule_score or 0) >= 0.5) != (row.model_score >= 0.5)
        assert ("règles ≠ modèle" in it.reasons) == disagree
        assert ("incertain" in it.reasons) == (abs(row.score - 0.5) <= 0.15)
    expected = {
        k
        for k, r in rows.items()
        if abs(r.score - 0.5) <= 0.15 or ((r.rule_score or 0) >= 0.5) != (r.model_score >= 0.5)
    }
    assert {(i.notice_id, i.label) for i in items} == expected and expected
    days = [i.day for i in items]
    assert days == sorted(days, reverse=True)


def test_eval_feedback_reports_agreement_by_month():
    settings, engine, ids = _archive()
    verdicts = [  # (notice, label, verdict, when, analyst): rules alone select deai on "sure" only
        ("sure", "deai", True, "2026-01-10T09:00:00+00:00", "ana"),
        ("old", "deai", True, "2026-01-20T09:00:00+00:00", "ana"),  # missed
        ("generic", "deai", False, "2026-02-03T09:00:00+00:00", "ana"),
        ("new", "deai", False, "2026-02-28T23:30:00+00:00", "ana"),  # 1 March in Paris
        ("new", "deai", False, "2026-01-05T09:00:00+00:00", "bob"),  # an older verdict on the same pair: superseded
    ]
    with session_scope(engine, write=True) as s:
        for ext, lb, v, when, user in verdicts:
            s.add(Feedback(notice_id=ids[ext], label=lb, verdict=v, user=user, created_at=datetime.fromisoformat(when)))
    from nlp.review import feedback_agreement

    months = feedback_agreement(engine, settings)
    assert [(m.month, m.verdicts, m.agree, m.false_alerts, m.missed) for m in months] == [
        ("2026-01", 2, 1, 0, 1),
        ("2026-02", 1, 1, 0, 0),
        ("2026-03", 1, 1, 0, 0),
    ]
    res = CliRunner().invoke(app, ["eval", "--feedback"], env={"COLUMNS": "150"})
    assert res.exit_code == 0, res.output
    assert "2026-01" in res.output and "50%" in res.output and "75%" in res.output
    res = CliRunner().invoke(app, ["eval"])
    assert res.exit_code == 2 and "donnez un JEU.jsonl, ou --feedback" in res.output


def test_eval_scores_every_item_of_another_file_and_the_test_split_of_the_shipped_set(tmp_path):
    res = CliRunner().invoke(app, ["eval", str(MINI)], env={"COLUMNS": "200"})
    assert res.exit_code == 0 and "6 éléments (part all)" in res.output
    n_test = len(split(load_dataset(DEV_SET))[1])
    res = CliRunner().invoke(app, ["eval", str(DEV_SET)], env={"COLUMNS": "200"})
    assert res.exit_code == 0 and f"{n_test} éléments (part test)" in res.output
    copy = tmp_path / "copy.jsonl"  # a copy of the shipped set is still the shipped set
    shutil.copy(DEV_SET, copy)
    res = CliRunner().invoke(app, ["eval", str(copy)], env={"COLUMNS": "200"})
    assert res.exit_code == 0 and f"{n_test} éléments (part test)" in res.output
    res = CliRunner().invoke(app, ["eval", str(MINI), "--split", "test"], env={"COLUMNS": "200"})
    assert "part 'test'" in res.output or "(part test)" in res.output


def test_a_generic_text_with_no_health_word_is_never_selected(tmp_path):
    """However sure the model (here a real model calibrated to say ~1.0 for everything), a text in which no
    rule finds anything gets no label; a text where a rule found a health word may get one from the model."""
    from nlp.rules import active_rules
    from nlp.scoring import load_model, score_parsed
    from nlp.text import Meta, parse_fields
    from tests.nlp_support import make_tiny_model

    settings = load_settings()
    make_tiny_model(settings)
    model = load_model(settings)
    model.platt = {lb: (0.0, 12.0) for lb in model.alpha}  # calibrated to 0.99999 whatever the text
    rules = active_rules(settings)
    generic = [
        "Council Recommendation on the economic policy of the euro area",
        "Report on Competition Policy 2024",
        "Press release",
        "Call for expression of interest",
        "Rapport annuel sur la politique de concurrence",
    ]
    parsed = [parse_fields([("title", "fr" if t.startswith("Rapport") else "en", t)], Meta()) for t in generic]
    for title, row in zip(generic, score_parsed(rules, model, parsed), strict=True):
        assert all(s.model_score > 0.99 for s in row.values())
        assert not [lb for lb, s in row.items() if s.selected], title
    health = parse_fields([("title", "en", "Vaccination campaigns in schools")], Meta())
    row = score_parsed(rules, model, [health])[0]
    assert row["sante_publique"].rule_score > 0
    assert row["diqasm"].rule_score == 0 and row["diqasm"].selected  # the model alone, on a health text


def test_platt_calibration_maps_saturated_scores_to_observed_frequencies():
    from nlp.scoring import calibrate
    from nlp.train import Example, fit_platt

    # Out of fold, the model said 0.99 for 20 items of which 10 had the label, and 0.01 for 20 without.
    exs = [Example(f"e{i}", "g", "", {"deai": float(i < 10)}, {}, raw={"deai": 0.99}) for i in range(20)]
    exs += [Example(f"n{i}", "g", "", {"deai": 0.0}, {}, raw={"deai": 0.01}) for i in range(20)]
    platt = fit_platt(exs, ["deai"])
    high, low = calibrate({"deai": 0.99}, platt)["deai"], calibrate({"deai": 0.01}, platt)["deai"]
    assert 0.4 < high < 0.6 and low < 0.1  # 0.99 meant "one in two", and now says so


def test_the_gate_lowers_labels_of_notices_that_look_irrelevant():
    """Trained on the labelled train split (near-misses included) from the rules' evidence: a notice whose only
    evidence is a generic phrase in the body, or a vetoed near-miss, is gated; title evidence passes."""
    from nlp.rules import active_rules
    from nlp.scoring import gate_features, gate_value, gated
    from nlp.text import Meta, parse_fields, parse_item
    from nlp.train import dataset_examples, fit_gate

    settings = load_settings()
    rules = active_rules(settings)
    labels = list(rules.labels)
    train, _ = split(load_dataset(DEV_SET))
    exs = dataset_examples(train, labels, rules)
    for e in exs:  # no model: every out-of-fold model score 0, the gate learns from the rules' evidence
        e.raw = e.oof = {lb: 0.0 for lb in labels}
    params = {"alpha": {lb: 0.5 for lb in labels}, "thresholds": {lb: 0.25 for lb in labels}}
    gate = fit_gate(exs, labels, {**params, "platt": {}, "calibrated": True, "model_thresholds": {}})
    assert gate is not None and 0.0 <= gate["threshold"] <= 0.9 and len(gate["coef"]) == 4
    zero = {lb: 0.0 for lb in labels}

    def g(parsed) -> float:
        return gate_value(gate, gate_features(rules.evaluate(parsed), zero))

    strong = g(parse_fields([("title", "en", "Joint clinical assessments of medicinal products")], Meta()))
    weak = g(parse_fields([("title", "en", "Annual report"), ("body", "en", "one of them medical devices")], Meta()))
    near_miss = next(i for i in train if i.near_miss and "veterinary" in i.title.lower())
    vetoed = g(parse_item(near_miss))
    assert strong > weak and strong > vetoed
    assert weak < 0.8 and gated(0.6, weak, 0.8) == pytest.approx(0.6 * weak / 0.8, abs=1e-4)
    assert gated(0.6, 0.9, 0.5) == 0.6 and gated(0.6, None, 0.5) == 0.6


def test_production_training_learns_from_every_shipped_label(monkeypatch):
    from nlp import train as train_mod

    _, test = split(load_dataset(DEV_SET))
    every = {i.id for i in train_mod.training_items([], holdout=False)}
    assert {i.id for i in test} <= every and len(every) == len(load_dataset(DEV_SET))
    honest = {i.id for i in train_mod.training_items([], holdout=True)}
    assert honest.isdisjoint({i.id for i in test})
    with session_scope(open_archive(load_settings().database_url)) as s:
        assert not list(s.exec(select(Notice)))  # nothing else read


def test_eval_on_the_shipped_set_says_when_the_model_saw_the_held_out_split():
    import json

    from tests.nlp_support import make_tiny_model

    settings = load_settings()
    make_tiny_model(settings)
    meta_path = settings.models / "has" / "m-tiny" / "veille_meta.json"
    res = CliRunner().invoke(app, ["eval", str(DEV_SET)], env={"COLUMNS": "200"})
    assert res.exit_code == 0 and "pas une évaluation honnête" not in res.output
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps(meta | {"holdout": False}))  # as `veille train` (production) writes it
    from nlp import scoring

    scoring._MODELS.clear()
    res = CliRunner().invoke(app, ["eval", str(DEV_SET)], env={"COLUMNS": "200"})
    out = " ".join(res.output.split())
    assert res.exit_code == 0 and "ces chiffres ne sont pas une évaluation honnête" in out and "--holdout" in out


def test_review_reads_the_thresholds_of_the_rules_in_force_without_compiling_them():
    """`veille review` reads the rules' thresholds without spaCy from the package's own rules or the text last put
    in force whole (last_good.yaml); any other file in place goes through nlp.rules.active_rules, which decides as
    everywhere."""
    from nlp.rules import active_rules, rules_path, save_rules
    from nlp.rules_load import known_good_thresholds, thresholds_in_force

    settings = load_settings()
    shipped = {lb: 0.5 for lb in ("deai", "sante_publique", "daqss", "diqasm", "numerique", "international")}
    # A new home (no rules of its own, no last_good.yaml yet): the package's rules, read fast.
    assert known_good_thresholds(settings) == {**shipped, "deontologie": 0.5}
    assert thresholds_in_force(settings) == active_rules(settings).labels == {**shipped, "deontologie": 0.5}
    text = rules_path(settings).read_text(encoding="utf-8")
    assert "defaults:\n  threshold: 0.5\n" in text
    save_rules(settings, text.replace("defaults:\n  threshold: 0.5\n", "defaults:\n  threshold: 0.6\n"), "ana")
    assert known_good_thresholds(settings)["deai"] == 0.6 == thresholds_in_force(settings)["deai"]  # read fast
    # Edited by hand: a token pattern the schema lets through but spaCy refuses (no attribute FOO), and a new
    # default threshold. The file is refused, the saved rules stay in force: their thresholds, not the file's.
    bad = text.replace("defaults:\n  threshold: 0.5\n", "defaults:\n  threshold: 0.8\n").replace(
        "labels:\n  deai:\n    rules:\n",
        "labels:\n  deai:\n    rules:\n      - name: bad\n        weight: 0.5\n        patterns: [[{FOO: x}]]\n",
    )
    rules_path(settings).write_text(bad, encoding="utf-8")
    assert known_good_thresholds(settings) is None
    assert thresholds_in_force(settings)["deai"] == 0.6 == active_rules(settings).labels["deai"]
    assert "FOO" in active_rules(settings).refused
