"""Delivery channels registered by kind (alerts/channels): a channel added from a test, as docs/extending.md
says ("Ajouter un canal de diffusion"), receives the digest the real pipeline produces, exactly once.

The archive is the shipped replay bundle through crawl, ingest, classify and alerts (tests/test_digest_daily.py's
``pipeline`` fixture, as ``veille demo`` does); titles and subject below were read by hand from it."""

from __future__ import annotations

import ast
import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import Field
from sqlmodel import select
from typer.testing import CliRunner

import alerts
from alerts.channels import Channel, register, registry, unregister
from alerts.config import load_routing
from alerts.delivery import Rejected
from alerts.digest import Digest
from alerts.render import text_body
from alerts.routing import recipients
from core.config import ConfigError, Strict, load_settings
from storage.db import open_archive, session_scope
from storage.models import Delivery
from tests.alerts_support import write_config, write_routing
from tests.test_alerts_outbox import critical
from tests.test_digest_daily import NOW, OLD, RECENT, archive, notice_id, pipeline  # noqa: F401  (pipeline: a fixture)
from veille.commands.base import state
from veille.main import app

SHIPPED_ROUTING = Path(__file__).parents[1] / "core" / "profiles" / "has" / "routing.toml"
ALERTS = Path(__file__).parents[1] / "alerts"


# --- the toy channel: what a new channel module holds ---------------------------------------------------


class Chat:
    """The toy's server: keeps the messages it accepted; refuses them while ``down``."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, str, dict]] = []  # (room, batch, message)
        self.down = False


CHAT = Chat()


class ToyOptions(Strict):
    server: str = Field(pattern=r"^[a-z]+$")  # "chat": CHAT; required, so an empty [channels.toy] is refused
    live: bool = True  # false: the files outbox (outbox/toy/)


class ToyTransport:
    channel = "toy"

    def send(
        self, recipient: str, batch: str, parts: list[Any], start: int, handing_over: Callable[[int], None]
    ) -> None:
        for i in range(start, len(parts)):
            handing_over(i)
            if CHAT.down:
                raise Rejected("chat server unavailable")
            CHAT.messages.append((recipient, batch, parts[i]))

    def confirm(self, batch: str, part: int) -> bool | None:
        return None


class Toy(Channel):
    kind = "toy"
    Options = ToyOptions

    @classmethod
    def check_address(cls, address: str) -> str | None:
        return None if address.startswith("room-") else f"not a room like 'room-name': {address!r}"

    def render(self, d: Digest, batch: str, now: dt.datetime) -> list[dict]:
        return [{"room": d.recipient, "subject": d.subject, "text": text_body(d)}]

    def transport(self, address: str) -> ToyTransport | None:
        return ToyTransport() if self.options.live else None


@pytest.fixture
def toy():
    CHAT.messages.clear()
    CHAT.down = False
    register(Toy)
    yield CHAT
    unregister("toy")


def routing_with(line: str, home: Path) -> None:
    """The shipped routing, with ``line`` added to ``[labels.deai]``, as the analysts' copy."""
    text = SHIPPED_ROUTING.read_text(encoding="utf-8")
    write_routing(home, text.replace("[labels.deai]\n", f"[labels.deai]\n{line}\n", 1))


def toy_rows(engine) -> dict[int, str]:
    with session_scope(engine) as s:
        return {r.notice_id: r.status for r in s.exec(select(Delivery).where(Delivery.channel == "toy"))}


def titles_of(engine, titles: list[str]) -> list[int]:
    return [notice_id(engine, t) for t in titles]


# --- the pipeline's digest through the toy channel -------------------------------------------------------


