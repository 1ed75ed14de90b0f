"""Train the relevance model (spaCy ``textcat_multilabel`` through ``nlp/config.cfg``).

Training data: the labelled set the profile declares (``dataset`` in its ``profile.toml``), an optional
extra dataset and the analysts' feedback in the archive; with ``holdout``, only that set's TRAIN split
(extra items in the same act group as a held-out item are dropped), and the held-out split is never
read. Per-label thresholds and the rules' share of the combined score are chosen on out-of-fold
predictions (5 folds over the training data only).

The rules' phrases are also training examples (a positive phrase alone is an example of its label, a
negative cue an example of no label): 336 items cannot teach the model the vocabulary the analysts
wrote down, and without it the model alone reached 0.61 micro-F1 in cross-validation, 0.76 with it.
They join every training fold and never a validation fold, nor the choice of thresholds.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from spacy.cli.train import train as spacy_train
from spacy.tokens import DocBin

from core.config import Settings
from nlp.dataset import DEV_SET, Item, fold_of, is_test, load_dataset, profile_dataset, split
from nlp.evaluate import metrics
from nlp.model_files import CURRENT, model_home
from nlp.rules import LabelRules, RuleSet, active_rules, phrase_stems
from nlp.scoring import (
    Model,
    calibrate,
    gate_features,
    gate_value,
    gated,
    logit,
    mix,
    stack_features,
    stacked,
)
from nlp.text import Parsed, make_doc, parse_item, parse_notice

CONFIG = Path(__file__).parent / "config.cfg"
ALPHAS = (0.2, 0.35, 0.5, 0.65, 0.8)
THRESHOLDS = tuple(round(0.1 + 0.025 * i, 3) for i in range(33))  # 0.1 .. 0.9
K = 5
log = logging.getLogger(__name__)


@dataclass
class Example:
    id: str
    group: str
    text: str  # normalised stems, what the model reads
    cats: dict[str, float]  # known labels only (feedback may cover a few)
    rules: dict[str, LabelRules]
    item: Item | None = None  # for metrics (None for feedback examples)
    oof: dict[str, float] = field(default_factory=dict)  # out-of-fold model scores (calibrated or raw)
    raw: dict[str, float] = field(default_factory=dict)  # out-of-fold model scores as the model gives them

    def combined(self, label: str, alpha: float, evidence_rule: bool = True) -> float:
        r = self.rules[label]
        evidence = not evidence_rule or any(lr.score > 0 for lr in self.rules.values())
        return mix(alpha, r.score, self.oof[label], r.penalty, evidence)


def _example(
    ex_id: str, group: str, parsed: Parsed, cats: dict[str, float], rules: RuleSet, item: Item | None
) -> Example:
    return Example(ex_id, group, parsed.model_text(), cats, rules.evaluate(parsed), item)


def dataset_examples(items: list[Item], labels: list[str], rules: RuleSet) -> list[Example]:
    return [
        _example(i.id, i.group, parse_item(i), {lb: float(lb in i.labels) for lb in labels}, rules, i) for i in items
    ]


def feedback_examples(settings: Settings, labels: list[str], rules: RuleSet) -> list[Example]:
    """Analysts' verdicts in the archive (the latest per notice and label wins)."""
    from sqlmodel import select

    from storage.db import open_archive, session_scope
    from storage.models import Feedback, Notice

    engine = open_archive(settings.database_url)
    verdicts: dict[int, dict[str, float]] = {}
    with session_scope(engine) as s:
        for fb in s.exec(select(Feedback).order_by(Feedback.created_at, Feedback.id)):
            if fb.label in labels:
                verdicts.setdefault(fb.notice_id, {})[fb.label] = float(fb.verdict)
        notices = {n.id: n for n in s.exec(select(Notice).where(Notice.id.in_(list(verdicts))))} if verdicts else {}
    out = []
    for nid, cats in verdicts.items():
        if nid in notices:
            n = notices[nid]
            out.append(_example(f"notice:{nid}", f"notice:{n.celex or nid}", parse_notice(n), cats, rules, None))
    return out


