"""Rules that cannot hang or crash the watch (issue 20, points 2, 3, 4 and 7).

The loader is fuzzed over VALUE positions (regexes, aliases, tags, numbers, nesting, repeats) in a child
process with an address-space limit, and must answer each file within a time and memory bound with the
rules or a ``file:line`` RulesError; the CLI and the workbench are run for real (subprocesses, uvicorn).
"""

from __future__ import annotations

import hashlib
import json
import re
import selectors
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlmodel import select
from typer.testing import CliRunner

from core.config import load_settings
from core.profiles import SHIPPED
from nlp import rules_load
from nlp.rules import RulesError, active_rules, parse_rules, rules_path
from tests.conftest import ROOT
from tests.hardening_support import run_measured, veille_env
from tests.rules_support import FUZZ_FILE, hog, spin
from tests.web_helpers import PASSWORD, client, copy_archive, csrf_of, login, seeded_archive_file, start_veille_serve
from web import rules_worker

LABELS = {"deai", "sante_publique", "daqss", "diqasm", "numerique", "international", "deontologie"}
SECONDS, GROWTH_MB = 10.0, 400  # per fuzzed file: time to load and match, memory the loader may add
RULE = "labels:\n  deai:\n    rules:\n      - name: r\n        weight: 0.5\n"
CATASTROPHIC = "(\\w+\\w?)+!"  # the analyst's regex of the report
# Each exponent level multiplies by 9: 726 bytes that expand to 9^7 nodes (the report's bomb).
BOMB = (
    "["
    + ", ".join([f"&a0 [{', '.join(['lol'] * 9)}]"] + [f"&a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 8)])
    + "]"
)
LINE = re.compile(rf"^{re.escape(FUZZ_FILE)}:(\d+): \S")


# -- the loader fuzzed over value positions, in a bounded child process ------------------------------------


class LoaderChild:
    """``python -m tests.rules_support``: the loader in a child with RLIMIT_AS; restarted after a hang."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None

    def _start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.rules_support"],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert json.loads(self._line(120)) == {"ready": True}

    def _line(self, timeout: float) -> str | None:
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        ready = sel.select(timeout)
        sel.close()
        return self.proc.stdout.readline() if ready else None

    def load(self, text: str) -> dict:
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        self.proc.stdin.write(json.dumps({"text": text}) + "\n")
        self.proc.stdin.flush()
        line = self._line(SECONDS + 5)
        if not line:  # hung (or died): stop it, the next file gets a fresh child
            self.close()
            return {"outcome": "hung or died"}
        return json.loads(line)

    def close(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


@pytest.fixture(scope="module")
def loader_child():
    child = LoaderChild()
    yield child
    child.close()


def quoted(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


SLOTS = {  # where a value goes: each a rules file with one {V}
    "weight": RULE.replace("weight: 0.5", "weight: {V}") + "        en: [medicines]\n",
    "phrase": RULE + "        en: [{V}]\n",
    "token": RULE + "        patterns:\n          - [{{LOWER: {V}}}, {{LOWER: agency}}]\n",
    "in-list": RULE + "        patterns:\n          - [{{LOWER: {{IN: {V}}}}}]\n",
    "regex": RULE + "        patterns:\n          - [{{LOWER: {{REGEX: {V}}}}}, {{LOWER: x, OP: '?'}}]\n",
    "regex-in": RULE + "        patterns:\n          - [{{ORTH: {{REGEX: {{IN: [{V}]}}}}}}]\n",
    "op": RULE + "        patterns:\n          - [{{LOWER: medicin, OP: {V}}}, {{LOWER: agency}}]\n",
    "when": RULE + "        when: {{source: [{V}]}}\n",
    "threshold": "labels:\n  deai:\n    threshold: {V}\n    rules:\n      - {{name: r, weight: 0.5, en: [x]}}\n",
}
REGEXES = st.one_of(
    st.sampled_from(
        [
            CATASTROPHIC,
            "(a+)+$",
            "(a|aa)+!",
            "(\\w|\\w\\w)*!",
            "(a|a?)+",
            "(x+x+)+y",
            "(\\d+)*\\d!",
            "(.*a){12}",
            "(a)\\1",
            "(?P<w>a)(?P=w)",
            "(?=a)a",
            "(?<!a)b",
            "(?>a+)",
            "^pharma",
            "vigil(ance)?$",
            "[a-z]{3,}",
        ]
    ),
    st.text(alphabet=list("ab\\w+*?|()[]{}!^$.,12"), min_size=1, max_size=24),
).map(quoted)
TAGS = st.sampled_from(
    [
        "!important 0.95",
        "!!python/object/apply:os.system ['true']",
        "!!python/name:os.system",
        "!!binary aGVsbG8=",
        "!!set {a: null}",
        "!!omap [a: 1]",
        "!!timestamp 2021-13-45",
        "!!int x",
        "!!float y",
        "!foo bar",
        "!!str 0.5",
        "!!merge x",
        "!!value x",
        "! 12",
    ]
)
NUMBERS = st.one_of(
    st.integers(1, 9000).map(lambda n: "9" * n),
    st.integers(1, 9000).map(lambda n: "0x" + "f" * n),
    st.sampled_from(
        [
            "1e400",
            "-1e400",
            ".nan",
            "-.inf",
            "0o7777",
            "1_000_000",
            "190:20:30",
            "-0",
            "2021-13-45",
            "2021-02-29",
            "0.5",
            "1",
            "=",
            "<<",
            "~",
            "null",
            "true",
            "0b101",
        ]
    ),
)
NESTED = st.integers(1, 5000).flatmap(
    lambda d: st.sampled_from(["[" * d + "x" + "]" * d, "{a: " * d + "x" + "}" * d, "[" * d])
)
ALIASES = st.builds(
    lambda depth, width: (
        "["
        + ", ".join(
            [f"&a0 [{', '.join(['lol'] * width)}]"]
            + [f"&a{i} [{', '.join([f'*a{i - 1}'] * width)}]" for i in range(1, depth + 1)]
        )
        + "]"
    ),
    st.integers(1, 9),
    st.integers(2, 12),
) | st.sampled_from(["&a [*a]", "[&a x, &a [*a]]", "*undefined", "{&k a: 1, *k : 2}", "{<<: {a: 1}}"])
OPS = st.one_of(
    st.integers(0, 10**12).map(lambda n: quoted(f"{{{n}}}")),
    st.tuples(st.integers(0, 10**9), st.integers(0, 10**9)).map(lambda t: quoted(f"{{{t[0]},{t[1]}}}")),
    st.sampled_from(["'+'", "'*'", "'!'", "'?'", "'{,5}'", "'{3,}'", "'{}'", "'{a}'", "x", "[1]", "{a: b}"]),
)
BIG = st.one_of(
    st.integers(1, 20000).map(lambda n: "[" + ", ".join(["medicine"] * n) + "]"),
    st.integers(1, 200000).map(lambda n: "x" * n),
)
VALUES = st.one_of(REGEXES, TAGS, NUMBERS, NESTED, ALIASES, OPS, BIG)


@given(slot=st.sampled_from(sorted(SLOTS)), value=VALUES)
@example(slot="regex", value=quoted(CATASTROPHIC))
@example(slot="in-list", value=BOMB)
@example(slot="weight", value="!important 0.95")
@example(slot="weight", value="9" * 5000)
@example(slot="phrase", value="2021-13-45")
@example(slot="op", value="'{1000000000}'")
@example(slot="phrase", value="&a [*a]")
@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
def test_fuzzed_value_positions_load_or_refuse_with_file_line_in_bounded_time_and_memory(loader_child, slot, value):
    text = SLOTS[slot].format(V=value)
    out = loader_child.load(text)
    assert out["outcome"] in ("loaded", "refused"), (slot, value[:200], out)
    if out["outcome"] == "refused":
        assert LINE.match(out["message"]), out["message"]
        assert "\n" not in out["message"]
    assert out["seconds"] < SECONDS, (slot, value[:200], out)
    assert out["grew_mb"] < GROWTH_MB, (slot, value[:200], out)


def test_the_reports_bomb_is_small_and_refused_at_its_line():
    text = RULE + f"        en: [medicines]\n        patterns:\n          - [{{LOWER: {{IN: {BOMB}}}}}]\n"
    assert len(BOMB) < 800
    t0 = time.monotonic()
    with pytest.raises(RulesError, match=r"^r\.yaml:8: trop de nœuds YAML \(plus de 100 000, alias développés\)"):
        parse_rules(text, "r.yaml", LABELS)
    assert time.monotonic() - t0 < 1.0


# -- no unsafe YAML load ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        "!!python/object/apply:os.system ['touch {marker}']",
        "!!python/object/apply:subprocess.call [['touch', '{marker}']]",
        "!!python/object/new:subprocess.Popen [['touch', '{marker}']]",
    ],
)
def test_a_python_tag_runs_nothing_and_is_a_rules_error(tmp_path, payload):
    marker = tmp_path / "ran"
    for text in (
        f"labels: {payload.format(marker=marker)}\n",
        RULE + f"        en: [x]\n        patterns:\n          - [{{LOWER: {payload.format(marker=marker)}}}]\n",
    ):
        with pytest.raises(RulesError, match=r"^r\.yaml:\d+: étiquette YAML .*python/object.* interdite"):
            parse_rules(text, "r.yaml", LABELS)
        assert not marker.exists()


def test_the_rules_loader_cannot_become_an_unsafe_yaml_load():
    """Fails if someone switches the rules to yaml.load / Loader / FullLoader / unsafe_load."""
    assert not issubclass(rules_load.BoundedLoader, yaml.constructor.FullConstructor)
    assert not issubclass(rules_load.BoundedLoader, yaml.constructor.UnsafeConstructor)
    unsafe = re.compile(r"yaml\.(load|load_all|unsafe_load\w*|full_load\w*)\(|\b(Unsafe|Full)?Loader\b(?!\w)|CLoader")
    for path in (ROOT / "nlp").glob("*.py"):
        found = [m.group(0) for m in unsafe.finditer(path.read_text(encoding="utf-8"))]
        assert not found, f"{path.name}: {found}"
    # Values are built by SafeConstructor only: a tag outside plain data is refused before any is built.
    assert {
        f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "seq", "map", "timestamp")
    } == rules_load.SAFE_TAGS


# -- catastrophic regexes -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("regex", "why"),
    [
        (CATASTROPHIC, "quantificateurs imbriqués"),
        ("(a|ab)+x", "alternatives au même début"),
        ("(x+y|xz)*q", "alternatives au même début"),
        ("(a)\\1", "références arrière"),
        ("(?=pharma)\\w+", "assertions avant/arrière"),
        ("(?<!x)y", "assertions avant/arrière"),
        ("(", "regex invalide"),
        ("x" * 301, "au plus 300"),
    ],
)
def test_catastrophic_or_unsupported_regexes_are_refused_at_their_line(regex, why):
    text = (
        RULE
        + f"        en: [x]\n        patterns:\n          - [{{LOWER: x}}, {{LOWER: {{REGEX: {quoted(regex)}}}}}]\n"
    )
    where = r"^r\.yaml:8: labels\.deai\.rules\.0\.patterns\.0: motif de jetons invalide : "
    with pytest.raises(RulesError, match=where + rf".*{re.escape(why)}"):
        parse_rules(text, "r.yaml", LABELS)


@pytest.mark.parametrize("spec", ["{OP: '*'}", "{IS_ALPHA: true, OP: '+'}", "{LOWER: {REGEX: a}, OP: '{2,}'}"])
def test_a_repeated_wildcard_token_is_refused(spec):
    """Every span of a notice would match: quadratic in its length (0.5 s per 2,000-word notice)."""
    text = RULE + f"        en: [x]\n        patterns:\n          - [{spec}, {{LOWER: agency}}]\n"
    where = r"^r\.yaml:8: labels\.deai\.rules\.0\.patterns\.0: motif de jetons invalide : jeton 1 : "
    with pytest.raises(RulesError, match=where + "OP .* répète n'importe quel jeton"):
        parse_rules(text, "r.yaml", LABELS)
    ok = RULE + "        patterns:\n          - [{LOWER: very, OP: '+'}, {LOWER: {IN: [important, urgent]}, OP: '*'}]\n"
    assert parse_rules(ok, "r.yaml", LABELS).rules[0].patterns


def test_accepted_regexes_match_with_re2_on_the_stems_in_linear_time():
    from nlp.text import Meta, parse_fields

    text = RULE + (
        "        patterns:\n"
        "          - [{LOWER: {REGEX: '^pharmacovig'}}, {LOWER: {REGEX: {IN: ['^fee', '^tax']}}}]\n"
        "          - [{LOWER: {REGEX: '(\\w+)!'}}]\n"
    )
    rs = parse_rules(text, "r.yaml", LABELS)

    def fired(title: str) -> list[str]:
        return [f["words"] for f in rs.evaluate(parse_fields([("title", "en", title)], Meta()))["deai"].fired]

    assert fired("New pharmacovigilance fees for 2026") == ["pharmacovigilance fees"]
    assert fired("Pharmacovigilance taxes") == ["Pharmacovigilance taxes"]
    assert fired("Pharmacovigilance guidance") == []
    t0 = time.monotonic()
    assert fired("a" * 5000 + " " + "b" * 5000) == []  # '(\w+)!' on long words: linear, not exponential
    assert time.monotonic() - t0 < 2.0


def test_rules_check_cli_refuses_hostile_files_with_file_line_in_bounded_time_and_memory(tmp_path):
    home = tmp_path / "home"
    marker = tmp_path / "ran"
    cases = {
        "regex.yaml": (
            RULE + f"        en: [x]\n        patterns:\n          - [{{LOWER: {{REGEX: {quoted(CATASTROPHIC)}}}}}]\n",
            8,
            "quantificateurs imbriqués",
        ),
        "bomb.yaml": (
            RULE + f"        en: [x]\n        patterns:\n          - [{{LOWER: {{IN: {BOMB}}}}}]\n",
            8,
            "trop de nœuds YAML",
        ),
        "tag.yaml": (
            RULE.replace("weight: 0.5", "weight: !important 0.95") + "        en: [x]\n",
            5,
            "étiquette YAML '!important' interdite",
        ),
        "python.yaml": (f"labels: !!python/object/apply:os.system ['touch {marker}']\n", 1, "interdite"),
    }
    for name, (text, line, why) in cases.items():
        f = tmp_path / name
        f.write_text(text, encoding="utf-8")
        run = run_measured([sys.executable, "-m", "veille", "rules", "check", str(f)], veille_env(home), timeout=60)
        assert run.returncode == 2, (name, run.returncode, run.stderr[-500:])
        assert run.seconds < 30 and run.max_rss_mb < 700, (name, run.seconds, run.max_rss_mb)
        assert run.stderr.startswith(f"erreur : {f}:{line}: ") and why in run.stderr, (name, run.stderr)
        assert len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert not marker.exists()


def test_a_device_or_an_oversized_file_is_refused_unread(tmp_path):
    from veille.main import app

    big = tmp_path / "big.yaml"
    big.write_text(RULE + "        en: [x]\n" + "# padding\n" * 60000, encoding="utf-8")
    refused = ((big, "1: fichier de règles trop gros (600 "), (Path("/dev/zero"), "0: pas un fichier ordinaire"))
    for path, why in refused:
        for cmd in (["rules", "check"], ["rules", "save"], ["rules", "diff"]):
            out = CliRunner().invoke(app, [*cmd, str(path)], env={"COLUMNS": "300"})
            assert out.exit_code == 2 and f"erreur : {path}:{why}" in out.output, (cmd, out.output)


# -- last good rules in force ---------------------------------------------------------------------------------


def test_bad_tag_on_disk_classify_runs_on_the_last_good_rules_and_says_so_in_one_line():
    from core.records import NoticeRecord
    from storage.db import open_archive, session_scope
    from storage.ingest import ingest
    from storage.models import LabelScore
    from veille.main import app

    settings = load_settings()
    shipped = rules_path(settings).read_text(encoding="utf-8")
    good = shipped.replace("defaults:\n  threshold: 0.5\n", "defaults:\n  threshold: 0.45\n", 1)
    assert good != shipped
    runner = CliRunner()
    good_file = settings.home / "good.yaml"
    settings.home.mkdir(parents=True, exist_ok=True)
    good_file.write_text(good, encoding="utf-8")
    out = runner.invoke(app, ["rules", "save", str(good_file)], env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    good_version = active_rules(settings).version
    engine = open_archive(settings.database_url)
    ingest(
        engine,
        [
            NoticeRecord(
                source="eurlex-rss",
                external_id="hta",
                celex="32021R2282",
                title_en="Regulation (EU) 2021/2282 on health technology assessment",
                doc_type="REG",
                kind="act",
            )
        ],
    )
    bad = good.replace("weight: 0.95", "weight: !important 0.95", 1)
    bad_line = bad.splitlines().index(next(ln for ln in bad.splitlines() if "!important" in ln)) + 1
    rules_path(settings).write_text(bad, encoding="utf-8")
    out = runner.invoke(app, ["classify"], env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    refused = [ln for ln in out.output.splitlines() if ln.startswith("règles refusées")]
    assert len(refused) == 1, out.output
    assert f"(version {good_version})" in refused[0]
    assert f"rules.yaml:{bad_line}: étiquette YAML '!important' interdite" in refused[0]
    assert f"règles {good_version}" in out.output
    with session_scope(engine) as s:
        versions = {r.rules_version for r in s.exec(select(LabelScore))}
    assert versions == {good_version}


def test_history_that_cannot_be_written_leaves_the_rules_in_force_and_is_named(tmp_path):
    from veille.main import app

    settings = load_settings()
    before = active_rules(settings).version
    history = settings.home / "profiles" / settings.profile / "rules_history"
    (history / "history.jsonl").mkdir(parents=True)  # appending to it fails, even as root
    new = tmp_path / "new.yaml"
    new.write_text(rules_path(settings).read_text(encoding="utf-8") + "\n# new\n", encoding="utf-8")
    out = CliRunner().invoke(app, ["rules", "save", str(new)], env={"COLUMNS": "300"})
    assert out.exit_code == 2
    assert f"{history / 'history.jsonl'}: écriture de l'historique des règles impossible (Is a directory)" in out.output
    assert str(new) not in out.output
    assert not (settings.home / "profiles" / settings.profile / "rules.yaml").exists()
    assert active_rules(settings).version == before


# -- the workbench -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    return seeded_archive_file(tmp_path_factory.mktemp("rules-bounds"), limit=40)


@pytest.fixture
def archive(seeded, tmp_path):
    from core.records import NoticeRecord
    from storage.ingest import ingest

    engine, ids = copy_archive(seeded, tmp_path)
    # Long words: what a backtracking regex chokes on (the report's archive had them).
    long_words = "Pharmacovigilanceimmunogenicityinteroperabilitypseudonymisation requirements"
    ingest(engine, [NoticeRecord(source="press", external_id="long", title_en=long_words, kind="news")])
    return engine, ids


@contextmanager
def veille_serve(home: Path, database_url: str) -> Iterator[str]:
    """``veille serve`` in its own process (a frozen server must not freeze the test's clients too)."""
    env = veille_env(home, VEILLE_DATABASE_URL=database_url)
    proc, url = start_veille_serve(env, home.parent / "serve.log")
    try:
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_web_check_of_a_hanging_regex_answers_in_time_while_login_answers(archive):
    engine, _ = archive
    settings = load_settings()
    original = rules_path(settings).read_text(encoding="utf-8")
    hostile = original.replace(
        "    rules:\n",
        f"    rules:\n      - name: bad\n        weight: 0.5\n        patterns:\n"
        f"          - [{{LOWER: {{REGEX: {quoted(CATASTROPHIC)}}}}}]\n",
        1,
    )
    bad_line = hostile.splitlines().index(next(ln for ln in hostile.splitlines() if "REGEX" in ln)) + 1
    database_url = engine.url.render_as_string(hide_password=False)
    engine.dispose()
    with veille_serve(settings.home, database_url) as url, httpx.Client(base_url=url, timeout=90) as c:
        page = c.get("/login")
        c.post("/login", data={"name": "alice", "password": PASSWORD, "csrf_token": csrf_of(page.text), "next": "/"})
        token = csrf_of(c.get("/rules").text)
        answer: dict = {}

        def check() -> None:
            t0 = time.monotonic()
            answer["r"] = c.post("/rules/check", data={"csrf_token": token, "rules": hostile})
            answer["seconds"] = time.monotonic() - t0

        worker = threading.Thread(target=check, daemon=True)
        worker.start()
        logins = 0
        with httpx.Client(base_url=url, timeout=5) as other:
            while worker.is_alive() or logins < 3:
                assert other.get("/login").status_code == 200  # within 5 s each, while the check runs
                logins += 1
        worker.join(90)
        assert not worker.is_alive(), "the check did not answer"
    r = answer["r"]
    assert r.status_code == 422 and answer["seconds"] < rules_worker.CHECK_SECONDS
    assert f'data-error-line="{bad_line}"' in r.text
    assert re.search(
        rf"rules\.yaml:{bad_line}: labels\.\w+\.rules\.\d+\.patterns\.\d+: "
        r"motif de jetons invalide : jeton \d+ : regex",
        r.text,
    )
    assert "quantificateurs imbriqués" in r.text
    assert rules_path(settings).read_text(encoding="utf-8") == original


def test_check_overrunning_its_limits_is_stopped_and_the_next_one_runs():
    t0 = time.monotonic()
    with pytest.raises(rules_worker.CheckFailed, match=r"^Vérification arrêtée : elle dépassait la limite de 3 s\."):
        rules_worker.run_limited(spin, seconds=3, memory_mb=256)
    assert time.monotonic() - t0 < 3 + 60  # stopped (the worker's start, then the limit), not left running
    with pytest.raises(rules_worker.CheckFailed, match=r"^Vérification arrêtée : .*limite de mémoire \(256 Mo\)"):
        rules_worker.run_limited(hog, seconds=60, memory_mb=256)
    assert rules_worker.run_limited(sorted, [3, 1, 2], seconds=60, memory_mb=256) == [1, 2, 3]


def test_save_is_refused_for_a_text_this_session_did_not_preview(archive):
    engine, _ = archive
    settings = load_settings()
    original = rules_path(settings).read_text(encoding="utf-8")
    text = original + "\n# reviewed\n"
    digest = hashlib.sha256(text.encode()).hexdigest()
    a = login(client(engine, settings), "alice")
    b = login(client(engine, settings), "alice")  # the same analyst, another session
    token_a, token_b = csrf_of(a.get("/rules").text), csrf_of(b.get("/rules").text)
    r = a.post("/rules/check", data={"csrf_token": token_a, "rules": text})
    assert r.status_code == 200 and f'name="previewed" value="{digest}"' in r.text
    # Session b sends the right hash without having previewed: refused, the preview shown instead.
    r = b.post("/rules/save", data={"csrf_token": token_b, "rules": text, "previewed": digest})
    assert r.status_code == 409 and 'id="preview"' in r.text
    assert rules_path(settings).read_text(encoding="utf-8") == original
    r = a.post("/rules/save", data={"csrf_token": token_a, "rules": text, "previewed": "anything"})
    assert r.status_code == 303
    assert rules_path(settings).read_text(encoding="utf-8") == text


def test_label_typo_bad_file_on_disk_and_readers_get_one_line_and_no_server_path(archive):
    engine, ids = archive
    settings = load_settings()
    original = rules_path(settings).read_text(encoding="utf-8")
    a = login(client(engine, settings), "alice")
    token = csrf_of(a.get("/rules").text)
    typo = original.replace("\n  deai:\n", "\n  deaii:\n", 1)
    line = typo.splitlines().index("  deaii:") + 1
    r = a.post("/rules/check", data={"csrf_token": token, "rules": typo})
    assert r.status_code == 422
    assert f"rules.yaml:{line}: labels.deaii: thématique inconnue &#39;deaii&#39;" in r.text
    # A bad file on disk: the pages answer, on the last good rules, and the rules page says why.
    active_rules(settings)  # in force once: kept as the last good rules
    edited = settings.home / "profiles" / settings.profile / "rules.yaml"
    edited.parent.mkdir(parents=True, exist_ok=True)
    edited.write_text(original.replace("weight: 0.95", "weight: !important 0.95", 1), encoding="utf-8")
    reader = login(client(engine, settings, lang="fr"), "rita")  # the page in French
    for path in ("/dashboard", f"/notice/{ids['hta']}", "/rules"):
        assert reader.get(path).status_code == 200, path
    page = reader.get("/rules").text
    assert "étiquette YAML &#39;!important&#39; interdite" in page and "dernières bonnes règles" in page
    assert str(settings.home) not in page and str(SHIPPED) not in page
    assert "<code>rules.yaml</code>" in page
