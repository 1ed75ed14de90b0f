"""Rule loading (errors with file:line), matching across inflections and accents, vetoes, explanations."""

from __future__ import annotations

import json
import logging
import re
from typing import Literal

import pytest
import yaml
from pydantic import BaseModel, ConfigDict

from core.config import load_settings
from core.profiles import SHIPPED
from nlp.rules import RulesError, active_rules, load_rules, parse_rules, rules_path, save_rules
from nlp.text import Meta, parse_fields

LABELS = {"deai", "sante_publique", "daqss", "diqasm", "numerique", "international", "deontologie"}

SMALL = """\
labels:
  deai:
    rules:
      - name: devices
        weight: 0.9
        fr: [dispositif médical]
        en: [medical device]
      - name: hta
        weight: 0.95
        acts: [32021R2282]
      - name: ema-source
        weight: 0.3
        when: {source: [ema*]}
      - name: jca-pattern
        weight: 0.8
        patterns:
          - [{LOWER: joint}, {LOWER: {IN: [clinical, scientific]}}, {LOWER: {IN: [assessment, consultation]}}]
      - name: software
        weight: 0.7
        en: [software]
        also: {en: [medical device]}
    negatives:
      - name: vet
        penalty: 1.0
        en: [veterinary]
        fr: [vétérinaire]
  sante_publique:
    threshold: 0.4
    rules:
      - name: vaccines
        weight: 0.6
        en: [vaccine, immunisation]
        fr: [vaccin]
negatives:
  - name: cosmetics
    penalty: 0.5
    labels: [sante_publique]
    en: [cosmetic products]
"""


@pytest.fixture(scope="session")
def small_rules():
    return parse_rules(SMALL, "small.yaml", LABELS)


@pytest.fixture(scope="session")
def has_rules():
    from core.profiles import SHIPPED

    return load_rules(SHIPPED / "has" / "rules.yaml", LABELS)


def doc(title: str, lang: str, summary: str = "", **meta) -> object:
    return parse_fields([("title", lang, title), ("summary", lang, summary)], Meta(**meta))


def scores(rules, parsed) -> dict[str, float]:
    return {k: v.score for k, v in rules.evaluate(parsed).items()}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "labels:\n  deai:\n    rules:\n      - name: x\n        weight: 2\n        en: [a]\n",
            "small.yaml:5: labels.deai.rules.0.weight: doit être un nombre entre 0.0 et 1.0",
        ),
        (
            "labels:\n  deai:\n    rules:\n      - name: x\n        weight: 0.5\n        colour: [a]\n",
            "small.yaml:6: labels.deai.rules.0.colour: clé inconnue 'colour' (permises : name, en, fr, any, patterns,",
        ),
        (
            "labels:\n  nope:\n    rules: []\n",
            "small.yaml:2: labels.nope: thématique inconnue 'nope' (le profil a : daqss, deai,",
        ),
        (
            "labels:\n  deai:\n    rules:\n      - name: x\n        en: [a]\n",
            "small.yaml:4: labels.deai.rules.0.weight: manquant (obligatoire)",
        ),
        (
            "labels:\n  deai:\n    rules:\n      - {name: x, weight: 0.5, en: [a]}\n      - {name: x, weight: 0.5, en: [b]}\n",  # noqa: E501
            "small.yaml:5: labels.deai.rules.1.name: nom de règle en double 'deai/x' (première à la ligne 4)",
        ),
        (
            "labels:\n  deai:\n    rules:\n      - name: x\n        weight: 0.5\n        acts: [2021/2282]\n",
            "small.yaml:6: labels.deai.rules.0.acts.0: l'acte '2021/2282' n'est pas un numéro CELEX",
        ),
        (
            "labels:\n  deai:\n    rules:\n      - name: x\n        weight: 0.5\n        patterns:\n          - [{LOWER: a, OP: '~~'}]\n",  # noqa: E501
            "small.yaml:7: labels.deai.rules.0.patterns.0: motif de jetons invalide : jeton 1 : OP '~~'",
        ),
        (
            "labels:\n  deai:\n    rules:\n      - name: x\n        weight: 0.5\n        en: [a\n",
            "small.yaml:7: YAML invalide",
        ),
        (
            "labels:\n  deai:\n    rules:\n      - name: x\n        weight: 0.5\n",
            "small.yaml:4: labels.deai.rules.0: une règle demande des expressions",
        ),
        ("", "small.yaml:1: fichier de règles vide"),
        (
            "labels:\n  deai:\n    rules:\n      - name: x\n        weight: 0.5\n        en: [a]\n        unless: {de: [b]}\n",  # noqa: E501
            "small.yaml:7: labels.deai.rules.0.unless.de: clé inconnue 'de' (permises : en, fr, any)",
        ),
    ],
)
def test_broken_rules_are_refused_with_file_and_line(text, message):
    with pytest.raises(RulesError) as exc:
        parse_rules(text, "small.yaml", LABELS)
    assert str(exc.value).startswith(message), str(exc.value)
    assert "\n" not in str(exc.value)


