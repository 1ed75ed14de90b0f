"""The embedded default: with no SMTP host or Slack token, messages are written as files.

E-mails become ``<outbox>/email/<batch>.eml`` and Slack posts ``<outbox>/slack/<batch>-<part>.json``,
so the main job runs on a fresh machine and a person can read what would have gone out. Each file
is written to a temporary name and renamed: a file that exists is a message that was delivered,
which lets the outbox settle a run that died mid-write.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from pathlib import Path
from typing import Any


def file_stem(batch: str) -> str:
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", batch)[:100]
    return f"{readable}-{hashlib.sha256(batch.encode()).hexdigest()[:8]}"


class FileTransport:
    def __init__(self, folder: Path, channel: str) -> None:
        self.channel = channel
        self.folder = folder / ("email" if channel == "email" else "slack")

    def path(self, batch: str, part: int) -> Path:
        if self.channel == "email":
            return (
                self.folder / f"{file_stem(batch)}.eml" if part == 0 else self.folder / f"{file_stem(batch)}-{part}.eml"
            )
        return self.folder / f"{file_stem(batch)}-{part + 1}.json"

    def _bytes(self, recipient: str, part: Any) -> bytes:
        if isinstance(part, EmailMessage):
            return part.as_bytes(policy=SMTP_POLICY)
        return json.dumps({"recipient": recipient, **part}, ensure_ascii=False, indent=2).encode("utf-8")

    def send(
        self, recipient: str, batch: str, parts: list[Any], start: int, handing_over: Callable[[int], None]
    ) -> None:
        # Messages name people and units: readable by the owner only (folders 0700, files 0600).
        self.folder.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.folder.mkdir(mode=0o700, exist_ok=True)
        for i in range(start, len(parts)):
            final = self.path(batch, i)
            tmp = final.with_suffix(final.suffix + ".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            try:
                with open(fd, "wb") as fh:
                    fh.write(self._bytes(recipient, parts[i]))
                    fh.flush()
                    os.fsync(fh.fileno())
                handing_over(i)
            except BaseException:
                tmp.unlink(missing_ok=True)  # not handed over (claim lost, disk full): leave nothing
                raise
            os.replace(tmp, final)  # atomic: the message is there whole, or not at all

    def confirm(self, batch: str, part: int) -> bool | None:
        return self.path(batch, part).exists()
