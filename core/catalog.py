"""The gettext catalogues (``core/locale/<lang>/LC_MESSAGES/messages.mo``) without the web server: the
workbench reads them per request (``web.i18n``), the CLI in French (``veille.commands.base.tr``), with the
standard library only."""

from __future__ import annotations

import gettext
from collections.abc import Callable
from datetime import date
from functools import cache
from pathlib import Path

from core.dates import fr_date
from core.names import N_  # noqa: F401  (re-exported: marks message ids where Message is used)

LOCALE_DIR = Path(__file__).parent / "locale"
LANGUAGES = {"fr": "Français", "en": "English"}  # the first is the default
DEFAULT = next(iter(LANGUAGES))


@cache
def translations(lang: str) -> gettext.NullTranslations:
    """The compiled catalogue of ``lang`` (a missing one is an error: the package ships both)."""
    return gettext.translation("messages", localedir=LOCALE_DIR, languages=[lang])


class Message(str):
    """A line said in French (the CLI's and the digests' language) that keeps its English message id and
    parameters, so that the workbench can say it in the reader's language: ``message.said(gettext)``."""

    msgid: str
    params: dict[str, object]

    def __new__(cls, msgid: str, **params: object) -> Message:
        obj = super().__new__(cls, _fill(translations(DEFAULT).gettext(msgid), params))
        obj.msgid, obj.params = msgid, params
        return obj

    def said(self, gettext, day: Callable[[date], str] = date.isoformat) -> str:
        """In the reader's language: ``gettext`` (str -> str) gives the text, ``day`` writes its days."""
        return _fill(gettext(self.msgid), self.params, day)


def _fill(text: str, params: dict[str, object], day: Callable[[date], str] = fr_date) -> str:
    """The text with its parameters; a day parameter (a ``date``) written by ``day`` (French: ``16 décembre 2025``)."""
    return text % {k: day(v) if isinstance(v, date) else v for k, v in params.items()} if params else text
