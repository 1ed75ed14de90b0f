"""Keep the workbench's catalogues in step with the code (docs/web.md, "Languages").

    .venv/bin/python scripts/i18n.py update    # extract, merge into each core/locale/<lang>/messages.po
    .venv/bin/python scripts/i18n.py compile   # write the messages.mo that the server reads (committed)

The English catalogue is the message ids themselves (filled in by ``update``); other languages are
translated by hand in their .po, then compiled. tests/test_web_i18n.py fails while a translation is missing
or a .mo is older than its .po.
"""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.frontend import CommandLineInterface
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parents[1]
LOCALE = ROOT / "core" / "locale"
POT = LOCALE / "messages.pot"
SOURCE_LANG = "en"  # message ids are English texts


def po_path(lang: str) -> Path:
    return LOCALE / lang / "LC_MESSAGES" / "messages.po"


def languages() -> list[str]:
    return sorted(p.name for p in LOCALE.iterdir() if (p / "LC_MESSAGES" / "messages.po").exists())


def extract() -> None:
    args = ["pybabel", "-q", "extract", "-F", str(ROOT / "web" / "babel.cfg"), "-k", "N_", "-k", "gettext_"]
    args += ["--no-location", "--sort-output", "--project", "veille", "-o", str(POT), str(ROOT)]
    CommandLineInterface().run(args)


def read(path: Path, lang: str | None = None) -> Catalog:
    with path.open("rb") as fh:
        return read_po(fh, locale=lang)


def write(catalog: Catalog, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        write_po(fh, catalog, omit_header=False, sort_output=True, no_location=True, width=120)


def update() -> None:
    """New strings in every catalogue (empty in translations, themselves in English); gone ones dropped."""
    extract()
    for lang in languages():
        catalog = read(po_path(lang), lang)
        catalog.update(read(POT), no_fuzzy_matching=True)  # a fresh template: update() adopts its messages
        catalog.obsolete.clear()
        if lang == SOURCE_LANG:
            for message in catalog:
                if message.id:
                    message.string = message.id
        write(catalog, po_path(lang))


def compiled(lang: str) -> bytes:
    """The .mo bytes of a language's .po (what ``compile`` writes; the test compares it with the file)."""
    from io import BytesIO

    out = BytesIO()
    write_mo(out, read(po_path(lang), lang), use_fuzzy=False)
    return out.getvalue()


def compile_all() -> None:
    for lang in languages():
        po_path(lang).with_suffix(".mo").write_bytes(compiled(lang))


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command not in ("update", "compile"):
        sys.exit("usage: scripts/i18n.py update|compile")
    update() if command == "update" else compile_all()