def rule_examples(rules: RuleSet, labels: list[str]) -> list[Example]:
    """Each phrase of a positive rule: an example of its label only; of a negative cue: of no label."""
    out: dict[str, Example] = {}  # by id: a phrase listed twice in a rule is one example
    for rule in rules.rules:
        positive = not rule.negative and rule.label in labels
        if not (positive or rule.negative):
            continue
        cats = {lb: float(positive and lb == rule.label) for lb in labels}
        for lang, phrase in rule.phrases:
            for lg, stems in phrase_stems(lang, phrase):
                ex_id = f"rule:{rule.key}:{lg}:{phrase}"
                out[ex_id] = Example(ex_id, "rules", " ".join(stems), dict(cats), {})
    return list(out.values())


def training_items(extra: Sequence[Item], holdout: bool = True, dataset: Path = DEV_SET) -> list[Item]:
    """``holdout``: the TRAIN split of the profile's ``dataset`` + the extra items minus anything sharing a
    held-out group (for an honest evaluation). Otherwise every item of both: the production model learns
    from every label."""
    if not holdout:
        shipped = load_dataset(dataset)
        ids = {i.id for i in shipped}
        return [*shipped, *(i for i in extra if i.id not in ids)]
    train, test = split(load_dataset(dataset))
    held_out = {i.group for i in test}
    return [*train, *(i for i in extra if i.group not in held_out and not is_test(i))]


def fit(examples: list[Example], labels: list[str], out_dir: Path, seed: int = 0, epochs: int | None = None) -> Path:
    """Train one pipeline through spaCy's config system; returns the saved pipeline's path."""
    workdir = Path(tempfile.mkdtemp(prefix="veille-train-"))
    try:
        db = DocBin(store_user_data=False)
        for ex in examples:
            doc = make_doc(ex.text.split())
            doc.cats = ex.cats
            db.add(doc)
        db.to_disk(workdir / "train.spacy")
        overrides = {
            "paths.train": str(workdir / "train.spacy"),
            "paths.dev": str(workdir / "train.spacy"),  # model-last is kept; dev only feeds spaCy's log
            "system.seed": seed,
            "initialize.components.textcat_multilabel.labels": list(labels),
        }
        if epochs:
            overrides["training.max_epochs"] = epochs
        with contextlib.redirect_stdout(io.StringIO()):  # spaCy's console log is noise here
            spacy_train(CONFIG, workdir / "out", overrides=overrides)
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        shutil.copytree(workdir / "out" / "model-last", out_dir)
        return out_dir
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _predict(model_dir: Path, texts: list[str]) -> list[dict[str, float]]:
    import spacy

    textcat = spacy.load(model_dir).get_pipe("textcat_multilabel")
    docs = (make_doc(t.split()) for t in texts)  # the tokens classify() gives the model (nlp.scoring)
    return [dict(d.cats) for d in textcat.pipe(docs, batch_size=256)]


def _f1(pairs: list[tuple[float, bool]], t: float) -> float:
    tp = sum(1 for s, y in pairs if s >= t and y)
    fp = sum(1 for s, y in pairs if s >= t and not y)
    fn = sum(1 for s, y in pairs if s < t and y)
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def choose(pairs: list[tuple[float, bool]]) -> float:
    """Threshold maximising F1 (ties: the one closest to 0.5)."""
    return max(THRESHOLDS, key=lambda t: (round(_f1(pairs, t), 6), -abs(t - 0.5)))


def choose_params(examples: list[Example], labels: list[str], evidence_rule: bool = True) -> dict:
    """Per label: the rules' share ``alpha`` and the thresholds, from out-of-fold scores."""
    alpha, thr, mthr = {}, {}, {}
    for lb in labels:
        known = [e for e in examples if lb in e.cats and lb in e.oof]
        y = [e.cats[lb] >= 0.5 for e in known]
        mthr[lb] = choose([(e.oof[lb], t) for e, t in zip(known, y, strict=True)])
        best = None
        for a in ALPHAS:
            pairs = [(e.combined(lb, a, evidence_rule), t) for e, t in zip(known, y, strict=True)]
            t = choose(pairs)
            key = (round(_f1(pairs, t), 6), -abs(a - 0.5))
            if best is None or key > best[0]:
                best = (key, a, t)
        alpha[lb], thr[lb] = best[1], best[2]
    return {"alpha": alpha, "thresholds": thr, "model_thresholds": mthr}