@pytest.mark.slow  # builds the demo archive through the replay server
def test_a_channel_added_by_a_test_delivers_the_pipeline_digest_exactly_once(pipeline, tmp_path, veille_home, toy):  # noqa: F811
    routing_with('toy = ["room-deai"]', veille_home)
    engine, settings, _ = archive(pipeline, tmp_path / "a", '[channels.toy]\nserver = "chat"\n')

    toy.down = True  # the first attempt is refused: the outbox keeps the rows and retries them
    stats = alerts.send_digests(engine, settings, now=NOW)
    assert toy.messages == [] and stats.by_channel["toy"] == {"failed": 2}
    assert any("chat server unavailable" in e for e in stats.errors)

    toy.down = False
    stats = alerts.send_digests(engine, settings, now=NOW + dt.timedelta(minutes=5))
    assert stats.by_channel["toy"] == {"sent": 2}
    for later in (dt.timedelta(minutes=10), dt.timedelta(hours=2)):  # the same day again: nothing more
        alerts.send_digests(engine, settings, now=NOW + later)

    [(room, batch, message)] = toy.messages
    assert (room, batch) == ("room-deai", "digest:2025-12-22:toy:room-deai")
    assert message["subject"] == "Veille UE du 22 décembre 2025 — 2 nouveautés (DEAI)"
    assert all(t in message["text"] for t in RECENT) and not any(t in message["text"] for t in OLD)
    assert "notices plus anciennes que 14 jours ont été archivées sans envoi." in message["text"]
    recent, old = titles_of(engine, RECENT), titles_of(engine, OLD)
    rows = toy_rows(engine)
    assert [rows[i] for i in recent] == ["sent", "sent"] and [rows[i] for i in old] == ["skipped", "skipped"]
    # The other channels are untouched by the new one: the unit's e-mail went out once, as before.
    assert len(list((settings.outbox / "email").glob("digest_*_email_veille-deai_has-sante.fr-*.eml"))) == 1


@pytest.mark.slow
def test_a_channel_without_its_server_files_its_messages_under_its_own_folder(pipeline, tmp_path, veille_home, toy):  # noqa: F811
    routing_with('toy = ["room-deai"]', veille_home)
    engine, settings, _ = archive(pipeline, tmp_path / "a", '[channels.toy]\nserver = "chat"\nlive = false\n')
    alerts.send_digests(engine, settings, now=NOW)
    [path] = (settings.outbox / "toy").glob("*.json")
    assert path.name.startswith("digest_2025-12-22_toy_room-deai-") and path.name.endswith("-1.json")
    message = json.loads(path.read_text(encoding="utf-8"))
    assert message["recipient"] == "room-deai" and message["subject"].endswith("2 nouveautés (DEAI)")
    assert toy.messages == []


# --- configuration: options in veille.toml, recipients in routing.toml ---------------------------------------


def veille_config(cfg: Path):
    state._settings, state.config, state.profile = None, None, None  # the CLI's state of an earlier test
    res = CliRunner().invoke(app, ["--config", str(cfg), "config"], terminal_width=200)
    state._settings = None
    return res


def test_veille_config_checks_each_channels_options_with_file_and_line(tmp_path, veille_home, toy):
    cfg = tmp_path / "veille.toml"
    cfg.write_text('profile = "has"\n\n[channels.toy]\nlive = true\nserver = "Chat 1"\n', encoding="utf-8")
    res = veille_config(cfg)
    assert res.exit_code == 2
    assert f"{cfg}:5: channels.toy.server: doit suivre le motif " in res.output
    assert "Chat 1" not in res.output  # a value is never echoed: it may be a secret

    cfg.write_text('profile = "has"\n\n[channels.toy]\nlive = true\n', encoding="utf-8")
    assert f"{cfg}:3: channels.toy.server: manquant (obligatoire)" in veille_config(cfg).output

    cfg.write_text('profile = "has"\n\n[channels.tyo]\nserver = "chat"\n', encoding="utf-8")
    res = veille_config(cfg)
    assert f"{cfg}:3: channels.tyo: canal inconnu (connus : email, slack, webhook, toy)" in res.output

    cfg.write_text('profile = "has"\n\n[channels.toy]\nserver = "chat"\n', encoding="utf-8")
    res = veille_config(cfg)
    assert res.exit_code == 0 and "canaux : email, slack, webhook, toy" in res.output


def test_routing_names_the_unknown_channel_or_bad_address_with_file_and_line(veille_home, toy):
    write_config(veille_home)
    settings = load_settings()
    routing_with('tyo = ["room-deai"]', veille_home)
    path = veille_home / "profiles" / "has" / "routing.toml"
    line = path.read_text(encoding="utf-8").splitlines().index('tyo = ["room-deai"]') + 1
    with pytest.raises(ConfigError) as exc:
        load_routing(settings)
    assert str(exc.value) == (
        f"{path}:{line}: labels.deai.tyo: canal inconnu 'tyo' (connus : email, slack, webhook, toy)"
    )
    routing_with('toy = ["deai"]', veille_home)
    with pytest.raises(ConfigError, match=rf"routing\.toml:{line}: labels\.deai\.toy: not a room like 'room-name'"):
        load_routing(settings)
    routing_with('toy = ["room-deai"]', veille_home)
    [rcpt] = [r for r in recipients(load_routing(settings)) if r.channel == "toy"]
    assert (rcpt.address, rcpt.labels) == ("room-deai", ("deai",))


