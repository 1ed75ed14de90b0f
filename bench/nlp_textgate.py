"""Experiment (issue 23): a text relevance model (relevant vs not, TF-IDF over stem uni+bigrams + logistic
regression) as the relevance gate's 5th feature, or as the gate alone, compared in 5-fold CV over the train split.

    python bench/nlp_textgate.py --oof FILE [--C 1 3] [--min-df 1] [--phrases]
        # FILE: saved out-of-fold model scores (bench/nlp_cv.py --save-oof)

Rows: the gate over its 4 score features (in force), over those + the text model's probability, over the text
model's probability alone, and no gate with the text model (p >= 0.5) as a hard relevance filter.

Its score is out of fold wherever the gate is fitted: in each CV fold, the gate's training items get the text
model's probability from inner folds (by act group) over the other folds, and the fold's items from a text model
fitted on all the other folds. The held-out split is never read.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from statistics import mean

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("VEILLE_HOME", tempfile.mkdtemp(prefix="veille-textgate-"))

from core.config import load_settings  # noqa: E402
from core.profiles import load_labels  # noqa: E402
from nlp import train as T  # noqa: E402
from nlp.dataset import fold_of  # noqa: E402
from nlp.evaluate import metrics  # noqa: E402
from nlp.rules import active_rules  # noqa: E402
from nlp.scoring import gate_features  # noqa: E402
from nlp.text import SEP  # noqa: E402

REL: dict[int, float] = {}  # id(example.rules) -> the text model's probability, out of fold for the gate's items
MODE = {"gate": "scores"}  # scores | scores+text | text
NAMES = {
    "scores": "gate: 4 score features (in force)",
    "scores+text": "gate: + text model",
    "text": "gate: text model alone",
}


def ngrams(text: str) -> list[str]:
    """Unigrams and bigrams of stems within each field (no bigram across the field separator)."""
    out: list[str] = []
    for part in text.split(SEP):
        w = part.split()
        out += w
        out += [f"{a} {b}" for a, b in zip(w, w[1:], strict=False)]
    return out


def fit_text(texts: list[str], y: list[bool], c: float, min_df: int):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    vec = TfidfVectorizer(analyzer=ngrams, sublinear_tf=True, min_df=min_df, lowercase=False)
    return make_pipeline(vec, LogisticRegression(C=c, class_weight="balanced", max_iter=2000)).fit(texts, y)


def relevant(e: T.Example) -> bool:
    return any(v >= 0.5 for v in e.cats.values())


PHRASES: list[T.Example] = []  # --phrases: the rules' phrases as extra training texts (positive rule: relevant)


def set_text_scores(rest: list[T.Example], val: list[T.Example], c: float, min_df: int, k_folds: int = T.K) -> None:
    """REL for ``rest`` from inner folds (the outer fold's items are absent: k-1 inner folds) and for ``val``
    from a model fitted on all of ``rest``."""
    inner = {fold_of(e.group, k_folds) for e in rest}
    for j in inner:
        fit_on = [e for e in rest if fold_of(e.group, k_folds) != j] + PHRASES
        score = [e for e in rest if fold_of(e.group, k_folds) == j]
        m = fit_text([e.text for e in fit_on], [relevant(e) for e in fit_on], c, min_df)
        for e, p in zip(score, m.predict_proba([e.text for e in score])[:, 1], strict=True):
            REL[id(e.rules)] = float(p)
    m = fit_text([e.text for e in rest + PHRASES], [relevant(e) for e in rest + PHRASES], c, min_df)
    for e, p in zip(val, m.predict_proba([e.text for e in val])[:, 1], strict=True):
        REL[id(e.rules)] = float(p)


def features(by_label, cats):  # replaces nlp.train.gate_features
    base = gate_features(by_label, cats)
    if MODE["gate"] == "scores":
        return base
    rel = REL[id(by_label)]
    return [*base, rel] if MODE["gate"] == "scores+text" else [rel]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--oof", type=Path, required=True)
    ap.add_argument("--C", type=float, nargs="*", default=[1.0])
    ap.add_argument("--min-df", type=int, default=1)
    ap.add_argument("--phrases", action="store_true", help="the rules' phrases join the text model's training")
    a = ap.parse_args()
    settings = load_settings()
    labels, rules = list(load_labels(settings)), active_rules(settings)
    examples = T.dataset_examples(T.training_items([], holdout=True), labels, rules)
    saved = json.loads(a.oof.read_text(encoding="utf-8"))
    saved = saved.get("oof", saved)
    for e in examples:
        e.raw = saved[e.id]
    T.gate_features = features
    if a.phrases:
        PHRASES.extend(T.rule_examples(rules, labels))
    for c in a.C:
        rows: dict[str, list[tuple[float, float, float]]] = {}
        text_alone: list[tuple[float, float, float]] = []
        for k in range(T.K):
            rest = [e for e in examples if fold_of(e.group, T.K) != k]
            val = [e for e in examples if fold_of(e.group, T.K) == k]
            set_text_scores(rest, val, c, a.min_df)
            items = [e.item for e in val]
            # the text model alone as a relevance filter: every label the in-force combination selects, kept
            # only where the text model says relevant (p >= 0.5)
            for mode in ("scores", "scores+text", "text"):
                MODE["gate"] = mode
                params = T.fit_params(rest, labels)
                m = metrics(items, T.predict_examples(val, labels, params), labels).summary()
                rows.setdefault(mode, []).append((m["micro_f1"], m["near_miss_fp_rate"], m["false_alerts_per_100"]))
                if mode == "scores":
                    preds = T.predict_examples(val, labels, {**params, "gate": None})
                    preds = [p if REL[id(e.rules)] >= 0.5 else set() for e, p in zip(val, preds, strict=True)]
                    m = metrics(items, preds, labels).summary()
                    text_alone.append((m["micro_f1"], m["near_miss_fp_rate"], m["false_alerts_per_100"]))
                print(f"C={c} fold {k} {mode:12s} gate {params['gate']}", file=sys.stderr)
        rows = {NAMES[k]: v for k, v in rows.items()} | {"no gate, text model >= 0.5 as a filter": text_alone}
        for name, figs in rows.items():
            mi, nm, fa = (mean(x) for x in zip(*figs, strict=True))
            print(f"C={c:<5} {name:40s} micro-F1 {mi:.3f}  near-miss FP {nm:.3f}  false alerts / 100 {fa:.1f}")


if __name__ == "__main__":
    main()