def cross_validate(
    examples: list[Example],
    labels: list[str],
    tmp: Path,
    progress: Callable[[str], None] = log.info,
    k_folds: int = K,
    epochs: int | None = None,
    always: list[Example] | None = None,
) -> list[dict]:
    """Fill ``oof`` on every example; returns per-fold metrics (thresholds chosen on the other folds).
    ``always`` joins every training fold (the rules' phrase examples)."""
    by_id = {e.id: e for e in examples}
    fold_ids = [[e.id for e in examples if fold_of(e.group, k_folds) == k] for k in range(k_folds)]  # by act group
    for k, val_ids in enumerate(fold_ids):
        progress(f"pli {k + 1}/{k_folds} : entraînement sur {len(examples) - len(val_ids)} exemples")
        train_ex = [e for e in examples if e.id not in set(val_ids)]
        model_dir = fit(train_ex + (always or []), labels, tmp / f"fold{k}", epochs=epochs)
        for ex, cats in zip(
            [by_id[i] for i in val_ids], _predict(model_dir, [by_id[i].text for i in val_ids]), strict=True
        ):
            ex.raw = dict(cats)
        shutil.rmtree(model_dir, ignore_errors=True)
    return cv_reports(examples, labels, k_folds)


def cv_reports(examples: list[Example], labels: list[str], k_folds: int = K) -> list[dict]:
    """Per fold, the metrics of every combination on that fold, fitted on the other folds' out-of-fold scores
    (``raw``, filled by :func:`cross_validate` or read back from a saved run, bench/nlp_cv.py)."""
    reports = []
    for k in range(k_folds):
        rest = [e for e in examples if fold_of(e.group, k_folds) != k]
        val = [e for e in examples if fold_of(e.group, k_folds) == k and e.item is not None]
        reports.append(fold_report(rest, val, labels))
    return reports


# The combinations compared in CV and bench/nlp.py: calibrated scores + evidence rule, relevance gate, and the
# per-label stacker instead of the hand mix (a, threshold).
VARIANTS: dict[str, dict[str, bool]] = {
    "combined (uncalibrated, no gate)": {"calibrated": False, "gate": False},
    "+ calibration": {"calibrated": True, "gate": False},
    "+ gate": {"calibrated": False, "gate": True},
    "combined": {"calibrated": True, "gate": True},  # the one in force
    "stacker": {"calibrated": True, "gate": False, "stacker": True},
    "stacker + gate": {"calibrated": True, "gate": True, "stacker": True},
}


def fit_params(
    rest: list[Example], labels: list[str], calibrated: bool = True, gate: bool = True, stacker: bool = False
) -> dict:
    """Calibration, per-label alpha and thresholds (or the stacker), then the gate, all from ``rest``'s
    out-of-fold scores."""
    platt = fit_platt(rest, labels) if calibrated else {}
    for e in rest:
        e.oof = calibrate(e.raw, platt)
    params = {**choose_params(rest, labels, calibrated), "platt": platt, "gate": None, "calibrated": calibrated}
    params["stacker"] = fit_stacker(rest, labels) if stacker else None
    if gate:
        params["gate"] = fit_gate(rest, labels, params)
    return params


def label_scores(e: Example, labels: list[str], params: dict) -> dict[str, float]:
    """Per label, the combined score before the gate: the hand mix, or the stacker's probability."""
    st = params.get("stacker")
    if st:
        return {lb: stacked(st[lb], stack_features(e.rules, e.oof, lb)) if lb in st else 0.0 for lb in labels}
    return {lb: e.combined(lb, params["alpha"][lb], params["calibrated"]) for lb in labels}


def thresholds_of(params: dict) -> dict[str, float]:
    st = params.get("stacker")
    return {lb: v["threshold"] for lb, v in st.items()} if st else params["thresholds"]


def predict_examples(val: list[Example], labels: list[str], params: dict) -> list[set[str]]:
    out = []
    thresholds = thresholds_of(params)
    for e in val:
        e.oof = calibrate(e.raw, params["platt"])
        g = None
        if params["gate"]:
            g = gate_value(params["gate"], gate_features(e.rules, {lb: e.oof[lb] for lb in labels}))
        thr = params["gate"]["threshold"] if params["gate"] else None
        scores = label_scores(e, labels, params)
        out.append({lb for lb in labels if lb in thresholds and gated(scores[lb], g, thr) >= thresholds[lb]})
    return out


