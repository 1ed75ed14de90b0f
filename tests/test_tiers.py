"""The two test tiers: tests/conftest.py marks what starts a process as slow, and fails an unmarked one that does."""

from __future__ import annotations

import pytest

from tests.conftest import ROOT

SAMPLE = """
import getpass
import subprocess
import sys


def helper():
    subprocess.run([sys.executable, "-c", "pass"], check=True)


def test_reaches_a_process_through_a_helper():
    helper()


def test_hides_the_process_it_starts():
    getattr(__import__("sub" + "process"), "run")([sys.executable, "-c", "pass"], check=True)


def test_in_memory_only():
    assert getpass.getuser.__name__ == "getuser"
"""


@pytest.mark.slow  # it runs pytest on a sample that starts processes
def test_slow_is_marked_by_what_a_test_reaches_and_an_unmarked_process_fails(pytester):
    pytester.makeconftest((ROOT / "tests" / "conftest.py").read_text(encoding="utf-8"))
    pytester.makepyfile(test_sample=SAMPLE)
    result = pytester.runpytest_inprocess("-m", "not slow", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1, deselected=1)
    result.stdout.fnmatch_lines(["*test_hides_the_process_it_starts is in the fast tier but did subprocess.Popen*"])
