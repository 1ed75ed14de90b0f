"""Run a command and read its exit code and peak RSS (it and every child it waited for).

    python bench/peak_rss.py REPORT.json COMMAND [ARGS...]     # writes {"returncode", "maxrss_kb"}

or, from Python, ``measure(cmd, ...)``. Why a launcher: Linux hands a process's pre-exec high-water mark
on into its ``ru_maxrss`` at exec, so a command started straight from a big process (pytest late in a
run, a benchmark holding its corpus) reports the parent's size. Started from this small process, the
figure is the command's own.
"""

import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path


def measure(cmd: list[str], timeout: float | None = None, **popen) -> tuple[int, float]:
    """(exit code, peak RSS in MiB) of ``cmd`` run through this launcher; ``popen``: cwd, env, stdout...
    Past ``timeout`` the launcher and the command are killed: (-9, 0.0)."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "rusage.json"
        proc = subprocess.Popen([sys.executable, __file__, str(report), *cmd], start_new_session=True, **popen)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if not report.exists():
            return -9, 0.0
        done = json.loads(report.read_text())
        return done["returncode"], done["maxrss_kb"] / 1024


if __name__ == "__main__":
    pid = os.fork()
    if pid == 0:
        os.execvp(sys.argv[2], sys.argv[2:])
    _, status, usage = os.wait4(pid, 0)
    with open(sys.argv[1], "w") as f:
        json.dump({"returncode": os.waitstatus_to_exitcode(status), "maxrss_kb": usage.ru_maxrss}, f)
    sys.exit(0)