def fit_stacker(examples: list[Example], labels: list[str], k_folds: int = K) -> dict[str, dict]:
    """Per label, a logistic regression over ``stack_features`` fitted on ``examples`` (their out-of-fold model
    scores), its threshold the one maximising F1 on the stacker's own out-of-fold probabilities (folds by act
    group), never on the probabilities of the data it was fitted on."""
    from sklearn.linear_model import LogisticRegression

    out = {}
    for lb in labels:
        known = [e for e in examples if lb in e.cats and lb in e.oof]
        x = [stack_features(e.rules, e.oof, lb) for e in known]
        y = [e.cats[lb] >= 0.5 for e in known]
        if len(set(y)) < 2:
            continue
        oof = _stacker_oof(x, y, [fold_of(e.group, k_folds) for e in known])
        final = _stack_fit(LogisticRegression, x, y)
        out[lb] = {**final, "threshold": choose(list(zip(oof, y, strict=True)))}
    return out


def _stacker_oof(x: list[list[float]], y: list[bool], fold: list[int]) -> list[float]:
    """The stacker's probability for each example from a stacker fitted on the other folds (0 when those have
    one class only)."""
    from sklearn.linear_model import LogisticRegression

    oof = [0.0] * len(x)
    for k in set(fold):
        fit_idx = [i for i, f in enumerate(fold) if f != k]
        if len({y[i] for i in fit_idx}) < 2:
            continue
        m = _stack_fit(LogisticRegression, [x[i] for i in fit_idx], [y[i] for i in fit_idx])
        for i, f in enumerate(fold):
            if f == k:
                oof[i] = stacked(m, x[i])
    return oof


def _stack_fit(cls: type, x: list[list[float]], y: list[bool]) -> dict:
    lr = cls(C=STACK_C, max_iter=1000).fit(x, y)
    return {"coef": [round(float(c), 6) for c in lr.coef_[0]], "intercept": round(float(lr.intercept_[0]), 6)}


STACK_C = 1.0  # the stacker's inverse regularisation (chosen in CV, docs/nlp.md)


def fold_report(rest: list[Example], val: list[Example], labels: list[str]) -> dict:
    items = [e.item for e in val]
    preds = {"rules": [{lb for lb in labels if e.rules[lb].score >= 0.5} for e in val]}
    for name, flags in VARIANTS.items():
        params = fit_params(rest, labels, **flags)
        preds[name] = predict_examples(val, labels, params)
        if name == "combined":
            preds["model"] = [{lb for lb in labels if e.oof[lb] >= params["model_thresholds"][lb]} for e in val]
    return {mode: metrics(items, p, labels).summary() for mode, p in preds.items()}


def variant_predictions(
    model: Model, items: list[Item], rules: RuleSet, labels: list[str]
) -> dict[str, list[set[str]]]:
    """Labels per item under each combination of ``VARIANTS`` (bench/nlp.py), from the model's raw scores."""
    exs = dataset_examples(items, labels, rules)
    for e, raw in zip(exs, model.predict_raw([parse_item(i) for i in items]), strict=True):
        e.raw = raw
    return {name: predict_examples(exs, labels, params) for name, params in model.meta.get("variants", {}).items()}


def fit_platt(examples: list[Example], labels: list[str]) -> dict[str, tuple[float, float]]:
    """Per label, Platt scaling of the out-of-fold scores: a logistic regression on their logit."""
    from sklearn.linear_model import LogisticRegression

    out = {}
    for lb in labels:
        known = [e for e in examples if lb in e.cats and lb in e.raw]
        y = [e.cats[lb] >= 0.5 for e in known]
        if len(set(y)) < 2:
            continue
        lr = LogisticRegression().fit([[logit(e.raw[lb])] for e in known], y)
        out[lb] = (round(float(lr.coef_[0][0]), 6), round(float(lr.intercept_[0]), 6))
    return out


