"""Routing config validation, who gets what, and the digest planning rules, on SQLite and PostgreSQL."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

import alerts
from alerts.config import load_routing
from core.config import ConfigError, load_settings
from storage.db import session_scope
from storage.models import Delivery
from tests.alerts_support import add_notice, classify_as, write_config, write_routing

MONDAY = datetime(2026, 11, 23, 7, tzinfo=UTC)  # 08:00 in Paris, a working day

ROUTING = """
threshold = 0.5
[labels.deai]
email = ["deai@has.fr"]
slack = ["#veille-deai"]
[labels.numerique]
email = ["num@has.fr", "deai@has.fr"]
[labels.deontologie]
email = ["deonto@has.fr"]
threshold = 0.95
[recipients."deonto@has.fr"]
nothing_new = true
[[critical]]
name = "Acte fondé sur le règlement IA"
kinds = ["act", "corrigendum"]
acts = ["32024R1689"]
notify = ["deai"]
"""


@pytest.fixture
def settings(veille_home):
    write_config(veille_home)
    write_routing(veille_home, ROUTING)
    return load_settings()


def rows(engine, purpose="digest"):
    with session_scope(engine) as s:
        q = select(Delivery).where(Delivery.purpose == purpose).order_by(Delivery.id)
        return [(r.notice_id, r.recipient, r.channel, r.status) for r in s.exec(q)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '[labels.deai]\nemail = ["not-an-address"]\n',
            r"routing.toml:2: labels.deai.email: pas une adresse e-mail : 'not-an-address'$",
        ),
        ('\n[labels.nope]\nemail = ["a@b.fr"]\n', r"routing.toml:2: labels.nope: thématique inconnue 'nope'"),
        ('\n\n[[critical]]\nname = "x"\n', r"routing.toml:3: critical.0: .*demande au moins une condition"),
        (
            '[[critical]]\nname = "x"\nacts = ["2024/1689"]\n',
            r"routing.toml:3: critical.0.acts: pas un numéro CELEX comme 32024R1689 : '2024/1689'$",
        ),
        ("threshold = 2\n", r"routing.toml:1: threshold: doit être inférieur ou égal à 1$"),
        ("threshold = \n", r"routing.toml:1: TOML invalide"),
    ],
)
def test_bad_routing_is_one_line_with_file_and_line(veille_home, text, expected):
    write_config(veille_home)
    write_routing(veille_home, text)
    with pytest.raises(ConfigError, match=expected) as exc:
        load_routing(load_settings())
    assert "\n" not in str(exc.value)


def test_routing_saved_in_another_encoding_is_one_line(veille_home):
    write_config(veille_home)
    path = write_routing(veille_home, "")
    path.write_bytes("# unité DEAI\nthreshold = 0.5\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"routing.toml:1: pas en UTF-8 \(octet 0xe9\)"):
        load_routing(load_settings())


def test_shipped_routing_is_valid():
    routing = load_routing(load_settings())
    assert {r.acts[0] for r in routing.critical} == {"32021R2282", "32025R0327", "32024R1689"}


def test_several_labels_reach_every_unit_once_each(engine, settings):
    both = add_notice(
        engine, "n1", title_fr="Espace européen des données de santé et évaluation des technologies de la santé"
    )
    only_deai = add_notice(engine, "n2", title_fr="Évaluation des technologies de la santé")
    below = add_notice(engine, "n3", title_fr="Déclarations d'intérêts", kind="news")
    classify_as(engine, both, "deai", "numerique")
    assert set(classify_as(engine, only_deai, "deai")) == {"deai"}
    # Selected by the shipped rules (« Déclarations d'intérêts », 0.9), under the label's own threshold 0.95.
    assert classify_as(engine, below, "deontologie") == {"deontologie": 0.9}
    stats = alerts.send_digests(engine, settings, now=MONDAY)
    got = rows(engine)
    # deai@has.fr is subscribed to deai and numerique: `both` once; num@ gets it too; Slack too.
    assert sorted((n, r, c) for n, r, c, _ in got) == sorted(
        [
            (both, "deai@has.fr", "email"),
            (both, "#veille-deai", "slack"),
            (both, "num@has.fr", "email"),
            (only_deai, "deai@has.fr", "email"),
            (only_deai, "#veille-deai", "slack"),
        ]
    )
    assert {s for *_, s in got} == {"sent"}
    assert stats.sent == 5 and stats.messages == 4  # 3 digests + deonto@ "nothing new"
    # Nothing new for deonto@ (option on): one "nothing new" message, written to the outbox folder.
    emails = sorted((settings.outbox / "email").glob("*.eml"))
    assert len(emails) == 3  # deai@ (one digest for both its labels), num@, deonto@
    quiet = [p for p in emails if "deonto" in p.name]
    assert quiet and "rien de nouveau" in quiet[0].read_text(encoding="utf-8")
    # Same day again: nothing more; the next working day: only what is new since.
    assert alerts.send_digests(engine, settings, now=MONDAY + timedelta(hours=3)).messages == 0
    later = add_notice(engine, "n4", title_fr="Règlement sur l'IA: lignes directrices", kind="guidance")
    classify_as(engine, later, "numerique")
    stats = alerts.send_digests(engine, settings, now=MONDAY + timedelta(days=1))
    assert sorted(r for n, r, *_ in rows(engine) if n == later) == ["deai@has.fr", "num@has.fr"]
    assert len(rows(engine)) == 7


def test_no_digest_on_weekend_or_holiday(engine, settings):
    n = add_notice(engine, "n1", title_fr="Évaluation clinique commune")
    classify_as(engine, n, "deai")
    saturday = datetime(2026, 11, 28, 7, tzinfo=UTC)
    christmas = datetime(2026, 12, 25, 7, tzinfo=UTC)
    assert alerts.send_digests(engine, settings, now=saturday).messages == 0
    assert alerts.send_digests(engine, settings, now=christmas).messages == 0
    assert rows(engine) == []


def test_critical_act_is_alerted_once_and_not_repeated_in_digest(engine, settings):
    act = add_notice(
        engine,
        "32026R0001",
        celex="32026R0001",
        title_fr="Règlement d'exécution relatif aux systèmes d'IA à haut risque",
        legal_basis=["32024R1689"],
    )
    # Selected for numerique (the AI Act is its legal basis), not for deai: `notify` still reaches deai's units.
    assert set(classify_as(engine, act, "numerique")) == {"numerique"}
    news = add_notice(engine, "news-1", title_fr="AI Office news", kind="news", related_acts=["32024R1689"])
    classify_as(engine, news, "numerique")
    now = datetime.now(UTC)
    first = alerts.send_alerts(engine, settings, now=now)
    got = rows(engine, "alert")
    assert sorted((n, r) for n, r, *_ in got) == sorted(
        [(act, "deai@has.fr"), (act, "#veille-deai"), (act, "num@has.fr")]
    )
    assert first.sent == 3
    assert alerts.send_alerts(engine, settings, now=now + timedelta(minutes=5)).sent == 0
    assert len(rows(engine, "alert")) == 3
    alerts.send_digests(engine, settings, now=now, since=now - timedelta(days=1))
    digested = rows(engine, "digest")
    assert all(n != act for n, *_ in digested)  # already alerted to those recipients
    assert {(n, r) for n, r, *_ in digested} >= {(news, "num@has.fr"), (news, "deai@has.fr")}


def test_dry_run_writes_nothing(engine, settings):
    n = add_notice(engine, "n1", title_fr="Évaluation clinique commune")
    classify_as(engine, n, "deai")
    stats = alerts.send_digests(engine, settings, now=MONDAY, dry_run=True)
    assert stats.pending == 2 and rows(engine) == []
    assert any("Évaluation clinique commune" in p.text for p in stats.previews)
    assert not (settings.outbox / "email").exists()
