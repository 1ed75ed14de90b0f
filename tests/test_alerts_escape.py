"""Hostile crawled strings in the HTML e-mail, the plain text and Slack mrkdwn (files outbox: no server)."""

import datetime as dt
import json
from email import message_from_bytes
from email.policy import default as default_policy

import pytest
from lxml import html as lxml_html
from sqlmodel import select

import alerts
from alerts.escape import clean, mrkdwn, safe_url, slack_link
from core.config import load_settings
from nlp.rules import rules_path, save_rules
from storage.db import session_scope
from storage.models import LabelScore
from tests.alerts_support import add_notice, classify_as, write_config, write_routing

MONDAY = dt.datetime(2026, 11, 23, 7, tzinfo=dt.UTC)
HOSTILE_RULE = """\
      - name: hostile
        description: {fr: "<b>r</b> <!everyone> <@U123> *gras*", en: "<b>r</b> <!everyone>"}
        weight: 0.9
        fr: [channel here http evil example click]
"""
HOSTILE = (
    "<script>alert(1)</script> <!channel> <!here> <http://evil.example|click> & Co\x07\x1b[31m\nBcc: x@evil.example"
)


@pytest.fixture
def outbox(veille_home, sqlite_url):
    from storage.db import open_archive

    write_config(veille_home)
    write_routing(veille_home, '[labels.numerique]\nemail = ["num@has.fr"]\nslack = ["#num"]\n')
    engine = open_archive(sqlite_url)
    nid = add_notice(
        engine,
        "evil",
        title_fr=HOSTILE,
        summary_fr='<img src=x onerror="alert(2)"> *gras* `code` <@U123> résumé',
        url="javascript:alert(3)",
        kind="news",
        source="press-corner",
    )
    # An analyst's rule with markup in its description, and a phrase running through the hostile title: the
    # real classifier stores the words as written, « channel> <!here> <http://evil.example|click ».
    settings = load_settings()
    anchor = "      - name: ehds\n"
    shipped = rules_path(settings).read_text(encoding="utf-8")
    assert anchor in shipped
    save_rules(settings, shipped.replace(anchor, HOSTILE_RULE + anchor), "alice")
    classify_as(engine, nid, "numerique", settings=settings)
    with session_scope(engine) as s:
        row = s.exec(select(LabelScore).where(LabelScore.notice_id == nid, LabelScore.label == "numerique")).one()
    assert [f["words"] for f in row.explanation["fired"]] == [["channel> <!here> <http://evil.example|click"]]
    stats = alerts.send_digests(engine, settings, now=MONDAY)
    assert stats.sent == 2
    return settings.outbox


def test_html_part_has_no_markup_from_the_web(outbox):
    (eml,) = (outbox / "email").glob("*.eml")
    msg = message_from_bytes(eml.read_bytes(), policy=default_policy)
    body = msg.get_body(("html",)).get_content()
    doc = lxml_html.fromstring(body)
    assert doc.xpath("//script") == [] and doc.xpath("//img") == [] and doc.xpath("//b") == []
    assert not [a for a in doc.xpath("//a/@href") if "javascript" in a]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body and "&amp; Co" in body
    assert "&lt;b&gt;r&lt;/b&gt; &lt;!everyone&gt;" in body  # the rule's description, as text
    assert "\x07" not in body and "\x1b" not in body
    # the text a reader sees is the title, verbatim but for control characters
    assert clean(HOSTILE) in doc.text_content()
    assert "Bcc" not in str(msg["Subject"]) and msg["Bcc"] is None  # no header injection


def test_text_part_is_one_clean_line_per_field(outbox):
    (eml,) = (outbox / "email").glob("*.eml")
    text = message_from_bytes(eml.read_bytes(), policy=default_policy).get_body(("plain",)).get_content()
    assert f"* {clean(HOSTILE)}" in text
    assert "\x07" not in text and "\x1b" not in text
    assert not any(line.startswith("Bcc:") for line in text.splitlines())
    assert "javascript" not in text  # unusable link left out


def test_slack_mrkdwn_cannot_ping_or_link(outbox):
    (post,) = (outbox / "slack").glob("*.json")
    payload = json.loads(post.read_text(encoding="utf-8"))
    dumped = json.dumps(payload, ensure_ascii=False)
    for bad in ("<!channel>", "<!here>", "<!everyone>", "<http://evil", "<@U123>", "<script>", "javascript:"):
        assert bad not in dumped, bad
    texts = " ".join(b["text"]["text"] for b in payload["blocks"] if b["type"] == "section")
    assert "&lt;!channel&gt;" in texts and "&lt;http://evil.example|click&gt;" in texts and "&amp; Co" in texts
    assert "&lt;b&gt;r&lt;/b&gt; &lt;!everyone&gt; &lt;@U123&gt;" in texts  # the rule's description, shown inert


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://eur-lex.europa.eu/x?a=1&b=2", "<https://eur-lex.europa.eu/x?a=1&amp;b=2|t>"),
        ("https://e.eu/a>b|c", "<https://e.eu/a%3Eb%7Cc|t>"),
        ("javascript:alert(1)", "t"),
        ("data:text/html,<b>", "t"),
    ],
)
def test_slack_links(url, expected):
    assert slack_link(url, "t") == expected


def test_escapers():
    assert mrkdwn("a & <b> \u202egnp.exe") == "a &amp; &lt;b&gt; gnp.exe"
    assert safe_url('https://e.eu/"><script>') == "https://e.eu/%22%3E%3Cscript%3E"
    assert clean("a\r\n\tb\x00c") == "a b c"
    assert clean("abcdef", 4) == "abc…"
