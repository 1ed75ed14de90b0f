"""E-mail delivery against a real SMTP server (aiosmtpd on 127.0.0.1, STARTTLS + login), outage and crashes."""

import datetime as dt
import ipaddress
import os
import signal
import ssl
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from aiosmtpd.smtp import AuthResult
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlmodel import select

import alerts
from core.config import load_settings
from storage.db import session_scope
from storage.models import Delivery
from tests.alerts_support import Inbox, add_notice, classify_as, start_smtp, write_config, write_routing

ROOT = Path(__file__).resolve().parent.parent
MONDAY = dt.datetime(2026, 11, 23, 7, tzinfo=dt.UTC)
ROUTING = """
[labels.deai]
email = ["deai@has-sante.fr", "évaluation@has-sante.fr"]
[labels.numerique]
email = ["deai@has-sante.fr"]
"""
PASSWORD = "s3cret-p4ss"


def self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = auth_data.login == b"veille" and auth_data.password == PASSWORD.encode()
    return AuthResult(success=ok, handled=False)  # handled=False: the server answers 535 itself


@pytest.fixture
def smtp(tmp_path, monkeypatch):
    """A real SMTP server requiring STARTTLS and login; the client trusts its self-signed certificate."""
    cert, key = self_signed(tmp_path)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # ssl.create_default_context() on the client side
    inbox = Inbox()
    ctl = start_smtp(
        inbox,
        tls_context=ctx,
        require_starttls=True,
        authenticator=authenticator,
        auth_require_tls=True,
        auth_exclude_mechanism=["CRAM-MD5"],
    )
    inbox.port = ctl.port
    yield inbox
    ctl.stop()


@pytest.fixture
def settings(veille_home, smtp, monkeypatch):
    write_config(veille_home, f'[smtp]\nhost = "127.0.0.1"\nport = {smtp.port}\nuser = "veille"\ntimeout = 5\n')
    write_routing(veille_home, ROUTING)
    monkeypatch.setenv("VEILLE_SMTP_PASSWORD", PASSWORD)
    return load_settings()


def statuses(engine):
    with session_scope(engine) as s:
        return sorted((r.notice_id, r.recipient, r.status, r.attempts) for r in s.exec(select(Delivery)))


def seed(engine):
    a = add_notice(
        engine,
        "32026R0042",
        celex="32026R0042",
        title_fr="Règlement d'exécution sur l'évaluation clinique commune des médicaments",
        title_en="Implementing Regulation on joint clinical assessment of medicinal products",
        summary_fr="Précise les délais de l'évaluation clinique commune. Deuxième phrase.",
        url="https://eur-lex.europa.eu/legal-content/FR/TXT/?uri=CELEX:32026R0042",
    )
    b = add_notice(
        engine, "ehds-news", title_en="EHDS: first implementing acts consulted on medical devices", kind="news"
    )
    classify_as(engine, a, "deai")
    classify_as(engine, b, "numerique", "deai")
    return a, b


def test_multipart_digest_over_starttls_and_login(engine, settings, smtp):
    a, b = seed(engine)
    stats = alerts.send_digests(engine, settings, now=MONDAY)
    assert (stats.sent, stats.messages, stats.failed) == (4, 2, 0)
    assert len(smtp.envelopes) == 2
    by_rcpt = {e.rcpt_tos[0]: m for e, m in zip(smtp.envelopes, smtp.messages(), strict=True)}
    assert set(by_rcpt) == {"deai@has-sante.fr", "évaluation@has-sante.fr"}  # the second needs SMTPUTF8
    msg = by_rcpt["deai@has-sante.fr"]
    assert msg.get_content_type() == "multipart/alternative"
    assert msg["Subject"] == "Veille UE du 23 novembre 2026 — 2 nouveautés (DEAI, Mission numérique en santé)"
    assert msg["From"] == "veille@has-sante.fr" and msg["To"] == "deai@has-sante.fr"
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    for body in (text, html):
        assert "Règlement d'exécution sur l'évaluation clinique commune" in body.replace("&#39;", "'")
        # The shipped rules' explanation (checked by hand): descriptions and words as written, no rule id.
        assert "Évaluation des technologies de santé (règlement HTA, évaluations cliniques communes)" in body
        assert "« évaluation clinique commune »" in body and "« joint clinical assessment »" in body
        assert "deai/hta-regulation" not in body and "EHDS: first implementing acts consulted" in body
        assert "Actes adoptés" in body and "Orientations et actualités" in body
    assert "Implementing Regulation on joint clinical assessment" in text  # the EN title second
    assert 'style="' in html and "<style>" not in html  # CSS inlined
    assert "Deuxième phrase" not in text  # one-line summary
    # b is routed to deai@ under both labels: it appears once.
    assert text.count("EHDS: first implementing acts consulted") == 1
    assert PASSWORD not in repr(settings) and PASSWORD not in str(stats)


