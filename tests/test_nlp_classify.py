"""classify stores LabelScore rows (SQLite and PostgreSQL), explain, and the rules backtest."""

from __future__ import annotations

import gc
import threading
import time

import pytest
from sqlalchemy import delete, event, insert, text
from sqlmodel import select

from core.config import load_settings
from core.records import NoticeRecord
from nlp.backtest import backtest
from nlp.classify import classify, count_stale, explain, stale_ids
from nlp.rules import rules_path, save_rules
from nlp.scoring import gc_paused
from storage.db import session_scope
from storage.ingest import ingest
from storage.models import LabelScore
from storage.search import Filters, search
from tests.nlp_support import make_tiny_model
from veille import pipeline

RECORDS = [
    NoticeRecord(
        source="cellar",
        external_id="a",
        celex="32025R0117",
        kind="act",
        legal_basis=["32021R2282"],
        title_fr="Règlement d'exécution (UE) 2025/117 relatif aux consultations scientifiques communes",
        title_en="Implementing Regulation (EU) 2025/117 on joint scientific consultations",
    ),
    NoticeRecord(
        source="ema-news",
        external_id="b",
        lang="en",
        title_en="Vaccination campaigns: EMA and ECDC statement",
        summary_en="Booster vaccination with adapted vaccines.",
        body="Vaccines " * 400,
    ),
    NoticeRecord(
        source="cellar",
        external_id="c",
        celex="32023R0334",
        kind="act",
        title_en="Commission Regulation amending maximum residue levels for pesticides in food",
    ),
    NoticeRecord(source="press", external_id="d", title_fr="Stratégie européenne en faveur des personnes handicapées"),
]


def _ids(engine) -> dict[str, int]:
    ingest(engine, RECORDS)
    from storage.models import Sighting

    with session_scope(engine) as s:
        return {r.external_id: r.notice_id for r in s.exec(select(Sighting))}


def test_classify_stores_one_row_per_notice_and_label(engine):
    settings = load_settings()
    ids = _ids(engine)
    stats = classify(engine, settings)
    assert stats.notices == 4 and stats.rows == 4 * 7 and stats.model_version is None
    with session_scope(engine) as s:
        rows = list(s.exec(select(LabelScore)))
    assert len(rows) == 28
    by = {(r.notice_id, r.label): r for r in rows}
    hta = by[(ids["a"], "deai")]
    assert hta.selected and hta.score == hta.rule_score >= 0.9 and hta.rules_version == stats.rules_version
    assert hta.explanation["threshold"] == 0.5 and hta.explanation["model"] is None
    assert {"rule", "label", "words", "weight", "field"} <= set(hta.explanation["fired"][0])
    assert any(f["rule"] == "deai/hta-regulation" and "32021R2282" in f["words"] for f in hta.explanation["fired"])
    assert by[(ids["b"], "sante_publique")].selected
    assert not any(by[(ids["c"], lb)].selected for lb in ("deai", "sante_publique", "daqss"))
    assert by[(ids["d"], "diqasm")].selected
    # Re-classifying one notice replaces its rows, never duplicates them; an id with no notice is skipped.
    again = classify(engine, settings, [ids["a"]])
    assert again.notices == 1
    assert classify(engine, settings, [max(ids.values()) + 100]).notices == 0
    with session_scope(engine) as s:
        assert len(list(s.exec(select(LabelScore)))) == 28


def test_classify_keeps_the_search_label_filter_in_step(engine):
    settings = load_settings()
    ids = _ids(engine)
    classify(engine, settings)

    def with_label(label: str) -> set[int]:
        return {h.notice_id for h in search(engine, "", Filters(labels=[label])).hits}

    assert with_label("diqasm") == {ids["d"]} and ids["a"] in with_label("deai")
    # New rules veto disability: re-classifying takes the notice out of the label's search results.
    text = rules_path(settings).read_text(encoding="utf-8")
    save_rules(
        settings,
        text.replace(
            "\nnegatives:\n",
            "\nnegatives:\n  - name: no-disability\n    penalty: 1.0\n    fr: [personnes handicapées]\n",
            1,
        ),
    )
    classify(engine, settings)
    assert with_label("diqasm") == set() and ids["a"] in with_label("deai")


