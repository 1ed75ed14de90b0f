"""The CLI in French, typer's and click's own words included (issue 21): help, usage errors, config errors."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from typer.testing import CliRunner

ENGLISH_LOCALE = {"LANG": "en_US.UTF-8", "LANGUAGE": "en", "LC_ALL": "en_US.UTF-8"}  # French whatever the locale
ENGLISH = (
    "Usage",
    "Show this message",
    "Commands",
    "[default:",
    "[required]",
    "Try '",
    "Error",
    "completion",
    "<str>",
    "<bool>",
    "<int",
    "<float",
    "list[",
    "Missing",
    "No such",
    "Invalid value",
    "Did you mean",
    "Input should",
    "Got unexpected",
)


def veille(*args: str, columns: int = 80, input: str | None = None):
    """The CLI in this process at a fixed width, with no state left from another test."""
    from veille.commands.base import state
    from veille.main import app

    state._settings, state.config, state.profile = None, None, None
    try:
        env = {"COLUMNS": str(columns), **ENGLISH_LOCALE}
        return CliRunner().invoke(app, list(args), input=input, env=env, prog_name="veille")
    finally:
        state._settings, state.config, state.profile = None, None, None


def no_english(text: str) -> None:
    found = [w for w in ENGLISH if w in text]
    assert not found, (found, text)


def test_veille_help_is_french(veille_home):
    res = veille("--help")
    assert res.exit_code == 0
    out = res.output
    assert "Utilisation : veille [OPTIONS] COMMANDE [ARGUMENTS]..." in out
    assert "─ Commandes ─" in out and "─ Options ─" in out
    assert "Afficher cette aide et quitter." in out
    assert "<chemin>" in out and "<texte>" in out  # --config and --profile
    assert "--install-completion" not in out and "--show-completion" not in out
    no_english(out)
    assert max(len(line) for line in out.splitlines()) <= 80


def test_a_commands_help_says_types_defaults_and_ranges_in_french(veille_home):
    out = veille("search", "--help").output
    assert "Utilisation : veille search [OPTIONS] [REQUÊTE]" in out and "─ Arguments ─" in out
    assert "<entier> [x>=1]" in out  # --limit
    assert "<nombre> [0.0<=x<=1.0]" in out  # --min-score
    assert "[défaut : relevance]" in out and "[défaut : 20]" in out
    exact = next(line for line in out.splitlines() if "--exact" in line)
    assert "<" not in exact  # a flag takes no value: no type shown
    no_english(out)
    for args in (["rules", "--help"], ["rules", "check", "--help"], ["feedback", "add", "--help"], ["db", "--help"]):
        res = veille(*args)
        assert res.exit_code == 0 and "Utilisation : veille " in res.output, args
        no_english(res.output)
    assert "Utilisation : veille rules [OPTIONS] COMMANDE [ARGUMENTS]..." in veille("rules", "--help").output


@pytest.mark.parametrize(
    ("args", "first", "usage"),
    [
        (["search", "--bogus", "x"], "option inconnue : --bogus", "veille search [OPTIONS] [REQUÊTE]"),
        (["search", "--labl", "x"], "option inconnue : --labl ; vouliez-vous dire --label ?", "veille search"),
        (["explain"], "argument ID manquant", "veille explain [OPTIONS] {ID}"),
        (
            ["feedback", "add", "1"],
            "argument THÉMATIQUE manquant",
            "veille feedback add [OPTIONS] {ID} {THÉMATIQUE} {AVIS}",
        ),
        (["search", "x", "--limit", "abc"], "valeur invalide pour --limit / -n : doit être un nombre entier", ""),
        (["search", "x", "-n", "0"], "valeur invalide pour --limit / -n : doit être supérieur ou égal à 1", ""),
        (["search", "x", "--min-score", "2"], "valeur invalide pour --min-score : doit être inférieur ou égal à 1", ""),
        (["search", "x", "y"], "argument(s) en trop : y", "veille search"),
        (["serch"], "commande inconnue : serch ; vouliez-vous dire 'search'", "veille [OPTIONS] COMMANDE"),
        (["rules", "chek"], "commande inconnue : chek ; vouliez-vous dire 'check' ?", "veille rules [OPTIONS]"),
    ],
)
def test_a_usage_error_is_one_french_line_then_the_usage_and_the_help(veille_home, args, first, usage):
    res = veille(*args)
    assert res.exit_code == 2, res.output
    lines = res.output.splitlines()
    assert lines[0].startswith(f"erreur : {first}"), lines
    assert lines[1].startswith(f"Utilisation : {usage}"), lines
    command = lines[1].removeprefix("Utilisation : ").split(" [OPTIONS]")[0]
    assert lines[2] == f"Aide : {command} --help", lines
    assert len(lines) == 3
    no_english(res.output)


def test_an_option_without_its_value_and_an_unknown_value(veille_home):
    res = veille("search", "--limit")
    assert res.exit_code == 2 and res.output.startswith("erreur : l'option --limit demande une valeur\n")
    no_english(res.output)
    res = veille("search", "x", "--type", "acte")  # the archive's document types, checked by the command
    assert res.exit_code == 2
    assert res.output.startswith("erreur : --type : valeur inconnue 'acte' (connues : aucune pour l'instant)")


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ('[smtp]\nhost = "h"\nport = "x"\n', "3: smtp.port: doit être un nombre entier"),
        ("\n[crawl]\nconcurrent_per_host = 9\n", "3: crawl.concurrent_per_host: doit être inférieur ou égal à 8"),
        (
            '[smtp]\nhots = "h"\n',
            "2: smtp.hots: clé inconnue 'hots' (permises : host, port, starttls, user, password, ",
        ),
        ('[[sources]]\nname = "x"\nkind = "rss"\n', "1: sources.0.url: manquant (obligatoire)"),
        ('[schedule]\ndigest_days = "daily"\n', "2: schedule.digest_days: doit être 'working' ou 'every'"),
    ],
)
def test_veille_config_says_a_config_mistake_in_french_at_its_line(tmp_path, veille_home, body, where):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(body, encoding="utf-8")
    res = veille("--config", str(cfg), "config", columns=300)
    assert res.exit_code == 2
    assert res.output.startswith(f"erreur : {cfg}:{where}"), res.output
    no_english(res.output)


def test_rules_check_says_a_rules_mistake_in_french_at_its_line(tmp_path, veille_home):
    bad = tmp_path / "r.yaml"
    bad.write_text("labels:\n  deai:\n    rules:\n      - name: x\n        weight: 1.5\n        en: [a]\n")
    res = veille("rules", "check", str(bad), columns=300)
    assert res.exit_code == 2
    assert res.output == f"erreur : {bad}:5: labels.deai.rules.0.weight: doit être un nombre entre 0.0 et 1.0\n"
    bad.write_text("labels:\n  deai:\n    rules:\n      - name: x\n        en: [a]\n")
    res = veille("rules", "check", str(bad), columns=300)
    assert res.output == f"erreur : {bad}:4: labels.deai.rules.0.weight: manquant (obligatoire)\n"


def test_the_installed_command_at_80_columns_in_an_english_locale(veille_home):
    env = {**os.environ, "COLUMNS": "80", **ENGLISH_LOCALE}
    run = [sys.executable, "-m", "veille"]
    res = subprocess.run([*run, "--help"], capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0 and "Utilisation : veille [OPTIONS] COMMANDE [ARGUMENTS]..." in res.stdout
    no_english(res.stdout)
    assert max(len(line) for line in res.stdout.splitlines()) <= 80
    res = subprocess.run([*run, "explain"], capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr.splitlines() == [
        "erreur : argument ID manquant",
        "Utilisation : veille explain [OPTIONS] {ID}",
        "Aide : veille explain --help",
    ]


def test_shell_completion_works_without_the_completion_options(veille_home):
    """--install-completion is not in the help (its messages are English); the shell's rc line still works."""
    env = {**os.environ, "_VEILLE_COMPLETE": "complete_bash", "COMP_WORDS": "veille rules ch", "COMP_CWORD": "2"}
    res = subprocess.run([sys.executable, "-m", "veille"], capture_output=True, text=True, env=env, timeout=120)
    assert (res.returncode, res.stdout.split(), res.stderr) == (0, ["check"], "")
    env = {**os.environ, "_VEILLE_COMPLETE": "source_bash"}
    res = subprocess.run([sys.executable, "-m", "veille"], capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0 and "_veille_completion()" in res.stdout and "complete_bash" in res.stdout


def test_a_password_typed_twice_differently_is_asked_again_in_french(veille_home):
    from sqlmodel import select

    from storage.db import open_archive, session_scope
    from storage.web_users import WebUser

    typed = "premier-essai\nsecond-essai\nmot-de-passe-long\nmot-de-passe-long\n"
    res = veille("users", "add", "bob", "--role", "analyst", input=typed)
    assert res.exit_code == 0, res.output
    assert res.output.count("Mot de passe : ") == 2 and res.output.count("Confirmez le mot de passe : ") == 2
    assert "erreur : les deux saisies diffèrent ; recommencez." in res.output
    assert res.output.endswith("utilisateur bob : analyst\n")
    no_english(res.output)
    engine = open_archive(f"sqlite:///{veille_home / 'veille.db'}")
    with session_scope(engine) as s:
        assert [(u.name, u.role) for u in s.exec(select(WebUser))] == [("bob", "analyst")]
    engine.dispose()


def test_every_command_of_the_app_has_its_help_in_french(veille_home):
    """A command added to any module gets the French classes (veille.commands.french.adopt in veille.main)."""
    import typer

    from veille.commands.french import French
    from veille.main import app

    paths: list[list[str]] = []

    commands = {}

    def walk(command, path: list[str]) -> None:
        assert isinstance(command, French), path
        paths.append(path)
        commands[tuple(path)] = command
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    assert ["rules", "check"] in paths and ["calendar", "token", "revoke"] in paths and len(paths) > 30
    for path in paths:
        res = veille(*path, "--help", columns=200)
        usage = res.output.split("\n")[1]  # after the padding line
        assert res.exit_code == 0 and usage.startswith(f" Utilisation : {' '.join(['veille', *path])} "), path
        no_english(res.output)
        shown = " ".join(re.sub(r"[│╭╮╰╯─]", " ", res.output).split())
        for param in commands[tuple(path)].params:  # each help whole: no "[web]" taken for Rich markup and dropped
            if getattr(param, "help", None):
                assert " ".join(param.help.replace("\\[", "[").split()) in shown, (path, param.name)


def test_a_file_that_cannot_be_read_says_why_in_french(tmp_path, veille_home):
    missing = tmp_path / "nope.yaml"
    res = veille("rules", "check", str(missing), columns=300)
    assert (res.exit_code, res.output) == (2, f"erreur : {missing}:0: illisible : fichier introuvable\n")
    res = veille("eval", str(tmp_path / "nope.jsonl"), columns=300)
    assert (res.exit_code, res.output) == (2, f"erreur : {tmp_path / 'nope.jsonl'} : illisible : fichier introuvable\n")
    res = veille("--profile", "dns", "review", "--label", "nope", columns=300)
    assert res.exit_code == 2 and res.output.startswith("erreur : thématique inconnue 'nope' (le profil a : ")
