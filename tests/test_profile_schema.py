"""One schema language (issue 22, item 3): the profile's files and the config are pydantic models whose
mistakes are one ``file:line: key: problem`` line (core/schema.py), and a label is added in the
profile's files alone (docs/extending.md, "Ajouter une étiquette (unité)")."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import select
from typer.testing import CliRunner

from core.config import ConfigError, load_settings
from core.profiles import SHIPPED, load_profile, parse_profile
from core.schema import toml_lines, validate, yaml_key_problem, yaml_lines
from crawlers.replay import config_text, serve
from nlp.rules import load_rules

WIDTH = {"COLUMNS": "300"}


def veille(*args: str):
    """The CLI in this process, on the config of VEILLE_HOME / --config (no state left from another test)."""
    from veille.commands.base import state
    from veille.main import app

    state._settings, state.config, state.profile = None, None, None
    try:
        return CliRunner().invoke(app, list(args), env=WIDTH)
    finally:
        state._settings, state.config, state.profile = None, None, None


def line_of(path: Path, text: str) -> int:
    """The 1-based line of the only line of ``path`` that contains ``text``."""
    hits = [n for n, ln in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if text in ln]
    assert len(hits) == 1, (path, text, hits)
    return hits[0]


# -- the mapper ------------------------------------------------------------------------------------------------

TOML = """# a config
[smtp]
host = "mail"
port = "many"

[[sources]]
name = "a"

[[sources]]
name = "b"
kind = "nope"

[recipients."x@y.fr"]
nothing_new = 3
"""

YAML = """# rules
labels:
  deai:
    rules:
      - name: a
        weight: 2
      - {name: b, weight: 0.5}
