"""Deadlines in the digests, reminders through the outbox, the iCalendar calendar and its token feeds."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from icalendar import Calendar
from sqlmodel import select
from typer.testing import CliRunner

from alerts import send_digests
from alerts.calendar import calendar_ics
from alerts.days import working_days_left
from alerts.reminders import reminder_due, send_reminders
from core.config import load_settings
from core.records import NoticeRecord
from storage.calendar_tokens import create_token, revoke_token
from storage.db import open_archive, session_scope
from storage.health import working_days_back
from storage.ingest import ingest
from storage.models import Delivery, Notice, NoticeVersion
from tests.alerts_support import add_notice, classify_as, write_config

MON_9_NOV = datetime(2026, 11, 9, 9, 0, tzinfo=UTC)  # Wednesday 11 November 2026 is a public holiday


@pytest.fixture
def settings(veille_home):
    write_config(veille_home)
    return load_settings()


def consultation(external_id: str, deadline: date | None, **kw) -> NoticeRecord:
    return NoticeRecord(
        source="hys",
        external_id=external_id,
        url=f"https://ec.europa.eu/info/law/better-regulation/have-your-say/initiatives/{external_id}_en",
        title_en=kw.pop("title_en", f"Consultation {external_id} on the European Health Data Space"),
        kind=kw.pop("kind", "consultation"),
        opens=kw.pop("opens", date(2026, 10, 1)),
        deadline=deadline,
        **kw,
    )


def seed(engine) -> dict[str, int]:
    ids = {}
    for key, rec in {
        "soon": consultation("100", date(2026, 11, 13)),
        "later": consultation("101", date(2026, 12, 18), kind="draft_act"),
        "closed": consultation("102", date(2026, 11, 5)),
        "announced": consultation("103-draft", None, kind="draft_act", extra={"feedback_status": "UPCOMING"}),
    }.items():
        ids[key] = ingest(engine, [rec]).changed_ids[0]
        classify_as(engine, ids[key], "numerique")
    ids["call"] = ingest(
        engine,
        [
            NoticeRecord(
                source="funding",
                external_id="EU4H-2026-PJ-01",
                url="https://ec.europa.eu/info/funding-tenders/opportunities/portal/screen/opportunities/topic-details/EU4H-2026-PJ-01",
                title_en="EU4Health: <b>cancer</b> screening",
                kind="funding_call",
                deadline=date(2027, 1, 20),
            )
        ],
    ).changed_ids[0]  # no label score: the routing's [[always]] rule sends it to `international`
    ids["act"] = add_notice(engine, "act-1", title_en="Implementing act on EHDS", celex="32026R0001")
    classify_as(engine, ids["act"], "numerique")
    return ids


# --- the Deadlines section -------------------------------------------------------------------------------


def test_digest_deadline_section_per_recipient_sorted_with_days_left(sqlite_url, settings):
    engine = open_archive(sqlite_url)
    seed(engine)
    stats = send_digests(engine, settings, now=MON_9_NOV, since=date(2000, 1, 1), dry_run=True)
    text = {p.recipient: p.text for p in stats.previews}
    num = text["mission-numerique@has-sante.fr"]
    section = num.split("== Échéances ==")[1].split("== ")[0]
    lines = [ln for ln in section.splitlines() if ln.startswith("* ")]
    assert lines[0].startswith("* J-4 · 13 novembre 2026 · consultation — Consultation 100")
    assert lines[1].startswith("* J-39 · 18 décembre 2026 · projet d'acte — Consultation 101")
    assert lines[2].startswith("* fenêtre annoncée · date à venir · projet d'acte")
    assert len(lines) == 3 and "Consultation 102" not in section  # closed ones disappear
    assert "EU4Health" not in section  # not this recipient's
    intl = text["mission-internationale@has-sante.fr"].split("== Échéances ==")[1]
    assert "J-72 · 20 janvier 2027 · appel à projets — EU4Health: <b>cancer</b> screening" in intl


def test_digest_html_escapes_deadline_titles(sqlite_url, settings):
    from alerts.config import load_routing
    from alerts.jobs import Renderer
    from alerts.render import html_body

    engine = open_archive(sqlite_url)
    ids = seed(engine)
    r = Renderer(engine, settings, load_routing(settings), MON_9_NOV)
    d = r.digest("digest:2026-11-09:email:mission-internationale@has-sante.fr", [ids["call"]])
    html = html_body(d)
    assert "Échéances" in html and "&lt;b&gt;cancer&lt;/b&gt;" in html and "<b>cancer</b>" not in html


# --- reminders -------------------------------------------------------------------------------------------


def test_working_days_skip_weekends_and_french_holidays():
    # Fri 6 -> Fri 13 Nov 2026: Mon 9, Tue 10, (Wed 11 Armistice), Thu 12, Fri 13.
    assert working_days_left(date(2026, 11, 6), date(2026, 11, 13)) == 4
    assert working_days_left(date(2026, 11, 9), date(2026, 11, 13)) == 3
    # Around 14 July 2027 (a Wednesday): Mon 12 -> Fri 16 has 3 working days after Monday.
    assert working_days_left(date(2027, 7, 12), date(2027, 7, 16)) == 3
    assert reminder_due(date(2026, 11, 6), date(2026, 11, 13), [10, 3]) == 10
    assert reminder_due(date(2026, 11, 9), date(2026, 11, 13), [10, 3]) == 3
    assert reminder_due(date(2026, 11, 6), date(2026, 11, 13), [3]) is None  # 4 working days left
    assert reminder_due(date(2026, 11, 14), date(2026, 11, 13), [10, 3]) is None  # passed


def test_working_days_across_the_new_year_and_on_or_after_the_deadline():
    # Wed 23 Dec 2026 -> Mon 4 Jan 2027: Thu 24, (Fri 25 Noël), Mon 28 .. Thu 31, (Fri 1 Jan), Mon 4.
    assert working_days_left(date(2026, 12, 23), date(2027, 1, 4)) == 6
    assert working_days_left(date(2026, 12, 24), date(2026, 12, 24)) == 0
    assert working_days_left(date(2026, 12, 28), date(2026, 12, 24)) == 0  # passed: never negative, never counted
    # The OJ's working days (TARGET closing days + Luxembourg): the 3 latest up to Mon 4 Jan 2027 start on Wed 30 Dec.
    assert working_days_back(date(2027, 1, 4), 3) == date(2026, 12, 30)
    assert working_days_back(date(2027, 1, 2), 1) == date(2026, 12, 31)  # a Saturday: the last working day before
    assert working_days_back(date(2026, 12, 28), 2) == date(2026, 12, 24)  # Fri 25 and Sat 26 Dec are off


def test_working_days_from_the_kept_holidays_are_the_librarys():
    """``working_day`` reads the French holidays kept on disk: the same days as the library, for two years, from
    a first run (the library answers and the file is written), a later one (the file), and a damaged file."""
    import holidays

    from alerts import days

    years = (2026, 2027)
    library = {y: holidays.France(years=y) for y in years}
    expected = {d: library[y].is_working_day(d) for y in years for d in _days_of(y)}
    folder = Path(os.environ["VEILLE_HOME"]) / "cache" / "holidays"
    kept = [folder / f"FR-{y}-{holidays.__version__}.json" for y in years]
    for state in ("first run", "from the file", "damaged file"):
        days.french_holidays.cache_clear()
        if state == "damaged file":
            kept[0].write_text('["2026-01-0', encoding="utf-8")
        assert {d: days.working_day(d) for d in expected} == expected, state
        assert all(k.is_file() for k in kept), state
    assert date(2026, 7, 14) in days.french_holidays(2026) and date(2026, 5, 14) in days.french_holidays(2026)


def _days_of(year: int) -> list[date]:
    return [date(year, 1, 1) + timedelta(days=k) for k in range((date(year + 1, 1, 1) - date(year, 1, 1)).days)]


def test_the_quiet_window_reads_the_calendar_only_where_it_decides():
    """``_outside_window`` skips the holiday calendar far from the window's start: it must say what the calendar
    says, for every day of two years around Easter and Christmas and windows of 1 to 60 working days."""
    from storage.health import _outside_window

    for today in (date(2026, 1, 2) + timedelta(days=k) for k in range(0, 730, 5)):
        for n in (1, 2, 3, 5, 10, 20, 60):
            start = working_days_back(today, n)
            for latest in (today - timedelta(days=d) for d in range(0, 2 * n + 45)):
                assert _outside_window(latest, today, n) == (latest < start), (today, n, latest)


def _reminders(engine) -> list[Delivery]:
    with session_scope(engine) as s:
        return list(s.exec(select(Delivery).where(Delivery.purpose.startswith("reminder-")).order_by(Delivery.id)))


def test_reminders_exactly_once_across_failures_and_reruns(engine, settings, veille_home):
    ids = seed(engine)
    outbox = settings.outbox
    outbox.parent.mkdir(parents=True, exist_ok=True)
    outbox.write_text("not a folder")  # the outbox cannot be written: the delivery fails, nothing is lost
    first = send_reminders(engine, settings, now=MON_9_NOV)
    assert first.failed == 2 and first.sent == 0  # the e-mail and the Slack reminder
    outbox.unlink()
    for hour in (10, 11):  # re-runs the same day: the failed one goes out once, nothing is added
        send_reminders(engine, settings, now=MON_9_NOV.replace(hour=hour))
    send_reminders(engine, settings, now=datetime(2026, 11, 10, 9, tzinfo=UTC))  # next day: same reminder
    rows = _reminders(engine)
    assert [(r.notice_id, r.recipient, r.purpose, r.status) for r in rows] == [
        (ids["soon"], "mission-numerique@has-sante.fr", "reminder-3@2026-11-13", "sent"),
        (ids["soon"], "#veille-numerique", "reminder-3@2026-11-13", "sent"),
    ]
    emls = list((outbox / "email").rglob("*.eml"))
    assert len(emls) == 1
    msg = message_from_bytes(emls[0].read_bytes(), policy=default_policy)
    assert "J-3 ouvrés" in msg["Subject"] and "13 novembre 2026" in msg.get_body(("plain",)).get_content()


def test_reminders_not_on_a_holiday_nor_before_they_are_due(sqlite_url, settings):
    engine = open_archive(sqlite_url)
    seed(engine)
    stats = send_reminders(engine, settings, now=datetime(2026, 11, 11, 9, tzinfo=UTC))
    assert stats.notes == ["le 11 novembre 2026 n'est pas un jour ouvré : pas de rappel"] and not _reminders(engine)
    send_reminders(engine, settings, now=datetime(2026, 11, 6, 9, tzinfo=UTC))  # Fri 6: 4 working days left
    assert {r.purpose for r in _reminders(engine)} == {"reminder-10@2026-11-13"}


def test_moved_deadline_new_version_and_reminders_follow(sqlite_url, settings):
    engine = open_archive(sqlite_url)
    ids = seed(engine)
    ingest(engine, [consultation("100", date(2026, 11, 20))])  # the Commission extends the consultation
    with session_scope(engine) as s:
        assert s.get(Notice, ids["soon"]).deadline == date(2026, 11, 20)
        reasons = [v.reason for v in s.exec(select(NoticeVersion).where(NoticeVersion.notice_id == ids["soon"]))]
    assert reasons == ["new", "deadline moved"]
    send_reminders(engine, settings, now=MON_9_NOV)  # the old date's reminder-3 does not fire
    assert {r.purpose for r in _reminders(engine)} == {"reminder-10@2026-11-20"}
    send_reminders(engine, settings, now=datetime(2026, 11, 18, 9, tzinfo=UTC))
    assert {r.purpose for r in _reminders(engine)} == {"reminder-10@2026-11-20", "reminder-3@2026-11-20"}


# --- the calendar ----------------------------------------------------------------------------------------


def _events(ics: bytes) -> dict[str, object]:
    return {str(e["UID"]): e for e in Calendar.from_ical(ics).walk("VEVENT")}


def test_ics_parsed_back_stable_uids_and_moved_dates(sqlite_url, settings):
    engine = open_archive(sqlite_url)
    ids = seed(engine)
    one = calendar_ics(engine, settings, today=MON_9_NOV.date())
    assert calendar_ics(engine, settings, today=MON_9_NOV.date()) == one  # same archive, same bytes
    ev = _events(one)
    soon = ev[f"deadline-{ids['soon']}@veille"]
    assert soon["DTSTART"].dt == date(2026, 11, 13) and int(soon["SEQUENCE"]) == 1
    # A draft act's feedback window is one event on its last day, not months of all-day events.
    draft = ev[f"deadline-{ids['later']}@veille"]
    assert (draft["DTSTART"].dt, draft["DTEND"].dt) == (date(2026, 12, 18), date(2026, 12, 19))
    assert "ouverture : 1er octobre 2026" in str(draft["DESCRIPTION"]) and not any(u.startswith("window-") for u in ev)
    ai = [str(e["SUMMARY"]) for uid, e in ev.items() if uid.startswith("fact-32024R1689-")]
    assert len(ai) == 4 and {uid[-17:-7] for uid in ev if uid.startswith("fact-")} == {
        "2025-02-02",
        "2025-08-02",
        "2026-08-02",
        "2027-08-02",
    }
    ingest(engine, [consultation("100", date(2026, 11, 27))])
    moved = _events(calendar_ics(engine, settings, today=MON_9_NOV.date()))[f"deadline-{ids['soon']}@veille"]
    assert moved["DTSTART"].dt == date(2026, 11, 27) and int(moved["SEQUENCE"]) == 2  # same UID, updated
    intl = _events(calendar_ics(engine, settings, "international", today=MON_9_NOV.date()))
    assert set(intl) == {f"deadline-{ids['call']}@veille"}


def test_calendar_cli_writes_an_ics_file(sqlite_url, settings, veille_home, tmp_path):
    from veille.commands.base import state
    from veille.main import app

    (veille_home / "veille.toml").write_text(f'profile = "has"\n[storage]\nurl = "{sqlite_url}"\n')
    seed(open_archive(sqlite_url))
    state._settings = None
    out = tmp_path / "cal.ics"
    result = CliRunner().invoke(app, ["calendar", "--label", "numerique", "--ics", str(out)])
    state._settings = None
    assert result.exit_code == 0, result.output
    evs = _events(out.read_bytes())
    assert any(uid.startswith("fact-32024R1689-2027-08-02") for uid in evs) and len(evs) >= 6
    bad = CliRunner().invoke(app, ["calendar", "--label", "nope"])
    state._settings = None
    assert bad.exit_code == 2 and "thématique inconnue 'nope'" in bad.output


def test_calendar_feed_needs_a_live_token_of_that_feed(sqlite_url, settings):
    from web.app import create_app

    engine = open_archive(sqlite_url)
    ids = seed(engine)
    _, num = create_token(engine, "numerique")
    tid_all, everything = create_token(engine, "all")
    c = TestClient(create_app(settings, engine))
    r = c.get(f"/calendar/numerique.ics?token={num}")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/calendar")
    assert f"deadline-{ids['soon']}@veille" in _events(r.content)
    assert c.get(f"/calendar/all.ics?token={everything}").status_code == 200
    for url in (
        "/calendar/numerique.ics",
        "/calendar/numerique.ics?token=wrong",
        f"/calendar/international.ics?token={num}",  # another feed's token
        f"/calendar/unknown.ics?token={everything}",
    ):
        assert c.get(url).status_code == 404, url
    assert revoke_token(engine, str(tid_all)) == 1 and revoke_token(engine, num) == 1
    assert c.get(f"/calendar/all.ics?token={everything}").status_code == 404
    assert c.get(f"/calendar/numerique.ics?token={num}").status_code == 404
