"""nlp benchmarks: quality vs. baselines on the held-out split, classify throughput, backtest time.

    python bench/nlp.py [--quick] [--notices 100000]

Prints figures only (no assertions). Uses a throwaway VEILLE_HOME. One core: run with
``taskset -c 0`` for the throughput figure if the machine has more.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("VEILLE_HOME", tempfile.mkdtemp(prefix="veille-bench-"))

from nlp.dataset import DEV_SET, Item, folds, load_dataset, split  # noqa: E402
from nlp.evaluate import evaluate, metrics, spread  # noqa: E402
from storage.textnorm import strip_accents  # noqa: E402

SEEDS = json.loads((Path(__file__).parent / "data" / "seed_phrases.json").read_text(encoding="utf-8"))


def _plain(text: str) -> str:
    return " " + " ".join(re.findall(r"[^\W_]+", strip_accents(text.lower()))) + " "


def seed_baseline(items: list[Item]) -> list[set[str]]:
    """Taxonomy seed phrases as plain accent-insensitive phrase rules; negative cues veto everything."""
    seeds = {lb: [_plain(p) for p in ps] for lb, ps in SEEDS["seeds"].items()}
    negs = [_plain(p) for p in SEEDS["negatives"]]
    out = []
    for it in items:
        text = _plain(f"{it.title} {it.summary}")
        if any(n in text for n in negs):
            out.append(set())
        else:
            out.append({lb for lb, ps in seeds.items() if any(p in text for p in ps)})
    return out


def tfidf_baseline(train: list[Item], test: list[Item], labels: list[str]) -> list[set[str]]:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import FeatureUnion

    vec = FeatureUnion(
        [
            ("w", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)),
            ("c", TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True, min_df=2)),
        ]
    )
    texts = lambda items: [f"{i.title} {i.summary}" for i in items]  # noqa: E731
    x = vec.fit_transform(texts(train))
    y = [[int(lb in i.labels) for lb in labels] for i in train]
    clf = OneVsRestClassifier(LogisticRegression(max_iter=2000, class_weight="balanced")).fit(x, y)
    pred = clf.predict(vec.transform(texts(test)))
    return [{lb for lb, v in zip(labels, row, strict=True) if v} for row in pred]


def bootstrap(items: list[Item], preds: list[set[str]], labels: list[str], n: int = 1000) -> str:
    """2.5th-97.5th percentile of micro-F1 over resamples of the items (with replacement)."""
    rng = random.Random(7)
    idx = range(len(items))
    values = []
    for _ in range(n):
        pick = [rng.choice(idx) for _ in idx]
        values.append(metrics([items[i] for i in pick], [preds[i] for i in pick], labels).micro_f1)
    values.sort()
    return f"[{values[int(0.025 * n)]:.3f}, {values[int(0.975 * n) - 1]:.3f}]"


def wilson(k: int, n: int, z: float = 1.96) -> str:
    """95 % Wilson score interval of a proportion k/n (sound for small n, unlike k/n ± 2 s.e.)."""
    p, d = k / n, 1 + z * z / n
    mid, half = (p + z * z / (2 * n)) / d, z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return f"[{max(0.0, mid - half):.3f}, {min(1.0, mid + half):.3f}]"


def _row(name: str, items: list[Item], preds: list[set[str]], labels: list[str]) -> str:
    m = metrics(items, preds, labels)
    near = [i for i, it in enumerate(items) if it.near_miss]
    k = sum(bool(preds[i]) for i in near)
    per = " ".join(f"{m.per_label[lb].f1:5.2f}" for lb in labels)
    return (
        f"{name:44s} {m.micro_f1:6.3f} {bootstrap(items, preds, labels):16s} {m.macro_f1:6.3f} "
        f"{m.relevant_accuracy:7.3f} {k:2d}/{len(near)} {wilson(k, len(near)):16s} {m.false_alerts_per_100:6.1f}  {per}"
    )


def quality(quick: bool) -> None:
    from core.config import load_settings
    from nlp.rules import active_rules
    from nlp.scoring import load_model
    from nlp.train import VARIANTS, train, variant_predictions

    settings = load_settings()
    items = load_dataset(DEV_SET)
    tr, te = split(items)
    labels = list(SEEDS["seeds"])
    k_folds = 2 if quick else 5
    t = time.perf_counter()
    model_dir = train(settings, k_folds=k_folds, progress=lambda m: None, holdout=True)
    print(f"\ntraining on the train split ({len(tr)} items; CV + final model): {time.perf_counter() - t:.1f} s")
    rules, model = active_rules(settings), load_model(settings)
    ev = evaluate(te, rules, model)
    variants = variant_predictions(model, te, rules, labels)
    if variants["combined"] != ev.predictions["combined"]:
        print("!! the scoring path and the bench's combination disagree")
    print(f"\n== held-out split: {len(te)} items, {sum(i.near_miss for i in te)} near-misses; nothing tuned on them")
    head = f"{'method':44s} {'micro':>6s} {'95% bootstrap':16s} {'macro':>6s} {'rel.acc':>7s} {'NM-FP':>5s} "
    head += f"{'95% Wilson':16s} {'FA/100':>6s}  " + " ".join(f"{lb[:5]:>5s}" for lb in labels)
    print(head)
    rows = {
        "seed phrases (baseline)": seed_baseline(te),
        "TF-IDF + LR (baseline)": tfidf_baseline(tr, te, labels),
        "rules alone": ev.predictions["rules"],
        "model alone (calibrated)": ev.predictions["model"],
        **{("rules + model: " + n if n != "combined" else "rules + model (in force)"): p for n, p in variants.items()},
    }
    for name, preds in rows.items():
        print(_row(name, te, preds, labels))
    print("  (uncalibrated, no gate = the combination before; + calibration includes the rule-evidence requirement;")
    print("   stacker: a per-label logistic regression over the rule and model evidence, instead of a and thresholds)")
    meta = json.loads((model_dir / "veille_meta.json").read_text())
    print(f"gate in force: {meta['gate']}")
    print(f"\n== {k_folds}-fold CV over the train split (by act group; thresholds chosen on the other folds)")
    print(f"{'method':44s} {'micro mean ± sd (min, max)':40s} {'NM-FP mean':>10s} {'FA/100 mean':>11s}")
    cv_rows: dict[str, list[dict]] = {}
    for fit_items, val in folds(tr, k_folds):
        for name, preds in (
            ("seed phrases (baseline)", seed_baseline(val)),
            ("TF-IDF + LR (baseline)", tfidf_baseline(fit_items, val, labels)),
        ):
            cv_rows.setdefault(name, []).append(metrics(val, preds, labels).summary())
    modes = ["rules", "model", *VARIANTS]
    for mode in modes:
        cv_rows["rules + model: " + mode if mode in VARIANTS else mode] = [f[mode] for f in meta["cv"]]
    for name, fs in cv_rows.items():
        nm = [f["near_miss_fp_rate"] for f in fs if f["near_miss_fp_rate"] is not None]
        fa = [f["false_alerts_per_100"] for f in fs]
        mi = [f["micro_f1"] for f in fs]
        print(f"{name:44s} {spread(mi):40s} {sum(nm) / len(nm):10.3f} {sum(fa) / len(fa):11.1f}")
    print("  (the rules were written while reading the train split, so their CV figures are optimistic)")
    import nlp_stream  # bench/nlp_stream.py: real items taken unselected from recorded sources

    print("\n(the model above, trained on the train split; bench/nlp_stream.py trains the production one)")
    nlp_stream.report(rules, model)


# -- synthetic notices ------------------------------------------------------------------------------


def vocabulary() -> tuple[list[str], list[str]]:
    en, fr = [], []
    for it in load_dataset(DEV_SET):
        words = re.findall(r"[^\W_]+", f"{it.title} {it.summary}")
        (fr if it.lang == "fr" else en).extend(words)
    return en, fr


# Real EuroVoc descriptors (Cellar gives 3-10 per act, in English and French): the subject field.
EUROVOC = [
    "public health", "medical device", "financial services", "financial legislation", "data protection",
    "artificial intelligence", "santé publique", "dispositif médical", "services financiers", "marché intérieur",
    "consumer protection", "pharmaceutical product", "produit pharmaceutique", "internal market", "competition",
]  # fmt: skip


def synthetic(n: int, seed: int = 7) -> list[SimpleNamespace]:
    rnd = random.Random(seed)
    en, fr = vocabulary()
    out = []
    for i in range(n):
        words = fr if i % 3 == 0 else en
        lang = "fr" if i % 3 == 0 else "en"
        title = " ".join(rnd.choices(words, k=rnd.randint(10, 25)))
        summary = " ".join(rnd.choices(words, k=rnd.randint(20, 40)))
        body = " ".join(rnd.choices(words, k=400))[:2000]
        out.append(
            SimpleNamespace(
                id=i + 1,
                source="bench",
                kind="act",
                doc_type="REG",
                celex=None,
                lang=lang,
                legal_basis=[],
                related_acts=[],
                eurovoc=rnd.sample(EUROVOC, rnd.randint(3, 8)),
                body=body,
                content_hash=f"h{i}",
                title_en=title if lang == "en" else None,
                title_fr=title if lang == "fr" else None,
                summary_en=summary if lang == "en" else None,
                summary_fr=summary if lang == "fr" else None,
            )
        )
    return out


def throughput(n: int) -> None:
    from core.config import load_settings
    from nlp.rules import active_rules
    from nlp.scoring import Model, gc_paused, load_model, score_parsed
    from nlp.text import blank_nlp, parse_notice

    settings = load_settings()
    if load_model(settings) is None:  # --skip quality: the model it trains is not there yet
        from nlp.train import train

        train(settings)
    rules, model = active_rules(settings), load_model(settings)
    blank_nlp()
    notices = synthetic(n, seed=11)
    print(f"\n== classify throughput ({n} synthetic notices: title + summary + 2,000 chars of body, one process)")
    print(f"model {model.version if model else '-'}; warm: median of 3 passes over the same words [min, max]")

    cpu: dict[str, list[float]] = {"rules only": [], "rules + model": []}

    def rate(m: Model | None) -> float:
        t, c = time.perf_counter(), time.process_time()
        with gc_paused():  # as classify() runs its batches
            score_parsed(rules, m, [parse_notice(x) for x in notices])
        cpu["rules + model" if m else "rules only"].append(n / (time.process_time() - c))
        return n / (time.perf_counter() - t)

    cold = {"rules only": rate(None), "rules + model": rate(model)}  # first pass: new words to stem
    warm: dict[str, list[float]] = {"rules only": [], "rules + model": []}
    for _ in range(3):  # interleaved, so that a slow spell of the host hits both
        warm["rules only"].append(rate(None))
        warm["rules + model"].append(rate(model))
    for what in cold:
        w, c = sorted(warm[what]), sorted(cpu[what][1:])
        print(
            f"{what}: cold {cold[what]:,.0f} notices/s; warm {w[1]:,.0f} [{w[0]:,.0f}, {w[2]:,.0f}] notices/s "
            f"(per CPU second, warm: {c[1]:,.0f}; the figure to compare when the host is busy)"
        )
    print(f"(load average {os.getloadavg()[0]:.1f})")


def backtest_bench(n: int) -> None:
    from datetime import UTC, datetime

    from sqlalchemy import insert

    from core.config import load_settings
    from nlp.backtest import backtest
    from nlp.classify import classify
    from nlp.rules import rules_path
    from storage.db import open_archive
    from storage.models import Notice

    settings = load_settings()
    url = f"sqlite:///{settings.home / 'bench-backtest.db'}"
    engine = open_archive(url)
    now = datetime.now(UTC)
    print(f"\n== backtest over {n:,} synthetic notices (vocabulary from real titles)")
    t = time.perf_counter()
    rows = []
    for x in synthetic(n):
        d = {
            k: getattr(x, k)
            for k in (
                "source",
                "kind",
                "doc_type",
                "lang",
                "title_en",
                "title_fr",
                "summary_en",
                "summary_fr",
                "body",
                "content_hash",
                "legal_basis",
                "related_acts",
            )
        }
        rows.append(d | {"eurovoc": x.eurovoc, "extra": {}, "version": 1, "first_seen": now, "updated_at": now})
    with engine.begin() as conn:
        for i in range(0, len(rows), 5000):
            conn.execute(insert(Notice), rows[i : i + 5000])
    print(f"archive filled in {time.perf_counter() - t:.1f} s")
    text = rules_path(settings).read_text(encoding="utf-8")
    t = time.perf_counter()
    res = backtest(engine, settings, text)
    print(f"first backtest (cold: tokenises and caches the archive): {time.perf_counter() - t:.1f} s")
    cand = text.replace("en: [global health,", "en: [health technology, global health,", 1)
    assert cand != text
    times = []
    for _ in range(3):
        t = time.perf_counter()
        res = backtest(engine, settings, cand)
        times.append(time.perf_counter() - t)
    gained = res.labels["international"].counts
    print(
        f"one-phrase change, warm cache: {min(times):.2f} s best / {max(times):.2f} s worst of 3; "
        f"{res.rescored:,} notices re-scored; international +{gained[0]} -{gained[1]}"
    )
    cand2 = text.replace("  threshold: 0.5\n", "  threshold: 0.55\n", 1)
    t = time.perf_counter()
    res = backtest(engine, settings, cand2)
    # No notice here has stored scores yet: every one is re-scored (once: the rules are the same).
    print(
        f"threshold change, no stored scores (re-scores everything): {time.perf_counter() - t:.1f} s, "
        f"{res.rescored:,} re-scored"
    )
    # The stored-scores path, as for an archive scored before any model was trained.
    rules_only = settings.model_copy(update={"models_dir": str(settings.home / "no-model")})
    t = time.perf_counter()
    stats = classify(engine, rules_only)
    print(f"classify --all, rules only (stores {stats.rows:,} label scores): {time.perf_counter() - t:.1f} s")
    t = time.perf_counter()
    res = backtest(engine, rules_only, cand2)
    lost = sum(d.counts[1] for d in res.labels.values())
    print(
        f"threshold change, archive scored with the current rules (read from stored scores): "
        f"{time.perf_counter() - t:.2f} s, {res.rescored:,} re-scored, {lost:,} selections lost"
    )


def classify_memory(sizes: tuple[int, ...]) -> None:
    """Python heap peak of classify() over archives of notices with 200,000-character bodies (the ingest
    cap): it loads a batch of notices at a time, so the peak should not grow with the archive."""
    import tracemalloc
    from datetime import UTC, datetime

    from sqlalchemy import insert

    from core.config import load_settings
    from nlp.classify import classify
    from storage.db import open_archive
    from storage.models import Notice

    settings = load_settings()
    print("\n== classify memory (notices with 200,000-character bodies)")
    body = ("medicinal products for human use, patients and hospitals; " * 4000)[:200_000]
    now = datetime.now(UTC)
    for n in sizes:
        engine = open_archive(f"sqlite:///{settings.home / f'bench-memory-{n}.db'}")
        with engine.begin() as conn:
            for start in range(0, n, 500):
                rows = [
                    {
                        "source": "bench",
                        "kind": "act",
                        "lang": "en",
                        "title_en": f"Regulation {i} on medicines",
                        "body": body,
                        "content_hash": f"h{i}",
                        "legal_basis": [],
                        "related_acts": [],
                        "eurovoc": [],
                        "extra": {},
                        "version": 1,
                        "first_seen": now,
                        "updated_at": now,
                    }
                    for i in range(start, min(n, start + 500))
                ]
                conn.execute(insert(Notice), rows)
        tracemalloc.start()
        t = time.perf_counter()
        classify(engine, settings)
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        print(
            f"{n:,} notices: classify --all {time.perf_counter() - t:.1f} s (traced), Python heap peak {peak:,.0f} MiB"
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="2-fold CV, 20k notices for the backtest")
    ap.add_argument("--notices", type=int, default=None)
    ap.add_argument("--skip", nargs="*", default=[], choices=["quality", "throughput", "backtest", "memory"])
    ap.add_argument("--config", type=Path, default=None, help="another spaCy training config (bench/data/...)")
    ap.add_argument("--vectors", type=Path, default=None, help="a static vectors pipeline (bench/stem_vectors.py)")
    a = ap.parse_args()
    print(f"VEILLE_HOME={os.environ['VEILLE_HOME']}")
    if a.config:
        import nlp.train

        nlp.train.CONFIG = a.config.resolve()
        print(f"model config: {a.config}")
    if a.vectors:  # static vectors: in the training config, and in the vocab every doc is built in
        from spacy.vectors import Vectors

        import nlp.train
        from nlp.text import blank_nlp

        cfg = Path(os.environ["VEILLE_HOME"]) / "config_vectors.cfg"
        cfg.parent.mkdir(parents=True, exist_ok=True)
        text = nlp.train.CONFIG.read_text(encoding="utf-8")
        cfg.write_text(text.replace("vectors = null", f'vectors = "{a.vectors.resolve()}"', 1), encoding="utf-8")
        nlp.train.CONFIG = cfg
        blank_nlp().vocab.vectors = Vectors().from_disk(a.vectors / "vocab")
        print(f"static vectors: {a.vectors}")
    if "quality" not in a.skip:
        quality(a.quick)
    if "throughput" not in a.skip:
        throughput(2000 if a.quick else 5000)
    if "backtest" not in a.skip:
        backtest_bench(a.notices or (20_000 if a.quick else 100_000))
    if "memory" not in a.skip:
        classify_memory((500, 1000) if a.quick else (1000, 4000))


if __name__ == "__main__":
    main()
