"""Hostile content: the parsers fuzzed with hypothesis (only their documented errors may come out), and
titles carrying HTML, Slack mrkdwn, Rich markup and control characters escaped in every output: the
digest's HTML and plain text, the Slack JSON, the web pages and the CLI's search table.

Slack mrkdwn has no escape for ``*``, ``_``, ``~`` and backticks (only ``& < >``, per Slack's docs): they
can change emphasis, never ping (``<!channel>``) or link (``<http://x|y>``), so they are kept as typed.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from email import message_from_bytes
from email.policy import default as default_policy
from functools import cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import html as lxml_html

import alerts
from alerts.escape import clean, html, mrkdwn
from crawlers.parsers import ParseError
from crawlers.parsers.cellar import parse_act_xhtml, parse_multiple_choices
from crawlers.parsers.ep import parse_ep_odp, parse_oeil
from crawlers.parsers.feed import parse_feed
from crawlers.parsers.sparql import parse_details, parse_discovery
from nlp.rules import RulesError, parse_rules
from tests.alerts_support import add_notice, classify_as, write_config, write_routing
from tests.conftest import ROOT

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e]")


def survives(call, *errors: type[Exception]) -> None:
    """``call()`` returns or raises one of ``errors`` with a non-empty message; anything else fails."""
    try:
        call()
    except errors as exc:
        assert str(exc).strip(), f"{type(exc).__name__} without a message"


# --- fuzzing the parsers -------------------------------------------------------------------------------------

FEED_BITS = st.sampled_from(
    [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<?xml version="1.0" encoding="utf-16"?>',
        '<rss version="2.0">',
        "<channel>",
        "<item>",
        "</item>",
        '<item lang="fr">',
        "<title>",
        "</title>",
        '<title lang="EN">',
        "<link>https://eur-lex.europa.eu/./legal-content/AUTO/?uri=CELEX:32024R1689</link>",
        "<guid>https://eur-lex.europa.eu/./legal-content/AUTO/?uri=CELLAR:0b5c9c8e-8a1f-11ef-a67d-01aa75ed71a1</guid>",
        "<description>",
        "</description>",
        "&lt;p&gt;",
        "&lt;html&gt;&lt;/html&gt;",
        "&amp;#27;",
        "&amp;",
        "&",
        "<![CDATA[<b>x</b>",
        "]]>",
        "<pubDate>Mon, 01 Jun 2026 10:00:00 +0200</pubDate>",
        "<pubDate>31/02/2026</pubDate>",
        '<feed xmlns="http://www.w3.org/2005/Atom">',
        "<entry>",
        "</entry>",
        "</channel></rss>",
        "<!DOCTYPE rss [<!ENTITY a '&b;&b;'>]>",
        "<!DOCTYPE html>",
        "<html><body>",
        "CELEX:32021R2282: ",
        "awsWafCookieDomainList",
    ]
)
JSON_KEYS = st.sampled_from(
    [
        "head",
        "results",
        "bindings",
        "work",
        "celex",
        "type",
        "value",
        "ojDate",
        "types",
        "based_on",
        "title_en",
        "title_fr",
        "docDate",
        "legal_basis",
        "eurovoc_en",
        "data",
        "label",
        "process_id",
        "process_title",
        "consists_of",
        "activity_date",
        "had_activity_type",
        "had_participation",
        "participation_role",
        "had_participant_organization",
        "en",
    ]
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(JSON_KEYS, inner, max_size=5),
    max_leaves=25,
)
HTML_BITS = st.sampled_from(
    [
        "<!DOCTYPE html>",
        "<html>",
        "<head><title>L_2024.123.01</title></head>",
        "<body>",
        '<div class="eli-container">',
        '<div class="eli-main-title">',
        '<p class="oj-doc-ti">',
        '<p class="oj-hd-uniq">2024/1689</p>',
        "</p>",
        "</div>",
        "<strong>",
        '<h2 class="es_title-h1">2024/0258(COD)</h2>',
        '<h2 class="es_title-h2 mb-3">',
        "</h2>",
        '<div id="section3"><table><tr><td>12/03/2024</td><td>Committee referral</td></tr></table></div>',
        '<a href="./numdoc=32024R1689">',
        '<a href="\x0bjavascript:x">',
        "</a>",
        "stream_order 2",
        "Annex",
        "<script>alert(1)</script>",
        "<!--",
        "-->",
        '<link rel="canonical" href="https://eur-lex.europa.eu/eli/reg/2024/1689/oj">',
        "&lol;",
        "\x00",
        "\x1b[2J",
    ]
)
RULE_BITS = st.sampled_from(
    [
        "version: 1\n",
        "labels:\n",
        "  deai:\n",
        "    threshold: 0.4\n",
        "    threshold: high\n",
        "    rules:\n",
        "    negatives:\n",
        "      - name: hta\n",
        "      - name: hta\n        weight: 2\n",
        "        weight: 0.6\n",
        "        en: [health technology assessment, joint clinical]\n",
        "        fr: 'évaluation des technologies'\n",
        "        any: [x\n",
        "        acts: [32021R2282]\n",
        "        acts: [2021/2282]\n",
        '        pattern: [{LOWER: "device"}, {OP: "?"}]\n',
        "        pattern: [{FOO: 1}]\n",
        '        pattern: [{"TEXT": {"REGEX": "("}}]\n',
        "        when: {kind: [act]}\n",
        "        when: {colour: red}\n",
        "        fields: [title, nowhere]\n",
        "        also: [hta]\n",
        "        applies_to: [deai]\n",
        "negatives:\n",
        "  - name: vet\n    weight: 1\n    en: [veterinary]\n",
        "defaults:\n  field_weights: {title: 1.0, footer: 2}\n",
        "defaults:\n  rules_weight: 1.5\n",
        "&anchor x\n",
        "*anchor\n",
        "!!python/object/apply:os.system ['true']\n",
        "\t",
        ": :\n",
        "- \n",
    ]
)


@FUZZ
@given(st.lists(FEED_BITS | st.text(max_size=8), max_size=30))
def test_feed_parser_raises_only_parse_errors(bits):
    body = "".join(bits).encode("utf-8", "surrogatepass")
    survives(lambda: parse_feed(body, source="fuzz"), ParseError)


@FUZZ
@given(st.binary(max_size=400))
def test_every_parser_survives_random_bytes(body):
    survives(lambda: parse_feed(body, source="fuzz"), ParseError)
    survives(lambda: parse_discovery(body), ParseError)
    survives(lambda: parse_ep_odp(body, source="fuzz"), ParseError)
    survives(lambda: parse_oeil(body, source="fuzz"), ParseError)
    survives(lambda: parse_act_xhtml(body), ParseError)


@FUZZ
@given(JSON)
def test_sparql_and_ep_json_parsers_raise_only_parse_errors(value):
    body = json.dumps(value).encode()
    survives(lambda: parse_discovery(body), ParseError)
    survives(lambda: parse_details(body, source="fuzz", discovered={}, watched=["32021R2282"]), ParseError)
    survives(lambda: parse_ep_odp(body, source="fuzz"), ParseError)


@FUZZ
@given(st.lists(HTML_BITS | st.text(max_size=8), max_size=30))
def test_html_parsers_raise_only_parse_errors(bits):
    body = "".join(bits).encode("utf-8", "surrogatepass")
    survives(lambda: parse_act_xhtml(body), ParseError)
    survives(
        lambda: parse_multiple_choices(body, "https://publications.europa.eu/resource/celex/32024R1689"), ParseError
    )
    survives(lambda: parse_oeil(body, source="fuzz"), ParseError)


@FUZZ
@given(st.lists(RULE_BITS | st.text(max_size=6), max_size=25))
def test_rules_loader_raises_only_one_line_rules_errors_with_file_and_line(bits):
    text = "".join(bits)
    try:
        parse_rules(text, "rules.yaml", known_labels={"deai", "numerique"})
    except RulesError as exc:
        msg = str(exc)
        assert re.match(r"rules\.yaml:(\d+|\?): \S", msg), msg
        assert "\n" not in msg, msg


# --- the escapers, for any text ------------------------------------------------------------------------------


@FUZZ
@cache
def has_rules():  # nlp.rules.RuleSet, loaded once
    from nlp.rules import load_rules

    return load_rules(ROOT / "core" / "profiles" / "has" / "rules.yaml")


@FUZZ
@given(st.text(max_size=120), st.text(max_size=60), st.sampled_from(["en", "fr", None]))
def test_any_text_is_classified_with_one_token_per_stem(title, summary, lang):
    # Doc(words=...) refuses an empty word, and a token split in two would shift every later match.
    from nlp.text import Meta, parse_fields

    parsed = parse_fields([("title", lang, title), ("summary", lang, summary)], Meta())
    assert all(s for f in parsed.fields for s in f.stems)
    if parsed.fields:
        assert len(parsed.doc()) == len(parsed.words())
    assert set(has_rules().evaluate(parsed)) == set(has_rules().labels)


@given(st.text(max_size=200))
def test_escapers_hold_for_any_text(text):
    one_line = clean(text)
    assert not CONTROL.search(one_line) and "\n" not in one_line and "\r" not in one_line
    slack = mrkdwn(text)
    assert "<" not in slack and ">" not in slack and not CONTROL.search(slack)
    # HTML: what a browser shows is the cleaned text, and no element comes from the input
    doc = lxml_html.fragment_fromstring(f"<p>{html(text)}</p>")
    assert doc.text_content() == one_line and len(doc) == 0


# --- hostile titles through every output ----------------------------------------------------------------------

HOSTILE = {
    "html": "Medical devices <script>alert(1)</script><img src=x onerror=alert(2)> & <b>bold</b>",
    "slack": "Medical devices <!channel> <!here> <@U024BE7LH> <http://evil.example|click here> *bold* _it_ ~s~ `x`",
    "control": "Medical devices \x1b[2J\x1b]8;;http://evil.example\x07click\x1b]8;;\x07 \x07 \u202eexe.pdf"
               "\r\nBcc: v@evil.example",
    "rich": "Medical devices [bold red]red[/] [link=http://evil.example]link[/link]",
}  # fmt: skip
ROUTING = '[labels.deai]\nemail = ["deai@has-sante.fr"]\nslack = ["#deai"]\n'


# An analyst's rule whose description holds markup and whose phrases run into the hostile part of the titles:
# the real classifier then stores the words as written, « Medical devices <script>alert » and the like.
HOSTILE_RULE = """\
      - name: hostile
        description: {fr: "<b>r</b> <!everyone> <@U024BE7LH> [bold red]rouge[/] *gras*", en: "<b>r</b> <!channel>"}
        weight: 0.9
        en: [medical devices script alert, medical devices channel here, medical devices 2j,
             medical devices bold red red]
