"""Test helpers around the replay server (``crawlers/replay/server.py``, reused by the demo).

- ``ReplayServer`` / ``Route``: a threaded HTTP server on 127.0.0.1 serving path -> response, with
  ETag / Last-Modified + 304, robots.txt, and scripted faults (hang, reset, truncate, huge).
- ``route_from_http_txt``: a Route from a recorded ``*.http.txt`` capture (status line, headers, body).
- ``write_config``: a veille config TOML in a temp folder whose sources point at the server.
- ``fixture``: bytes of a copied fixture under tests/data/fixtures.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from crawlers.replay.server import ReplayServer, Route, load_bundle

FIXTURES = Path(__file__).resolve().parent / "data" / "fixtures"
BUNDLE_BODIES = Path(__file__).resolve().parent.parent / "crawlers" / "replay" / "bundle" / "bodies"
# Real recordings the replay bundle ships are kept once, in the bundle (package data the demo needs); tests
# read them under their fixture names. bench/make_replay_bundle.py reads them the same way.
IN_BUNDLE = {
    "cellar/data_act_32023R2854_en_cellar.xhtml": "REAL-data_act_32023R2854_en_cellar.xhtml",
    "commission/commission_newsroom-dae-fullrss-2014-07.xml": "digital-strategy-REAL-newsroom-dae-2014.xml",
    "ep_odp/odp_procedure_2025-0581.json": "REAL-odp_procedure_2025-0581.json",
    "funding_tenders/ft_grantsTenders_reference_sample7_2026-09.json": "REAL-ft_grantsTenders_sample7.json",
    "have_your_say/hys_groupInitiatives_18805_2026-09-01.json": "REAL-hys_groupInitiatives_18805.json",
    "have_your_say/hys_searchInitiatives_nofilter_size3_2026-09-01.json": (
        "REAL-hys_searchInitiatives_nofilter_size3.json"
    ),
    "oeil/oeil_procedure_file_2024-0258-COD.html": "REAL-oeil_procedure_file_2024-0258-COD.html",
    "oeil/oeil_procedure_file_2025-0229-NLE.html": "REAL-oeil_procedure_file_2025-0229-NLE.html",
}

__all__ = [
    "BUNDLE_BODIES",
    "FIXTURES",
    "IN_BUNDLE",
    "ReplayServer",
    "Route",
    "fixture",
    "load_bundle",
    "route_from_http_txt",
    "write_config",
]


def fixture(rel: str) -> bytes:
    """A recorded payload by its path under tests/data/fixtures (same sub-folders as ../shared/fixtures)."""
    if rel in IN_BUNDLE:
        return (BUNDLE_BODIES / IN_BUNDLE[rel]).read_bytes()
    return (FIXTURES / rel).read_bytes()


def route_from_http_txt(path: str, rel: str, **kwargs: Any) -> Route:
    """``HTTP/1.1 202 Accepted`` + headers + blank line + body, as captured -> Route."""
    text = fixture(rel).decode("utf-8").replace("\r\n", "\n")
    head, _, body = text.partition("\n\n")
    lines = head.split("\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip():
            headers[name.strip()] = value.strip()
    return Route(path=path, status=status, headers=headers, body=body.strip("\n").encode(), etag=False, **kwargs)


def _toml_value(value: Any) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    return json.dumps(value)  # strings, numbers, booleans and lists of them read the same in TOML


def write_config(path: Path, sources: list[dict], **crawl: Any) -> Path:
    """A config file with fast, test-sized crawl settings (overridable) and the given sources."""
    settings = {"download_delay": 0.0, "concurrent_per_host": 4, "timeout": 2.0, "retries": 1, **crawl}
    lines = ["[crawl]"] + [f"{k} = {_toml_value(v)}" for k, v in settings.items()]
    for src in sources:
        lines += ["", "[[sources]]"] + [f"{k} = {_toml_value(v)}" for k, v in src.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
