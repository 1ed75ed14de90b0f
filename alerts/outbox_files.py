"""The embedded default: a channel whose server is not configured writes its messages as files.

Each channel files under its own folder, ``<outbox>/<kind>/``: e-mails as ``email/<batch>.eml``, Slack
posts as ``slack/<batch>-<part>.json``, webhook posts as ``webhook/<batch>-<part>.json`` (the channel
names and encodes its files: ``Channel.file_name``, ``Channel.file_bytes``). So the main job runs on a
fresh machine and a person can read what would have gone out. Each file is written to a temporary name
and renamed: a file that exists is a message that was delivered, which lets the outbox settle a run
that died mid-write.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # a type only: alerts.channels builds this transport
    from alerts.channels import Channel


def file_stem(batch: str) -> str:
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", batch)[:100]
    return f"{readable}-{hashlib.sha256(batch.encode()).hexdigest()[:8]}"


class FileTransport:
    def __init__(self, folder: Path, channel: Channel) -> None:
        self.channel = channel.kind
        self.writer = channel  # names and encodes the files
        self.folder = folder / channel.kind

    def path(self, batch: str, part: int) -> Path:
        return self.folder / self.writer.file_name(file_stem(batch), part)

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
                    fh.write(self.writer.file_bytes(recipient, parts[i]))
                    fh.flush()
                    os.fsync(fh.fileno())
                handing_over(i)
            except BaseException:
                tmp.unlink(missing_ok=True)  # not handed over (claim lost, disk full): leave nothing
                raise
            os.replace(tmp, final)  # atomic: the message is there whole, or not at all

    def confirm(self, batch: str, part: int) -> bool | None:
        return self.path(batch, part).exists()
