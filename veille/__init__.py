"""veille: EU regulatory watch and alerting for HAS.

The stages live in the top-level packages ``crawlers``, ``storage``, ``nlp`` and ``alerts``;
this package holds what they share: the notice record, configuration and the CLI.
"""

__version__ = "0.1.0"
