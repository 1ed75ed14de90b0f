"""A real, tiny trained model for tests that need one (training the full model takes a minute)."""

from __future__ import annotations

import json

from core.config import Settings


def make_tiny_model(settings: Settings, version: str = "m-tiny") -> None:
    """Train a pipeline on three examples through ``nlp.train.fit`` and make it the current model."""
    from core.profiles import load_labels
    from nlp.model_files import model_home
    from nlp.train import Example, fit

    labels = list(load_labels(settings))
    texts = [("joint scientif consult", "deai"), ("vaccin campaign", "sante_publique"), ("handicap strateg", "diqasm")]
    examples = [Example(f"t{i}", "t", t, {lb: float(lb == y) for lb in labels}, {}) for i, (t, y) in enumerate(texts)]
    home = model_home(settings)
    fit(examples, labels, home / version / "pipeline", epochs=1)
    half = {lb: 0.5 for lb in labels}
    meta = {"version": version, "labels": labels, "alpha": half, "thresholds": half, "model_thresholds": half}
    (home / version / "veille_meta.json").write_text(json.dumps(meta), encoding="utf-8")
    (home / "current").write_text(version, encoding="utf-8")
