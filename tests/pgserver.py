"""A throwaway PostgreSQL server on 127.0.0.1 for the tests (Debian's postgresql packages)."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def find_bin(name: str) -> str | None:
    for cand in sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True):
        return cand
    return shutil.which(name)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgServer:
    def __init__(self) -> None:
        self.initdb, self.pg_ctl = find_bin("initdb"), find_bin("pg_ctl")
        self.dir = Path(tempfile.mkdtemp(prefix="veille-pg-"))
        self.port = free_port()
        self.as_postgres = os.geteuid() == 0  # initdb refuses to run as root

    @property
    def available(self) -> bool:
        return bool(self.initdb and self.pg_ctl)

    def _run(self, *args: str) -> None:
        cmd = ["runuser", "-u", "postgres", "--", *args] if self.as_postgres else list(args)
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)

    def start(self) -> str:
        if self.as_postgres:
            shutil.chown(self.dir, "postgres", "postgres")
        data = self.dir / "data"
        self._run(self.initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        for attempt in range(10):  # a free port may be taken before PostgreSQL binds it (a parallel run)
            opts = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir} -c fsync=off"
            try:
                self._run(self.pg_ctl, "-D", str(data), "-o", opts, "-l", str(self.dir / "log"), "-w", "start")
                return self.url("postgres")
            except subprocess.CalledProcessError:
                log = (self.dir / "log").read_text(errors="replace") if (self.dir / "log").exists() else ""
                if "could not bind" not in log or attempt == 9:
                    raise
                self.port = free_port()
        raise AssertionError("unreachable")

    def url(self, db: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{db}"

    def create_db(self, name: str) -> str:
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run(self.pg_ctl, "-D", str(self.dir / "data"), "-m", "immediate", "stop")
        time.sleep(0.1)
        shutil.rmtree(self.dir, ignore_errors=True)