"""


def test_key_paths_map_to_the_lines_people_see():
    """Lines counted by hand in TOML and YAML above."""
    at = toml_lines(TOML)
    assert at(("smtp", "port")) == 4
    assert at(("sources", 1, "kind")) == 11
    assert at(("sources", 1, "url")) == 9  # missing: the [[sources]] table it is missing from
    assert at(("sources", 0)) == 6
    assert at(("recipients", "x@y.fr", "nothing_new")) == 14
    assert at(()) == 1
    root = yaml.compose(YAML)
    at = yaml_lines(root)
    assert at(("labels", "deai", "rules", 0, "weight")) == 6
    assert at(("labels", "deai", "rules", 1, "weight")) == 7  # a flow mapping: its line
    assert at(("labels", "deai", "rules", 1, "en")) == 7  # missing: the rule it is missing from
    assert at(("labels", "deai", "threshold")) == 3
    assert at(("negatives",)) == 2  # missing at the top: the document's first line


class _Smtp(BaseModel):
    model_config = ConfigDict(extra="forbid")
    host: str
    port: int = Field(587, ge=1)


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")
    smtp: _Smtp
    sources: list[dict] = []
    recipients: dict[str, dict] = {}


def test_the_first_problem_in_the_file_is_the_one_line_reported():
    import tomllib

    data = tomllib.loads(TOML)
    with pytest.raises(ConfigError) as exc:
        validate(_File, data, "c.toml", toml_lines(TOML), ConfigError)
    assert str(exc.value) == "c.toml:4: smtp.port: doit être un nombre entier"
    data["smtp"]["prot"] = 25  # line 3 if it were there: not in the text, so found at its table
    with pytest.raises(ConfigError, match=r"^c\.toml:2: smtp\.prot: clé inconnue 'prot' \(permises : host, port\)$"):
        validate(_File, data, "c.toml", toml_lines(TOML), ConfigError)


@pytest.mark.parametrize(
    ("body", "where"),
    [  # pydantic's error types, said in French with the file's line and key path (issue 21)
        ('[smtp]\nhost = "h"\nport = "x"\n', "3: smtp.port: doit être un nombre entier"),
        ("[smtp]\nport = 25.5\n", "2: smtp.port: doit être un nombre entier (sans décimales)"),
        ('[crawl]\ntimeout = "vite"\n', "2: crawl.timeout: doit être un nombre"),
        ("[crawl]\nconcurrent_per_host = 9\n", "2: crawl.concurrent_per_host: doit être inférieur ou égal à 8"),
        ("[crawl]\nconcurrent_per_host = 0\n", "2: crawl.concurrent_per_host: doit être supérieur ou égal à 1"),
        ('[web]\nsecure_cookie = "oui"\n', "2: web.secure_cookie: doit être true ou false"),
        ('[schedule]\ndigest_days = "daily"\n', "2: schedule.digest_days: doit être 'working' ou 'every'"),
        (
            '[schedule]\ndigest_time = "8h"\n',
            "2: schedule.digest_time: doit suivre le motif '^\\d{2}:\\d{2}(:\\d{2})?$'",
        ),
        ('sources = "cellar"\n', "1: sources: doit être une liste"),
        ("crawl = 3\n", "1: crawl: doit être une table de clés et de valeurs"),
        (
            '[crawl]\ncontat = "x"\n',
            "2: crawl.contat: clé inconnue 'contat' (permises : user_agent, contact, download_delay, "
            "concurrent_per_host, timeout, retries, max_body_bytes, obey_robots, sparql_window_days, "
            "max_run_seconds, cache_dir)",
        ),
        ('[[sources]]\nname = "x"\nkind = "rss"\n', "1: sources.0.url: manquant (obligatoire)"),
    ],
)
def test_config_mistakes_are_said_in_french_at_their_line(tmp_path, body, where):
    cfg = tmp_path / "c.toml"
    cfg.write_text(body, encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        load_settings(cfg)
    assert str(exc.value) == f"{cfg}:{where}"


def test_a_pydantic_error_without_a_french_text_still_says_what_in_french_first():
    import uuid

    class _Ids(BaseModel):
        model_config = ConfigDict(extra="forbid")
        key: uuid.UUID
        name: str = Field(min_length=2)

    text = 'key = "x"\nname = "a"\n'
    with pytest.raises(ConfigError) as exc:
        validate(_Ids, {"key": "x"}, "c.toml", toml_lines(text), ConfigError)
    assert str(exc.value).startswith("c.toml:1: key: valeur refusée (Input should be a valid UUID")
    with pytest.raises(ConfigError) as exc:
        validate(_Ids, {"key": str(uuid.uuid4()), "name": "a"}, "c.toml", toml_lines(text), ConfigError)
    assert str(exc.value) == "c.toml:2: name: doit avoir au moins 2 caractère(s)"


def test_a_repeated_yaml_key_is_refused_at_its_second_line():
    text = "labels:\n  deai:\n    threshold: 0.5\n    threshold: 0.6\n"
    assert yaml_key_problem(yaml.compose(text)) == (
        4,
        ("labels", "deai", "threshold"),
        "clé en double (première à la ligne 3)",
    )
    from nlp.rules import RulesError, parse_rules

    with pytest.raises(
        RulesError, match=r"^r\.yaml:4: labels\.deai\.threshold: clé en double \(première à la ligne 3\)$"
    ):
        parse_rules(text, "r.yaml")


# -- the profile model -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("edit", "where"),
    [
        (
            ('remit = "Public-health', 'remitt = "Public-health'),
            "17: labels.sante_publique.remitt: clé inconnue 'remitt' (permises : name, remit)",
        ),
        (
            ("digest_window_days = 14", "digest_window_days = 0"),
            "7: digest_window_days: doit être supérieur ou égal à 1",
        ),
        (
            ('labels = ["numerique", "deai"]', 'labels = ["numeriqe"]'),
            "63: dates.3.labels: thématique inconnue 'numeriqe'",
        ),
        (
            ('act = "32024R1689"\nlabels = ["numerique", "deai"]', 'act = "2024/1689"\nlabels = ["deai"]'),
            "62: dates.3.act:",
        ),
        (("[labels.deai]", "[labels.DEAI]"), "11: labels.DEAI: doit suivre le motif '^[a-z][a-z0-9_]*$'"),
        (("date = 2025-02-02", 'date = "le 2 février"'), "43: dates.0.date: doit être une date AAAA-MM-JJ"),
    ],
)
def test_a_bad_value_in_profile_toml_is_one_line_at_its_place(edit, where):
    """Lines read by hand in core/profiles/has/profile.toml: the remit of sante_publique at 17, the window at 7,
    [labels.deai] at 11, the last date's act and labels at 62 and 63, the first date at 43."""
    shipped = (SHIPPED / "has" / "profile.toml").read_text(encoding="utf-8")
    assert edit[0] in shipped
    with pytest.raises(ConfigError) as exc:
        parse_profile(shipped.replace(edit[0], edit[1], 1), "profile.toml")
    assert str(exc.value).startswith(f"profile.toml:{where}"), str(exc.value)
    assert "\n" not in str(exc.value)


