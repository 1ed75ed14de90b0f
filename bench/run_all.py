"""Run every benchmark and write docs/benchmarks.md (machine, command, figures, peak memory).

    python bench/run_all.py            # the full set: search at 1M notices (~10 min to build), ~25-35 min
    python bench/run_all.py --quick    # small sizes, a few minutes: checks that everything still runs

Each benchmark runs in its own process; its wall time and peak RSS (the process and the children it
waited for, from ``os.wait4``) are recorded next to its output. Every benchmark prints its baseline side by
side, in the same run: search vs a ``LIKE`` scan (bench/search.py), the rules and the model vs seed phrases
and TF-IDF + logistic regression on the same split (bench/nlp.py), the crawl's second, conditional run
(bench/crawl.py), and ``veille run``'s first run vs its second, incremental one (bench/run.py).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "benchmarks.md"


@dataclass
class Bench:
    name: str
    what: str
    baseline: str
    args: list[str]
    quick_args: list[str]


def benches(tmp: Path) -> list[Bench]:
    db = str(tmp / "search.db")
    return [
        Bench(
            "CLI start-up",
            "Wall time of commands that need no model, each a new process as a person types it.",
            "the interpreter's own start-up, `python -c pass`, in the same interleaved runs",
            ["bench/cli.py", "--runs", "9"],
            ["bench/cli.py", "--runs", "3"],
        ),
        Bench(
            "search",
            "Full-text search over a synthetic archive (vocabulary of the real development set, Zipf-distributed), "
            "p50/p95 per query class, with and without label + date filters, by relevance and by date.",
            "a `LIKE '%word%'` scan over titles and summaries (last row of the table)",
            ["bench/search.py", "--notices", "1000000", "--queries", "200", "--db", db],
            ["bench/search.py", "--notices", "50000", "--queries", "100", "--db", db],
        ),
        Bench(
            "cross-language search",
            "The 30 FR/EN query pairs of bench/data/crosslang_queries.json (written before measuring) on the demo "
            "archive (`veille demo`: the shipped replay bundle through the whole pipeline). Targets of a French query: "
            "the English-only notices its English pair finds as written (and the reverse). Recall: share of the "
            "targets found; precision: share of a query's results that either query finds as written (1 for the "
            "queries as written, by construction: the drop is what the expansion costs).",
            "the same queries as written (`veille search --exact`)",
            ["bench/search.py", "--crosslang"],
            ["bench/search.py", "--crosslang"],
        ),
        Bench(
            "crawl",
            "Real Scrapy crawl (child process) of a local replay of RSS feeds and Cellar SPARQL answers built from "
            "real titles, stored through storage.ingest into SQLite.",
            "the second run over the unchanged replay: conditional GETs, 304, nothing downloaded",
            ["bench/crawl.py"],
            ["bench/crawl.py", "--feeds", "2", "--per-feed", "250", "--acts", "300"],
        ),
        Bench(
            "classify and backtest",
            "Relevance quality on the held-out split, classification throughput, rule backtest over the archive.",
            "seed phrases and TF-IDF + logistic regression (scikit-learn) on the same train/test split, next to "
            "rules alone, model alone, rules + model",
            ["bench/nlp.py"],
            ["bench/nlp.py", "--quick", "--notices", "5000"],
        ),
        Bench(
            "full run",
            "`veille run --all` (crawl, storage, classification, alerts, digests to the outbox folder) over a "
            "replay of 10,000 notices (1,000 in quick mode), each run in its own process. Every SPARQL act of this "
            "replay is based on the HTA Regulation, so a fifth of the notices are also immediate alerts.",
            "the same command a second time over the unchanged replay (incremental: the fixed cost of a cycle)",
            ["bench/run.py", "--notices", "10000"],
            ["bench/run.py", "--notices", "1000"],
        ),
    ]


def run(args: list[str], env: dict[str, str]) -> tuple[str, float, float, int]:
    """Run one benchmark, echoing its output; return output, wall seconds, peak RSS MiB, exit code."""
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, *args], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines = []
    assert proc.stdout is not None
    for line in proc.stdout:
        print("    " + line, end="", flush=True)
        if not re.match(r"\s*built [\d,]+/", line):  # bench/search.py's progress counter
            lines.append(line)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    # The benchmark itself keeps about one core busy: a 1-minute load well above 1 means other work ran too.
    cpu = usage.ru_utime + usage.ru_stime
    lines.append(f"(load average: {load:.2f} before, {os.getloadavg()[0]:.2f} after; cpu time {cpu:.0f} s)\n")
    return "".join(lines), wall, usage.ru_maxrss / 1024, proc.returncode


def machine() -> list[tuple[str, str]]:
    cpu = next(
        (ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines() if "model name" in ln),
        platform.processor() or "?",
    )
    mem = next(
        (int(ln.split()[1]) for ln in Path("/proc/meminfo").read_text().splitlines() if ln.startswith("MemTotal")), 0
    )
    return [
        ("CPU", cpu),
        ("cores", str(os.cpu_count())),
        ("RAM", f"{mem / 2**20:.1f} GiB"),
        ("OS", platform.platform()),
        ("Python", platform.python_version()),
        ("SQLite", sqlite3.sqlite_version),
    ]


def report(benchs: list[Bench], results: dict[str, dict], quick: bool) -> str:
    cmd = "python bench/run_all.py" + (" --quick" if quick else "")
    out = [
        "# Benchmarks",
        "",
        f"Written by `{cmd}`"
        + (" (**quick mode: small sizes, not the reference figures**)." if quick else ".")
        + " Each benchmark runs in its own process, one after the other; peak RSS is the process and the "
        "children it waited for (`os.wait4`). Each one prints its baseline in the same run. The last line of "
        "each output gives the machine's load average and the benchmark's CPU time: wall times are only "
        "comparable when nothing else ran (load near 1 on this 2-core machine). `--only NAME` reruns one "
        "benchmark and keeps the others' figures (raw results in `benchmarks.json`).",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in machine()],
        "",
        "## Summary",
        "",
        "| benchmark | command | measured | wall time | peak RSS | exit |",
        "|---|---|---|---|---|---|",
    ]
    done = [(b, results[b.name]) for b in benchs if b.name in results]
    for b, r in done:
        shown = " ".join(a if "search.db" not in a else "TMP/search.db" for a in r["args"])
        wall, rss = f"{r['wall'] / 60:.1f} min", f"{r['rss']:,.0f} MiB"
        out.append(f"| {b.name} | `python {shown}` | {r['at']} | {wall} | {rss} | {r['code']} |")
    for b, r in done:
        out += [
            "",
            f"## {b.name}",
            "",
            b.what,
            "",
            f"Baseline: {b.baseline}. Wall time {r['wall']:.0f} s, peak RSS {r['rss']:,.0f} MiB.",
            "",
            "```",
            r["output"].rstrip(),
            "```",
        ]
    return "\n".join(out) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes (a few minutes); not reference figures")
    ap.add_argument("--out", type=Path, default=OUT, help=f"report file (default {OUT.relative_to(ROOT)})")
    ap.add_argument("--only", nargs="*", help="run only these benchmarks (by name); keep the others' results")
    args = ap.parse_args()
    raw = args.out.with_suffix(".json")
    results: dict[str, dict] = {}
    if args.only and raw.exists():
        kept = json.loads(raw.read_text(encoding="utf-8"))
        if kept.get("quick") == args.quick:
            results = kept["results"]
    failed = False
    with tempfile.TemporaryDirectory(prefix="veille-bench-all-") as tmp:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "VEILLE_HOME": str(Path(tmp) / "home")}
        for var in ("VEILLE_CONFIG", "VEILLE_DATABASE_URL", "VEILLE_SMTP_PASSWORD", "VEILLE_SLACK_TOKEN"):
            env.pop(var, None)
        benchs = benches(Path(tmp))
        for b in benchs:
            if args.only and b.name not in args.only:
                continue
            cmd = b.quick_args if args.quick else b.args
            print(f"== {b.name}: python {' '.join(cmd)}", flush=True)
            at = f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
            output, wall, rss, code = run(cmd, env)
            print(f"== {b.name}: {wall:.0f} s, peak RSS {rss:,.0f} MiB, exit {code}\n", flush=True)
            results[b.name] = {"args": cmd, "at": at, "output": output, "wall": wall, "rss": rss, "code": code}
            failed |= code != 0
    raw.write_text(json.dumps({"quick": args.quick, "results": results}, indent=1), encoding="utf-8")
    args.out.write_text(report(benchs, results, args.quick), encoding="utf-8")
    print(f"written {args.out} and {raw.name}")
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