def test_explain_lists_fired_rules_and_stored_score(engine):
    settings = load_settings()
    ids = _ids(engine)
    classify(engine, settings)
    data = explain(engine, settings, ids["c"])
    fired = data["labels"]["sante_publique"]["fired"] + data["labels"]["deai"]["fired"]
    assert any(f["rule"] == "*/food" and f["weight"] < 0 for f in fired)
    assert data["labels"]["deai"]["stored"]["rules_version"] == data["rules_version"]


def test_backtest_shows_gained_and_lost_notices(engine):
    settings = load_settings()
    ids = _ids(engine)
    classify(engine, settings)
    text = rules_path(settings).read_text(encoding="utf-8")
    # One phrase added to a label: the disability notice gains `international`.
    phrases = "        fr: [politique de santé publique,"
    added = text.replace(phrases, phrases.replace("[", "[personnes handicapées, "), 1)
    assert added != text
    res = backtest(engine, settings, added, "cand.yaml")
    assert res.labels["international"].gained == [ids["d"]] and res.labels["international"].lost == []
    assert all(d.counts == (0, 0) for lb, d in res.labels.items() if lb != "international")
    assert res.rescored == 1 and res.notices == 4  # only the notice holding the phrase was re-scored
    # A veto on vaccines: the EMA notice loses sante_publique.
    vetoed = text.replace(
        "negatives:\n  - name: veterinary\n",
        "negatives:\n  - name: no-vaccines\n    penalty: 1.0\n    en: [vaccination]\n  - name: veterinary\n",
        1,
    )
    res = backtest(engine, settings, vetoed)
    assert ids["b"] in res.labels["sante_publique"].lost
    # The same veto, unless the notice names ECDC: the EMA notice is re-scored and loses nothing.
    spared = vetoed.replace("    en: [vaccination]\n", "    en: [vaccination]\n    unless: {en: [ECDC]}\n", 1)
    assert spared != vetoed
    res = backtest(engine, settings, spared)
    assert res.rescored >= 1 and all(d.counts == (0, 0) for d in res.labels.values())
    # Nothing was saved: the active rules are unchanged.
    assert rules_path(settings).read_text(encoding="utf-8") == text


def _diffs(res) -> dict:
    return {lb: (d.gained, d.lost) for lb, d in res.labels.items()}


def test_threshold_change_is_decided_from_stored_rule_scores_when_they_are_current(engine):
    settings = load_settings()
    ids = _ids(engine)
    classify(engine, settings)
    text = rules_path(settings).read_text(encoding="utf-8")
    changes = [text.replace("defaults:\n  threshold: 0.5\n", f"defaults:\n  threshold: {t}\n", 1) for t in (0.05, 0.95)]
    assert text not in changes
    # Scored with the current rules: no notice is re-scored, the stored rule scores decide.
    fast = [backtest(engine, settings, c) for c in changes]
    assert [r.rescored for r in fast] == [0, 0] and fast[0].note is None
    assert sum(d.counts[0] for d in fast[0].labels.values()) > 0  # lowered: some gain
    assert sum(d.counts[1] for d in fast[1].labels.values()) > 0  # raised: some lose
    # A notice changed since it was scored is re-scored; the others still come from their stored scores.
    ingest(
        engine, [RECORDS[1].model_copy(update={"summary_en": "Booster vaccination with adapted vaccines (update)."})]
    )
    assert [backtest(engine, settings, c).rescored for c in changes] == [1, 1]
    # The archive scored with other rules (here: the same rules with a comment): every notice is re-scored,
    # and the outcome is the one read from the stored scores.
    save_rules(settings, text + "\n# reviewed\n")
    slow = [backtest(engine, settings, c) for c in changes]
    assert [r.rescored for r in slow] == [len(ids), len(ids)]
    assert [_diffs(r) for r in slow] == [_diffs(r) for r in fast]


