"""The source kinds: one declaration each (name, readable name, typed options, spider, healthy run), in
a module of this package (its spider lives in ``crawlers/spiders/``); every module here is loaded with it.

A ``[[sources]]`` entry's ``kind`` names one of these and its ``options`` are validated against the
kind's pydantic model when the config is loaded (``veille config``), so a typo is refused at its
``file:line``, not mid-crawl. The crawl hands the spider the typed options. This module imports only
pydantic and the core: ``veille config`` and ``veille --help`` never import Scrapy (the spider is named
by its import path and loaded in the crawl child). How to add a kind: docs/extending.md.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from datetime import date

from pydantic import BaseModel, ConfigDict, Field

from core.config import Expectation, use_source_kinds


class SourceOptions(BaseModel):
    """Options every kind accepts; a kind's model adds its own (``extra="forbid"``: unknown keys are errors)."""

    model_config = ConfigDict(extra="forbid")
    expect: Expectation | None = Field(
        None, description="overrides the kind's healthy-run expectation, key by key (docs/sources-health.md)"
    )

    def default_expectation(self, declared: Expectation) -> Expectation:
        """The kind's expectation for these options (a kind whose options change it overrides this)."""
        return declared


@dataclass(frozen=True)
class SourceKind:
    name: str  # the ``kind`` a config entry names
    title: str  # readable name: an English message id that core/locale translates (French by default)
    spider: str  # "module:Class", imported only by the crawl child
    options: type[SourceOptions] = SourceOptions
    # A healthy run (storage/health.py); why each kind's: docs/sources-health.md.
    expect: Expectation = field(default_factory=Expectation)

    def expectation(self, options: SourceOptions) -> Expectation:
        base = options.default_expectation(self.expect)
        if options.expect is None:
            return base
        return base.model_copy(update=options.expect.model_dump(include=options.expect.model_fields_set))


KINDS: dict[str, SourceKind] = {}
use_source_kinds(KINDS)  # the core config checks sources against these (it cannot import them)


def register(kind: SourceKind) -> SourceKind:
    """Declare a source kind (a module outside this one may declare its own: the tests' toy kind does)."""
    if kind.name in KINDS and KINDS[kind.name] != kind:
        raise ValueError(f"source kind {kind.name!r} is declared twice")
    KINDS[kind.name] = kind
    return kind


def kind_titles() -> dict[str, str]:
    return {k.name: k.title for k in KINDS.values()}


class Pinned(SourceOptions):
    today: date | None = Field(None, description="the day deadlines are judged against (tests, replays); default today")


def _load_declarations() -> None:
    """Import every module of this package: each registers its kinds (adding a kind adds a module)."""
    for mod in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{mod.name}")


_load_declarations()
