"""The one base class of mistakes a person can fix (a config value, a rules file, an archive path).

The CLI prints them as one line, never as a traceback; each stage's own error classes derive from it.
"""


class UserError(Exception):
    """A one-line message that names what is wrong and where (``file:line`` when there is a file)."""


class ConfigError(UserError, ValueError):
    """A one-line error naming the file, line and key (here, not in core.config: the CLI names it without
    loading pydantic and the config models)."""
