"""Reading the files people edit (config, profiles, routing, rules, datasets).

UTF-8 with or without the byte-order mark that spreadsheet exports and Windows editors put first; any
other encoding is refused with one line naming the file and the line, instead of a traceback.
"""

from __future__ import annotations

import errno
from pathlib import Path

# The operating system's reasons people meet reading or writing their files, in French; others as the OS says.
_WHY = {
    errno.ENOENT: "fichier introuvable",
    errno.EACCES: "permission refusée",
    errno.EPERM: "opération non permise",
    errno.EISDIR: "c'est un dossier",
    errno.ENOTDIR: "un élément du chemin n'est pas un dossier",
    errno.ENOSPC: "plus de place sur le disque",
    errno.EROFS: "système de fichiers en lecture seule",
}


def why(exc: OSError) -> str:
    """Why a file operation failed, in French (``fichier introuvable``), else the system's words."""
    return _WHY.get(exc.errno or 0) or exc.strerror or str(exc)


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
