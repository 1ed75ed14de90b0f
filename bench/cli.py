"""CLI start-up: how long a person waits for commands that need no model.

    python bench/cli.py [--runs 9] [--home DIR]

Each command runs as a new process, like a person typing it; the median wall time of ``--runs`` runs is
printed next to the interpreter's own start-up (``python -c pass``, the floor no command goes under) and the
ratio to it, measured in the same run, interleaved, so that a noisy machine moves both alike. The target
(docs/benchmarks.md): under 0.5 s for ``veille --help`` and the commands that do not load spaCy.

By default on a new, empty archive; ``--home`` times them on an existing one instead (the demo's:
``veille demo`` prints its ``VEILLE_HOME``; its ``veille.toml`` is used when there is one). Python writes its
bytecode files during the warm-up, as it does on a person's first run (``PYTHONDONTWRITEBYTECODE`` is unset).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

VEILLE = [sys.executable, "-m", "veille"]
TODAY = datetime.now(ZoneInfo("Europe/Paris")).date().isoformat()  # the units' day, whatever the machine's zone
COMMANDS = {
    "python -c pass (floor)": [sys.executable, "-c", "pass"],
    "veille --help": [*VEILLE, "--help"],
    "veille config": [*VEILLE, "config"],
    "veille search --help": [*VEILLE, "search", "--help"],
    "veille status": [*VEILLE, "status"],
    "veille search santé": [*VEILLE, "search", "santé"],
    "veille deliveries": [*VEILLE, "deliveries"],
    "veille digest --preview": [*VEILLE, "digest", "--preview", TODAY],  # what went out, and what would
    "veille review": [*VEILLE, "review"],
    "veille feedback list 1": [*VEILLE, "feedback", "list", "1"],
    "veille users list": [*VEILLE, "users", "list"],
    "veille calendar token list": [*VEILLE, "calendar", "token", "list"],
}


def wall(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--home", type=Path, default=None, help="an existing VEILLE_HOME (default: a new, empty one)")
    args = ap.parse_args()
    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    with tempfile.TemporaryDirectory() as empty:
        home = args.home or Path(empty)
        env = {**os.environ, "VEILLE_HOME": str(home), "COLUMNS": "100"}
        env.pop("VEILLE_CONFIG", None)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        if (home / "veille.toml").exists():
            env["VEILLE_CONFIG"] = str(home / "veille.toml")
        for cmd in COMMANDS.values():  # warm-up: first config write, archive creation, .pyc files
            subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        times: dict[str, list[float]] = {name: [] for name in COMMANDS}
        for _ in range(args.runs):
            for name, cmd in COMMANDS.items():
                times[name].append(wall(cmd, env))
    floor = statistics.median(times["python -c pass (floor)"])
    print(f"{'command':<28} {'median s':>9} {'min s':>7} {'max s':>7} {'x floor':>8}")
    # An empty archive: the first (warm-up) search learns and stores the cross-language lexicon, the timed ones
    # read it, as on an archive a run keeps up to date.
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"{name:<28} {med:9.3f} {min(ts):7.3f} {max(ts):7.3f} {med / floor:8.1f}")
    print(f"runs: {args.runs} each, interleaved; python {sys.version.split()[0]}; {Path(sys.executable).name}")
    print(f"archive: {home if args.home else 'new, empty'}; digest day {TODAY}")
    print(f"load average before/after: {load_before} / {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