def test_smtp_outage_is_failed_then_retried(engine, settings, smtp):
    seed(engine)
    smtp.down = True
    stats = alerts.send_digests(engine, settings, now=MONDAY)
    assert stats.failed == 4 and stats.sent == 0 and smtp.envelopes == []
    with session_scope(engine) as s:
        errors = {r.last_error for r in s.exec(select(Delivery))}
    assert all("451" in e and "try again later" in e for e in errors)
    smtp.down = False
    stats = alerts.send_digests(engine, settings, now=MONDAY + dt.timedelta(hours=1))
    assert stats.sent == 4 and len(smtp.envelopes) == 2
    assert {s for _, _, s, _ in statuses(engine)} == {"sent"}
    assert {n for *_, n in statuses(engine)} == {2}
    # and never again
    alerts.send_digests(engine, settings, now=MONDAY + dt.timedelta(days=1))
    assert len(smtp.envelopes) == 2


def test_wrong_password_is_failed_without_leaking_it(engine, settings, smtp, monkeypatch):
    seed(engine)
    monkeypatch.setenv("VEILLE_SMTP_PASSWORD", "wrong-" + PASSWORD)
    stats = alerts.send_digests(engine, load_settings(), now=MONDAY)
    assert stats.failed == 4
    with session_scope(engine) as s:
        errors = " ".join(r.last_error for r in s.exec(select(Delivery)))
    assert "connexion SMTP refusée (535)" in errors and PASSWORD not in errors


CRASH = textwrap.dedent(
    """
    import os, signal, sys, datetime as dt
    import alerts.outbox as outbox
    from storage.db import open_archive
    from core.config import load_settings

    where = sys.argv[1]
    if where == "after_accept":  # the server said 250, we die before recording it
        real = outbox._set_status
        def killing(s, batch, old, **values):
            if values.get("status") == "sent":
                os.kill(os.getpid(), signal.SIGKILL)
            return real(s, batch, old, **values)
        outbox._set_status = killing
    else:  # we die after writing the outbox rows, before talking to the server
        import alerts.email as email
        email.SmtpTransport._open = lambda self: os.kill(os.getpid(), signal.SIGKILL)
    settings = load_settings()
    import alerts
    alerts.send_digests(open_archive(settings.database_url), settings, now=dt.datetime.fromisoformat(sys.argv[2]))
    """
)


@pytest.mark.parametrize("where", ["after_accept", "before_send"])
def test_crash_and_rerun_delivers_exactly_once(engine, settings, smtp, tmp_path, where, db_url):
    seed(engine)
    env = {**os.environ, "VEILLE_DATABASE_URL": db_url, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", CRASH, where, MONDAY.isoformat()], env=env, cwd=ROOT, capture_output=True, timeout=60
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    received = len(smtp.envelopes)
    assert received == (1 if where == "after_accept" else 0)
    assert {s for _, _, s, _ in statuses(engine)} == ({"sending", "pending"} if received else {"pending"})
    # The next run, an hour later.
    stats = alerts.send_digests(engine, settings, now=MONDAY + dt.timedelta(hours=1))
    assert len(smtp.envelopes) == 2  # one message per recipient, never two
    assert sorted(e.rcpt_tos[0] for e in smtp.envelopes) == ["deai@has-sante.fr", "évaluation@has-sante.fr"]
    final = statuses(engine)
    if where == "after_accept":
        # The interrupted message may have arrived (it did): not resent, and shown for a human.
        assert stats.uncertain == 2 and [s for _, _, s, _ in final].count("uncertain") == 2
        with session_scope(engine) as s:
            err = s.exec(select(Delivery.last_error).where(Delivery.status == "uncertain")).first()
        assert "pas de renvoi automatique (veille deliveries --retry digest:" in err
    else:
        assert {s for _, _, s, _ in final} == {"sent"}
    alerts.send_digests(engine, settings, now=MONDAY + dt.timedelta(days=1))
    assert len(smtp.envelopes) == 2
