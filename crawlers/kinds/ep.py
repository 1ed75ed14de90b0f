"""The European Parliament: its open-data procedures (ODP) and the Legislative Observatory (OEIL)."""

from __future__ import annotations

from pydantic import Field

from core.config import Expectation
from core.names import N_
from crawlers.kinds import SourceKind, SourceOptions, register


class ProcedureOptions(SourceOptions):
    procedures: list[str] = Field(
        [], description="procedures to follow, as the service writes them (ODP: 2022-0140; OEIL: 2022/0140(COD))"
    )


register(
    SourceKind(
        "ep_odp",
        N_("European Parliament open data"),
        "crawlers.spiders.ep:EpOdpSpider",
        ProcedureOptions,
        Expectation(empty_runs=2),
    )
)
register(
    SourceKind(
        "oeil",
        N_("Legislative Observatory (OEIL)"),
        "crawlers.spiders.ep:OeilSpider",
        ProcedureOptions,
        Expectation(empty_runs=2),
    )
)
