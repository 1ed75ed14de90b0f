"""5-fold CV over the train split, without the final model or the held-out split: the figures docs/nlp.md
gives for each model and combination tried.

    python bench/nlp_cv.py [CONFIG] [--epochs N] [--vectors DIR] [--save-oof FILE]
    python bench/nlp_cv.py --oof FILE [--errors]       # from saved out-of-fold scores: no training
    python bench/nlp_cv.py --oof MODEL/veille_meta.json  # those of a model trained with --holdout

``--save-oof`` keeps each train item's out-of-fold model scores (raw), so that the combinations (calibration,
gate, stacker, thresholds) and rule changes can be compared again in seconds; the model scores then stay those
of the saved run (the rules' phrases, which train the model, are those of that run).
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
os.environ.setdefault("VEILLE_HOME", tempfile.mkdtemp(prefix="veille-cv-"))

from core.config import load_settings  # noqa: E402
from core.profiles import load_labels  # noqa: E402
from nlp import train as T  # noqa: E402
from nlp.rules import active_rules  # noqa: E402


def _use_vectors(vectors: Path) -> None:
    """Static vectors: in the training config, and in the vocab every doc is built in."""
    from spacy.vectors import Vectors

    from nlp.text import blank_nlp

    cfg = Path(tempfile.mkdtemp()) / "config.cfg"
    cfg.write_text(T.CONFIG.read_text().replace("vectors = null", f'vectors = "{vectors.resolve()}"', 1))
    T.CONFIG = cfg
    blank_nlp().vocab.vectors = Vectors().from_disk(vectors / "vocab")


def print_errors(examples: list[T.Example], labels: list[str], k_folds: int = T.K) -> None:
    """Each fold's wrong item-label pairs under the combination in force, with what the rules found."""
    for k in range(k_folds):
        rest = [e for e in examples if T.fold_of(e.group, k_folds) != k]
        val = [e for e in examples if T.fold_of(e.group, k_folds) == k and e.item is not None]
        params = T.fit_params(rest, labels)
        for e, pred in zip(val, T.predict_examples(val, labels, params), strict=True):
            gold = set(e.item.labels) & set(labels)
            for lb in sorted(pred ^ gold):
                kind = "FP" if lb in pred else "FN"
                nm = " near-miss" if e.item.near_miss else ""
                fired = [(f["rule"], f["field"], f["weight"]) for f in e.rules[lb].fired]
                print(f"{kind} {lb:14s} rule {e.rules[lb].score:.2f} model {e.oof[lb]:.2f}{nm} | {e.item.title[:110]}")
                print(f"     {fired[:4]}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("config", nargs="?", type=Path, default=T.CONFIG, help="spaCy training config")
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--vectors", type=Path, default=None, help="static vectors (bench/stem_vectors.py)")
    ap.add_argument("--save-oof", type=Path, default=None, help="write the out-of-fold raw scores here")
    ap.add_argument("--oof", type=Path, default=None, help="read out-of-fold raw scores instead of training")
    ap.add_argument("--errors", action="store_true", help="list the CV false positives and negatives")
    a = ap.parse_args()
    T.CONFIG = a.config.resolve()
    if a.vectors:
        _use_vectors(a.vectors)
    settings = load_settings()
    labels, rules = list(load_labels(settings)), active_rules(settings)
    examples = T.dataset_examples(T.training_items([], holdout=True), labels, rules)
    if a.oof:
        saved = json.loads(a.oof.read_text(encoding="utf-8"))
        saved = saved.get("oof", saved)  # a model's veille_meta.json, or a file of --save-oof
        for e in examples:
            e.raw = saved[e.id]
        cv = T.cv_reports(examples, labels)
    else:
        always = T.rule_examples(rules, labels)
        cv = T.cross_validate(examples, labels, Path(tempfile.mkdtemp()), print, always=always, epochs=a.epochs)
    if a.save_oof:
        a.save_oof.write_text(json.dumps({e.id: e.raw for e in examples}), encoding="utf-8")
    for mode in cv[0]:
        figs = [(f[mode]["micro_f1"], f[mode]["near_miss_fp_rate"], f[mode]["false_alerts_per_100"]) for f in cv]
        mi, nm, fa = (mean(x) for x in zip(*figs, strict=True))
        print(f"{mode:34s} micro-F1 {mi:.3f}  near-miss FP {nm:.3f}  false alerts / 100 {fa:.1f}")
    if a.errors:
        print_errors(examples, labels)


if __name__ == "__main__":
    main()
