"""veille: EU regulatory watch and alerting for HAS.

The stages live in the top-level packages ``crawlers``, ``storage``, ``nlp``, ``alerts`` and ``web``, over
``core`` (what they share); this package composes them: the CLI (``main``, ``commands``), one cycle
(``pipeline``) and a poll's crawl-then-store (``crawl``).
"""

__version__ = "0.1.0"


# The config checks each source against the kinds the crawler stage declares; the core cannot import a
# stage, so whatever loads a config through veille has them installed (crawlers/kinds/, pydantic only).
import crawlers.kinds  # noqa: F401
