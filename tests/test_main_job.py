"""The main job through the CLI: `veille run`, `veille status`, `veille demo`, `veille search`."""

from __future__ import annotations

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from crawlers.replay.server import ReplayServer, Route
from storage.db import open_archive, session_scope
from storage.models import Notice
from tests.test_scheduler import HTA_ITEM, NEWS_ITEM, feed, source
from veille.cli import app, state


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
    assert "source down failed: " in result.output and "HTTP 503" in result.output
    assert "alerts: sent" in result.output
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
    assert "outbox: " in status.output and "sent" in status.output


def test_search_cli_reads_plain_words_and_reports_bad_queries_in_one_line(veille, veille_home, replay):
    cfg = write_config(veille_home, replay)
    veille("--config", str(cfg), "run", "--source", "oj")
    ok = veille("--config", str(cfg), "search", '"joint clinical assessment')  # unbalanced quote
    assert ok.exit_code == 0 and "1 notices match" in ok.output
    bad = veille("--config", str(cfg), "search", "--", "-santé")
    assert bad.exit_code == 2
    assert bad.output.strip().startswith("error:") and "Traceback" not in bad.output
    assert len(bad.output.strip().splitlines()) == 1
    date = veille("--config", str(cfg), "search", "x", "--since", "yesterday")
    assert date.exit_code == 2 and "--since: not a date" in date.output


def test_config_error_is_one_line_with_file_and_line(veille, veille_home):
    veille_home.mkdir(parents=True, exist_ok=True)
    cfg = veille_home / "veille.toml"
    cfg.write_text('[crawl]\ndownload_delay = "fast"\n', encoding="utf-8")
    result = veille("--config", str(cfg), "run")
    assert result.exit_code == 2
    assert f"{cfg}:2: crawl.download_delay" in result.output and "Traceback" not in result.output


def test_demo_replays_the_shipped_sources_offline(veille, veille_home):
    result = veille("demo")
    assert result.exit_code == 0, result.output
    demo = veille_home / "demo"
    assert (demo / "veille.db").exists() and (demo / "calendar.ics").exists()
    assert list((demo / "outbox").rglob("digest_*.eml"))
    assert "failed" not in result.output.split("notices per label")[0]  # every recorded source replayed
    found = veille("--config", str(demo / "veille.toml"), "search", "dispositifs médicaux")
    assert found.exit_code == 0 and " 0 notices match" not in found.output
