"""Pure parsers: bytes of one response -> list of ``NoticeRecord`` (no network, no storage)."""


class ParseError(ValueError):
    """The body is not what the source should send (HTML instead of a feed, malformed XML...)."""