def test_shipped_rules_load_and_cover_every_label(has_rules):
    assert set(has_rules.labels) == LABELS
    assert len(has_rules.version) == 12


@pytest.mark.parametrize(
    ("title", "lang"),
    [
        ("Règlement sur les DISPOSITIFS MÉDICAUX", "fr"),
        ("Règlement sur les dispositifs medicaux", "fr"),
        ("Guidance on medical devices", "en"),
        ("Guidance on Medical Device classification", "en"),
    ],
)
def test_phrases_match_inflections_and_accents(small_rules, title, lang):
    assert scores(small_rules, doc(title, lang))["deai"] == pytest.approx(0.9)


def test_french_phrase_is_not_looked_for_in_english_text(small_rules):
    # "vaccin" (fr) must not fire on English text through a shared stem; the English phrase does.
    res = small_rules.evaluate(doc("Vaccines for children", "en"))["sante_publique"]
    assert {f["rule"] for f in res.fired} == {"sante_publique/vaccines"}
    assert res.fired[0]["words"] == "Vaccines"


def test_a_field_plainly_in_the_other_language_is_matched_in_that_language(small_rules):
    """An English feed's French-only item lands in title_en: its French phrases must still be found."""
    french = "La Commission se félicite de l'adoption du règlement sur les dispositifs médicaux et des vaccins"
    parsed = parse_fields([("title", "en", french)], Meta())
    assert parsed.fields[0].lang == "fr"
    assert scores(small_rules, parsed)["deai"] == pytest.approx(0.9)
    # A few French words in an English text (a name, a quoted title) do not make it French.
    mixed = parse_fields([("title", "en", "Le Monde reports on the vaccine de la semaine for children")], Meta())
    assert mixed.fields[0].lang == "en"


def test_veto_and_explanation(small_rules):
    res = small_rules.evaluate(doc("Veterinary medical devices", "en"))["deai"]
    assert res.score == 0.0
    fired = {f["rule"]: f for f in res.fired}
    assert fired["deai/vet"]["weight"] == -1.0 and fired["deai/vet"]["words"] == "Veterinary"
    assert fired["deai/devices"] == {
        "rule": "deai/devices",
        "label": "deai",
        "words": "medical devices",
        "weight": 0.9,
        "field": "title",
    }


def test_words_with_digits_and_units_keep_later_matches_in_place(small_rules):
    # spaCy's tokenizer splits "500mg", "5g" or "10km" in two; each stem must stay one token, or every later
    # match is reported with the wrong words and, past a field boundary, the wrong field.
    parsed = doc("Doses of 500mg and 5g for 10km runners", "en", "Vaccines and medical devices for adults")
    fired = {f["rule"]: f for lr in small_rules.evaluate(parsed).values() for f in lr.fired}
    assert fired["deai/devices"]["words"] == "medical devices" and fired["deai/devices"]["field"] == "summary"
    assert fired["sante_publique/vaccines"]["words"] == "Vaccines"
    assert len(parsed.doc()) == len(parsed.words())


def test_profile_wide_negative_lowers_only_its_labels(small_rules):
    s = scores(small_rules, doc("Vaccine and cosmetic products", "en"))
    assert s["sante_publique"] == pytest.approx(0.6 * 0.5)
    s = scores(small_rules, doc("Medical devices and cosmetic products", "en"))
    assert s["deai"] == pytest.approx(0.9)


