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
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import spacy
from spacy.language import Language
from spacy.tokens import Doc

from core.config import Settings
from nlp.explain import evidence
from nlp.model_files import current_model_path
from nlp.rules import LabelRules, RuleSet
from nlp.text import SEP, Parsed

MODEL_ALONE = 0.95  # without rule evidence, the model's score counts only where its scores saturate
MIX_VERSION = 3  # bump when mix() changes: scores stored before are outdated (nlp.classify.scoring_since)


@dataclass
class Model:
    nlp: Language
    version: str
    path: Path
    alpha: dict[str, float]  # rules' share of the combined score, per label
    thresholds: dict[str, float]  # combined
    model_thresholds: dict[str, float]  # model alone
    meta: dict = field(default_factory=dict, repr=False)  # veille_meta.json: training data, CV figures
    platt: dict[str, tuple[float, float]] = field(default_factory=dict)  # per label: calibration (a, b)
    gate: dict | None = None  # the relevance gate: {"coef": [...], "intercept": b, "threshold": g}

    def predict(self, parsed: list[Parsed]) -> list[dict[str, float]]:
        """Calibrated probabilities from the notices' docs: the same tokens the model was trained on."""
        return [calibrate(cats, self.platt) for cats in self.predict_raw(parsed)]

    def predict_raw(self, parsed: list[Parsed]) -> list[dict[str, float]]:
        # The notice's matcher doc is reused: BOW features are string hashes, the same in any vocab.
        docs = [p.doc() if p.fields else Doc(self.nlp.vocab, words=[SEP]) for p in parsed]
        textcat = self.nlp.get_pipe("textcat_multilabel")
        return [dict(doc.cats) for doc in textcat.pipe(docs, batch_size=256)]


LOGIT_EPS = 1e-3  # raw scores are clipped to [0.001, 0.999] before calibration (chosen in CV, docs/nlp.md)


def logit(p: float) -> float:
    p = min(max(p, LOGIT_EPS), 1 - LOGIT_EPS)
    return math.log(p / (1 - p))


def calibrate(cats: dict[str, float], platt: dict[str, tuple[float, float]]) -> dict[str, float]:
    """Platt scaling fitted on out-of-fold scores (``nlp.train``): the raw scores are saturated (a generic
    title can draw 0.95), the calibrated ones are the observed frequency of the label at that score."""
    out = {}
    for lb, s in cats.items():
        if lb in platt:
            a, b = platt[lb]
            s = 1.0 / (1.0 + math.exp(-(a * logit(s) + b)))
        out[lb] = s
    return out


def gate_features(by_label: dict[str, LabelRules], cats: dict[str, float]) -> list[float]:
    """What the relevance gate reads of a notice: the best label probability, the best rule score, the best
    positive evidence outside the body (title, summary, subject, act), and the strongest negative cue."""
    strong = [f["weight"] for lr in by_label.values() for f in lr.fired if f["weight"] > 0 and f["field"] != "body"]
    return [
        max(cats.values(), default=0.0),
        max((lr.score for lr in by_label.values()), default=0.0),
        max(strong, default=0.0),
        1.0 - min((lr.penalty for lr in by_label.values()), default=1.0),
    ]


def stack_features(by_label: dict[str, LabelRules], cats: dict[str, float], label: str) -> list[float]:
    """What the per-label stacker reads: the label's rule score, its best positive evidence outside the body,
    its calibrated model probability (0 where the model may not count alone, ``model_counts``) and its
    strongest negative cue. (The best rule score of the other labels as a fifth feature did worse in CV.)"""
    lr = by_label[label]
    evidence = any(x.score > 0 for x in by_label.values())
    model = cats.get(label, 0.0) if model_counts(lr.score, cats.get(label, 0.0), evidence) else 0.0
    strong = [f["weight"] for f in lr.fired if f["weight"] > 0 and f["field"] != "body"]
    return [lr.score, max(strong, default=0.0), model, 1.0 - lr.penalty]


def stacked(stacker: dict, features: list[float]) -> float:
    """The stacker's probability of the label; 0 without rule evidence the model may count alone on."""
    if features[0] <= 0 and features[2] <= 0:
        return 0.0
    return round(gate_value(stacker, features), 4)


def gate_value(gate: dict, features: list[float]) -> float:
    z = gate["intercept"] + sum(c * x for c, x in zip(gate["coef"], features, strict=True))
    return 1.0 / (1.0 + math.exp(-z))