def test_a_bad_address_in_the_shipped_routings_copy_names_its_own_line(veille_home):
    """A table's name is not matched against a key of the same name elsewhere (``[[always]] labels = …``)."""
    write_config(veille_home)
    text = SHIPPED_ROUTING.read_text(encoding="utf-8")
    text = text.replace('email = ["veille-deai@has-sante.fr"]', 'email = ["veille-deai"]', 1)
    path = write_routing(veille_home, text)
    line = text.splitlines().index('email = ["veille-deai"]') + 1
    with pytest.raises(ConfigError) as exc:
        load_routing(load_settings())
    assert str(exc.value) == f"{path}:{line}: labels.deai.email: pas une adresse e-mail : 'veille-deai'"


# --- the built-in channels keep their own folders --------------------------------------------------------


def test_a_webhook_without_its_url_is_filed_under_webhook_not_slack(veille_home, sqlite_url):
    write_config(veille_home)
    routing = SHIPPED_ROUTING.read_text(encoding="utf-8") + '\n[webhooks.direction]\nlabels = ["numerique"]\n'
    write_routing(veille_home, routing)
    settings = load_settings()
    engine = open_archive(sqlite_url)
    now = dt.datetime.now(dt.UTC)
    nid = critical(engine, now)  # a `numerique` act the routing calls critical
    stats = alerts.send_alerts(engine, settings, now=now)
    assert stats.by_channel["webhook"] == {"sent": 1}
    [post] = (settings.outbox / "webhook").glob("*.json")
    assert post.name.startswith(f"alert_{nid}_webhook_webhook_direction-")
    assert json.loads(post.read_text(encoding="utf-8"))["recipient"] == "webhook:direction"
    [post] = (settings.outbox / "slack").glob("*.json")  # the Slack channel's alert only
    assert post.name.startswith(f"alert_{nid}_slack_veille-numerique-")


# --- the package's shape ------------------------------------------------------------------------------------


def _type_checking_only(tree: ast.Module, node: ast.AST) -> bool:
    """An import under ``if TYPE_CHECKING:`` (types only: never run, never a cycle)."""
    return any(
        isinstance(n, ast.If) and isinstance(n.test, ast.Name) and n.test.id == "TYPE_CHECKING" and node in ast.walk(n)
        for n in tree.body
    )


def test_no_channel_dispatch_and_imports_run_one_way_in_alerts():
    """No ``if channel ==`` left; no import cycle, counting imports inside functions (some are there for
    start-up time: `veille config` loads every channel module; none may hide a cycle)."""
    graph: dict[str, set[str]] = {}
    for path in sorted(ALERTS.rglob("*.py")):
        name = ".".join(path.relative_to(ALERTS.parent).with_suffix("").parts).removesuffix(".__init__")
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare) and isinstance(node.left, ast.Attribute | ast.Name):
                left = node.left.attr if isinstance(node.left, ast.Attribute) else node.left.id
                consts = [c for c in node.comparators if isinstance(c, ast.Constant) and isinstance(c.value, str)]
                assert not (left == "channel" and consts), f"{path.name}:{node.lineno}: dispatch on a channel name"
        graph[name] = {
            n.module
            for n in ast.walk(tree)
            if isinstance(n, ast.ImportFrom)
            and n.module
            and n.module.startswith("alerts")
            and not _type_checking_only(tree, n)
        }
    seen: dict[str, int] = {}

    def visit(mod: str, path: tuple[str, ...]) -> None:
        assert mod not in path, f"import cycle: {' -> '.join((*path, mod))}"
        if seen.get(mod):
            return
        for dep in graph.get(mod, ()):
            visit(dep, (*path, mod))
        seen[mod] = 1

    for mod in graph:
        visit(mod, ())
    assert set(registry()) >= {"email", "slack", "webhook"}
