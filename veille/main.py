"""The ``veille`` command: the app of ``veille.commands.base`` with every command module's commands.

The CLI composes the stages; no stage imports it. Each command module keeps its heavy imports inside its
commands (start-up time).
"""

from __future__ import annotations

from veille.commands import alerts, crawl, cycle, feedback, nlp, web
from veille.commands.base import app
from veille.commands.french import adopt

for _module in (crawl, nlp, feedback, alerts, cycle, web):
    _module.register(app)
adopt(app)  # typer's and click's own words in French for every command
