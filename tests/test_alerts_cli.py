"""``veille digest`` and ``veille deliveries`` through the real CLI (files outbox, SQLite archive)."""

import datetime as dt

from sqlmodel import select
from typer.testing import CliRunner

from core.config import load_settings
from storage.db import open_archive, session_scope
from storage.models import Delivery
from tests.alerts_support import add_notice, classify_as, write_config, write_routing
from veille.commands.base import state
from veille.main import app

ROUTING = '[labels.deai]\nemail = ["deai@has.fr"]\n'


def setup(veille_home):
    write_config(veille_home)
    write_routing(veille_home, ROUTING)
    state._settings = None
    settings = load_settings()
    engine = open_archive(settings.database_url)
    nid = add_notice(engine, "n1", title_fr="Évaluation clinique commune : [bold]calendrier[/bold]")
    classify_as(engine, nid, "deai")
    return engine, nid


def test_digest_dry_run_then_send_then_deliveries(veille_home, monkeypatch):
    from veille.commands.base import console

    monkeypatch.setattr(console, "width", 250)  # a wide terminal: table cells unfolded
    engine, nid = setup(veille_home)
    runner = CliRunner()
    since = (dt.date.today() - dt.timedelta(days=1)).isoformat()
    out = runner.invoke(app, ["digest", "--since", since])
    assert out.exit_code == 0, out.output
    assert "Évaluation clinique commune : [bold]calendrier[/bold]" in out.output  # Rich markup shown as text
    assert "enverrait 1 message (1 notice(s) × destinataire)" in out.output
    with session_scope(engine) as s:
        assert s.exec(select(Delivery)).all() == []
    out = runner.invoke(app, ["digest", "--since", since, "--send"])
    assert out.exit_code == 0 and "1 message envoyé(s) (1 notice(s) × destinataire)" in out.output, out.output
    out = runner.invoke(app, ["deliveries"])
    assert "deai@has.fr" in out.output and "envoyé" in out.output
    with session_scope(engine, write=True) as s:
        row = s.exec(select(Delivery)).one()
        row.status, row.last_error = "failed", "SMTPServerDisconnected: boom"
    out = runner.invoke(app, ["deliveries", "--failed"])
    assert "boom" in out.output and "1 envoi affiché(s)" in out.output
    out = runner.invoke(app, ["deliveries", "--retry", row.batch])
    assert "1 envoi du lot digest:" in out.output and "remis en file" in out.output
    out = runner.invoke(app, ["deliveries", "--retry", "no-such-batch"])
    assert out.exit_code == 2 and "rien à remettre en file dans le lot 'no-such-batch'" in out.output
    with session_scope(engine) as s:
        assert s.exec(select(Delivery)).one().status == "pending"


def test_bad_since_and_bad_routing_are_one_line_errors(veille_home):
    setup(veille_home)
    runner = CliRunner()
    out = runner.invoke(app, ["digest", "--since", "yesterday"])
    assert out.exit_code == 2 and "--since : pas une date" in out.output
    write_routing(veille_home, '[labels.deai]\nemail = ["nope"]\n')
    out = runner.invoke(app, ["digest"])
    assert out.exit_code == 2 and "routing.toml:2: labels.deai.email" in out.output


def test_bad_command_line_values_are_errors_not_tracebacks(veille_home, tmp_path):
    setup(veille_home)
    runner = CliRunner()
    cases = [
        (["calendar", "--ics", str(tmp_path / "no" / "such" / "dir.ics")], "--ics : impossible d'écrire"),
        (["users", "add", " ", "--role", "analyst"], "nom de connexion de 1 à 100 caractères"),  # before the prompt
        (["search", "santé", "--limit", "-5"], "--limit"),
        (["search", "santé", "--min-score", "7"], "--min-score"),
        (["serve", "--port", "99999"], "--port"),
    ]
    for args, expected in cases:
        out = runner.invoke(app, args)
        assert out.exit_code == 2 and expected in out.output, (args, out.output)
        assert out.exception is None or isinstance(out.exception, SystemExit), (args, out.exception)


def test_a_misspelt_label_is_an_error_not_an_empty_result(veille_home):
    setup(veille_home)
    runner = CliRunner()
    for args in (
        ["search", "santé", "--label", "numérique"],
        ["digest", "--label", "deia"],
        ["calendar", "-l", "x"],
        ["calendar", "token", "create", "--label", "x"],
    ):
        out = runner.invoke(app, args)
        assert out.exit_code == 2, (args, out.output)
        assert "--label : thématique inconnue" in out.output and "numerique" in out.output
    assert runner.invoke(app, ["search", "santé", "--label", "numerique"]).exit_code == 0
    out = runner.invoke(app, ["calendar", "token", "create", "--label", "nope"])
    assert "ou 'all'" in out.output.replace("\n", "")  # the feeds also take 'all'
    assert runner.invoke(app, ["calendar", "token", "create", "--label", "all"]).exit_code == 0
