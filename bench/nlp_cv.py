"""5-fold CV over the train split for another spaCy training config, without the final model or the
held-out split: the figures docs/nlp.md gives for the models tried.

    python bench/nlp_cv.py bench/data/config_ensemble.cfg [EPOCHS]
    python bench/nlp_cv.py bench/data/config_static_vectors.cfg 0 VECTORS_DIR   # bench/stem_vectors.py
"""

from __future__ import annotations

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


def main() -> None:
    T.CONFIG = Path(sys.argv[1]).resolve()
    epochs = int(sys.argv[2]) if len(sys.argv) > 2 and sys.argv[2] != "0" else None
    if len(sys.argv) > 3:  # static vectors: in the training config, and in the vocab every doc is built in
        from spacy.vectors import Vectors

        from nlp.text import blank_nlp

        cfg = Path(tempfile.mkdtemp()) / "config.cfg"
        vectors = Path(sys.argv[3]).resolve()
        cfg.write_text(T.CONFIG.read_text().replace("vectors = null", f'vectors = "{vectors}"', 1))
        T.CONFIG = cfg
        blank_nlp().vocab.vectors = Vectors().from_disk(vectors / "vocab")
    settings = load_settings()
    labels, rules = list(load_labels(settings)), active_rules(settings)
    examples = T.dataset_examples(T.training_items([], holdout=True), labels, rules)
    cv = T.cross_validate(
        examples, labels, Path(tempfile.mkdtemp()), print, always=T.rule_examples(rules, labels), epochs=epochs
    )
    for mode in cv[0]:
        figs = [(f[mode]["micro_f1"], f[mode]["near_miss_fp_rate"], f[mode]["false_alerts_per_100"]) for f in cv]
        mi, nm, fa = (mean(x) for x in zip(*figs, strict=True))
        print(f"{mode:34s} micro-F1 {mi:.3f}  near-miss FP {nm:.3f}  false alerts / 100 {fa:.1f}")


if __name__ == "__main__":
    main()