def test_act_reference_in_title_or_legal_basis(small_rules):
    for parsed in (
        doc("Implementing Regulation pursuant to Regulation (EU) 2021/2282", "en"),
        doc("Règlement d'exécution portant modalités d'application du règlement (UE) 2021/2282", "fr"),
        doc("Implementing act on procedures", "en", acts=frozenset({"32021R2282"})),
        doc("The HTA Regulation itself", "en", celex="32021R2282"),
    ):
        assert scores(small_rules, parsed)["deai"] == pytest.approx(0.95)
    assert scores(small_rules, doc("Regulation (EU) 2021/2283", "en"))["deai"] == 0.0


def test_source_condition_pattern_and_also(small_rules):
    assert scores(small_rules, doc("News", "en", source="ema-news"))["deai"] == pytest.approx(0.3)
    assert scores(small_rules, doc("News", "en", source="council"))["deai"] == 0.0
    assert scores(small_rules, doc("First joint scientific consultations started", "en"))["deai"] == pytest.approx(0.8)
    assert scores(small_rules, doc("Software update", "en"))["deai"] == 0.0
    # "software" only counts next to a device mention; both contribute (noisy-or).
    assert scores(small_rules, doc("Software as a medical device", "en"))["deai"] == pytest.approx(1 - 0.1 * 0.3)


UNLESS = """\
labels:
  numerique:
    rules:
      - {name: data, weight: 0.9, en: [data spaces, health data, EHDS], fr: [données de santé]}
      - {name: ai-act, weight: 0.9, acts: [32024R1689], unless: {en: [AI factories]}}
    negatives:
      - name: horizontal-data
        penalty: 1.0
        fields: [title]
        en: [Data Act]
        fr: [règlement sur les données]
        unless: {en: [health, EHDS], fr: [santé]}
"""


def test_unless_drops_a_rule_when_one_of_its_phrases_occurs():
    """The taxonomy's "near-miss unless health-specific": the cue holds only when no `unless` phrase occurs."""
    rules = parse_rules(UNLESS, "unless.yaml", LABELS)
    horizontal = doc("Data Act: model contractual terms on data sharing", "en", "Common European data spaces")
    assert scores(rules, horizontal)["numerique"] == 0.0  # "Data Act" in the title vetoes the summary's phrase
    for health_specific in (
        doc("Guidance on the interplay between the EHDS and the Data Act", "en"),
        doc("Data Act and health data", "en", "What it means for the health sector"),
        doc("Le règlement sur les données et l'espace européen des données de santé", "fr"),
    ):
        label = rules.evaluate(health_specific)["numerique"]
        assert label.score == pytest.approx(0.9) and label.penalty == 1.0
        assert all(f["rule"] == "numerique/data" for f in label.fired)  # a dropped cue is not explained either
    # An `unless` phrase anywhere (here the summary) drops a rule whatever fired it, an act reference too.
    ai_act = doc("Implementing act", "en", acts=frozenset({"32024R1689"}))
    assert scores(rules, ai_act)["numerique"] == pytest.approx(0.9)
    factories = doc("Implementing act", "en", "AI factories", acts=frozenset({"32024R1689"}))
    assert scores(rules, factories)["numerique"] == 0.0


def test_a_rule_counts_once_and_distinct_rules_add_up(small_rules):
    # "vaccine" and "immunisation" are two phrases of one rule (0.6): one piece of evidence, not 1 - 0.4 * 0.4.
    both = doc("Vaccine strategy", "en", "Immunisation programmes")
    assert scores(small_rules, both)["sante_publique"] == pytest.approx(0.6)
    fired = small_rules.evaluate(both)["sante_publique"].fired
    assert [f["words"] for f in fired] == ["Vaccine", "Immunisation"]  # the explanation lists every match
    # Two rules (devices 0.9 in the title, the software rule 0.7) do add up.
    assert scores(small_rules, doc("Software as a medical device", "en"))["deai"] == pytest.approx(1 - 0.1 * 0.3)


