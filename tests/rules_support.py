"""Helpers of tests/test_rules_bounds.py that run in other processes (so: importable, module-level).

- ``spin`` / ``hog``: jobs for the workbench's rule-check worker that never end / never stop allocating.
- ``serve``: the loader under test in a child process with an address-space limit: reads one JSON line
  per rules text, loads it, matches the result against a hostile probe text, answers one JSON line.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time

FUZZ_FILE = "fuzz.yaml"
CHILD_MEMORY_MB = 1024  # address space the child may add after its imports
# Stems of long words, and text a bad regex backtracks on (no '!' anywhere).
PROBE = "pharmacovigilanceimmunogenicityinteroperabilitypseudonymisation " * 3 + "a" * 60


def spin() -> None:
    while True:
        pass


def hog() -> None:
    chunks = []
    while True:
        chunks.append(bytearray(64 * 2**20))


def serve() -> None:
    from nlp.rules import RulesError, parse_rules
    from nlp.text import Meta, parse_fields

    labels = {"deai", "sante_publique", "daqss", "diqasm", "numerique", "international", "deontologie"}
    probe = parse_fields([("title", "en", PROBE), ("summary", "fr", PROBE)], Meta(source="ema-news"))
    with open("/proc/self/statm", encoding="ascii") as fh:
        mapped = int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    limit = mapped + CHILD_MEMORY_MB * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    base_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        text = json.loads(line)["text"]
        t0 = time.monotonic()
        try:
            rs = parse_rules(text, FUZZ_FILE, labels)
            rs.evaluate(probe)  # the loaded rules must also match hostile text in bounded time
            out = {"outcome": "loaded"}
        except RulesError as exc:
            out = {"outcome": "refused", "message": str(exc)}
        except BaseException as exc:  # exactly what the test looks for
            out = {"outcome": "crashed", "message": f"{type(exc).__name__}: {str(exc)[:300]}"}
        out["seconds"] = time.monotonic() - t0
        out["grew_mb"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base_kb) / 1024
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    serve()