"""


@pytest.fixture
def hostile_archive(veille_home, sqlite_url):
    from sqlmodel import select

    from core.config import load_settings
    from nlp.rules import rules_path, save_rules
    from storage.db import open_archive, session_scope
    from storage.models import LabelScore

    write_config(veille_home, f'[storage]\nurl = "{sqlite_url}"\n[schedule]\ndigest_days = "every"\n')
    write_routing(veille_home, ROUTING)
    conf = load_settings()
    anchor = "      - name: medical-devices\n"
    shipped = rules_path(conf).read_text(encoding="utf-8")
    assert anchor in shipped
    save_rules(conf, shipped.replace(anchor, HOSTILE_RULE + anchor), "alice")
    engine = open_archive(sqlite_url)
    ids = {}
    for k, title in HOSTILE.items():
        ids[k] = add_notice(engine, f"hostile-{k}", title_en=title, summary_en=title, kind="news", source="press")
        classify_as(engine, ids[k], "deai", settings=conf)
    with session_scope(engine) as s:  # what the outputs below must escape, as the classifier stored it
        row = s.exec(select(LabelScore).where(LabelScore.notice_id == ids["html"], LabelScore.label == "deai")).one()
    assert ["Medical devices <script>alert"] in [f["words"] for f in row.explanation["fired"]]
    return engine, ids


def test_digest_html_text_and_slack_carry_no_markup_or_control_characters(hostile_archive):
    from core.config import load_settings

    engine, _ids = hostile_archive
    settings = load_settings()
    stats = alerts.send_digests(engine, settings)
    assert stats.sent == 2 * len(HOSTILE), stats.errors
    (eml,) = (settings.outbox / "email").glob("*.eml")
    msg = message_from_bytes(eml.read_bytes(), policy=default_policy)
    body = msg.get_body(("html",)).get_content()
    doc = lxml_html.fromstring(body)
    assert not doc.xpath("//script | //img | //b | //*[@onerror]")
    assert not CONTROL.search(body)
    shown = doc.text_content()
    text = msg.get_body(("plain",)).get_content()
    assert not CONTROL.search(text) and not re.search(r"(?m)^Bcc:", text) and msg["Bcc"] is None
    for title in HOSTILE.values():
        assert clean(title) in shown and clean(title) in text  # verbatim, but for control characters
    slack = [json.loads(p.read_text(encoding="utf-8")) for p in (settings.outbox / "slack").glob("*.json")]
    sections = " ".join(b["text"]["text"] for p in slack for b in p["blocks"] if b["type"] == "section")
    assert not CONTROL.search(json.dumps(slack, ensure_ascii=False))
    assert "<!" not in sections and "<@" not in sections and "<http://evil" not in sections
    for title in HOSTILE.values():
        assert mrkdwn(title) in sections


def test_web_pages_escape_hostile_titles(hostile_archive):
    from tests.web_helpers import PASSWORD, client, login
    from web.auth import add_user

    engine, ids = hostile_archive
    add_user(engine, "rita", "reader", PASSWORD)
    c = login(client(engine), "rita")
    pages = [c.get("/", params={"q": "medical devices"})] + [c.get(f"/notice/{i}") for i in ids.values()]
    for page in pages:
        assert page.status_code == 200
        doc = lxml_html.fromstring(page.text)
        assert not doc.xpath("//script[contains(., 'alert')] | //img[@onerror] | //*[@onerror]"), page.url
        assert not CONTROL.search(page.text), page.url
        assert "<!channel>" not in page.text and "<script>alert" not in page.text
        assert not [h for h in doc.xpath("//a/@href") if "evil.example" in h], page.url
    shown = lxml_html.fromstring(pages[0].text).text_content()  # the search page lists them all
    for title in HOSTILE.values():
        assert clean(title) in " ".join(shown.split()), title


def test_cli_search_prints_titles_literally_without_terminal_escapes(hostile_archive, veille_home):
    run = subprocess.run(
        [sys.executable, "-m", "veille", "search", "medical devices", "--limit", "10"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**__import__("os").environ, "COLUMNS": "400"},
    )
    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out  # no ANSI/OSC 8 from the data
    assert "[bold red]red[/]" in out and "[link=http://evil.example]link[/link]" in out  # markup kept as text
    assert "<script>alert(1)</script>" in out and "4 notices trouvées" in out