def test_negative_cues_lower_the_models_share_too(small_rules, tmp_path):
    """An analyst's veto vetoes the label whatever the model says; a body-only cue halves both shares."""
    import spacy

    from nlp.scoring import Model, combine

    model = Model(spacy.blank("xx"), "m-test", tmp_path, {"deai": 0.5}, {"deai": 0.4}, {"deai": 0.5})
    vetoed = small_rules.evaluate(doc("Veterinary medical devices", "en"))["deai"]
    assert (vetoed.score, vetoed.penalty) == (0.0, 0.0)
    assert combine(small_rules, model, "deai", vetoed.score, 0.99, vetoed.penalty) == (0.0, 0.4)
    in_body = small_rules.evaluate(
        parse_fields([("title", "en", "Medical devices"), ("body", "en", "veterinary annex")], Meta())
    )["deai"]
    assert in_body.penalty == pytest.approx(0.5) and in_body.score == pytest.approx(0.45)
    score, _ = combine(small_rules, model, "deai", in_body.score, 0.8, in_body.penalty)
    assert score == pytest.approx(0.5 * 0.45 + 0.5 * 0.8 * 0.5)
    clean = small_rules.evaluate(doc("Medical devices", "en"))["deai"]
    assert clean.penalty == 1.0
    assert combine(small_rules, model, "deai", clean.score, 0.8, clean.penalty)[0] == pytest.approx(0.85)


def test_an_unsure_model_alone_is_no_evidence(small_rules, tmp_path):
    """Without a rule for the label, the model's score counts only from MODEL_ALONE (0.95) up: a generic
    title drifts to 0.2-0.9 and a low threshold (0.15 here, as daqss gets) would select it. With rule
    evidence, an unsure model still adds its share."""
    import spacy

    from nlp.scoring import MODEL_ALONE, Model, combine

    model = Model(spacy.blank("xx"), "m-test", tmp_path, {"deai": 0.2}, {"deai": 0.15}, {"deai": 0.5})
    nothing = small_rules.evaluate(doc("Press release", "en"))["deai"]
    assert (nothing.score, nothing.penalty) == (0.0, 1.0)
    assert combine(small_rules, model, "deai", nothing.score, MODEL_ALONE - 0.01, nothing.penalty)[0] == 0.0
    sure, threshold = combine(small_rules, model, "deai", nothing.score, MODEL_ALONE, nothing.penalty)
    assert sure == pytest.approx(0.8 * MODEL_ALONE) and sure >= threshold
    some = small_rules.evaluate(doc("Guidance", "en", "medical devices"))["deai"]
    assert some.score > 0
    assert combine(small_rules, model, "deai", some.score, 0.3, some.penalty)[0] == pytest.approx(
        0.2 * some.score + 0.8 * 0.3, abs=1e-4
    )


class RuleCase(BaseModel):
    """One line of core/profiles/has/rules_cases.yaml (its header says what each key asks)."""

    model_config = ConfigDict(extra="forbid")
    title: str
    lang: Literal["en", "fr"]
    celex: str | None = None
    labels: dict[str, bool] = {}
    none: bool = False
    vetoed_by: str | None = None
    fires: dict[str, str] = {}


def shipped_cases() -> list:
    path = SHIPPED / "has" / "rules_cases.yaml"
    cases = [RuleCase.model_validate(c) for c in yaml.safe_load(path.read_text(encoding="utf-8"))]
    return [pytest.param(c, id=f"{c.lang}:{c.title[:60]}") for c in cases]


@pytest.mark.parametrize("case", shipped_cases())
def test_shipped_rules_on_cases(has_rules, case):
    d = doc(case.title, case.lang, celex=case.celex) if case.celex else doc(case.title, case.lang)
    s = scores(has_rules, d)
    for label, above in case.labels.items():
        assert (s[label] >= 0.5) is above, (label, s[label])
    if case.none or case.vetoed_by:
        assert max(s.values()) < 0.5, s
    evaluated = has_rules.evaluate(d)
    if case.vetoed_by:
        fired = [f for r in evaluated.values() for f in r.fired]
        assert max(f["weight"] for f in fired) >= 0.7
        assert any(f["rule"] == case.vetoed_by for f in fired), fired
    for label, rule in case.fires.items():
        assert any(f["rule"] == rule for f in evaluated[label].fired), evaluated[label].fired


