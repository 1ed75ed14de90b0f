"""Run a command and write its exit code and peak RSS (KiB, it and every child it waited for) as JSON.

    python bench/peak_rss.py REPORT.json COMMAND [ARGS...]

Why a launcher: Linux hands a process's pre-exec high-water mark on into its ``ru_maxrss`` at exec, so
a command started straight from a big process (pytest late in a run, a benchmark holding its corpus)
reports the parent's size. Started from this small process, the figure is the command's own.
"""

import json
import os
import sys

if __name__ == "__main__":
    pid = os.fork()
    if pid == 0:
        os.execvp(sys.argv[2], sys.argv[2:])
    _, status, usage = os.wait4(pid, 0)
    with open(sys.argv[1], "w") as f:
        json.dump({"returncode": os.waitstatus_to_exitcode(status), "maxrss_kb": usage.ru_maxrss}, f)
    sys.exit(0)
