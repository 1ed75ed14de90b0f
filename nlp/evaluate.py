"""Metrics for rules alone, model alone and combined, on any dataset in the dev-set schema.

Dataset loading and the fixed split live in :mod:`nlp.dataset` (re-exported here).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from statistics import mean, pstdev

from nlp.dataset import DEV_SET, Item, folds, is_test, load_dataset, split  # noqa: F401 - re-exported
from nlp.rules import RuleSet
from nlp.scoring import Model, Score, score_parsed
from nlp.text import parse_item


@dataclass
class LabelMetrics:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


@dataclass
class Metrics:
    per_label: dict[str, LabelMetrics]
    n: int
    relevant_accuracy: float
    near_miss_fp_rate: float | None
    n_near_miss: int
    false_alerts_per_100: float

    @property
    def micro_f1(self) -> float:
        total = LabelMetrics(*(sum(getattr(m, k) for m in self.per_label.values()) for k in ("tp", "fp", "fn")))
        return total.f1

    @property
    def macro_f1(self) -> float:
        scored = [m.f1 for m in self.per_label.values() if m.tp + m.fn]  # labels present in the gold data
        return mean(scored) if scored else 0.0

    def summary(self) -> dict:
        return {
            "micro_f1": round(self.micro_f1, 3),
            "macro_f1": round(self.macro_f1, 3),
            "relevant_accuracy": round(self.relevant_accuracy, 3),
            "near_miss_fp_rate": None if self.near_miss_fp_rate is None else round(self.near_miss_fp_rate, 3),
            "false_alerts_per_100": round(self.false_alerts_per_100, 1),
            "per_label_f1": {k: round(v.f1, 3) for k, v in self.per_label.items()},
        }


def metrics(items: list[Item], predicted: list[set[str]], labels: list[str]) -> Metrics:
    per = {lb: LabelMetrics() for lb in labels}
    rel_ok = nm = nm_fp = false_alerts = 0
    for item, pred in zip(items, predicted, strict=True):
        gold = set(item.labels) & per.keys()  # labels of another profile are not this profile's to score
        for lb in labels:
            m = per[lb]
            m.tp += lb in gold and lb in pred
            m.fp += lb not in gold and lb in pred
            m.fn += lb in gold and lb not in pred
        false_alerts += len(pred - gold)
        rel_ok += bool(gold) == bool(pred)
        if item.near_miss:
            nm += 1
            nm_fp += bool(pred)
    n = len(items) or 1
    return Metrics(per, len(items), rel_ok / n, nm_fp / nm if nm else None, nm, 100.0 * false_alerts / n)


MODES = ("rules", "model", "combined")


@dataclass
class Evaluation:
    items: list[Item]
    scores: list[dict[str, Score]]
    predictions: dict[str, list[set[str]]] = field(default_factory=dict)  # mode -> labels per item
    results: dict[str, Metrics] = field(default_factory=dict)


def predict_modes(rules: RuleSet, model: Model | None, scores: list[dict[str, Score]]) -> dict[str, list[set[str]]]:
    out = {"rules": [{lb for lb, s in row.items() if s.rule_score >= rules.labels[lb]} for row in scores]}
    if model is not None:
        out["model"] = [
            {
                lb
                for lb, s in row.items()
                if s.model_score is not None and s.model_score >= model.model_thresholds.get(lb, 0.5)
            }
            for row in scores
        ]
        out["combined"] = [{lb for lb, s in row.items() if s.selected} for row in scores]
    return out


def evaluate(items: list[Item], rules: RuleSet, model: Model | None) -> Evaluation:
    scores = score_parsed(rules, model, [parse_item(i) for i in items])
    ev = Evaluation(items, scores, predict_modes(rules, model, scores))
    labels = list(rules.labels)
    ev.results = {mode: metrics(items, preds, labels) for mode, preds in ev.predictions.items()}
    return ev


def write_predictions(ev: Evaluation, path: Path, mode: str) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for item, row, pred in zip(ev.items, ev.scores, ev.predictions[mode], strict=True):
            fired = [f for s in row.values() for f in s.fired]
            rec = {
                "id": item.id,
                "labels": sorted(pred),
                "gold": list(item.labels),
                "scores": {
                    lb: s.score if mode == "combined" else (s.rule_score if mode == "rules" else s.model_score)
                    for lb, s in row.items()
                },
                "fired": fired,
            }
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")


def spread(values: list[float]) -> str:
    return f"{mean(values):.3f} ± {pstdev(values):.3f} (min {min(values):.3f}, max {max(values):.3f})"
