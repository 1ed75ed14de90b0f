"""The classifier on the stream set: real items taken unselected from recorded feeds and registers.

    python bench/nlp_stream.py [--holdout] [--k-folds 5] [--model DIR] [--half tune|check|both] [--errors]

Trains a model in a throwaway VEILLE_HOME as ``veille train`` does for production (every label of the
shipped set; ``--holdout``: the train split only, as bench/nlp.py), or loads ``--model DIR`` (a
``<models>/<profile>/<version>`` directory), then scores ``nlp/data/stream_sample.jsonl`` half by half:
false alerts per 100 items, near-misses selected, relevant items caught, labels raised. ``--errors``
lists the false alerts of the TUNE half only: the check half is reported, never read for a choice.
Prints figures only (no assertions).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # before bench/, whose nlp.py would shadow the package
os.environ.setdefault("VEILLE_HOME", tempfile.mkdtemp(prefix="veille-bench-stream-"))

from nlp.dataset import DATA_DIR, Item, load_dataset  # noqa: E402
from nlp.evaluate import evaluate, metrics  # noqa: E402

STREAM = DATA_DIR / "stream_sample.jsonl"


def halves(items: list[Item], path: Path = STREAM) -> dict[str, list[Item]]:
    """The halves fixed when the set was drawn (each line's ``split`` field, set by bench/stream_draw.py)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    side = {d["id"]: d["split"] for d in map(json.loads, filter(str.strip, lines))}
    out: dict[str, list[Item]] = {"tune": [], "check": []}
    for it in items:
        out[side[it.id]].append(it)
    return out


def stream_figures(items: list[Item], preds: list[set[str]], labels: list[str]) -> dict:
    """False alerts per 100 items, near-misses selected, relevant items caught, and labels raised."""
    m = metrics(items, preds, labels)
    relevant = [i for i, it in enumerate(items) if it.labels]
    caught = sum(bool(preds[i] & set(items[i].labels)) for i in relevant)
    raised = Counter(lb for p in preds for lb in p)
    wrong = Counter(lb for it, p in zip(items, preds, strict=True) for lb in p - set(it.labels))
    return {
        "n": len(items),
        "false_alerts_per_100": m.false_alerts_per_100,
        "false_alerts": sum(wrong.values()),
        "items_alerted_wrongly": sum(bool(p - set(it.labels)) for it, p in zip(items, preds, strict=True)),
        "near_miss": (sum(bool(preds[i]) for i, it in enumerate(items) if it.near_miss), m.n_near_miss),
        "caught": (caught, len(relevant)),
        "raised": dict(raised),
        "wrong": dict(wrong),
    }


def _line(name: str, f: dict) -> str:
    nm, caught = f["near_miss"], f["caught"]
    wrong = " ".join(f"{lb}:{n}" for lb, n in sorted(f["wrong"].items())) or "-"
    return (
        f"{name:46s} {f['n']:4d} {f['false_alerts_per_100']:7.1f} {f['false_alerts']:5d} "
        f"{nm[0]:>3d}/{nm[1]:<3d} {caught[0]:>3d}/{caught[1]:<3d}  {wrong}"
    )


def load_or_train(model_dir: Path | None, holdout: bool, k_folds: int):
    from core.config import load_settings
    from nlp.rules import active_rules
    from nlp.scoring import load_model, load_model_dir
    from nlp.train import train

    settings = load_settings()
    if model_dir is None:
        t = time.perf_counter()
        model_dir = train(settings, k_folds=k_folds, progress=lambda m: None, holdout=holdout)
        which = "train split only (--holdout)" if holdout else "every label of the shipped set (as `veille train`)"
        print(f"model trained on {which}, {k_folds}-fold CV for its parameters: {time.perf_counter() - t:.0f} s")
        model = load_model(settings)
    else:
        model = load_model_dir(model_dir)
    print(f"model: {model_dir}")
    return active_rules(settings), model


def report(rules, model, half: str = "both", errors: bool = False) -> None:
    """Print the stream figures of the rules in force and ``model`` (None: the rules alone), half by half."""
    from nlp.train import variant_predictions

    items = load_dataset(STREAM)
    labels = list(rules.labels)
    print(f"\n== stream set {STREAM.relative_to(ROOT)}: {len(items)} items")
    head = f"{'half / combination':46s} {'n':>4s} {'FA/100':>7s} {'FA':>5s} {'NM sel':>7s} {'caught':>7s}"
    print(head + "  false alerts by label")
    for name, part in halves(items).items():
        if half not in (name, "both"):
            continue
        ev = evaluate(part, rules, model)
        rows = {"rules alone": ev.predictions["rules"]}
        if model is not None:
            rows["model alone (calibrated)"] = ev.predictions["model"]
            rows["rules + model (in force)"] = ev.predictions["combined"]
            for vname, preds in variant_predictions(model, part, rules, labels).items():
                if vname != "combined":
                    rows["  variant: " + vname] = preds
        for row, preds in rows.items():
            print(_line(f"{name}: {row}", stream_figures(part, preds, labels)))
        if errors and name == "tune":
            preds = ev.predictions["combined" if model is not None else "rules"]
            for it, p, sc in zip(part, preds, ev.scores, strict=True):
                for lb in sorted(p - set(it.labels)):
                    s = sc[lb]
                    fired = ", ".join(f"{f['rule']}@{f['field']}" for f in s.fired if f["label"] == lb)[:120]
                    print(
                        f"   FA {lb:14s} {s.score:.2f} r={s.rule_score:.2f} m={s.model_score} {it.id} "
                        f"{it.title[:70]!r} [{fired}]"
                    )
    print("  (FA/100: labels raised that the analyst did not give, per 100 items; NM sel: near-misses given any")
    print("   label; caught: relevant items given at least one of their labels)")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--holdout", action="store_true", help="train on the dev set's train split only")
    ap.add_argument("--k-folds", type=int, default=5)
    ap.add_argument("--model", type=Path, default=None, help="score with this model directory, no training")
    ap.add_argument("--no-model", action="store_true", help="the rules alone (no training)")
    ap.add_argument("--half", choices=["tune", "check", "both"], default="both")
    ap.add_argument("--errors", action="store_true", help="list the tune half's false alerts")
    a = ap.parse_args(argv)
    if a.no_model:
        from core.config import load_settings
        from nlp.rules import active_rules

        rules, model = active_rules(load_settings()), None
    else:
        rules, model = load_or_train(a.model, a.holdout, a.k_folds)
    report(rules, model, a.half, a.errors)


if __name__ == "__main__":
    main()