def test_the_profile_is_typed_and_read_once_per_file_version(veille_home):
    settings = load_settings()
    profile = load_profile(settings)
    assert profile.title == "Haute Autorité de Santé" and profile.digest_window_days == 14
    assert list(profile.labels)[:2] == ["deai", "sante_publique"]
    assert profile.labels["deai"].id == "deai" and profile.labels["deai"].name.startswith("DEAI — Évaluation")
    fact = profile.dates[3]
    assert (fact.date.isoformat(), fact.act, fact.labels) == ("2027-08-02", "32024R1689", ["numerique", "deai"])
    assert profile.file("routing.toml") == SHIPPED / "has" / "routing.toml"
    assert load_profile(settings) is profile  # not read again
    copy = veille_home / "profiles" / "has" / "profile.toml"
    copy.parent.mkdir(parents=True)
    copy.write_text(
        (SHIPPED / "has" / "profile.toml").read_text(encoding="utf-8").replace("= 14", "= 21"), encoding="utf-8"
    )
    edited = load_profile(settings)
    assert edited.digest_window_days == 21 and edited.path == copy
    assert edited.file("routing.toml") == SHIPPED / "has" / "routing.toml"  # the copy holds profile.toml only


# -- veille config: every file of the profile, one line each ----------------------------------------------------