@dataclass
class Score:
    score: float
    rule_score: float
    model_score: float | None
    threshold: float
    fired: list[dict]  # nlp.explain.evidence: one entry per rule, its phrases as written
    gate: float | None = None  # the relevance gate's probability for the notice (with a model that has one)

    @property
    def selected(self) -> bool:
        return self.score >= self.threshold

    def explanation(self) -> dict:
        out = {"fired": self.fired, "model": self.model_score, "threshold": self.threshold}
        if self.gate is not None:
            out["gate"] = self.gate
        return out


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
        platt={lb: tuple(ab) for lb, ab in meta.get("platt", {}).items()},
        gate=meta.get("gate"),
    )


_MODELS: dict[Path, Model] = {}


def load_model(settings: Settings) -> Model | None:
    """The current model (cached per process), or None: then the rules score alone."""
    path = current_model_path(settings)
    if path is None:
        return None
    if path not in _MODELS:
        _MODELS[path] = load_model_dir(path)
    return _MODELS[path]


def model_counts(rule_score: float, model_score: float, evidence: bool = True) -> bool:
    """Whether the model's score enters the combined score (``mix``): with rule evidence for the label, or
    from 0.95 when some rule found something in the notice (``evidence``: a health word of any label). A
    text no rule finds anything in is never selected by the model alone: out of fold the model never found
    a label on such a text, and on the daily stream it selected a euro-area recommendation at its floor."""
    return rule_score > 0 or (evidence and model_score >= MODEL_ALONE)


def mix(alpha: float, rule_score: float, model_score: float, penalty: float = 1.0, evidence: bool = True) -> float:
    """The combined score. ``rule_score`` already carries the negative cues' ``penalty``; the model's share
    is lowered by it too, so that an analyst's veto vetoes the label whatever the model says.

    Without rule evidence the model counts only where it is on familiar ground. Its scores are saturated:
    out of fold, nearly all are below 0.05 or above 0.95. In between it is reading text unlike its
    training data, such as a short generic title where one or two known words carry everything: "Press
    release" 0.29 for daqss (threshold 0.15 at a = 0.2), "Call for expression of interest" 0.93 for
    deontologie, "Artificial intelligence in agriculture" 0.77 for numerique (docs/nlp.md). Out of fold
    over the train split the model never found a label that no rule had found."""
    if not model_counts(rule_score, model_score, evidence):
        model_score = 0.0
    return round(alpha * rule_score + (1 - alpha) * model_score * penalty, 4)


def combine(
    rules: RuleSet,
    model: Model | None,
    label: str,
    rule_score: float,
    model_score: float | None,
    penalty: float = 1.0,
    evidence: bool = True,
) -> tuple[float, float]:
    """(combined score, threshold) for one label, before the relevance gate."""
    if model is None or model_score is None:
        return rule_score, rules.labels[label]
    a = model.alpha.get(label, rules.rules_weight)
    return mix(a, rule_score, model_score, penalty, evidence), model.thresholds.get(label, rules.labels[label])


def gated(score: float, gate: float | None, threshold: float | None) -> float:
    """The relevance gate lowers a label in proportion when the notice looks less relevant than its threshold:
    strong evidence survives a doubtful gate, a weak score does not."""
    if gate is None or threshold is None or gate >= threshold:
        return score
    return round(score * gate / threshold, 4)


def score_labels(
    rules: RuleSet, model: Model | None, by_label: dict[str, LabelRules], cats: dict[str, float]
) -> dict[str, Score]:
    """Every label's score for one notice from its rule results and its (calibrated) model scores."""
    any_evidence = any(lr.score > 0 for lr in by_label.values())
    gate = None
    if model is not None and model.gate and cats:
        gate = round(gate_value(model.gate, gate_features(by_label, cats)), 4)
    row = {}
    for label, lr in by_label.items():
        ms = round(float(cats[label]), 4) if label in cats else None
        s, t = combine(rules, model, label, lr.score, ms, lr.penalty, any_evidence)
        if ms is not None and gate is not None:
            s = gated(s, gate, model.gate["threshold"])
        row[label] = Score(s, lr.score, ms, t, evidence(lr.fired, rules), gate)
    return row


def score_parsed(rules: RuleSet, model: Model | None, parsed: list[Parsed]) -> list[dict[str, Score]]:
    preds = model.predict(parsed) if model else [{} for _ in parsed]
    return [score_labels(rules, model, rules.evaluate(p), cats) for p, cats in zip(parsed, preds, strict=True)]


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
