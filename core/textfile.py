"""Reading the files people edit (config, profiles, routing, rules, datasets).

UTF-8 with or without the byte-order mark that spreadsheet exports and Windows editors put first; any
other encoding is refused with one line naming the file and the line, instead of a traceback.
"""

from __future__ import annotations

from pathlib import Path


def read_text(path: Path, error: type[Exception] = ValueError) -> str:
    """The file's text; raises ``error("file:line: pas en UTF-8 ...")``. ``OSError`` is left to the caller."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise error(
            f"{path}:{line}: pas en UTF-8 (octet 0x{raw[exc.start]:02x}) ; enregistrez le fichier en UTF-8"
        ) from None
