"""A healthy run of one source: the schema of ``options.expect``, checked by the config and read by
``storage.health`` (which holds each kind's defaults)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Expectation(BaseModel):
    """A healthy run of one source (``options.expect`` in the config overrides the kind's defaults)."""

    model_config = ConfigDict(extra="forbid")
    per_working_day: int = Field(0, ge=0)  # items dated each working day (OJ): 0 = no such rule
    working_days: int = Field(3, ge=1)  # ... quiet after this many working days without any
    empty_runs: int = Field(0, ge=0)  # quiet after this many runs in a row without items (having had some)
    deadlines: bool = False  # its items carry a deadline: all without one is degraded