BOMB = (
    "["
    + ", ".join(
        ["&a0 [" + ", ".join(["lol"] * 9) + "]"] + [f"&a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 8)]
    )
    + "]"
)


@pytest.mark.parametrize(
    ("filename", "old", "new", "problem"),
    [
        ("veille.toml", "timeout = 30\n", "timeout = -1\n", "crawl.timeout: doit être supérieur à 0"),
        (
            "profile.toml",
            "digest_window_days = 14",
            "digest_window_days = 0",
            "digest_window_days: doit être supérieur ou égal à 1",
        ),
        ("profile.toml", 'name = "Déontologie"', 'nom = "Déontologie"', "labels.deontologie.nom: clé inconnue 'nom'"),
        (
            "routing.toml",
            "threshold = 0.6",
            "threshold = 1.6",
            "labels.deontologie.threshold: doit être inférieur ou égal à 1",
        ),
        (
            "routing.toml",
            'email = ["deontologie@has-sante.fr"]',
            'email = ["deontologie"]',
            "labels.deontologie.email:",
        ),
        (
            "rules.yaml",
            "weight: 0.95",
            "weight: 1.95",
            "labels.deai.rules.0.weight: doit être un nombre entre 0.0 et 1.0",
        ),
        (
            "rules.yaml",
            "  deai:\n    rules:\n",
            "  deai:\n    rules:\n      - {name: b, weight: 0.5, en: " + BOMB + "}\n",
            "trop de nœuds YAML",
        ),
    ],
)
def test_each_file_of_the_profile_is_checked_and_a_bad_value_is_one_line(veille_home, filename, old, new, problem):
    """`veille config` checks veille.toml, profile.toml and routing.toml; `veille rules check` the rules (it loads
    spaCy, whose validator judges token patterns: `veille config` stays a sub-second command)."""
    settings = load_settings()  # writes the default veille.toml
    if filename == "veille.toml":
        path = veille_home / filename
    else:
        path = veille_home / "profiles" / "has" / filename
        path.parent.mkdir(parents=True)
        shutil.copy(SHIPPED / "has" / filename, path)
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    line = line_of(path, new.splitlines()[-1])
    t0 = time.monotonic()
    res = veille(*(["rules", "check"] if filename == "rules.yaml" else ["config"]))
    assert time.monotonic() - t0 < 30
    assert res.exit_code == 2, res.output
    [only] = res.output.strip().splitlines()
    assert only.startswith(f"erreur : {path}:{line}: {problem}"), (only, line)
    assert settings.home == veille_home


def test_veille_config_lists_the_profiles_labels(veille_home):
    res = veille("config")
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert "  deontologie: Déontologie -> deontologie@has-sante.fr" in lines, res.output
    assert "  numerique: Mission numérique en santé -> mission-numerique@has-sante.fr, #veille-numerique" in lines


# -- adding a label: profile.toml + rules.yaml (+ routing.toml) ---------------------------------------------------

LABEL = """
[labels.penuries]
name = "Pénuries de médicaments"
remit = "Shortages of medicines and devices: monitoring, notification, the European Shortages Monitoring Platform."
"""
RULES = """  penuries:
    rules:
      - name: shortages
        description: {fr: "Pénuries de médicaments et de dispositifs", en: "Shortages of medicines and devices"}
        weight: 0.9
        en: [shortage, shortages of medicines, supply disruption]
        fr: [pénurie, pénuries de médicaments, rupture d'approvisionnement]
"""
ROUTE = """
[labels.penuries]
email = ["veille-penuries@has-sante.fr"]
"""
TITLE = "European Shortages Monitoring Platform enables better monitoring of shortages in the EU"


@pytest.fixture(scope="module")
def bundle():
    server, url = serve()
    yield url
    server.close()


def test_a_label_added_in_the_profiles_files_is_configured_checked_classified_and_routed(tmp_path, bundle):
    """The recipe of docs/extending.md, followed on a copy of the HAS profile: the new label `penuries`
    reaches `veille config`, `veille rules check`, the classification of a real EMA news item of the
    replay bundle and the routing of its digest, with no code changed."""
    from alerts.config import load_routing
    from alerts.routing import digest_due, load_candidates
    from nlp.classify import classify
    from storage.db import open_archive, session_scope
    from storage.models import LabelScore, Notice

    profiles = tmp_path / "profiles"
    folder = profiles / "has_plus"
    shutil.copytree(SHIPPED / "has", folder)
    cfg = tmp_path / "veille.toml"
    text = config_text(bundle).replace('profile = "has"', f'profiles_dir = "{profiles}"\nprofile = "has_plus"', 1)
    cfg.write_text(text, encoding="utf-8")

    # 1. The rule alone names a label the profile does not have: refused where it is named.
    rules = folder / "rules.yaml"
    rules.write_text(rules.read_text(encoding="utf-8").replace("labels:\n", "labels:\n" + RULES, 1), encoding="utf-8")
    line = rules.read_text(encoding="utf-8").splitlines().index("  penuries:") + 1  # where the label is named
    res = veille("--config", str(cfg), "rules", "check")
    assert res.exit_code == 2
    unknown = "labels.penuries: thématique inconnue 'penuries' (le profil a : "
    assert res.output.startswith(f"erreur : {rules}:{line}: {unknown}")

    # 2. profile.toml declares it (and routing.toml routes it): every command sees it.
    (folder / "profile.toml").write_text((folder / "profile.toml").read_text(encoding="utf-8") + LABEL, "utf-8")
    (folder / "routing.toml").write_text((folder / "routing.toml").read_text(encoding="utf-8") + ROUTE, "utf-8")
    res = veille("--config", str(cfg), "rules", "check")
    shipped_rules = len(load_rules(SHIPPED / "has" / "rules.yaml").rules)
    assert res.exit_code == 0 and f" : ok, {shipped_rules + 1} règles pour 8 thématiques" in res.output, res.output
    res = veille("--config", str(cfg), "config")
    assert res.exit_code == 0, res.output
    assert "  penuries: Pénuries de médicaments -> veille-penuries@has-sante.fr" in res.output.splitlines(), res.output

    # 3. A real EMA news item about shortages is classified under it, and routed to its unit.
    settings = load_settings(cfg)
    engine = open_archive(settings.database_url)
    from veille.crawl import crawl

    [run] = crawl(settings, engine, names=["ema-news"])
    assert run.ok, run.error
    with session_scope(engine) as s:
        notice = s.exec(select(Notice).where(Notice.title_en == TITLE)).one()
        nid = notice.id
    classify(engine, settings, [nid])
    with session_scope(engine) as s:
        score = s.exec(select(LabelScore).where(LabelScore.notice_id == nid, LabelScore.label == "penuries")).one()
        assert score.selected and score.score == pytest.approx(0.9)
        assert [f["rule"] for f in score.explanation["fired"]] == ["penuries/shortages"]
        assert score.explanation["fired"][0]["words"] == ["Shortages"]  # the title's first
    due = digest_due(load_routing(settings), list(load_candidates(engine, ids=[nid]).values()))
    assert [(d.recipient.address, d.label) for d in due if d.label == "penuries"] == [
        ("veille-penuries@has-sante.fr", "penuries")
    ]
