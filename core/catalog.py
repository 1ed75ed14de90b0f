"""The gettext catalogues (``core/locale/<lang>/LC_MESSAGES/messages.mo``) without the web server: the
workbench reads them per request (``web.i18n``), the CLI in French (``veille.commands.base.tr``), with the
standard library only."""

from __future__ import annotations

import gettext
from functools import cache
from pathlib import Path

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

    def said(self, gettext) -> str:  # gettext: str -> str of the reader's language
        return _fill(gettext(self.msgid), self.params)


def _fill(text: str, params: dict[str, object]) -> str:
    return text % params if params else text