def test_threshold_change_with_a_model_rescores_only_notices_it_did_not_score(engine):
    settings = load_settings()
    ids = _ids(engine)
    text = rules_path(settings).read_text(encoding="utf-8")
    lowered = text.replace("defaults:\n  threshold: 0.5\n", "defaults:\n  threshold: 0.05\n", 1)
    assert lowered != text
    # No model, and no stored scores: the file's thresholds decide, every notice is re-scored, some gain labels.
    res = backtest(engine, settings, lowered)
    assert res.rescored == len(ids) and res.note is None
    assert sum(d.counts[0] for d in res.labels.values()) > 0
    # With a model, the notices it scored are compared with its own thresholds: none can change.
    make_tiny_model(settings)
    classify(engine, settings)
    res = backtest(engine, settings, lowered)
    assert res.rescored == 0 and all(d.counts == (0, 0) for d in res.labels.values())
    assert res.note.startswith("les seuils du fichier de règles ne valent que pour les notices scorées sans modèle ; ")
    assert "le modèle m-tiny sélectionne avec ses propres seuils" in res.note and "`veille train`" in res.note
    # A notice stored since then (not yet scored by the model) is still backtested with the file's thresholds.
    ingest(engine, [NoticeRecord(source="ema-news", external_id="e", lang="en", title_en="EMA news on medicines")])
    res = backtest(engine, settings, lowered)
    assert res.rescored == 1 and res.labels["deai"].counts == (1, 0)


def test_gc_paused_restores_the_collector_state_even_on_error():
    assert gc.isenabled()
    with pytest.raises(RuntimeError), gc_paused():
        assert not gc.isenabled()
        raise RuntimeError("a batch failed")
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()  # it was off before: it stays off
    finally:
        gc.enable()


def test_outdated_scores_are_found_newest_first_and_caught_up_by_the_cycles(engine, monkeypatch):
    settings = load_settings()
    ids = _ids(engine)
    newest_first = [ids[k] for k in "dcba"]  # ingested together: the later id is the later change
    assert stale_ids(engine, settings) == newest_first  # never scored
    classify(engine, settings)
    assert stale_ids(engine, settings) == []
    # A notice changed since it was scored.
    ingest(engine, [RECORDS[1].model_copy(update={"summary_en": "Booster vaccination (corrigendum)."})])
    assert stale_ids(engine, settings) == [ids["b"]]
    classify(engine, settings, stale_ids(engine, settings))
    # An analyst saves rules: every score is outdated. The cycles catch up, a bounded number each time,
    # newest first, with no crawl needed.
    text = rules_path(settings).read_text(encoding="utf-8")
    version = save_rules(settings, text + "\n# reviewed\n")
    assert stale_ids(engine, settings) == [ids["b"], ids["d"], ids["c"], ids["a"]]
    monkeypatch.setattr(pipeline, "RESCORE_PER_CYCLE", 3)
    first = pipeline.run_cycle(engine, settings, sources=[], digests=False)
    assert (first.classified, first.rescored) == (3, 3)
    assert stale_ids(engine, settings) == [ids["a"]]
    assert count_stale(engine, settings) == 1
    assert pipeline.run_cycle(engine, settings, sources=[], digests=False).rescored == 1
    with session_scope(engine) as s:
        assert {r.rules_version for r in s.exec(select(LabelScore))} == {version}
    assert pipeline.run_cycle(engine, settings, sources=[], digests=False).rescored == 0
    # A new model outdates them again.
    make_tiny_model(settings)
    assert len(stale_ids(engine, settings)) == count_stale(engine, settings) == len(ids)


@pytest.mark.parametrize("version", ["TEXT_VERSION", "MIX_VERSION"])
def test_a_new_text_reading_or_combination_outdates_the_scores_made_before_it(engine, monkeypatch, version):
    """An upgrade that reads text otherwise (nlp.text.TEXT_VERSION) or combines rules and model otherwise
    (nlp.scoring.MIX_VERSION) outdates every stored score, as a rules save does; scores made since are
    current. The moment is kept in the archive, once per version."""
    from nlp import classify as classify_mod

    settings = load_settings()
    ids = _ids(engine)
    classify(engine, settings)
    assert stale_ids(engine, settings) == []
    since = classify_mod.scoring_since(engine)
    assert classify_mod.scoring_since(engine) == since  # recorded once, not moved by later calls
    monkeypatch.setattr(classify_mod, version, getattr(classify_mod, version) + 1)
    assert len(stale_ids(engine, settings)) == count_stale(engine, settings) == len(ids)
    assert classify_mod.scoring_since(engine) > since
    assert {d["stored"]["outdated"] for d in explain(engine, settings, ids["a"])["labels"].values()} == {"reading"}
    classify(engine, settings, stale_ids(engine, settings))
    assert stale_ids(engine, settings) == []
    assert {d["stored"]["outdated"] for d in explain(engine, settings, ids["a"])["labels"].values()} == {None}


