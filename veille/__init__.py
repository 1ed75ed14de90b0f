"""veille: EU regulatory watch and alerting for HAS.

The stages live in the top-level packages ``crawlers``, ``storage``, ``nlp``, ``alerts`` and ``web``, over
``core`` (what they share); this package composes them: the CLI (``main``, ``commands``), one cycle
(``pipeline``) and a poll's crawl-then-store (``crawl``).
"""

__version__ = "0.1.0"