def test_active_rules_are_loaded_once_per_file_version(caplog):
    settings = load_settings()
    first = active_rules(settings)
    assert active_rules(settings) is first  # not parsed again (75-150 ms for the HAS rules)
    edited = settings.home / "profiles" / settings.profile / "rules.yaml"
    edited.parent.mkdir(parents=True, exist_ok=True)
    edited.write_text(first.text.replace("  threshold: 0.5\n", "  threshold: 0.55\n", 1), encoding="utf-8")
    assert active_rules(settings).labels["deai"] == 0.55  # a new file is read
    edited.write_text(first.text.replace("  threshold: 0.5\n", "  threshold: 0.65\n", 1), encoding="utf-8")
    assert active_rules(settings).labels["deai"] == 0.65  # and so is the same file edited in place
    # The labels are part of the rules' check, so an edited profile is read too: one that drops a label
    # refuses the rules that use it, and the last good rules stay in force.
    profile = settings.home / "profiles" / settings.profile / "profile.toml"
    shipped = (SHIPPED / settings.profile / "profile.toml").read_text(encoding="utf-8")
    dropped = re.sub(r"\[labels\.deontologie\]\nname = .*\nremit = .*\n", "", shipped)
    assert "deontologie" not in dropped
    profile.write_text(dropped, encoding="utf-8")
    with caplog.at_level(logging.ERROR, logger="nlp.rules"):
        assert active_rules(settings).labels["deai"] == 0.65
    assert re.search(r"rules file refused.*rules\.yaml:\d+: .*deontologie", caplog.text)


def test_save_rules_keeps_history_and_broken_file_keeps_last_good():
    settings = load_settings()
    shipped = rules_path(settings)
    first = active_rules(settings)
    new_text = SMALL.replace("weight: 0.6", "weight: 0.65")
    version = save_rules(settings, new_text, "alice")
    assert rules_path(settings) == settings.home / "profiles" / "has" / "rules.yaml" != shipped
    assert active_rules(settings).version == version != first.version
    hist = settings.home / "profiles" / "has" / "rules_history"
    entry = json.loads((hist / "history.jsonl").read_text().splitlines()[-1])
    assert entry["user"] == "alice" and entry["version"] == version and entry["previous"] == first.version
    assert any("0.65" in line for line in entry["added"])
    assert list(hist.glob(f"*-{first.version}.yaml"))
    with pytest.raises(RulesError, match=r"rules.yaml:\d+: "):
        save_rules(settings, "labels: [", "bob")
    assert active_rules(settings).version == version  # refused: nothing changed
    rules_path(settings).write_text("labels:\n  deai: {rules: [{name: x}]}\n")  # broken by hand
    assert active_rules(settings).version == version  # last good rules stay in force
    latin = new_text.replace("vaccin]", "vaccin, santé]").encode("latin-1")
    rules_path(settings).write_bytes(latin)
    assert active_rules(settings).version == version  # saved in another encoding: refused, last good in force
    fixed = save_rules(settings, new_text.replace("vaccin]", "vaccin, santé]"), "carol")  # mended from the workbench
    assert active_rules(settings).version == fixed
    assert latin in [p.read_bytes() for p in hist.glob("*.yaml")]  # the refused file is kept byte for byte


def test_rules_file_encodings(tmp_path):
    bom = tmp_path / "bom.yaml"
    bom.write_bytes(b"\xef\xbb\xbf" + SMALL.encode())
    assert load_rules(bom, LABELS).version == parse_rules(SMALL, "x", LABELS).version  # the mark is not content
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(SMALL.encode("latin-1"))
    line = SMALL.encode().split(b"\n").index("        fr: [dispositif médical]".encode()) + 1
    with pytest.raises(RulesError, match=rf"latin.yaml:{line}: pas en UTF-8 \(octet 0xe9\)"):
        load_rules(latin, LABELS)


def _ai_act_recital_on_devices() -> tuple[str, str]:
    """The AI Act's title and its recital on products under other Union law, "for example, machinery or medical
    devices products incorporating an AI system" (real EUR-Lex text, tests/data/fixtures/eurlex)."""
    from pathlib import Path

    from crawlers.parsers.cellar import parse_act_xhtml

    path = Path(__file__).parent / "data" / "fixtures" / "eurlex" / "ai_act_32024R1689_en_TXT_HTML.html"
    act = parse_act_xhtml(path.read_bytes(), max_chars=10**7)
    recital = next(p for p in act.text.split("\n\n") if "machinery or medical devices products incorporating" in p)
    return act.title, recital


