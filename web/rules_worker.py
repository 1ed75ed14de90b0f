"""The workbench's rule checks and previews, run in a worker process with a time and a memory limit.

Checking a candidate rules file parses analyst input and the preview matches it against the whole
archive: work the server must be able to stop. A thread cannot be killed (and a regex holding the GIL
froze every page), so each check runs in a worker process (forked from a forkserver that has the nlp
stage imported; it stays up between checks, its caches warm) which is killed and replaced when a check
runs out of time; its address space is capped so that it fails alone. The page then says so in one French line.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import resource
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from core.config import Settings

CHECK_SECONDS = 60.0  # a preview of the whole archive takes a few seconds
CHECK_MEMORY_MB = 1024  # on top of what the worker has mapped when it starts
CONCURRENT_CHECKS = 2  # the machine's cores; more analysts wait their turn (up to CHECK_SECONDS)
_PRELOAD = ["nlp.backtest", "storage.db"]
_ctx_lock = threading.Lock()
_ctx: Any = None


class CheckFailed(Exception):
    """A one-line French message for the page: the check was stopped or failed."""


def _context() -> Any:  # multiprocessing.context.ForkServerContext
    global _ctx
    with _ctx_lock:
        if _ctx is None:
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(_PRELOAD)
            _ctx = ctx
        return _ctx


class _Worker:
    """One long-lived worker process (its caches stay warm between checks), killed and replaced on overrun."""

    def __init__(self) -> None:
        self.proc: Any = None
        self.conn: Connection | None = None

    def start(self, memory_mb: int) -> None:
        if self.proc is not None and self.proc.is_alive():
            return
        ctx = _context()
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve, args=(child, memory_mb), daemon=True, name="veille-rules-check")
        self.proc.start()
        child.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.is_alive():
            self.proc.kill()
        if self.proc is not None:
            self.proc.join(5)
        if self.conn is not None:
            self.conn.close()
        self.proc = self.conn = None

    def run(self, fn: Callable[..., Any], args: tuple, seconds: float, memory_mb: int) -> tuple[bool, Any]:
        from web.i18n import _  # in the server only: the worker process stays free of the web stack

        self.start(memory_mb)
        try:
            self.conn.send((fn, args))
            if not self.conn.poll(seconds):
                self.stop()  # a thread cannot be stopped; a process can
                raise CheckFailed(
                    _(
                        "Check stopped: it went past the %(seconds)s s limit. Simplify the patterns "
                        "(regular expressions, repetitions) and try again.",
                        seconds=format(seconds, "g"),
                    )
                )
            ok, value = self.conn.recv()
        except (EOFError, OSError):  # died before answering (a C library out of memory, a signal)
            code = self.proc.exitcode if self.proc is not None else None
            self.stop()
            return False, _("process stopped, code %(code)s", code=code)
        if not ok and value == "memory":
            self.stop()  # a fresh worker for the next check
        return ok, value


_idle: queue.SimpleQueue[_Worker] = queue.SimpleQueue()
for _ in range(CONCURRENT_CHECKS):
    _idle.put(_Worker())


def warm() -> None:
    """Start a worker now (the nlp stage is imported once), not on the first check."""
    worker = _idle.get()
    try:
        worker.start(CHECK_MEMORY_MB)
    finally:
        _idle.put(worker)


def run_limited(fn: Callable[..., Any], *args: Any, seconds: float, memory_mb: int) -> Any:
    """``fn(*args)`` in a worker process; CheckFailed if it overruns ``seconds`` or ``memory_mb``, or fails.

    ``fn`` and its arguments and result are pickled: module-level functions and plain data."""
    from web.i18n import _

    try:
        worker = _idle.get(timeout=seconds)
    except queue.Empty:
        raise CheckFailed(
            _("Too many checks under way: try again in a moment (waited %(seconds)s s).", seconds=format(seconds, "g"))
        ) from None
    try:
        ok, value = worker.run(fn, args, seconds, memory_mb)
    finally:
        _idle.put(worker)
    if ok:
        return value
    if value == "memory":
        raise CheckFailed(_("Check stopped: it went past the memory limit (%(mb)s MB).", mb=memory_mb))
    raise CheckFailed(_("The check failed (%(why)s): try again; the server's log says more.", why=value))


def _serve(conn: Connection, memory_mb: int) -> None:
    """The worker's loop: one job at a time until the server closes the pipe."""
    _cap_memory(memory_mb)
    while True:
        try:
            fn, args = conn.recv()
        except (EOFError, OSError):
            return
        try:
            result = (True, fn(*args))
        except MemoryError:
            result = (False, "memory")
        except Exception as exc:  # reported to the server in one line
            result = (False, f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}")
        try:
            conn.send(result)
        except MemoryError:
            conn.send((False, "memory"))


def _cap_memory(memory_mb: int) -> None:
    """Cap the address space at what is mapped now plus ``memory_mb`` (spaCy's import alone maps ~1 GB)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as fh:
            mapped = int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return
    limit = mapped + memory_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


# -- the job: validate, then backtest ------------------------------------------------------------------


def check_and_preview(settings: Settings, home: str, database_url: str, text: str, filename: str) -> dict:
    """In the worker: ``{"error": "file:line: ..."}`` or ``{"labels": {label: (gained, lost)}, "note": ...}``.

    ``home``: the server's data folder. The worker outlives a request and was started with the environment of
    its time; the profile files and the model in force are looked up in the server's home of now."""
    import os

    os.environ["VEILLE_HOME"] = home
    from core.profiles import load_labels
    from nlp.backtest import backtest
    from nlp.rules import RulesError, parse_rules
    from storage.db import open_archive

    try:
        parse_rules(text, filename, set(load_labels(settings)))
        engine = open_archive(database_url)
        try:
            result = backtest(engine, settings, text, filename=filename)
        finally:
            engine.dispose()
    except RulesError as exc:
        return {"error": str(exc)}
    return {"labels": {lb: (list(r.gained), list(r.lost)) for lb, r in result.labels.items()}, "note": result.note}
