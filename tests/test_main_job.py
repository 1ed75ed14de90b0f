"""The main job through the CLI: `veille run`, `veille status`, `veille demo`, `veille search`."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from crawlers.replay.server import ReplayServer, Route
from storage.db import open_archive, session_scope
from storage.models import CrawlRun, Notice
from tests.test_scheduler import HTA_ITEM, NEWS_ITEM, feed, source
from veille.commands.base import state
from veille.main import app


@pytest.fixture
def veille(veille_home):
    """Invoke the CLI as a user would, with fresh CLI state each time."""

    def invoke(*args: str):
        state._settings, state.config, state.profile = None, None, None
        result = CliRunner().invoke(app, list(args))
        state._settings, state.config, state.profile = None, None, None
        return result

    return invoke


@pytest.fixture
def replay():
    with ReplayServer() as server:
        server.add(
            Route(path="/oj.xml", body=feed([HTA_ITEM, NEWS_ITEM]), headers={"Content-Type": "application/rss+xml"})
        )
        server.add(Route(path="/down.xml", status=503, body=b"Service Unavailable"))
        yield server
    server.close()


def write_config(home, replay: ReplayServer):
    home.mkdir(parents=True, exist_ok=True)
    cfg = home / "veille.toml"
    cfg.write_text(
        '[crawl]\ndownload_delay = 0\nretries = 0\n[schedule]\ndigest_time = "23:59:59"\n'
        + source("oj", replay.url("/oj.xml"), "1h")
        + source("down", replay.url("/down.xml"), "1h"),
        encoding="utf-8",
    )
    return cfg


def test_run_stores_classifies_alerts_and_fails_loudly_on_a_failed_source(veille, veille_home, replay):
    cfg = write_config(veille_home, replay)
    result = veille("--config", str(cfg), "run")
    assert result.exit_code == 1, result.output
    assert "source down en échec : " in result.output and "HTTP 503" in result.output
    assert re.search(r"^alertes : [1-9]\d* messages? ", result.output, re.M), result.output
    engine = open_archive(f"sqlite:///{veille_home / 'veille.db'}")
    with session_scope(engine) as s:
        assert {n.celex for n in s.exec(select(Notice))} == {HTA_ITEM[0], NEWS_ITEM[0]}
    alerts = list((veille_home / "outbox").rglob("alert_*"))
    assert alerts, "the critical HTA act was alerted (file outbox)"

    # Nothing is due an hour later: a second `run` crawls nothing and sends nothing again.
    again = veille("--config", str(cfg), "run")
    assert again.exit_code == 0, again.output
    assert list((veille_home / "outbox").rglob("alert_*")) == alerts

    status = veille("--config", str(cfg), "status")
    assert status.exit_code == 0
    assert "down" in status.output and "HTTP 503" in status.output
    assert "boîte d'envoi : " in status.output and "envoyé" in status.output


def _status_reasons(output: str) -> dict[str, str]:
    """The "raison" cell of each source in `veille status`'s table, its folded lines joined, spaces removed
    (where a cell wraps, a space or nothing was cut: the comparison ignores spaces)."""
    reasons: dict[str, str] = {}
    name = None
    for line in output.splitlines():
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if len(cells) != 5:
            continue
        name = cells[0] or name
        reasons[name] = reasons.get(name, "") + cells[4].replace(" ", "")
    return reasons


def test_a_failed_source_says_why_in_french_on_its_run_and_in_status(veille, veille_home):
    """A feed URL answering with a real EUR-Lex HTML page, another with an empty body, a third with 503: each
    run, `veille run` and `veille status` (as typed, 80 columns) give the reason in French."""
    page = (Path(__file__).parent / "data/fixtures/eurlex/ai_act_32024R1689_en_TXT_HTML.html").read_bytes()
    with ReplayServer() as server:
        server.add(Route(path="/page.xml", body=page, headers={"Content-Type": "text/html;charset=UTF-8"}))
        server.add(Route(path="/vide.xml", body=b"", headers={"Content-Type": "application/rss+xml"}))
        server.add(Route(path="/down.xml", status=503, body=b"Service Unavailable"))
        veille_home.mkdir(parents=True, exist_ok=True)
        cfg = veille_home / "veille.toml"
        cfg.write_text(
            "[crawl]\ndownload_delay = 0\nretries = 0\n"
            + "".join(source(n, server.url(f"/{n}.xml"), "1h") for n in ("page", "vide", "down")),
            encoding="utf-8",
        )
        result = veille("--config", str(cfg), "run")
        server.close()
    expected = {
        "page": f"{server.url('/page.xml')} : page HTML au lieu du flux attendu",
        "vide": f"{server.url('/vide.xml')} : réponse vide au lieu du flux attendu",
        "down": f"{server.url('/down.xml')} : HTTP 503 (service indisponible)",
    }
    assert result.exit_code == 1, result.output
    for name, reason in expected.items():
        assert f"source {name} en échec : {reason}\n" in result.output
    engine = open_archive(f"sqlite:///{veille_home / 'veille.db'}")
    with session_scope(engine) as s:
        runs = {r.source: (r.status, r.error) for r in s.exec(select(CrawlRun))}
    assert runs == {name: ("failed", reason) for name, reason in expected.items()}

    script = Path(sys.executable).parent / "veille"
    env = {**os.environ, "COLUMNS": "80", "VEILLE_HOME": str(veille_home)}
    status = subprocess.run([str(script), "--config", str(cfg), "status"], capture_output=True, text=True, env=env)
    assert status.returncode == 0, status.stderr
    assert max(len(line) for line in status.stdout.splitlines()) <= 80
    reasons = _status_reasons(status.stdout)
    assert reasons == {name: reason.replace(" ", "") for name, reason in expected.items()}, status.stdout
    assert status.stdout.count("en échec") == 3


def test_search_cli_reads_plain_words_and_reports_bad_queries_in_one_line(veille, veille_home, replay):
    cfg = write_config(veille_home, replay)
    veille("--config", str(cfg), "run", "--source", "oj")
    ok = veille("--config", str(cfg), "search", '"joint clinical assessment')  # unbalanced quote
    assert ok.exit_code == 0 and "1 notice trouvée" in ok.output
    bad = veille("--config", str(cfg), "search", "--", "-santé")
    assert bad.exit_code == 2
    assert bad.output.strip().startswith("erreur :") and "Traceback" not in bad.output
    assert len(bad.output.strip().splitlines()) == 1
    date = veille("--config", str(cfg), "search", "x", "--since", "yesterday")
    assert date.exit_code == 2 and "--since : pas une date" in date.output


def test_config_error_is_one_line_with_file_and_line(veille, veille_home):
    veille_home.mkdir(parents=True, exist_ok=True)
    cfg = veille_home / "veille.toml"
    cfg.write_text('[crawl]\ndownload_delay = "fast"\n', encoding="utf-8")
    result = veille("--config", str(cfg), "run")
    assert result.exit_code == 2
    assert f"{cfg}:2: crawl.download_delay" in result.output and "Traceback" not in result.output


def test_demo_replays_the_shipped_sources_offline_and_its_hint_works_when_pasted(veille_home, tmp_path):
    """As the README says: ``.venv/bin/veille demo`` at 80 columns, then the printed commands pasted in a shell."""
    script = Path(sys.executable).parent / "veille"
    env = {**os.environ, "COLUMNS": "80", "VEILLE_HOME": str(veille_home)}
    res = subprocess.run([str(script), "demo"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    demo = veille_home / "demo"
    assert (demo / "veille.db").exists() and (demo / "calendar.ics").exists()
    assert list((demo / "outbox").rglob("digest_*.eml"))
    # Each delivery channel files under its own folder, and the closing lines say which.
    assert f"boîte d'envoi (digests, alertes ; un dossier par canal : email/, slack/) : {demo / 'outbox'}" in res.stdout
    assert "échec" not in res.stdout.split("notices par unité")[0]  # every recorded source replayed
    # Counts are of messages people receive; item deliveries come second.
    assert re.search(r"^digests : \d+ messages \(\d+ notices × destinataire\)", res.stdout, re.M)
    # Its period is explicit (since 2000): the recorded critical acts are alerted, not held back as backlog.
    assert re.search(r"^alertes : [1-9]\d* messages", res.stdout, re.M), res.stdout
    # The deadlines: the day, then the title cut to fit 80 columns, then who gets it.
    deadlines = res.stdout.split("Échéances (section des digests)\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert deadlines[0].startswith("• 10 mars 2027 (J-") and deadlines[0].endswith(" · projet d'acte")
    assert deadlines[1].startswith("  Draft Commission Implementing Regulation laying down rules for the applic")
    assert deadlines[2] == "  → veille-deai@has-sante.fr, #veille-deai"
    assert all(len(line) <= 80 for line in deadlines), deadlines
    hint = res.stdout.split("(à copier-coller) :\n", 1)[1].splitlines()
    export, search = hint[0].strip(), hint[1].strip()
    assert export.startswith("export VEILLE_HOME=") and search.startswith(f"{script} search ")
    pasted = subprocess.run(
        ["bash", "-c", f"{export}\n{search}"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300
    )
    assert pasted.returncode == 0, pasted.stderr
    assert re.search(r"^[1-9]\d* notices? trouvées?", pasted.stdout, re.M), pasted.stdout
