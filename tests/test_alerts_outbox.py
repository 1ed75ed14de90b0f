"""The files outbox (no SMTP, no Slack configured): alerts land as files, an interrupted run settles itself."""

import datetime as dt
from email import message_from_bytes
from email.policy import default as default_policy

import pytest
from sqlmodel import select

import alerts
import alerts.outbox as outbox
from core.config import load_settings
from storage.db import open_archive, session_scope
from storage.models import Delivery
from tests.alerts_support import add_notice, classify_as, write_config


@pytest.fixture
def engine(sqlite_url):
    return open_archive(sqlite_url)


def statuses(engine):
    with session_scope(engine) as s:
        return sorted((r.recipient, r.status) for r in s.exec(select(Delivery)))


def critical(engine, now):
    nid = add_notice(
        engine,
        "32026R0100",
        celex="32026R0100",
        title_fr="Règlement d'exécution établissant les règles du format européen d'échange des dossiers médicaux",
        legal_basis=["32025R0327"],
        published_at=now,
    )
    classify_as(engine, nid, "numerique")
    return nid


def test_alert_from_shipped_routing_lands_in_the_outbox_folder(veille_home, engine):
    write_config(veille_home)
    settings = load_settings()
    now = dt.datetime.now(dt.UTC)
    critical(engine, now)
    stats = alerts.send_alerts(engine, settings, now=now)
    # shipped routing: numerique -> mission-numerique@ (email) and #veille-numerique (slack)
    assert stats.sent == 2 and stats.messages == 2
    (eml,) = (settings.outbox / "email").glob("alert_*.eml")
    msg = message_from_bytes(eml.read_bytes(), policy=default_policy)
    assert msg["To"] == "mission-numerique@has-sante.fr" and msg["Importance"] == "high"
    assert msg["Subject"].startswith("[Alerte veille UE] Acte fondé sur le règlement EHDS — Règlement d'exécution")
    assert "format européen d'échange" in msg.get_body(("html",)).get_content()
    assert len(list((settings.outbox / "slack").glob("alert_*.json"))) == 1
    assert alerts.send_alerts(engine, settings, now=now + dt.timedelta(hours=1)).sent == 0


def test_interrupted_file_delivery_is_settled_without_a_second_copy(veille_home, engine, monkeypatch):
    write_config(veille_home)
    settings = load_settings()
    now = dt.datetime.now(dt.UTC)
    critical(engine, now)
    real = outbox._set_status

    def die_before_marking_sent(s, batch, old, **values):
        if values.get("status") == "sent":
            raise KeyboardInterrupt  # like a kill: not caught by the outbox
        return real(s, batch, old, **values)

    monkeypatch.setattr(outbox, "_set_status", die_before_marking_sent)
    with pytest.raises(KeyboardInterrupt):
        alerts.send_alerts(engine, settings, now=now)
    monkeypatch.setattr(outbox, "_set_status", real)
    first = statuses(engine)
    assert sorted(s for _, s in first) == ["pending", "sending"]  # died after the first message's rename
    stuck = next(r for r, s in first if s == "sending")
    # Within 15 minutes the batch may belong to a live process: left alone; the other one goes out.
    alerts.send_alerts(engine, settings, now=now + dt.timedelta(minutes=5))
    assert sorted(statuses(engine)) == sorted([(stuck, "sending"), *[(r, "sent") for r, s in first if r != stuck]])
    # Later: the file is there, so it was delivered; nothing is written twice.
    stats = alerts.send_alerts(engine, settings, now=now + dt.timedelta(hours=1))
    assert {s for _, s in statuses(engine)} == {"sent"}
    assert stats.sent == 1
    assert len(list((settings.outbox / "email").glob("*.eml"))) == 1
    assert len(list((settings.outbox / "slack").glob("*.json"))) == 1
