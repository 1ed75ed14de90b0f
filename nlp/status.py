"""What is in force and how good it is, as plain data for the dashboard: the rules (who saved them),
the model and its cross-validation over the training data, and how many stored scores are outdated.

Held-out figures are not shown here on purpose: analysts tune rules while looking at the dashboard, and
the held-out split must stay out of that loop (`veille eval` and `bench/nlp.py` report it).
"""

from __future__ import annotations

import json
from statistics import mean, pstdev

from sqlalchemy.engine import Engine
from sqlmodel import func, select

from core.config import Settings
from nlp.classify import count_stale
from nlp.evaluate import MODES
from nlp.rules import active_rules, history_dir
from nlp.scoring import load_model
from storage.db import session_scope
from storage.models import Notice

FIGURES = ("micro_f1", "macro_f1", "near_miss_fp_rate", "false_alerts_per_100")


def _saved(settings: Settings, version: str) -> dict | None:
    """The history entry that installed ``version`` (None for the shipped rules)."""
    path = history_dir(settings) / "history.jsonl"
    if not path.exists():
        return None
    entries = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return next((e for e in reversed(entries) if e.get("version") == version), None)


def cv_table(folds: list[dict]) -> dict[str, dict[str, tuple[float, float]]]:
    """Per mode and figure: (mean, standard deviation) over the folds."""
    out = {}
    for mode in MODES:
        rows = [f[mode] for f in folds if mode in f]
        if rows:
            out[mode] = {
                k: (mean(v), pstdev(v)) for k in FIGURES if (v := [r[k] for r in rows if r.get(k) is not None])
            }
    return out


def status(engine: Engine, settings: Settings) -> dict:
    rules = active_rules(settings)
    model = load_model(settings)
    meta = model.meta if model is not None else None
    with session_scope(engine) as s:
        n_notices = s.exec(select(func.count()).select_from(Notice)).one()
    outdated = count_stale(engine, settings)
    return {
        "rules": {"version": rules.version, "file": rules.filename, "saved": _saved(settings, rules.version)},
        "model": None
        if meta is None
        else {
            "version": meta.get("version", model.version),
            "created": meta.get("created", ""),  # a model directory made by hand may lack these
            "n_train": len(meta.get("train_ids", [])) - meta.get("n_feedback", 0),
            "n_feedback": meta.get("n_feedback", 0),
            "n_rule_phrases": meta.get("n_rule_phrases", 0),
            "rules_version": meta.get("rules_version"),
            "cv": cv_table(meta.get("cv", [])),
            "folds": len(meta.get("cv", [])),
        },
        "scores": {"notices": n_notices, "current": n_notices - outdated, "outdated": outdated},
    }
