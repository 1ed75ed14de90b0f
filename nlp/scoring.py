"""One score per label from the rules and the trained model.

Combination (docs/nlp.md): with a model, ``score = a * rule_score + (1 - a) * model_score * penalty``
(``penalty``: the negative cues found, which ``rule_score`` already carries; ``model_score`` counts as 0
when no rule found the label and the model is below ``MODEL_ALONE``, 0.95) where the rules' share
``a`` and the threshold are chosen per label by ``veille train`` on out-of-fold predictions over the
training split only; without a model, ``score = rule_score`` and the rules file's thresholds apply.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import spacy
from spacy.language import Language
from spacy.tokens import Doc

from nlp.explain import evidence
from nlp.rules import RuleSet
from nlp.text import SEP, Parsed
from veille.config import Settings

CURRENT = "current"
MODEL_ALONE = 0.95  # without rule evidence, the model's score counts only where its scores saturate
MIX_VERSION = 2  # bump when mix() changes: scores stored before are outdated (nlp.classify.scoring_since)


@dataclass
class Model:
    nlp: Language
    version: str
    path: Path
    alpha: dict[str, float]  # rules' share of the combined score, per label
    thresholds: dict[str, float]  # combined
    model_thresholds: dict[str, float]  # model alone
    meta: dict = field(default_factory=dict, repr=False)  # veille_meta.json: training data, CV figures

    def predict(self, parsed: list[Parsed]) -> list[dict[str, float]]:
        """Scores from the notices' docs: the same tokens the model was trained on, no re-tokenising."""
        # The notice's matcher doc is reused: BOW features are string hashes, the same in any vocab.
        docs = [p.doc() if p.fields else Doc(self.nlp.vocab, words=[SEP]) for p in parsed]
        textcat = self.nlp.get_pipe("textcat_multilabel")
        return [dict(doc.cats) for doc in textcat.pipe(docs, batch_size=256)]


@dataclass
class Score:
    score: float
    rule_score: float
    model_score: float | None
    threshold: float
    fired: list[dict]  # nlp.explain.evidence: one entry per rule, its phrases as written

    @property
    def selected(self) -> bool:
        return self.score >= self.threshold

    def explanation(self) -> dict:
        return {"fired": self.fired, "model": self.model_score, "threshold": self.threshold}


def load_model_dir(path: Path) -> Model:
    meta = json.loads((path / "veille_meta.json").read_text(encoding="utf-8"))
    return Model(
        nlp=spacy.load(path / "pipeline"),
        version=meta["version"],
        path=path,
        alpha=meta["alpha"],
        thresholds=meta["thresholds"],
        model_thresholds=meta["model_thresholds"],
        meta=meta,
    )


def current_model_path(settings: Settings) -> Path | None:
    pointer = settings.models / CURRENT
    if not pointer.exists():
        return None
    path = settings.models / pointer.read_text(encoding="utf-8").strip()
    return path if (path / "veille_meta.json").exists() else None


_MODELS: dict[Path, Model] = {}


def load_model(settings: Settings) -> Model | None:
    """The current model (cached per process), or None: then the rules score alone."""
    path = current_model_path(settings)
    if path is None:
        return None
    if path not in _MODELS:
        _MODELS[path] = load_model_dir(path)
    return _MODELS[path]


def model_counts(rule_score: float, model_score: float) -> bool:
    """Whether the model's score enters the combined score (``mix``): with rule evidence, or from 0.95."""
    return rule_score > 0 or model_score >= MODEL_ALONE


def mix(alpha: float, rule_score: float, model_score: float, penalty: float = 1.0) -> float:
    """The combined score. ``rule_score`` already carries the negative cues' ``penalty``; the model's share
    is lowered by it too, so that an analyst's veto vetoes the label whatever the model says.

    Without rule evidence the model counts only where it is on familiar ground. Its scores are saturated:
    out of fold, nearly all are below 0.05 or above 0.95. In between it is reading text unlike its
    training data, such as a short generic title where one or two known words carry everything: "Press
    release" 0.29 for daqss (threshold 0.15 at a = 0.2), "Call for expression of interest" 0.93 for
    deontologie, "Artificial intelligence in agriculture" 0.77 for numerique (docs/nlp.md). Out of fold
    over the train split the model never found a label that no rule had found."""
    if not model_counts(rule_score, model_score):
        model_score = 0.0
    return round(alpha * rule_score + (1 - alpha) * model_score * penalty, 4)


def combine(
    rules: RuleSet,
    model: Model | None,
    label: str,
    rule_score: float,
    model_score: float | None,
    penalty: float = 1.0,
) -> tuple[float, float]:
    """(combined score, threshold) for one label."""
    if model is None or model_score is None:
        return rule_score, rules.labels[label]
    a = model.alpha.get(label, rules.rules_weight)
    return mix(a, rule_score, model_score, penalty), model.thresholds.get(label, rules.labels[label])


def score_parsed(rules: RuleSet, model: Model | None, parsed: list[Parsed]) -> list[dict[str, Score]]:
    preds = model.predict(parsed) if model else [{} for _ in parsed]
    out = []
    for p, cats in zip(parsed, preds, strict=True):
        by_label = rules.evaluate(p)
        row = {}
        for label, lr in by_label.items():
            ms = round(float(cats[label]), 4) if label in cats else None
            s, t = combine(rules, model, label, lr.score, ms, lr.penalty)
            row[label] = Score(s, lr.score, ms, t, evidence(lr.fired, rules))
        out.append(row)
    return out


@contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic collector off while a batch is parsed and scored: the batch allocates many small,
    acyclic objects, and the collections they trigger (walking the loaded pipeline and caches) cost
    about 15 % of classification time. Reference counting still frees everything."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