GATE_THRESHOLDS = tuple(round(0.05 * i, 2) for i in range(19))  # 0 (no gate) .. 0.9
GATE_TOLERANCE = 0.01  # the strictest gate whose micro-F1 is within this of the best (chosen in CV, docs/nlp.md)


def fit_gate(examples: list[Example], labels: list[str], params: dict) -> dict | None:
    """Relevant (any label) vs not, trained on every labelled item, the near-misses included, from what the
    rules and the calibrated model say (``nlp.scoring.gate_features``). Its threshold is the highest whose
    micro-F1 on ``examples`` is within ``GATE_TOLERANCE`` of the best: no threshold raises F1 here, and the
    strictest that keeps it cuts false alerts."""
    from sklearn.linear_model import LogisticRegression

    known = [e for e in examples if e.item is not None]
    y = [bool(set(e.item.labels) & set(labels)) for e in known]
    if len(set(y)) < 2:
        return None
    x = [gate_features(e.rules, {lb: e.oof[lb] for lb in labels}) for e in known]
    lr = LogisticRegression().fit(x, y)
    gate = {"coef": [round(float(c), 6) for c in lr.coef_[0]], "intercept": round(float(lr.intercept_[0]), 6)}
    items = [e.item for e in known]
    f1 = {}
    for t in GATE_THRESHOLDS:
        preds = predict_examples(known, labels, {**params, "gate": {**gate, "threshold": t}})
        f1[t] = metrics(items, preds, labels).micro_f1
    best = max(f1.values())
    return {**gate, "threshold": max(t for t, f in f1.items() if f >= best - GATE_TOLERANCE)}


def train(
    settings: Settings,
    extra: Sequence[Item] = (),
    progress: Callable[[str], None] = log.info,
    k_folds: int = K,
    epochs: int | None = None,
    holdout: bool = False,
) -> Path:
    """Train and install a model. ``holdout=False`` (production) learns from the whole shipped set, the extra
    items and the feedback; ``holdout=True`` keeps the held-out split out, so that `veille eval` on the
    shipped set and bench/nlp.py measure it honestly."""
    from core.profiles import load_labels

    labels = list(load_labels(settings))
    dataset = profile_dataset(settings)  # the profile's own labelled set, never another profile's
    rules = active_rules(settings)
    items = training_items(extra, holdout, dataset)
    examples = dataset_examples(items, labels, rules) + feedback_examples(settings, labels, rules)
    if len({e.id for e in examples}) < 10:
        raise ValueError("trop peu d'exemples pour entraîner (il en faut au moins 10)")
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    digest = hashlib.sha256("\n".join(sorted(e.id for e in examples)).encode()).hexdigest()[:6]
    version = f"m{stamp}-{digest}"
    home = model_home(settings)
    out = home / version
    tmp = home / f".tmp-{version}"
    phrases = rule_examples(rules, labels)
    cv = cross_validate(examples, labels, tmp, progress, k_folds, epochs, always=phrases)
    variants = {name: fit_params(examples, labels, **flags) for name, flags in VARIANTS.items()}
    params = {k: v for k, v in variants["combined"].items() if k != "calibrated"}
    progress(f"modèle final : entraînement sur {len(examples)} exemples et {len(phrases)} expressions des règles")
    fit(examples + phrases, labels, out / "pipeline", epochs=epochs)
    shutil.rmtree(tmp, ignore_errors=True)
    meta = {
        "version": version,
        "created": datetime.now(UTC).isoformat(),
        "labels": labels,
        "profile": settings.profile,
        "dataset": str(dataset),
        "rules_version": rules.version,
        "holdout": holdout,
        "train_ids": sorted(e.id for e in examples),
        "n_feedback": sum(e.item is None for e in examples),
        "n_rule_phrases": len(phrases),
        "cv": cv,
        "oof": {e.id: e.raw for e in examples},  # out-of-fold raw scores: bench/nlp_cv.py --oof compares on them
        "variants": variants,  # the combinations compared in bench/nlp.py, each fitted like the one in force
        **params,
    }
    (out / "veille_meta.json").write_text(json.dumps(meta, indent=1, ensure_ascii=False), encoding="utf-8")
    (home / CURRENT).write_text(version + "\n", encoding="utf-8")
    return out
