"""Guard: no test builds by hand a row that the pipeline writes (issue 21).

Label scores, deliveries, notice versions and crawl runs come from ``nlp.classify``, ``alerts.jobs``,
``storage.ingest`` and ``storage.runs``. A test that constructs one itself sees a shape of its own making (the
stored explanation once held its words as a string while hand-made rows used lists, and the garbled notice page
passed every test). The check reads the tests' syntax trees: a call ``LabelScore(...)``, ``Delivery(...)``,
``NoticeVersion(...)``, ``CrawlRun(...)``, or an ``insert(...)`` of one of them, outside the allow-list fails.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent
PIPELINE_ROWS = {"LabelScore", "Delivery", "NoticeVersion", "CrawlRun"}
INSERTS = {"insert", "sqlite_insert", "pg_insert"}

# (file, function) -> why this test builds such a row on purpose. Keep each entry justified.
ALLOWED = {
    ("test_nlp_classify.py", "test_a_classification_racing_another_writer_of_the_same_scores_succeeds"): (
        "re-inserts, from another connection, the very rows nlp.classify stored, to play a concurrent writer"
    ),
}


def _name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def hand_made_rows(source: str, filename: str) -> list[tuple[int, str, str]]:
    """(line, enclosing function, what) for each construction or insert of a pipeline row in ``source``."""
    found: list[tuple[int, str, str]] = []

    def visit(node: ast.AST, where: str) -> None:
        for child in ast.iter_child_nodes(node):
            inner = child.name if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) else where
            if isinstance(child, ast.Call):
                called = _name(child.func)
                if called in PIPELINE_ROWS:
                    found.append((child.lineno, where, f"{called}(...)"))
                elif called in INSERTS and child.args and _name(child.args[0]) in PIPELINE_ROWS:
                    found.append((child.lineno, where, f"{called}({_name(child.args[0])})"))
            visit(child, inner)

    visit(ast.parse(source, filename), "<module>")
    return found


def test_no_test_helper_builds_rows_the_pipeline_writes():
    offences = []
    for path in sorted(TESTS.rglob("*.py")):
        for line, where, what in hand_made_rows(path.read_text(encoding="utf-8"), str(path)):
            if (path.name, where) not in ALLOWED:
                offences.append(f"{path.relative_to(TESTS.parent)}:{line}: {what} in {where}")
    assert offences == [], "rows built by hand; use the real stage (see this module's docstring):\n" + "\n".join(
        offences
    )


def test_the_guard_sees_constructions_and_inserts():
    """The checker itself, on the shapes the tests used before issue 21 (a seeded score, a delivery, an insert)."""
    source = (
        "from storage.models import LabelScore\n"
        "import storage.models as m\n"
        "def seed(s):\n"
        "    s.add(LabelScore(notice_id=1, label='deai', score=0.9))\n"
        "    s.add(m.Delivery(notice_id=1))\n"
        "def other(conn, rows):\n"
        "    conn.execute(insert(CrawlRun), rows)\n"
        "    conn.execute(insert(Notice), rows)\n"
    )
    assert hand_made_rows(source, "x.py") == [
        (4, "seed", "LabelScore(...)"),
        (5, "seed", "Delivery(...)"),
        (7, "other", "insert(CrawlRun)"),
    ]


def test_every_allowed_entry_still_exists():
    """An allow-list entry whose test is gone or clean would silently widen the guard: remove it."""
    seen = {
        (path.name, where)
        for path in TESTS.rglob("*.py")
        for _, where, _ in hand_made_rows(path.read_text(encoding="utf-8"), "")
    }
    assert set(ALLOWED) <= seen, set(ALLOWED) - seen