def _waiting_on_a_lock(engine, writing: threading.Event) -> bool:
    if engine.dialect.name != "postgresql":
        # SQLite shows no lock waits: the other writer has issued its first write, which waits for our lock.
        return writing.is_set()
    with engine.connect() as conn:
        q = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        return conn.execute(text(q)).scalar() > 0


def _first_write_of(engine, thread_name: str) -> threading.Event:
    """Set when the thread named ``thread_name`` asks for the write lock (SQLite writers BEGIN IMMEDIATE) or writes."""
    writing = threading.Event()

    @event.listens_for(engine, "before_cursor_execute")
    def _seen(conn, cursor, statement, *args) -> None:
        if threading.current_thread().name == thread_name and statement.lstrip().upper().startswith(WRITES):
            writing.set()

    return writing


WRITES = ("BEGIN IMMEDIATE", "INSERT", "UPDATE", "DELETE")


def test_a_classification_racing_another_writer_of_the_same_scores_succeeds(engine):
    settings = load_settings()
    ids = _ids(engine)
    classify(engine, settings)
    with session_scope(engine) as s:
        rows = [
            r.model_dump(exclude={"id"}) for r in s.exec(select(LabelScore).where(LabelScore.notice_id == ids["a"]))
        ]
    errors: list[BaseException] = []

    def run() -> None:
        try:
            classify(engine, settings)
        except BaseException as exc:  # reported below
            errors.append(exc)

    # Another cycle is half-way through replacing notice a's scores when this classification starts.
    with engine.begin() as other:
        other.execute(delete(LabelScore).where(LabelScore.notice_id == ids["a"]))
        other.execute(insert(LabelScore), rows)
        thread = threading.Thread(target=run, name="racing-classify")
        writing = _first_write_of(engine, thread.name)
        thread.start()
        deadline = time.monotonic() + 30
        while not _waiting_on_a_lock(engine, writing) and time.monotonic() < deadline:
            time.sleep(0.05)
    thread.join()
    assert errors == []
    with session_scope(engine) as s:
        stored = list(s.exec(select(LabelScore)))
    assert len(stored) == len(ids) * 7 and len({(r.notice_id, r.label) for r in stored}) == len(stored)


def test_rules_words_lists_every_form_a_phrase_catches(engine):
    """'aidants' (carers) is matched as the stem 'aid': the analyst sees that it also catches 'aide' (aid)."""
    from nlp.phrase_words import phrase_words

    settings = load_settings()
    extra = [
        NoticeRecord(source="press", external_id="e", title_fr="Aide humanitaire de l'Union au Soudan"),
        NoticeRecord(source="press", external_id="f", title_fr="Soutien aux aidants et aux aidantes"),
        NoticeRecord(source="press", external_id="g", lang="en", title_en="Aid to Sudan"),  # English: not a form
    ]
    ingest(engine, [*RECORDS, *extra])
    res = phrase_words(engine, settings, "aidants", "fr")
    assert res.stems == [("fr", ["aid"])] and res.read == res.notices
    assert res.forms == {"aide": 1, "aidants": 1, "aidantes": 1}
    assert phrase_words(engine, settings, "aidants", "fr", limit=1).read == 1  # the newest only
    with pytest.raises(ValueError, match="aucun mot à chercher"):
        phrase_words(engine, settings, "--", "fr")


def test_rules_words_command(engine, monkeypatch):
    from typer.testing import CliRunner

    from veille.commands.base import state
    from veille.main import app

    ingest(engine, [NoticeRecord(source="press", external_id="e", title_fr="Aides d'État : régime autorisé")])
    monkeypatch.setenv("VEILLE_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    monkeypatch.setattr(state, "_settings", None)  # read again, with this archive
    out = CliRunner().invoke(app, ["rules", "words", "aidants", "--lang", "fr"])
    assert out.exit_code == 0, out.output
    assert "(fr: aid) : 1 notice(s) les contiennent" in out.output.replace("\n", " ") and "aides" in out.output
    bad = CliRunner().invoke(app, ["rules", "words", "aidants", "--lang", "de"])
    assert bad.exit_code == 2 and "langue 'de' : en, fr ou any" in bad.output
