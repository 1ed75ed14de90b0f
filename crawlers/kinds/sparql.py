"""Cellar SPARQL: OJ acts and proposals of a window, or the acts based on watched acts."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from core.config import Expectation
from core.names import N_
from crawlers.kinds import SourceKind, SourceOptions, register

CELLAR_REST = "http://publications.europa.eu/resource/celex/{celex}"


class SparqlOptions(SourceOptions):
    query: Literal["acts", "based_on"] = Field(
        "acts", description="acts: OJ acts and proposals of the window; based_on: acts whose legal basis is in `acts`"
    )
    acts: list[str] = Field([], description="CELEX of the watched acts (query = based_on)")
    initial_days: int = Field(30, ge=1, description="first run: look back this many days")
    page_size: int = Field(500, ge=1, description="rows per discovery page")
    batch: int = Field(25, ge=1, description="works per details query (keeps GET URLs well under 8 KB)")
    fetch_text: bool | list[str] = Field(False, description="fetch the act's text: true for all, or these CELEX")
    text_url: str = Field(CELLAR_REST, description="Cellar REST template for the text, with {celex}")
    text_language: str = Field("eng", description="language of the fetched text (Cellar's three-letter code)")
    max_text_chars: int = Field(200_000, ge=1, description="a longer text is abridged")

    def default_expectation(self, declared: Expectation) -> Expectation:
        return Expectation(empty_runs=0) if self.query == "based_on" else declared  # rare by nature


register(
    SourceKind(
        "sparql",
        N_("Cellar (SPARQL)"),
        "crawlers.spiders.sparql:SparqlSpider",
        SparqlOptions,
        Expectation(per_working_day=1, working_days=3),  # OJ L/C acts: every working day
    )
)
