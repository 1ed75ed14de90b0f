"""veille: EU regulatory watch and alerting for HAS.

The stages live in the top-level packages ``crawlers``, ``storage``, ``nlp`` and ``alerts``;
this package holds what they share: the notice record, configuration and the CLI.
"""

__version__ = "0.1.0"


def _wire() -> None:
    """The core config checks sources against the kinds the crawler stage declares (it cannot import them)."""
    from crawlers.kinds import KINDS
    from veille.config import use_source_kinds

    use_source_kinds(KINDS)


_wire()
