"""Rules alone on the TRAIN split only (used while writing rules.yaml); prints errors for inspection."""

import sys

from nlp.dataset import DEV_SET, load_dataset, split
from nlp.evaluate import evaluate
from nlp.rules import load_rules

train, _ = split(load_dataset(DEV_SET))
rules = load_rules("core/profiles/has/rules.yaml")
ev = evaluate(train, rules, None)
print(ev.results["rules"].summary())
if "-v" in sys.argv:
    for it, row, pred in zip(ev.items, ev.scores, ev.predictions["rules"], strict=True):
        gold = set(it.labels)
        if pred != gold:
            fired = "; ".join(
                f"{f['label']}:{f['rule']}={f['words']}({f['weight']})" for s in row.values() for f in s.fired
            )[:300]
            print(f"{it.id} gold={sorted(gold)} pred={sorted(pred)} | {it.title[:90]} || {fired}")
