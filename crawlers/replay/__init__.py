"""Recorded sources for a machine with no network: ``serve()`` + ``config_text()``.

``veille demo`` starts ``serve()``, writes ``config_text(base_url)`` as the config, and runs the
whole pipeline against it. The bundle's provenance is in ``README.md`` next to this file.
"""

from __future__ import annotations

from pathlib import Path

from crawlers.replay.server import ReplayServer, Route, load_bundle

HERE = Path(__file__).resolve().parent
BUNDLE = HERE / "bundle"
CONFIG = HERE / "replay.toml"

__all__ = ["BUNDLE", "CONFIG", "ReplayServer", "Route", "config_text", "load_bundle", "serve"]


def serve(bundle_dir: str | Path = BUNDLE, port: int = 0) -> tuple[ReplayServer, str]:
    """Start a replay server for a bundle on 127.0.0.1 (a free port by default); stop it with ``.close()``."""
    server = ReplayServer(load_bundle(bundle_dir), port=port).start()
    return server, server.base_url


def config_text(base_url: str, template: str | Path = CONFIG) -> str:
    """The demo config TOML with every source URL pointing at ``base_url``."""
    return Path(template).read_text(encoding="utf-8").replace("@BASE@", base_url.rstrip("/"))