def test_where_a_phrase_appears_matters(has_rules):
    """A phrase in the title or the EuroVoc subject is strong evidence; named once or twice in the body of a
    horizontal act it is weak (body weight 0.4, and a third of it per match below `body_count: 3`)."""
    title, recital = _ai_act_recital_on_devices()
    assert title.startswith("REGULATION (EU) 2024/1689") and "(Artificial Intelligence Act)" in title
    ai_act = parse_fields([("title", "en", title), ("body", "en", recital)], Meta())
    deai = has_rules.evaluate(ai_act)["deai"]
    body = [f for f in deai.fired if f["field"] == "body"]
    assert [f["words"] for f in body] == ["medical devices"] and len(recital) > 1500  # once in 1,500 characters
    assert deai.score == pytest.approx(0.9 * 0.4 / 3, abs=1e-3)
    # The same recital three times over: the phrase is what the text is about, full body weight.
    short = recital[recital.index("For example") :][:650]
    assert short.count("medical devices") == 1
    thrice = parse_fields([("title", "en", title), ("body", "en", " ".join([short] * 3))], Meta())
    assert has_rules.evaluate(thrice)["deai"].score == pytest.approx(0.9 * 0.4)
    # In the title, or as the act's EuroVoc descriptor, the same words select the label.
    assert has_rules.evaluate(doc("Medical devices: common specifications", "en"))["deai"].score >= 0.5
    from nlp.text import subject_parts

    parts = [("title", "en", "Commission Implementing Regulation laying down rules on common specifications")]
    tagged = parse_fields(parts + subject_parts(["medical device", "dispositif médical", "public health"]), Meta())
    scored = has_rules.evaluate(tagged)
    assert scored["deai"].score >= 0.5 and {f["field"] for f in scored["deai"].fired} == {"subject"}


def test_body_count_and_subject_weight_are_read_from_the_rules_file():
    defaults = "defaults:\n  body_count: 2\n  field_weights: {body: 0.5, subject: 0.7}\n"
    text = SMALL.replace("labels:\n", defaults + "labels:\n", 1)
    rules = parse_rules(text, "small.yaml", LABELS)
    assert rules.body_count == 2 and rules.field_weights["subject"] == 0.7
    once = parse_fields([("title", "en", "Annual report"), ("body", "en", "one medical device")], Meta())
    twice = parse_fields([("title", "en", "Annual report"), ("body", "en", "medical device, medical device")], Meta())
    assert scores(rules, once)["deai"] == pytest.approx(0.9 * 0.5 / 2)
    assert scores(rules, twice)["deai"] == pytest.approx(0.9 * 0.5)
    from nlp.text import subject_parts

    descriptors = subject_parts(["dispositif médical", "medical device"])  # Cellar gives both languages
    subj = parse_fields([("title", "fr", "Rapport annuel"), *descriptors], Meta())
    assert scores(rules, subj)["deai"] == pytest.approx(0.9 * 0.7)
    # Only in the notice's language: "medical device" (no French sign) is read as French too, not as English.
    assert [(f.name, f.lang, " ".join(f.surface)) for f in subj.fields] == [
        ("title", "fr", "Rapport annuel"),
        ("subject", "fr", "dispositif médical"),
        ("subject", "fr", "medical device"),
    ]
    with pytest.raises(RulesError, match=r"small.yaml:2: defaults.body_count: doit être un nombre entre 1 et 20"):
        parse_rules(SMALL.replace("labels:\n", "defaults:\n  body_count: 0\nlabels:\n", 1), "small.yaml", LABELS)


def test_the_disability_card_is_a_near_miss_only_when_it_is_the_topic(has_rules):
    """Dataset convention: the European Disability Card (free movement) is a near-miss; a text on the rights
    of persons with disabilities that names it in its summary keeps `diqasm`."""
    card = doc(
        "European disability card: travelling across the EU to become easier for persons with disabilities", "en"
    )
    assert scores(has_rules, card)["diqasm"] < 0.5
    wider = doc(
        "Résolution sur la protection des personnes handicapées",
        "fr",
        "Accès aux services, vie autonome et carte européenne du handicap.",
    )
    assert scores(has_rules, wider)["diqasm"] >= 0.5
