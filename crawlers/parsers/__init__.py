"""Pure parsers: bytes of one response -> list of ``NoticeRecord`` (no network, no storage)."""


class ParseError(ValueError):
    """The body is not what the source should send (HTML instead of a feed, malformed XML...)."""


class Skipped:
    """Items of an answer that could not be read: skipped and counted, so that one odd item never fails
    its source; ``message`` is the warning the run keeps."""

    def __init__(self, what: str):
        self.what, self.count, self.examples = what, 0, []

    def add(self, item: object, exc: Exception | None = None) -> None:
        self.count += 1
        if len(self.examples) < 3:
            why = f" ({type(exc).__name__}: {str(exc)[:80]})" if exc else ""
            self.examples.append(f"{repr(item)[:60]}{why}")

    def message(self, total: int | None = None) -> str | None:
        if not self.count:
            return None
        of = f" sur {total}" if total is not None else ""
        return f"{self.what} : {self.count}{of} illisible(s), ignoré(s) : " + " ; ".join(self.examples)


JSON_TYPES = {
    dict: "un objet",
    list: "une liste",
    str: "une chaîne",
    int: "un nombre",
    float: "un nombre",
    bool: "un booléen",
}


def json_type(value: object) -> str:
    """What a decoded JSON value is, in French (``une liste``): the failure reasons name it."""
    return "null" if value is None else JSON_TYPES.get(type(value), type(value).__name__)


# What reading one item of an unexpected shape raises (pydantic's ValidationError is a ValueError).
UNREADABLE = (AttributeError, TypeError, KeyError, IndexError, ValueError)
