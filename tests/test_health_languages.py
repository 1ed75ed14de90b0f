"""Source-health reasons are catalogue messages: French in the CLI and the digests, the reader's language on the
dashboard (core.catalog.Message), on an archive the real SPARQL spider filled (tests/test_drift.py's oj_archive)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from core.catalog import Message
from storage.health import source_states
from tests.test_drift import QUIET, QUIET_WEB, oj_archive  # noqa: F401 - the module-scoped fixture
from tests.web_helpers import PASSWORD, client, login
from web.auth import add_user

QUIET_EN = "no item dated in the last 3 working days (latest: Dec 16, 2025)"  # as the English workbench writes days


def test_quiet_reason_is_french_and_keeps_its_message_id(oj_archive):  # noqa: F811
    _, settings, engine, _ = oj_archive
    states = source_states(engine, settings, datetime(2025, 12, 19, 12, tzinfo=UTC))
    (st,) = [s for s in states if s.name == "cellar-acts"]
    (reason,) = st.reasons
    assert reason == QUIET and st.label == "silencieuse" and st.text == f"silencieuse : {QUIET}"
    assert (
        isinstance(reason, Message)
        and reason.msgid == "no item dated in the last %(n)s working days (latest: %(latest)s)"
    )
    assert reason.said(lambda m: m) == "no item dated in the last 3 working days (latest: 2025-12-16)"


def test_dashboard_says_the_reason_in_the_readers_language(oj_archive):  # noqa: F811
    _, settings, engine, _ = oj_archive
    add_user(engine, "hugo", "reader", PASSWORD)
    for lang, state, reason in (("en", "quiet", QUIET_EN), ("fr", "silencieuse", QUIET_WEB)):
        page = login(client(engine, settings, lang=lang), "hugo").get("/dashboard")
        row = re.search(r'<tr class="warn" data-health="quiet">.*?</tr>', page.text, re.S)
        assert row, page.text[:300]
        assert f"<strong>{state}</strong> <small>{reason}</small>" in row.group(0)
